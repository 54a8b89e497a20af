"""The entry point turns errors into one line, a hint and the DESIGN exit code."""

from __future__ import annotations

from tests.fixtures.cli import CliRunner


def test_missing_config_exits_2_with_the_path_and_the_fix(run_cli: CliRunner) -> None:
    # Brackets in a message (host ids like [node1.lan]:2222, paths) must print as text, not as markup.
    path = "/nonexistent/[/ARCH]/oewsctl.yaml"
    done = run_cli("--config", path, "cluster", "status")
    assert done.returncode == 2
    err = done.stderr
    assert f"error: config file {path} not found" in err
    assert "hint: run `oewsctl init`" in err


def test_invalid_config_lists_every_problem_with_its_path(tmp_path, run_cli: CliRunner) -> None:
    config = tmp_path / "oewsctl.yaml"
    config.write_text(
        "cluster: {server: m1}\n"
        "nodes:\n  - {name: m1, host: 127.0.0.1, role: server}\n  - {name: m2, host: 127.0.0.2, role: worker}\n"
        "app: {domain: api.example.com, acme_email: ops@example.com, image: ghcr.io/x/oews-api, replicas: 0}\n"
    )
    done = run_cli("--config", config, "cluster", "status")
    assert done.returncode == 2
    err = done.stderr
    assert "nodes[1].role: must be server or agent" in err
    assert "app.replicas: Input should be greater than or equal to 1" in err


def test_unknown_option_is_a_usage_error(run_cli: CliRunner) -> None:
    assert run_cli("--bogus").returncode == 2
