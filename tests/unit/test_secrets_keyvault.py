"""`secrets set` / `secrets list` with the real azure-keyvault-secrets client against the HTTPS stand-in.

TLS is verified against the stand-in's test CA; the SDK's 401 bearer challenge flow runs for real.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oewsctl.clients.keyvault import KeyVault
from oewsctl.core.errors import OewsctlError
from tests.fixtures.keyvault import CliResult, StaticTokenCredential, VaultStandIn, write_config

SECRET = "sk-test-DO-NOT-LEAK-7c1e55"
Cli = Callable[..., CliResult]


@pytest.fixture
def config(vault_login: VaultStandIn, tmp_path: Path) -> Path:
    return write_config(tmp_path / "oewsctl.yaml", vault_url=vault_login.url)


def _audit(state: Path) -> str:
    path = state / "audit.jsonl"
    return path.read_text() if path.exists() else ""


def test_set_writes_a_vault_version_and_never_shows_the_value(oewsctl: Cli, config: Path, vault_login: VaultStandIn, oewsctl_state: Path) -> None:
    result = oewsctl("--config", str(config), "secrets", "set", "OPENAI_API_KEY", "--from-stdin", stdin=SECRET + "\n")
    assert result.code == 0, result.err
    assert vault_login.state.current("OPENAI-API-KEY") == SECRET
    assert "set OPENAI-API-KEY (app variable OPENAI_API_KEY)" in result.err
    audit = _audit(oewsctl_state)
    assert '"command": "secrets set"' in audit and '"result": "ok"' in audit
    assert SECRET not in result.out + result.err + audit
    # the SDK ran the challenge flow (an unauthenticated probe answered 401) before writing
    assert vault_login.state.challenges == 1
    assert vault_login.state.requests[-1] == "PUT /secrets/OPENAI-API-KEY"


def test_setting_the_same_value_again_writes_no_new_version(oewsctl: Cli, config: Path, vault_login: VaultStandIn) -> None:
    for _ in range(2):
        result = oewsctl("--config", str(config), "secrets", "set", "OPENAI-API-KEY", "--from-stdin", stdin=SECRET)
        assert result.code == 0, result.err
    assert "already holds this value" in result.err
    assert len(vault_login.state.secrets["OPENAI-API-KEY"]) == 1


def test_list_shows_versions_and_missing_keys_never_values(oewsctl: Cli, config: Path, vault_login: VaultStandIn) -> None:
    version = vault_login.state.put("OPENAI-API-KEY", SECRET)
    result = oewsctl("--config", str(config), "--output", "json", "secrets", "list")
    assert result.code == 0, result.err
    rows = {row["name"]: row for row in json.loads(result.out)}
    assert rows["OPENAI-API-KEY"]["version"] == version.version
    assert rows["OPENAI-API-KEY"]["app_variable"] == "OPENAI_API_KEY"
    assert rows["OPENAI-API-KEY"]["enabled"] is True and rows["OPENAI-API-KEY"]["content_type"] == "text/plain"
    assert rows["AZURE-AI-API-KEY"]["missing"] is True
    text = oewsctl("--config", str(config), "secrets", "list")
    assert "OPENAI-API-KEY" in text.out and "MISSING" in text.out
    assert SECRET not in result.out + text.out + text.err


def test_dry_run_shows_the_plan_and_writes_nothing(oewsctl: Cli, config: Path, vault_login: VaultStandIn) -> None:
    result = oewsctl("--config", str(config), "--dry-run", "secrets", "set", "OPENAI_API_KEY", "--from-stdin", stdin=SECRET)
    assert result.code == 0, result.err
    assert "value withheld" in result.err
    assert vault_login.state.secrets == {} and vault_login.state.requests == []


@pytest.mark.parametrize(("args", "message"), [
    (["secrets", "set", "OPENAI_API_KEY"], "exactly one of --from-stdin or --from-file"),
    (["secrets", "set", "OPENAI_API_KY", "--from-stdin"], "'OPENAI_API_KY' is not one of the app's secrets"),
    (["secrets", "set", "OPENAI_API_KEY", "--from-file", "/nonexistent/key.txt"], "no such file"),
])
def test_operator_mistakes_exit_2_and_change_nothing(oewsctl: Cli, config: Path, vault_login: VaultStandIn, args: list[str], message: str) -> None:
    result = oewsctl("--config", str(config), *args, stdin=SECRET)
    assert result.code == 2
    assert message in result.err
    assert vault_login.state.secrets == {}
    assert SECRET not in result.err


def test_forbidden_names_the_role_to_grant(oewsctl: Cli, config: Path, vault_login: VaultStandIn) -> None:
    vault_login.state.role = "user"  # may read, may not write
    result = oewsctl("--config", str(config), "secrets", "set", "OPENAI_API_KEY", "--from-stdin", stdin=SECRET)
    assert result.code == 1
    assert "may not write secrets" in result.err and '"Key Vault Secrets Officer"' in result.err
    assert vault_login.state.secrets == {}
    vault_login.state.role = "none"
    listing = oewsctl("--config", str(config), "secrets", "list")
    assert listing.code == 1 and '"Key Vault Secrets User"' in listing.err


def test_vault_rejecting_the_token_says_which_tenant_to_check(key_vault: VaultStandIn) -> None:
    vault = KeyVault(key_vault.url, StaticTokenCredential("token-from-another-tenant"), **key_vault.client_options())
    with pytest.raises(OewsctlError) as info:
        vault.list()
    assert "rejected the Azure token" in info.value.message and "tenant" in (info.value.hint or "")


def test_no_credential_lists_the_sources_tried(key_vault: VaultStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real DefaultAzureCredential with nothing configured (managed identity probed on loopback)."""
    for var in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")  # nothing listens: no IMDS here
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no az, azd or pwsh
    with pytest.raises(OewsctlError) as info:
        KeyVault(key_vault.url, **key_vault.client_options()).list()
    assert "no Azure credential could get a token" in info.value.message
    assert "EnvironmentCredential" in info.value.message and "AzureCliCredential" in info.value.message
    assert "az login" in (info.value.hint or "")


def test_wrong_vault_dns_name_points_at_vault_url(key_vault: VaultStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:  # the OS resolver answering NXDOMAIN
        if host == "oews-secrts.vault.azure.net":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    vault = KeyVault("https://oews-secrts.vault.azure.net", StaticTokenCredential(), retry_total=0)
    with pytest.raises(OewsctlError) as info:
        vault.set("OPENAI-API-KEY", SECRET)
    assert "cannot resolve the vault host oews-secrts.vault.azure.net" in info.value.message
    assert "secrets.vault_url" in (info.value.hint or "")
    assert SECRET not in str(info.value) + (info.value.hint or "")


def test_tls_is_verified(key_vault: VaultStandIn) -> None:
    """Without the test CA the stand-in's certificate is refused: verification is on."""
    vault = KeyVault(key_vault.url, StaticTokenCredential(), verify_challenge_resource=False, retry_total=0)
    with pytest.raises(OewsctlError) as info:
        vault.list()
    assert "TLS certificate" in info.value.message
    assert key_vault.state.requests == []
