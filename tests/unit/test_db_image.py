"""``database.delivery: image``: the rendered Deployment, and how a release moves in and out of a pod template.

Rendering is checked against the real Kubernetes schemas (kubernetes-validate, strict). The
end-to-end path (publish to a real registry, fetch_db, db update on the API emulator) is in
tests/integration/test_db_artifact.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from oewsctl.configuration.loading import parse_config
from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks.db_artifact import Published, default_tag, record_published, size_limit
from oewsctl.runbooks.db_image import database_of, rendered_template, transplant
from oewsctl.runbooks.render import render
from tests.conftest import DATA_DIR

EXAMPLE = DATA_DIR / "deploy" / "oewsctl.yaml"
K3S_KUBERNETES = "1.31.0"
MAY = Published("ghcr.io/example/oews-api-db@sha256:" + "1" * 64, "a" * 64, "May 2025", 67_575_808)
APRIL = Published("ghcr.io/example/oews-api-db@sha256:" + "2" * 64, "b" * 64, "May 2024", 60_000_000)


def _config(**database: Any) -> Config:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["database"].update(database)
    return parse_config(yaml.safe_dump(data))


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OEWSCTL_STATE_DIR", str(tmp_path))
    return tmp_path


def _deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Deployment")


def test_image_mode_renders_an_init_container_and_an_emptydir_and_validates_strictly(state: Path) -> None:
    config = _config(delivery="image")
    record_published(config, MAY)
    deployment = _deployment(render(config))
    kubernetes_validate.validate(deployment, K3S_KUBERNETES, strict=True)
    pod = deployment["spec"]["template"]
    text = json.dumps(deployment)
    assert "hostPath" not in text
    assert "oews/db" not in json.dumps(pod["spec"]["affinity"])  # no node label needed
    fetch = pod["spec"]["initContainers"][0]
    assert fetch["name"] == "fetch-db" and fetch["image"] == pod["spec"]["containers"][0]["image"] == "ghcr.io/example/oews-api:1.4.0"
    assert fetch["command"] + fetch["args"] == ["python", "-m", "oews_api.fetch_db", "--ref", MAY.ref, "--out", "/data/oews.db",
                                                "--auth-file", "/var/run/oews/registry/.dockerconfigjson"]
    assert fetch["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["db"] == {"name": "db", "emptyDir": {"sizeLimit": size_limit(MAY.size)}}
    assert volumes["registry-auth"]["secret"] == {"secretName": "ghcr-credentials", "optional": True, "defaultMode": 0o440,
                                                  "items": [{"key": ".dockerconfigjson", "path": ".dockerconfigjson"}]}
    assert pod["spec"]["securityContext"]["fsGroup"] == 1000  # the mounted Secret is readable by uid 1000
    assert pod["metadata"]["annotations"] == {"oews/db-ref": MAY.ref, "oews/db-sha256": MAY.sha256, "oews/db-release": "May 2025"}
    api = pod["spec"]["containers"][0]
    assert {"name": "db", "mountPath": "/data", "readOnly": True} in api["volumeMounts"]


def test_hostpath_mode_is_unchanged_by_a_recorded_artifact(state: Path) -> None:
    config = _config()
    record_published(config, MAY)
    pod = _deployment(render(config))["spec"]["template"]
    assert "initContainers" not in pod["spec"] and "annotations" not in pod["metadata"]
    assert {"key": "oews/db", "operator": "In", "values": ["true"]} in pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]


def test_image_mode_without_a_published_database_says_what_to_run(state: Path) -> None:
    with pytest.raises(UsageError) as info:
        render(_config(delivery="image"))
    assert "no database was published to ghcr.io/example/oews-api-db from this machine" in info.value.message
    assert "oewsctl db publish oews.db" in (info.value.hint or "")


def test_a_release_moves_between_templates_with_the_live_image_and_nothing_else(state: Path) -> None:
    config = _config(delivery="image")
    live = rendered_template(config, MAY)
    live["spec"]["containers"][0]["image"] = live["spec"]["initContainers"][0]["image"] = "ghcr.io/example/oews-api:2.0.0"  # a later deploy
    live["metadata"]["annotations"]["oews/secrets-sha256"] = "c" * 64
    moved = transplant(live, rendered_template(config, APRIL))
    assert database_of(moved) == Published(APRIL.ref, APRIL.sha256, APRIL.release, 0)
    fetch = moved["spec"]["initContainers"][0]
    assert fetch["image"] == "ghcr.io/example/oews-api:2.0.0" and APRIL.ref in fetch["args"]
    assert {"name": "db", "emptyDir": {"sizeLimit": size_limit(APRIL.size)}} in moved["spec"]["volumes"]
    assert moved["metadata"]["annotations"]["oews/secrets-sha256"] == "c" * 64  # other annotations stay
    assert transplant(moved, live) == live  # and back again: byte for byte the template it was


def test_default_tag_is_readable_and_unique_per_file() -> None:
    assert default_tag("May 2025", "728c973c4c2dd4124ab2") == "may-2025-728c973c4c2d"
    assert default_tag(None, "ab" * 32) == "oews-db-abababababab"
