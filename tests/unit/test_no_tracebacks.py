"""Never a traceback: every command, given broken inputs, ends with one ``error:`` line, a hint and
a documented exit code (2 usage/config, 1 operation failed; 3 is only the lock).

The command list is read from the CLI itself, so a new command is covered the day it is added.
Broken inputs: an inventory that is not UTF-8, one with wrong types, and a valid one whose nodes
are a TCP listener that never speaks SSH or a closed port, with no kubeconfig; plus missing files
and a busy port for ``serve``. A bug that slips through still prints one line, ``unexpected ...``
(see ``oewsctl.cli.main``), and fails here as well.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DATA_DIR
from tests.fixtures.cli import CliRunner, leaf_commands

EXAMPLE = DATA_DIR / "deploy" / "oewsctl.yaml"
NOT_HERE = {
    ("serve",): "runs until stopped: tested below with a busy port",
    ("image", "build"): "builds with the local docker engine (tests/integration/test_image_build.py)",
    ("image", "push"): "pushes with the local docker engine (tests/integration/test_image_registry.py)",
    ("loadtest",): "sends traffic to app.domain on the internet (tests/unit/test_loadtest.py)",
}
NO_INVENTORY = {("init",), ("db", "build"), ("db", "validate"), ("drill", "report")}
"""Commands that never read oewsctl.yaml (init refuses to overwrite it: exit 2 as well)."""


LEAVES = dict(leaf_commands())
COMMANDS = [path for path in LEAVES if path not in NOT_HERE]


def _argv(path: tuple[str, ...], files: Path) -> list[str]:
    """The command with a placeholder for each required argument or option."""
    command = LEAVES[path]
    values = {"file": str(files / "oews.db"), "backup_id": "20250101T000000Z", "target": "api",
              "name": "OPENAI_API_KEY", "names": "OPENAI_API_KEY", "node": "machine1"}
    argv = list(path)
    for param in command.params:
        if param.required:
            argv += [values[param.name]] if param.param_type_name == "argument" else [param.opts[0], str(files / "missing")]
    return argv


def _assert_one_clean_error(result: Any, allowed: tuple[int, ...] = (1, 2)) -> str:
    text = result.stdout + result.stderr
    assert "Traceback" not in text and "unexpected " not in text, text
    assert result.returncode in (0, *allowed), (result.returncode, text)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if result.returncode:
        report = all(line.startswith("problem: ") for line in result.stderr.splitlines())  # `db validate` lists what is wrong
        assert len(errors) == 1 or report or result.stderr.startswith("Usage:"), result.stderr
    return errors[0] if errors else ""


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A TCP listener that accepts and never says a word (a node whose port 22 is something else)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in held:
        conn.close()


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "oews.db").write_bytes(b"not a database")
    return tmp_path


def _inventory(files: Path, **change: Any) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["cluster"]["kubeconfig"] = str(files / "no-kubeconfig")
    data["backup"]["dest"] = str(files / "backups")
    data["ssh"] = {"key": None, "known_hosts": str(files / "known_hosts"), "connect_timeout": 1}
    data["secrets"] = {"provider": "kubernetes"}
    for section, values in change.items():
        data[section] = values if not isinstance(data.get(section), dict) else {**data[section], **values}
    path = files / "oewsctl.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_an_inventory_that_is_not_utf8_is_one_line_exit_2(path: tuple[str, ...], files: Path, run_cli: CliRunner) -> None:
    config = _inventory(files)
    config.write_bytes(config.read_bytes() + b"# caf\xe9\n")
    error = _assert_one_clean_error(run_cli("-c", config, *_argv(path, files)))
    if path not in NO_INVENTORY:
        assert f"config file {config} is not UTF-8 text" in error


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_wrong_types_are_listed_together_exit_2(path: tuple[str, ...], files: Path, run_cli: CliRunner) -> None:
    config = _inventory(files, app={"replicas": "two", "namespace": "Oews"}, nodes="machine1")
    result = run_cli("-c", config, *_argv(path, files))
    _assert_one_clean_error(result)
    if path not in NO_INVENTORY:
        assert result.returncode == 2
        assert "3 problem(s)" in result.stderr and "app.replicas: Input should be a valid integer" in result.stderr
        assert "app.namespace: 'Oews' is not a DNS-1123 label" in result.stderr and "nodes: Input should be a valid list" in result.stderr


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_silent_and_unreachable_nodes_and_no_cluster(path: tuple[str, ...], files: Path, run_cli: CliRunner, silent_port: int, closed_port: int) -> None:
    """Nodes: a listener that never speaks SSH (paramiko's banner thread used to print tracebacks)
    and a closed port; no kubeconfig. Whatever each command does, it ends in one line."""
    data = yaml.safe_load(EXAMPLE.read_text())
    nodes = [{**node, "host": "127.0.0.1", "port": port} for node, port in zip(data["nodes"], (silent_port, closed_port, silent_port), strict=True)]
    result = run_cli("-c", _inventory(files, nodes=nodes), *_argv(path, files), "--yes")
    error = _assert_one_clean_error(result)
    assert "SSH protocol banner" not in result.stderr
    if "machine1 (ops@127.0.0.1" in error:
        assert f"port {silent_port} accepts connections but no SSH server answered within 1s" in error


def test_a_bug_is_one_line_too(files: Path, run_cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last line of defence works (and the sweeps above would see its ``unexpected``)."""
    monkeypatch.setattr("oewsctl.configuration.loading.parse_config", lambda *a, **k: {}["boom"])
    result = run_cli("-c", _inventory(files), "status")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == "error: unexpected KeyError: 'boom'"
    assert "OEWSCTL_TRACEBACK=1" in result.stderr


@pytest.mark.parametrize(("argv", "expected"), [
    (("db", "push", "{files}/missing.db"), "missing.db"),
    (("db", "validate", "{files}/missing.db"), "missing.db: no such file"),
    (("status",), "config file {files}/none.yaml not found"),
    (("secrets", "set", "OPENAI_API_KEY", "--from-file", "{files}/missing"), "missing"),
    (("db", "build", "--from", "{files}/missing", "--out", "{files}/out.db"), "missing: no such file or directory"),
])
def test_missing_files_are_named_exit_2(argv: tuple[str, ...], expected: str, files: Path, run_cli: CliRunner) -> None:
    config = files / "none.yaml" if argv == ("status",) else _inventory(files)
    result = run_cli("-c", config, *(a.format(files=files) for a in argv))
    error = _assert_one_clean_error(result, allowed=(2,))
    assert result.returncode == 2 and expected.format(files=files) in error


def test_serve_on_a_busy_port_is_one_line_exit_2(run_cli: CliRunner) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port))
    error = _assert_one_clean_error(result, allowed=(2,))
    assert result.returncode == 2 and error == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert f"ss -ltnp 'sport = :{port}'" in result.stderr and "--port" in result.stderr
