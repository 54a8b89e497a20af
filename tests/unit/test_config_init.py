"""`oewsctl init`: a commented inventory that loads, from flags; never overwrites by accident."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from oewsctl.configuration.loading import load_config
from tests.fixtures.keyvault import CliResult

Cli = Callable[..., CliResult]
FLAGS = (
    "--node", "machine1=203.0.113.10", "--node", "machine2=203.0.113.11",
    "--node", "raspberrypi=pi@203.0.113.12/arm64", "--domain", "api.example.com",
    "--email", "ops@example.com", "--image", "ghcr.io/example/oews-api", "--k3s-version", "v1.31.4+k3s1",
)


def test_init_from_flags_writes_a_commented_loadable_file(tmp_path: Path, oewsctl: Cli) -> None:
    path = tmp_path / "oewsctl.yaml"
    result = oewsctl("-c", str(path), "init", *FLAGS)
    assert result.code == 0, result.err
    assert f"wrote {path}" in result.err
    text = path.read_text()
    assert text.startswith("# oewsctl inventory") and "# pinned k3s release" in text
    config = load_config(path)
    assert config.cluster.k3s_version == "v1.31.4+k3s1"
    assert [(n.name, n.role, n.user, n.arch) for n in config.nodes] == [
        ("machine1", "server", "ops", "amd64"), ("machine2", "agent", "ops", "amd64"), ("raspberrypi", "agent", "pi", "arm64"),
    ]
    assert config.node("machine1").labels == {"oews/db": "true"}
    assert config.node("raspberrypi").labels == {"oews/role": "monitoring"} and config.monitoring.node == "raspberrypi"


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, oewsctl: Cli) -> None:
    path = tmp_path / "oewsctl.yaml"
    path.write_text("# my hand-edited inventory\n")
    refused = oewsctl("-c", str(path), "init", *FLAGS)
    assert refused.code == 2 and "already exists; nothing written" in refused.err and "--force" in refused.err
    assert path.read_text() == "# my hand-edited inventory\n"
    forced = oewsctl("-c", str(path), "init", *FLAGS, "--force")
    assert forced.code == 0
    first = path.read_text()
    assert [p.read_text() for p in tmp_path.glob("oewsctl.yaml.bak-*")] == ["# my hand-edited inventory\n"]
    load_config(path)
    again = oewsctl("-c", str(path), "init", *FLAGS[:-2], "--k3s-version", "v1.32.1+k3s1", "--force")
    assert again.code == 0 and "previous file kept as" in again.err
    backups = {p.read_text() for p in tmp_path.glob("oewsctl.yaml.bak-*")}
    assert backups == {"# my hand-edited inventory\n", first}  # the hand-edited one survives a second --force
    assert load_config(path).cluster.k3s_version == "v1.32.1+k3s1"


@pytest.mark.parametrize(("args", "expected"), [
    (("--domain", "api.example.com"), "init needs --node, --email, --image (no terminal to ask on)"),
    (("--node", "machine1:203.0.113.10", *FLAGS[2:]), "expected NAME=USER@HOST/ARCH"),
    (("--node", "Machine_1=203.0.113.10", *FLAGS[4:]), "nodes[0].name: 'Machine_1' is not a DNS-1123 label"),
    ((*FLAGS, "--server", "machine9"), "cluster.server: 'machine9' is not one of the nodes"),
])
def test_init_bad_input_is_exit_2_and_writes_nothing(tmp_path: Path, oewsctl: Cli, args: tuple[str, ...], expected: str) -> None:
    path = tmp_path / "oewsctl.yaml"
    result = oewsctl("-c", str(path), "init", *args)
    assert result.code == 2
    assert expected in result.err
    assert not path.exists()


def test_init_reports_every_bad_value_at_once_and_writes_nothing(tmp_path: Path, oewsctl: Cli) -> None:
    """What init writes, every later command accepts: the same validator runs before the file is written."""
    path = tmp_path / "oewsctl.yaml"
    bad = {"--domain": "API.example.com", "--email": "ops.example.com", "--image": "ghcr.io/Example/OEWS-api"}
    args = [value for pair in zip(FLAGS[::2], FLAGS[1::2], strict=True) for value in (pair[0], bad.get(pair[0], pair[1]))]
    result = oewsctl("-c", str(path), "init", *args, "--server", "machine9")
    assert result.code == 2
    for expected in ("app.domain: 'API.example.com' is not a public host name", "app.acme_email: 'ops.example.com' is not an e-mail",
                     "app.image: image reference 'ghcr.io/Example/OEWS-api'", "cluster.server: 'machine9' is not one of the nodes"):
        assert expected in result.err
    assert "4 problem(s)" in result.err and "Traceback" not in result.err
    assert not path.exists()
