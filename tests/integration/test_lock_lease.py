"""The in-cluster half of the lock: a Lease that stops an operator on another machine too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oewsctl.configuration.loading import load_config
from oewsctl.core.context import Options, RunContext
from oewsctl.core.errors import LockHeldError
from oewsctl.core.lock import LEASE, lock_path
from oewsctl.core.plan import Plan, Step
from oewsctl.core.runner import run_plan
from tests.fixtures.kube import KubeCluster

LEASES = "coordination.k8s.io/v1/leases"
_, _, NAME, NAMESPACE = LEASE


def _ctx(path: Path, **options: object) -> RunContext:
    return RunContext(config=load_config(path), options=Options(**options))  # type: ignore[arg-type]


def test_lease_held_during_the_run_and_released(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    config = kube_cluster.write_config(tmp_path / "oewsctl.yaml")
    seen: list[dict] = []  # type: ignore[type-arg]
    plan = Plan("db push", [Step("look at the lease", action=lambda c: seen.append(kube_cluster.get(LEASES, NAMESPACE, NAME)))])
    run_plan(plan, _ctx(config))
    holder = json.loads(seen[0]["metadata"]["annotations"]["oewsctl/holder"])
    assert holder["command"] == "db push" and seen[0]["spec"]["holderIdentity"] == holder["holder"]
    assert kube_cluster.get(LEASES, NAMESPACE, NAME) is None


def test_lease_of_another_machine_stops_the_run_with_exit_3(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    config = kube_cluster.write_config(tmp_path / "oewsctl.yaml")
    other = {"holder": "ops@laptop", "pid": 4242, "command": "deploy", "started": "2026-11-26T04:00:00+0000"}
    kube_cluster.put(LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                              "metadata": {"name": NAME, "namespace": NAMESPACE, "annotations": {"oewsctl/holder": json.dumps(other)}},
                              "spec": {"holderIdentity": "ops@laptop"}})
    ran: list[int] = []
    plan = Plan("backup run", [Step("work", action=lambda c: ran.append(1))])
    with pytest.raises(LockHeldError) as info:
        run_plan(plan, _ctx(config))
    assert info.value.exit_code == 3 and ran == []
    assert "locked in the cluster by ops@laptop (pid 4242) running `oewsctl deploy`" in info.value.message
    assert "--break-lock" in (info.value.hint or "")
    assert not lock_path(load_config(config).cluster.name).exists()  # the local half was released
    run_plan(plan, _ctx(config, break_lock=True))
    assert ran == [1] and kube_cluster.get(LEASES, NAMESPACE, NAME) is None


def test_unreachable_api_falls_back_to_the_local_lock(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    config = kube_cluster.write_config(tmp_path / "oewsctl.yaml")
    kube_cluster.close_server()
    ran: list[int] = []
    run_plan(Plan("cluster install", [Step("work", action=lambda c: ran.append(1))]), _ctx(config))
    assert ran == [1]
