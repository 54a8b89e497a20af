"""Azure Key Vault secrets: a thin client whose every failure says what to do.

Authentication is azure-identity's ``DefaultAzureCredential`` (environment service
principal, workload/managed identity, Azure CLI login, ...). Callers may pass any
other ``TokenCredential``; tests use a static token against a local HTTPS stand-in.
Secret values pass through this module only as arguments and return values: they
are never logged, formatted into messages, or attached to exceptions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient, SecretProperties

from oewsctl.core.errors import OewsctlError, UsageError

# The SDK logs each failed credential as a WARNING; without a handler Python prints those to
# stderr. The OewsctlError below already names the sources tried, once.
logging.getLogger("azure").addHandler(logging.NullHandler())

Access = Literal["read", "write"]
T = TypeVar("T")

VAULT_NAME_RE = re.compile(r"^[0-9A-Za-z-]{1,127}$")
ROLE_FOR: dict[Access, str] = {"read": "Key Vault Secrets User", "write": "Key Vault Secrets Officer"}
LOGIN_HINT = (
    "log in with `az login`, or export AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
    "for a service principal (the secret in the environment, never on the command line)"
)


@dataclass(frozen=True)
class SecretInfo:
    """What `secrets list` shows about one vault secret: never its value."""

    name: str
    enabled: bool
    content_type: str | None
    updated: datetime | None
    version: str | None


def default_credential() -> TokenCredential:
    """The production credential chain (lazy import: azure-identity is slow to import)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def check_vault_name(name: str) -> str:
    """Key Vault secret names allow letters, digits and dashes (1..127)."""
    if not VAULT_NAME_RE.match(name):
        raise UsageError(
            f"{name!r} is not a valid Key Vault secret name (letters, digits and '-' only)",
            hint="map the app variable to a vault name in secrets.keys, e.g. OPENAI_API_KEY: OPENAI-API-KEY",
        )
    return name


class KeyVault:
    """Set, read and list secrets in one vault, translating SDK errors into OewsctlError.

    ``client_options`` go to ``SecretClient`` unchanged (transport, retry settings,
    ``verify_challenge_resource`` for a vault that is not under ``*.vault.azure.net``).
    """

    def __init__(self, vault_url: str, credential: TokenCredential | None = None, **client_options: Any) -> None:
        parsed = urlparse(vault_url)
        if parsed.scheme != "https" or not parsed.hostname:
            raise UsageError(
                f"secrets.vault_url {vault_url!r} is not an https URL",
                hint="use the vault's URI from the portal, e.g. https://oews-secrets.vault.azure.net",
            )
        self.url = vault_url.rstrip("/")
        self.host = parsed.hostname
        self._client = SecretClient(self.url, credential or default_credential(), **client_options)

    def close(self) -> None:
        self._client.close()

    def set(self, name: str, value: str, content_type: str = "text/plain") -> str:
        """Write a new version of ``name``; returns the new version id."""
        check_vault_name(name)
        secret = self._call("write", name, lambda: self._client.set_secret(name, value, content_type=content_type))
        return secret.properties.version or ""

    def get(self, name: str) -> str | None:
        """The current value of ``name``, or None when the vault has no such secret."""
        check_vault_name(name)
        try:
            return self._call("read", name, lambda: self._client.get_secret(name).value)
        except _NotFound:
            return None

    def list(self) -> list[SecretInfo]:
        """Every secret in the vault with its current version (values are never fetched)."""
        return self._call("read", None, lambda: [self._info(p) for p in self._client.list_properties_of_secrets()])

    def _info(self, props: SecretProperties) -> SecretInfo:
        name = props.name or ""
        versions = list(self._client.list_properties_of_secret_versions(name))
        latest = max(versions, key=lambda v: v.created_on.timestamp() if v.created_on else 0.0, default=props)
        return SecretInfo(name, bool(latest.enabled), latest.content_type, latest.updated_on, latest.version)

    def _call(self, access: Access, name: str | None, call: Callable[[], T]) -> T:
        with self._translated(access, name):
            return call()

    @contextmanager
    def _translated(self, access: Access, name: str | None) -> Iterator[None]:
        """Turn an SDK error into one line with what to do (never the request body)."""
        what = f"secret {name!r} in vault {self.url}" if name else f"vault {self.url}"
        try:
            yield
        except ResourceNotFoundError:
            raise _NotFound(f"no {what}") from None
        except ClientAuthenticationError as exc:
            if exc.response is not None:
                raise OewsctlError(
                    f"vault {self.url} rejected the Azure token (HTTP {exc.response.status_code})",
                    hint="log in to the vault's tenant: `az account show` names yours; `az login --tenant <vault tenant id>`",
                ) from None
            raise OewsctlError(f"no Azure credential could get a token for {self.url} ({_tried(exc)})", hint=LOGIN_HINT) from None
        except HttpResponseError as exc:
            status = exc.status_code
            if status == 403:
                raise OewsctlError(
                    f"forbidden: your Azure identity may not {access} secrets in vault {self.url}",
                    hint=f'grant the role "{ROLE_FOR[access]}" on the vault: '
                    f'az role assignment create --role "{ROLE_FOR[access]}" --assignee <your user or app id> --scope <vault resource id>',
                ) from None
            code = exc.error.code if exc.error is not None else None
            raise OewsctlError(f"{what}: HTTP {status} {code or exc.reason or ''}".rstrip(), hint="retry; if it persists check the vault in the Azure portal") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise _connection_error(self.url, self.host, exc) from None


class _NotFound(OewsctlError):
    """The vault has no such secret (callers decide whether that is an error)."""


def _tried(exc: ClientAuthenticationError) -> str:
    """Which credential sources were tried, from DefaultAzureCredential's message.

    The chain stops at the first source that is configured but fails (say a wrong client
    secret); its reason is what the operator needs, so it is kept.
    """
    attempts = re.findall(r"^\t(\w+Credential): ?(.*)$", str(exc.message), flags=re.MULTILINE)
    if not attempts:
        return str(exc.message).splitlines()[0]
    tried = "tried: " + ", ".join(dict.fromkeys(name for name, _ in attempts))
    name, reason = attempts[-1]
    return tried if re.search(r"unavailable|not found|not installed|could not be found|requires", reason) else f"{tried}; {name} failed: {reason}"


def _connection_error(url: str, host: str, exc: Exception) -> OewsctlError:
    text = str(exc)
    if re.search(r"Name or service not known|nodename nor servname|getaddrinfo failed|NameResolutionError|No address associated", text):
        return OewsctlError(
            f"cannot resolve the vault host {host} (DNS)",
            hint="check secrets.vault_url: it is https://<vault-name>.vault.azure.net with the vault's exact name",
        )
    if re.search(r"CERTIFICATE_VERIFY_FAILED|SSLError|certificate verify failed", text):
        return OewsctlError(
            f"TLS certificate of {url} could not be verified",
            hint="a proxy may intercept HTTPS: give its CA in REQUESTS_CA_BUNDLE (verification stays on)",
        )
    return OewsctlError(f"cannot reach vault {url}", hint="check the network and any private endpoint or firewall rule on the vault")


def open_vault(vault_url: str) -> KeyVault:
    """The vault named in the config, authenticated with ``DefaultAzureCredential``."""
    return KeyVault(vault_url)
