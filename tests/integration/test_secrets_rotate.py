"""`secrets rotate` end to end: real Key Vault client -> HTTPS stand-in, kube API emulator, an
ESO-playing controller and the Deployment controller. Values must reach the Secret, pods roll
exactly once, and the value never shows in output, logs, audit log or other objects."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from oewsctl.runbooks.secrets import secret_data_hash
from tests.fixtures.azure_app import OLD
from tests.fixtures.eso import STALLED_MESSAGE, EsoController, assert_no_leak, b64, pod_hash, replicasets, rolled_out, secret_data
from tests.fixtures.keyvault import CliResult, VaultStandIn, write_config
from tests.fixtures.kube import KubeCluster

NEW = "sk-test-DO-NOT-LEAK-rotated-4d2b"
Cli = Callable[..., CliResult]


def test_rotate_syncs_then_rolls_pods_exactly_once(
    oewsctl: Cli, azure: Path, kube_cluster: KubeCluster, vault_login: VaultStandIn, oewsctl_state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = replicasets(kube_cluster)
    result = oewsctl("--config", str(azure), "secrets", "rotate", "OPENAI_API_KEY", "--from-stdin", stdin=NEW + "\n")
    assert result.code == 0, result.err
    assert vault_login.state.current("OPENAI-API-KEY") == NEW
    data = secret_data(kube_cluster)
    assert data["OPENAI_API_KEY"] == b64(NEW) and data["AZURE_AI_API_KEY"] == b64(OLD)
    assert pod_hash(kube_cluster) == secret_data_hash(data)
    assert len(replicasets(kube_cluster)) == len(before) + 1  # one new ReplicaSet: one restart
    assert rolled_out(kube_cluster)
    for stage in ("set OPENAI-API-KEY", "force-sync=", "wait for ESO to sync", "roll Deployment oews/oews-api", "wait for the rollout"):
        assert stage in result.err
    audit = (oewsctl_state / "audit.jsonl").read_text()
    assert_no_leak(kube_cluster, NEW, result.out, result.err, audit, caplog.text)

    again = oewsctl("--config", str(azure), "--output", "json", "secrets", "rotate", "OPENAI_API_KEY", "--from-stdin", stdin=NEW)
    assert again.code == 0, again.err
    steps = json.loads(again.out)["steps"]
    vault_step = next(step for step in steps if "set OPENAI-API-KEY" in step["description"])
    roll_step = next(step for step in steps if step["description"].startswith("roll Deployment"))
    assert vault_step["status"] == "unchanged" and vault_step["message"] == "already holds this value"
    assert roll_step["status"] == "unchanged" and "pods already use this Secret" in roll_step["message"]
    assert_no_leak(kube_cluster, NEW, again.out, again.err)
    assert len(replicasets(kube_cluster)) == len(before) + 1  # no second restart
    assert len(vault_login.state.secrets["OPENAI-API-KEY"]) == 2  # OLD, NEW: no extra version


def test_stalled_sync_times_out_with_the_eso_message_and_keeps_pods(
    oewsctl: Cli, azure: Path, kube_cluster: KubeCluster, eso: EsoController
) -> None:
    eso.stalled = True
    before, hash_before = replicasets(kube_cluster), pod_hash(kube_cluster)
    result = oewsctl("--config", str(azure), "secrets", "rotate", "OPENAI_API_KEY", "--sync-timeout", "1", "--from-stdin", stdin=NEW)
    assert result.code == 1
    assert "timed out after 1s waiting for ESO to sync the new values" in result.err
    assert STALLED_MESSAGE in result.err
    assert "pods were NOT restarted" in result.err
    assert replicasets(kube_cluster) == before and pod_hash(kube_cluster) == hash_before
    assert secret_data(kube_cluster)["OPENAI_API_KEY"] == b64(OLD)
    assert_no_leak(kube_cluster, NEW, result.out, result.err)


def test_missing_external_secret_says_deploy_first_and_writes_nothing(
    oewsctl: Cli, kube_cluster: KubeCluster, vault_login: VaultStandIn, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "oewsctl.yaml", kubeconfig=kube_cluster.kubeconfig, vault_url=vault_login.url)
    result = oewsctl("--config", str(config), "secrets", "rotate", "OPENAI_API_KEY", "--from-stdin", stdin=NEW)
    assert result.code == 1
    assert "ExternalSecret oews/oews-api-secrets not found" in result.err and "oewsctl deploy" in result.err
    assert vault_login.state.secrets == {}


def test_eso_syncing_on_its_own_is_reconciled_with_one_roll(
    oewsctl: Cli, azure: Path, kube_cluster: KubeCluster, eso: EsoController, vault_login: VaultStandIn
) -> None:
    first = oewsctl("--config", str(azure), "secrets", "status", "--reconcile")  # pods get the hash once
    assert first.code == 0, first.err
    before = replicasets(kube_cluster)
    vault_login.state.put("AZURE-AI-API-KEY", NEW)  # someone changed it in the portal
    eso.refresh()  # ESO's refresh interval fires
    kube_cluster.wait_for(lambda: secret_data(kube_cluster).get("AZURE_AI_API_KEY") == b64(NEW))

    status = oewsctl("--config", str(azure), "--output", "json", "secrets", "status")
    report = json.loads(status.out)
    assert report["external_secret"]["ready"] == "True" and report["external_secret"]["reason"] == "SecretSynced"
    assert report["external_secret"]["mapped"] == {"AZURE_AI_API_KEY": "AZURE-AI-API-KEY", "OPENAI_API_KEY": "OPENAI-API-KEY"}
    assert report["secret_store"]["ready"] == "True" and report["secret"]["missing"] == []
    assert report["deployment"]["in_sync"] is False
    text = oewsctl("--config", str(azure), "secrets", "status")
    assert "pods started with an OLDER Secret" in text.out

    fixed = oewsctl("--config", str(azure), "secrets", "status", "--reconcile")
    assert fixed.code == 0, fixed.err
    assert len(replicasets(kube_cluster)) == len(before) + 1
    again = oewsctl("--config", str(azure), "secrets", "status", "--reconcile")
    assert "pods already use this Secret" in again.err
    assert len(replicasets(kube_cluster)) == len(before) + 1
    assert_no_leak(kube_cluster, NEW, status.out, text.out, fixed.out, fixed.err)


def test_rotate_trusts_eso_clock_not_ours(
    oewsctl: Cli, azure: Path, kube_cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ESO's clock an hour behind this machine: the sync is still seen (its marker changed), no false timeout."""
    monkeypatch.setattr("tests.fixtures.eso._now", lambda: "2026-01-01T00:00:00Z")
    result = oewsctl("--config", str(azure), "secrets", "rotate", "OPENAI_API_KEY", "--sync-timeout", "10", "--from-stdin", stdin=NEW)
    assert result.code == 0, result.err
    assert secret_data(kube_cluster)["OPENAI_API_KEY"] == b64(NEW)
    assert "synced at 2026-01-01T00:00:00Z" in result.err


def test_two_rotates_within_one_second_both_sync(oewsctl: Cli, azure: Path, kube_cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """ESO syncs on a *changed* force-sync annotation: the second rotate in the same second must still change it."""
    monkeypatch.setattr("time.time", lambda: 1_795_670_000.0)
    for value in (NEW, NEW + "-2"):
        result = oewsctl("--config", str(azure), "secrets", "rotate", "OPENAI_API_KEY", "--sync-timeout", "5", "--from-stdin", stdin=value)
        assert result.code == 0, result.err
        assert secret_data(kube_cluster)["OPENAI_API_KEY"] == b64(value)
