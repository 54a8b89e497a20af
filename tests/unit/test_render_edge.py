"""The public edge as rendered (issue 13): limits at Traefik, only public paths routed, docs off,
and a NetworkPolicy that admits only Traefik and Prometheus. Validated strictly: core kinds with
kubernetes-validate, the Middleware against the fields of Traefik's CRD."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from oewsctl.configuration.loading import parse_config
from oewsctl.runbooks.render import render
from tests.conftest import DATA_DIR

EXAMPLE = DATA_DIR / "deploy" / "oewsctl.yaml"
K3S_KUBERNETES = "1.31.0"


def _render(**app: Any) -> list[dict[str, Any]]:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["app"].update(app)
    return render(parse_config(yaml.safe_dump(data)))


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind]
    return found


def _routed(ingress: dict[str, Any], path: str) -> bool:
    """Whether the Ingress sends ``path`` to a backend (Kubernetes' Exact and Prefix matching:
    Prefix matches whole ``/``-separated elements, so ``/api`` matches ``/api/v1`` but not ``/apix``)."""
    for rule in ingress["spec"]["rules"]:
        for route in rule["http"]["paths"]:
            want = route["path"]
            if route["pathType"] == "Exact" and path == want:
                return True
            if route["pathType"] == "Prefix" and (path == want or path.startswith(want.rstrip("/") + "/")):
                return True
    return False


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return _render()


def test_middlewares_match_traefiks_crd_and_carry_the_configured_limits() -> None:
    objects = _render(rate_limit={"average": 7, "burst": 9, "in_flight": 3})
    schemas = yaml.safe_load((DATA_DIR / "deploy" / "crd-schemas.yaml").read_text())
    defs = schemas.pop("$defs")
    middlewares = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Middleware"}
    for obj in middlewares.values():
        jsonschema.validate(obj, {**schemas["Middleware"], "$defs": defs})
    rate = middlewares["oews-api-ratelimit"]["spec"]["rateLimit"]
    assert (rate["average"], rate["period"], rate["burst"]) == (7, "1s", 9)
    assert middlewares["oews-api-inflight"]["spec"]["inFlightReq"]["amount"] == 3
    for spec in (rate, middlewares["oews-api-inflight"]["spec"]["inFlightReq"]):
        assert spec["sourceCriterion"] == {"ipStrategy": {"depth": 0}}  # per client IP, X-Forwarded-For not trusted


def test_a_misspelt_middleware_field_is_caught(objects: list[dict[str, Any]]) -> None:
    schemas = yaml.safe_load((DATA_DIR / "deploy" / "crd-schemas.yaml").read_text())
    defs = schemas.pop("$defs")
    rate = next(o for o in objects if o["kind"] == "Middleware" and "rateLimit" in o["spec"])
    rate["spec"]["rateLimit"]["avrage"] = 5
    with pytest.raises(jsonschema.ValidationError, match="avrage"):
        jsonschema.validate(rate, {**schemas["Middleware"], "$defs": defs})


def test_ingress_chains_both_middlewares_of_its_namespace(objects: list[dict[str, Any]]) -> None:
    ingress = _one(objects, "Ingress")
    chain = ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"].split(",")
    names = [o["metadata"]["name"] for o in objects if o["kind"] == "Middleware"]
    assert chain == [f"oews-{name}@kubernetescrd" for name in names] and len(chain) == 2
    assert {o["metadata"]["namespace"] for o in objects if o["kind"] == "Middleware"} == {ingress["metadata"]["namespace"]}
    kubernetes_validate.validate(ingress, K3S_KUBERNETES, strict=True)


def test_metrics_and_docs_are_not_routed_publicly(objects: list[dict[str, Any]]) -> None:
    ingress = _one(objects, "Ingress")
    for private in ("/metrics", "/metrics/", "/docs", "/openapi.json", "/redoc", "/"):
        assert not _routed(ingress, private), private
    for public in ("/health", "/api/v1/wages", "/api/v1/query"):
        assert _routed(ingress, public), public
    env = {e["name"]: e["value"] for e in _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PUBLIC_DOCS"] == "false"


def test_public_docs_opens_the_docs_and_tells_the_api(objects: list[dict[str, Any]]) -> None:
    opened = _render(public_docs=True)
    ingress = _one(opened, "Ingress")
    assert _routed(ingress, "/docs") and _routed(ingress, "/openapi.json") and not _routed(ingress, "/metrics")
    env = {e["name"]: e["value"] for e in _one(opened, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PUBLIC_DOCS"] == "true"


def test_networkpolicy_admits_only_traefik_and_monitoring(objects: list[dict[str, Any]]) -> None:
    policy = _one(objects, "NetworkPolicy")
    kubernetes_validate.validate(policy, K3S_KUBERNETES, strict=True)
    assert policy["spec"]["podSelector"]["matchLabels"] == _one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    namespaces = [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in rule["from"] if "namespaceSelector" in peer]
    assert namespaces == ["kube-system", "monitoring"]
    assert [peer["ipBlock"]["cidr"] for peer in rule["from"] if "ipBlock" in peer] == ["10.42.0.0/32"]  # the API server's proxy only
    assert all("podSelector" not in peer for peer in rule["from"])
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
