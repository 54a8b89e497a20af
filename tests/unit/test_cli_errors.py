"""The entry point turns errors into one line, a hint and the DESIGN exit code."""

from __future__ import annotations

import sys

import pytest

from oewsctl.cli import main


def _run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr(sys, "argv", ["oewsctl", *argv])
    with pytest.raises(SystemExit) as info:
        main()
    return int(info.value.code or 0)


def test_missing_config_exits_2_with_the_path_and_the_fix(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Brackets in a message (host ids like [node1.lan]:2222, paths) must print as text, not as markup.
    path = "/nonexistent/[/ARCH]/oewsctl.yaml"
    assert _run(monkeypatch, "--config", path, "cluster", "status") == 2
    err = capsys.readouterr().err
    assert f"error: config file {path} not found" in err
    assert "hint: run `oewsctl init`" in err


def test_invalid_config_lists_every_problem_with_its_path(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "oewsctl.yaml"
    config.write_text(
        "cluster: {server: m1}\n"
        "nodes:\n  - {name: m1, host: 127.0.0.1, role: server}\n  - {name: m2, host: 127.0.0.2, role: worker}\n"
        "app: {domain: api.example.com, acme_email: ops@example.com, image: ghcr.io/x/oews-api, replicas: 0}\n"
    )
    assert _run(monkeypatch, "--config", str(config), "cluster", "status") == 2
    err = capsys.readouterr().err
    assert "nodes[1].role: must be server or agent" in err
    assert "app.replicas: Input should be greater than or equal to 1" in err


def test_unknown_option_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, "--bogus") == 2
