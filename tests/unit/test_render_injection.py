"""No inventory value can inject YAML: every template's objects keep exactly their fields whatever
the strings in oewsctl.yaml hold (issue 15: ``image_pull_secret: "x\\n  hostPID: true"``)."""

from __future__ import annotations

from typing import Any, Literal, get_origin

import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks.manifests import listing
from tests.unit.test_render import CRD_KINDS, K3S_KUBERNETES, _config

HOSTILE = "\n      hostPID: true\n      hostNetwork: true\n- {{ x }} # '\"\\ é😀\u2028\x85: ---\n...\n"
"""Appended to every string of the inventory: line breaks plus keys, a list item, Jinja, a comment,
quotes, a backslash, non-ASCII, YAML's other line breaks and document markers."""

PARSED_FIRST = {("AppConfig", "image")}
"""Fields a command parses before rendering (an image reference: a bad one is a usage error, tested
below); Literal fields (secrets.provider) are choices, not free text. Every other string is poisoned."""

EMBEDDED_YAML = {"HelmChart", "HelmChartConfig"}
"""Kinds whose spec.valuesContent is itself YAML (parsed by helm-controller): checked as structure too."""


def _poison(value: Any) -> Any:
    """``value`` with HOSTILE appended to every string in it (mapping keys too)."""
    if isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            if get_origin(field.annotation) is Literal or (type(value).__name__, name) in PARSED_FIRST:
                continue
            # Assignment skips validation: the renderer must be safe even for what a validator lets through.
            setattr(value, name, _poison(getattr(value, name)))
        return value
    if isinstance(value, str):
        return value + HOSTILE
    if isinstance(value, list):
        return [_poison(item) for item in value]
    if isinstance(value, dict):
        return {_poison(key): _poison(item) for key, item in value.items()}
    return value


def _render_everything(config: Config) -> list[dict[str, Any]]:
    """Everything oewsctl applies (``oewsctl render``'s listing: app, External Secrets, monitoring)."""
    objects = listing(config)
    assert {"Deployment", "ExternalSecret", "HelmChartConfig", "PrometheusRule", "ServiceMonitor"} <= {o["kind"] for o in objects}
    return objects


def _shape(value: Any) -> Any:
    """The structure of an object (keys, list lengths, leaf types) without its strings."""
    if isinstance(value, dict):
        return {key if not isinstance(key, str) or HOSTILE not in key else "<value>": _shape(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def _structure(obj: dict[str, Any]) -> Any:
    if obj["kind"] in EMBEDDED_YAML:
        obj = {**obj, "spec": {**obj["spec"], "valuesContent": yaml.safe_load(obj["spec"]["valuesContent"])}}
    return _shape(obj)


@pytest.fixture(scope="module")
def plain() -> list[dict[str, Any]]:
    return _render_everything(_config())


@pytest.fixture(scope="module")
def hostile() -> list[dict[str, Any]]:
    return _render_everything(_poison(_config()))


def test_hostile_values_add_no_field_anywhere(plain: list[dict[str, Any]], hostile: list[dict[str, Any]]) -> None:
    assert [o["kind"] for o in hostile] == [o["kind"] for o in plain]
    for before, after in zip(plain, hostile, strict=True):
        assert _structure(after) == _structure(before), f"{before['kind']} changed shape"
    assert "hostPID" not in yaml.safe_dump_all(plain + [_structure(o) for o in hostile])


def test_hostile_values_arrive_whole_where_they_belong(hostile: list[dict[str, Any]]) -> None:
    by_kind = {obj["kind"]: obj for obj in hostile}
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "ghcr-credentials" + HOSTILE}]
    assert "hostPID" not in pod and "hostNetwork" not in pod
    assert {obj["metadata"].get("namespace") for obj in hostile} >= {"oews" + HOSTILE}
    traefik = yaml.safe_load(by_kind["HelmChartConfig"]["spec"]["valuesContent"])
    assert traefik["certResolvers"]["letsencrypt"]["email"] == "ops@example.com" + HOSTILE
    secret = by_kind["ExternalSecret"]["spec"]["data"]
    assert secret[0]["secretKey"] == "AZURE_AI_API_KEY" + HOSTILE
    assert secret[0]["remoteRef"]["key"] == "AZURE-AI-API-KEY" + HOSTILE


def test_hostile_core_objects_still_pass_kubernetes_validate_strict(hostile: list[dict[str, Any]]) -> None:
    core = [obj for obj in hostile if obj["kind"] not in CRD_KINDS | {"ServiceMonitor", "PodMonitor", "PrometheusRule"}]
    assert {"Deployment", "Namespace", "Service", "ConfigMap"} <= {o["kind"] for o in core}
    for obj in core:
        kubernetes_validate.validate(obj, K3S_KUBERNETES, strict=True)


def test_a_hostile_image_reference_is_refused_before_rendering() -> None:
    config = _config()
    config.app.image += HOSTILE
    with pytest.raises(UsageError, match="image reference"):
        listing(config)
