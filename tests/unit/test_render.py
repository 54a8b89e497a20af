"""Rendered manifests: valid against the real Kubernetes schemas and the CRDs, and as the runbook designs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from oewsctl.cli import app
from oewsctl.configuration.loading import parse_config
from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks.render import render
from tests.conftest import DATA_DIR

EXAMPLE = DATA_DIR / "deploy" / "oewsctl.yaml"
K3S_KUBERNETES = "1.31.0"  # the pinned k3s v1.31.4+k3s1
CRD_KINDS = {"HelmChart", "HelmChartConfig", "SecretStore", "ExternalSecret", "Middleware"}


def _config(**sections: dict[str, Any]) -> Config:
    data = yaml.safe_load(EXAMPLE.read_text())
    for section, values in sections.items():
        data[section].update(values)
    return parse_config(yaml.safe_dump(data))


def _by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(_config())


def test_core_objects_pass_kubernetes_validate_strict(objects: list[dict[str, Any]]) -> None:
    core = [obj for obj in objects if obj["kind"] not in CRD_KINDS]
    assert {o["kind"] for o in core} == {"Namespace", "Deployment", "Service", "Ingress", "PodDisruptionBudget", "NetworkPolicy"}
    for obj in core:
        kubernetes_validate.validate(obj, K3S_KUBERNETES, strict=True)


def test_custom_resources_match_their_crd_fields(objects: list[dict[str, Any]]) -> None:
    schemas = yaml.safe_load((DATA_DIR / "deploy" / "crd-schemas.yaml").read_text())
    defs = schemas.pop("$defs")
    custom = [obj for obj in objects if obj["kind"] in CRD_KINDS]
    assert {o["kind"] for o in custom} == CRD_KINDS
    for obj in custom:
        jsonschema.validate(obj, {**schemas[obj["kind"]], "$defs": defs})
    values = yaml.safe_load(_by_kind(objects)["HelmChartConfig"]["spec"]["valuesContent"])
    assert values["ports"]["web"]["redirectTo"] == {"port": "websecure"}
    assert values["certResolvers"]["letsencrypt"]["email"] == "ops@example.com"
    assert values["persistence"]["enabled"] is True
    assert values["certResolvers"]["letsencrypt"]["storage"].startswith(values["persistence"]["path"])


def test_a_misspelt_crd_field_is_caught() -> None:
    """The CRD check is not vacuous: an unknown field (pruned by the API server) fails."""
    schemas = yaml.safe_load((DATA_DIR / "deploy" / "crd-schemas.yaml").read_text())
    defs = schemas.pop("$defs")
    secret = _by_kind(render(_config()))["ExternalSecret"]
    secret["spec"]["refreshIntervall"] = "1h"
    with pytest.raises(jsonschema.ValidationError, match="refreshIntervall"):
        jsonschema.validate(secret, {**schemas["ExternalSecret"], "$defs": defs})


def test_pods_leave_without_dropping_requests(objects: list[dict[str, Any]]) -> None:
    """What the drills found (tests/integration/test_drills.py): SIGTERM only after the endpoint change
    reached the ingress (preStop wait), and uvicorn's graceful shutdown fits in the grace period."""
    from oews_api.__main__ import GRACEFUL_SHUTDOWN_SECONDS

    pod = _by_kind(objects)["Deployment"]["spec"]["template"]["spec"]
    wait = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert wait >= 5  # > the endpoint propagation of kube-proxy/Traefik (about 1-2 s)
    assert pod["terminationGracePeriodSeconds"] > wait + GRACEFUL_SHUTDOWN_SECONDS


def test_deployment_mounts_its_nodes_db_copy_read_only_and_runs_locked_down(objects: list[dict[str, Any]]) -> None:
    deployment = _by_kind(objects)["Deployment"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert pod["volumes"][0]["hostPath"] == {"path": "/opt/k3s/storage", "type": "Directory"}
    assert {"name": "db", "mountPath": "/data", "readOnly": True} in container["volumeMounts"]
    assert env["SQLITE_DB_PATH"] == "/data/oews.db"
    assert env["CORS_ORIGINS"] == "https://app.example.com,https://www.example.com"
    assert container["envFrom"] == [{"secretRef": {"name": "oews-api-secrets"}}]
    expressions = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]} in expressions
    assert {"key": "oews/db", "operator": "In", "values": ["true"]} in expressions
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    security = container["securityContext"]
    assert security["runAsUser"] == 1000 and security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert pod["imagePullSecrets"] == [{"name": "ghcr-credentials"}]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}


