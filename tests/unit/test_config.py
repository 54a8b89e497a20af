"""Loading oewsctl.yaml: every problem reported with its path, exit 2, nothing guessed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from oewsctl.configuration.loading import load_config, parse_config
from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from tests.fixtures.keyvault import CliResult

GOOD = {
    "cluster": {"name": "home", "server": "machine1"},
    "nodes": [
        {"name": "machine1", "host": "203.0.113.10", "user": "ops", "role": "server", "labels": {"oews/db": "true"}},
        {"name": "machine2", "host": "203.0.113.11", "user": "ops", "role": "agent"},
        {"name": "raspberrypi", "host": "203.0.113.12", "user": "pi", "role": "agent", "arch": "arm64", "port": 2222},
    ],
    "app": {"domain": "api.example.com", "acme_email": "ops@example.com", "image": "ghcr.io/example/oews-api"},
    "monitoring": {"node": "raspberrypi"},
}


def _parse(data: object) -> Config:
    return parse_config(yaml.safe_dump(data), source="oewsctl.yaml")


def _problems(data: object) -> list[str]:
    with pytest.raises(UsageError) as info:
        _parse(data)
    assert info.value.exit_code == 2
    return info.value.message.splitlines()[1:]


def test_valid_inventory_and_defaults() -> None:
    config = _parse(GOOD)
    assert config.server_node.name == "machine1"
    assert [n.name for n in config.db_nodes] == ["machine1"]
    assert config.ssh_port(config.node("raspberrypi")) == 2222 and config.ssh_port(config.node("machine2")) == 22
    assert config.ssh.strict_host_keys is True and config.database.path == "/opt/k3s/storage/oews.db"


def test_every_problem_has_its_path() -> None:
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["nodes"][1]["role"] = "worker"
    bad["nodes"][2]["arch"] = "armhf"
    bad["nodes"][0]["prot"] = 22
    bad["database"] = {"path": "relative/oews.db"}
    problems = _problems(bad)
    assert "nodes[1].role: must be server or agent" in problems
    assert "nodes[2].arch: must be amd64 or arm64" in problems
    assert "nodes[0].prot: unknown key (check the spelling)" in problems
    assert "database.path: must be an absolute path on the nodes" in problems


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["cluster"].update(server="machine9"), "cluster.server: 'machine9' is not one of the nodes"),
    (lambda d: d["nodes"].append(dict(d["nodes"][1])), "nodes: node names must be unique (repeated: machine2)"),
    (lambda d: d["cluster"].update(server="machine2"), "cluster.server: 'machine2' must have role server"),
    (lambda d: d.update(ssh={"strict_host_keys": False}), "ssh.strict_host_keys: must be true"),
    (lambda d: d["nodes"][0].update(port=70000), "nodes[0].port: Input should be less than or equal to 65535"),
    (lambda d: d.pop("app"), "app: Field required"),
])
def test_cross_checks(change: Callable[[dict], None], expected: str) -> None:  # type: ignore[type-arg]
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    change(data)
    assert any(expected in line for line in _problems(data)), _problems(data)


@pytest.mark.parametrize(("version", "problem"), [
    ("v1.29.6+k3s2", "cluster.k3s_version: v1.29.6+k3s2 is too old: the API pods' preStop sleep hook needs Kubernetes v1.30 or later"),
    ("v1.9.0+k3s1", "cluster.k3s_version: v1.9.0+k3s1 is too old"),
    ("1.31", "cluster.k3s_version: '1.31' is not a k3s release tag, e.g. v1.31.4+k3s1"),
    ("v1.30.0+k3s1", None),
    ("v1.32.0-rc1+k3s1", None),
    ("", None),
])
def test_a_pinned_k3s_must_run_the_pods_prestop_sleep_hook(version: str, problem: str | None) -> None:
    """PodLifecycleSleepAction (preStop ``sleep``) is on by default from Kubernetes 1.30."""
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["cluster"]["k3s_version"] = version
    if problem is None:
        assert _parse(data).cluster.k3s_version == version
    else:
        assert any(line.startswith(problem) for line in _problems(data)), _problems(data)


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(UsageError, match=r"oewsctl.yaml: line 3 is not valid YAML"):
        parse_config("cluster:\n  name: [unclosed\n")
    with pytest.raises(UsageError, match="expected a mapping") as info:
        parse_config("- just a list\n")
    assert "oewsctl init" in (info.value.hint or "")


def test_missing_file_points_to_init(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found") as info:
        load_config(tmp_path / "nope.yaml")
    assert "oewsctl init" in (info.value.hint or "")


def test_cli_reports_bad_config_with_exit_2(tmp_path: Path, oewsctl: Callable[..., CliResult]) -> None:
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["nodes"][1]["role"] = "worker"
    path = tmp_path / "oewsctl.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = oewsctl("-c", str(path), "doctor")
    assert result.code == 2
    assert "nodes[1].role: must be server or agent" in result.err


def test_field_and_cross_field_problems_come_together() -> None:
    """One run shows everything to fix: wrong types, bad names and cross-section rules at once."""
    bad = yaml.safe_load(yaml.safe_dump(GOOD))
    bad["nodes"][1]["port"] = "twenty-two"
    bad["cluster"]["server"] = "machine9"
    bad["app"].update(namespace="OEWS", image_pull_secret="x\n  hostPID: true", domain="*.example.com", rate_limit={"average": 0})
    problems = _problems(bad)
    assert any(p.startswith("nodes[1].port: Input should be a valid integer") for p in problems), problems
    assert any(p.startswith("cluster.server: 'machine9' is not one of the nodes") for p in problems), problems
    assert any(p.startswith("app.namespace: 'OEWS' is not a DNS-1123 label") for p in problems), problems
    assert any(p.startswith("app.image_pull_secret: 'x\\n  hostPID: true' is not a DNS-1123 name") for p in problems), problems
    assert any(p.startswith("app.domain: '*.example.com' is not a public host name") for p in problems), problems
    assert "app.rate_limit.average: Input should be greater than or equal to 1" in problems


def test_edge_settings_default_to_safe_values() -> None:
    app = _parse(GOOD).app
    assert app.public_docs is False
    assert (app.rate_limit.average, app.rate_limit.burst, app.rate_limit.in_flight) == (20, 40, 16)


def test_non_utf8_file_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "oewsctl.yaml"
    path.write_bytes(yaml.safe_dump(GOOD).encode() + b"# caf\xe9\n")
    with pytest.raises(UsageError, match=r"is not UTF-8 text \(byte \d+ cannot be decoded\)") as info:
        load_config(path)
    assert info.value.exit_code == 2 and "\n" not in info.value.message