def test_service_ingress_pdb(objects: list[dict[str, Any]]) -> None:
    kinds = _by_kind(objects)
    assert kinds["Service"]["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    ingress = kinds["Ingress"]
    assert ingress["spec"]["rules"][0]["host"] == "api.example.com"
    assert ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.tls.certresolver"] == "letsencrypt"
    assert ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    chart = kinds["HelmChart"]["spec"]
    assert chart["chart"] == "external-secrets" and chart["version"] and chart["repo"].startswith("https://")
    mapping = {d["secretKey"]: d["remoteRef"]["key"] for d in kinds["ExternalSecret"]["spec"]["data"]}
    assert mapping == {"AZURE_AI_API_KEY": "AZURE-AI-API-KEY", "OPENAI_API_KEY": "OPENAI-API-KEY"}
    assert kinds["ExternalSecret"]["spec"]["refreshInterval"] == "1h"


def test_kubernetes_secrets_provider_renders_no_eso_and_no_pull_secret() -> None:
    objects = render(_config(secrets={"provider": "kubernetes", "vault_url": None, "tenant_id": None}, app={"image_pull_secret": None}))
    assert not {"HelmChart", "SecretStore", "ExternalSecret"} & {o["kind"] for o in objects}
    assert "imagePullSecrets" not in _by_kind(objects)["Deployment"]["spec"]["template"]["spec"]


def test_missing_value_is_named() -> None:
    with pytest.raises(UsageError) as info:
        render(_config(secrets={"tenant_id": None}))
    assert "secrets.tenant_id is missing" in info.value.message
    assert info.value.hint == "set secrets.tenant_id in oewsctl.yaml"


def test_render_command_stdout_and_out_dir(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--config", str(EXAMPLE), "render", "--only", "app"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [d["kind"] for d in docs][:2] == ["Namespace", "HelmChartConfig"]
    assert len(docs) == 9
    result = runner.invoke(app, ["render", "--out", str(tmp_path / "m"), "--only", "app", "--config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files[0] == "01-namespace-oews.yaml" and len(files) == 9
    deployment = yaml.safe_load((tmp_path / "m" / "04-deployment-oews-api.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/oews-api:1.4.0"


def _rendered(*args: str) -> list[tuple[str, str]]:
    result = CliRunner().invoke(app, ["render", "--config", str(EXAMPLE), *args])
    assert result.exit_code == 0, result.output
    return [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(result.stdout) if d]


def test_render_lists_everything_oewsctl_applies_and_each_group() -> None:
    """The full listing is the app, the External Secrets objects and the monitoring stack with
    its alert rules and dashboard: exactly the three --only groups together (what backups save)."""
    groups = {group: _rendered("--only", group) for group in ("app", "secrets", "monitoring")}
    assert sorted(_rendered()) == sorted(groups["app"] + groups["secrets"] + groups["monitoring"])
    assert {"Middleware", "NetworkPolicy", "Ingress", "Deployment"} <= {kind for kind, _ in groups["app"]}
    assert {kind for kind, _ in groups["secrets"]} == {"HelmChart", "SecretStore", "ExternalSecret"}
    assert {"PrometheusRule", "ServiceMonitor", "ConfigMap", "Namespace"} <= {kind for kind, _ in groups["monitoring"]}
    assert ("HelmChart", "kube-prometheus-stack") in groups["monitoring"]
    bad = CliRunner().invoke(app, ["render", "--config", str(EXAMPLE), "--only", "everything"])
    assert bad.exit_code == 2


def test_render_json_for_scripts() -> None:
    result = CliRunner().invoke(app, ["--config", str(EXAMPLE), "--output", "json", "render", "--image", "ghcr.io/example/oews-api:2.0.0"])
    assert result.exit_code == 0, result.output
    objects = json.loads(result.stdout)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/example/oews-api:2.0.0"
    assert deployment["metadata"]["annotations"]["kubernetes.io/change-cause"] == "oewsctl deploy --image ghcr.io/example/oews-api:2.0.0"


def test_templates_are_found_in_a_checkout_and_in_an_installed_wheel(tmp_path: Path) -> None:
    from oewsctl.runbooks.render import TEMPLATES_DIR, templates_dir

    assert (TEMPLATES_DIR / "app" / "deployment.yaml.j2").is_file()
    assert (TEMPLATES_DIR / "monitoring" / "rules.yaml").is_file()
    checkout = tmp_path / "repo" / "src" / "oewsctl"
    checkout.mkdir(parents=True)
    assert templates_dir(checkout) == tmp_path / "repo" / "templates"
    installed = tmp_path / "site-packages" / "oewsctl"
    (installed / "templates" / "app").mkdir(parents=True)
    assert templates_dir(installed) == installed / "templates"


def test_traefik_recreate_strategy_nulls_the_charts_rolling_update(objects: list[dict[str, Any]]) -> None:
    """Recreate merged with the chart's default rollingUpdate is rejected by the API (traefik-helm-chart#1193)."""
    config = next(o for o in objects if o["kind"] == "HelmChartConfig" and o["metadata"]["name"] == "traefik")
    chart_values = yaml.safe_load(config["spec"]["valuesContent"])
    assert chart_values["updateStrategy"] == {"type": "Recreate", "rollingUpdate": None}
