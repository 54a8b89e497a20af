"""Render the cluster's manifests from ``templates/`` with values from ``oewsctl.yaml``.

Templates are Jinja2 with StrictUndefined: a value the inventory does not provide
is a UsageError naming it (``secrets.tenant_id``), never an empty string in YAML.
``None`` in the inventory counts as missing. Templates live at the repository
root (``templates/``) and ship in the wheel as ``oewsctl/templates`` (see
:func:`templates_dir`); other runbook modules render their own files with
:func:`render_template`.

Every ``{{ value }}`` a template prints goes through one encoder (:func:`yaml_value`,
the environment's ``finalize``): strings come out double-quoted with every line break and
quote escaped, so no inventory value can add a key or a document (``image_pull_secret:
"x\\n  hostPID: true"`` stays one string). Templates therefore never quote values
themselves; a new template is safe by default. Only the ``yaml`` block filter and
``yaml_value``/``tojson`` return text the encoder passes through, both already encoded.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError
from oewsctl.runbooks.db_artifact import Published, delivery_values


def templates_dir(package_dir: Path = Path(__file__).resolve().parents[1]) -> Path:
    """``oewsctl/templates`` inside an installed wheel, else the repository's ``templates/``
    (a checkout or an editable install, where the package directory has no copy)."""
    packaged = package_dir / "templates"
    return packaged if packaged.is_dir() else package_dir.parents[1] / "templates"


TEMPLATES_DIR = templates_dir()

APP_NAME = "oews-api"
DB_MOUNT_DIR = "/data"
ACME_RESOLVER = "letsencrypt"
ESO_CHART_VERSION = "0.19.2"
"""External Secrets Operator chart (serves external-secrets.io/v1); bump deliberately."""
PROGRESS_DEADLINE_SECONDS = 600
TRAEFIK_NAMESPACE = "kube-system"
"""Where k3s runs Traefik (the NetworkPolicy admits it)."""
MONITORING_NAMESPACE = "monitoring"
"""Prometheus and Grafana (``oewsctl monitoring install``); the NetworkPolicy admits it."""
API_SERVER_SOURCE = "10.42.0.0/32"
"""The k3s server's flannel address: with k3s's default cluster CIDR the server, installed first,
gets 10.42.0.0/24, and the API server's proxy reaches pods on other nodes from 10.42.0.0
(cloudnativelabs/kube-router#332), so the NetworkPolicy admits it."""

DEPLOYMENT_TEMPLATE = "app/deployment.yaml.j2"
APP_TEMPLATES = (
    "app/namespace.yaml.j2",
    "app/traefik-config.yaml.j2",
    "app/service.yaml.j2",
    DEPLOYMENT_TEMPLATE,
    "app/pdb.yaml.j2",
    "app/middleware.yaml.j2",
    "app/ingress.yaml.j2",
    "app/networkpolicy.yaml.j2",
)
AZURE_TEMPLATES = (
    "app/external-secrets-operator.yaml.j2",
    "app/secret-store.yaml.j2",
    "app/external-secret.yaml.j2",
)


class Values(Mapping[str, Any]):
    """A mapping that remembers its dotted path, so a missing key can be named in full."""

    def __init__(self, data: Mapping[str, Any], path: str = "") -> None:
        self._data = {k: v for k, v in data.items() if v is not None}
        self._path = path

    def _wrap(self, key: str, value: Any) -> Any:
        return Values(value, self.child_path(key)) if isinstance(value, Mapping) else value

    def child_path(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def __getitem__(self, key: str) -> Any:
        return self._wrap(key, self._data[key])

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _NamedUndefined(jinja2.StrictUndefined):
    """StrictUndefined whose error names the full dotted path of the missing value."""

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        owner = self._undefined_obj
        name = self._undefined_name or "?"
        path = owner.child_path(name) if isinstance(owner, Values) else name
        raise jinja2.UndefinedError(path)

    __str__ = __iter__ = __len__ = __bool__ = __eq__ = __hash__ = _fail_with_undefined_error  # type: ignore[assignment]


def _defined(value: Any) -> Any:
    """``value``, or the missing-value error when it is undefined (filters see it unevaluated)."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


class Encoded(str):
    """YAML text already made safe by :func:`yaml_value` or :func:`_yaml_block`: printed as it is."""


class _QuotingDumper(yaml.SafeDumper):
    """Flow-style YAML whose strings are all double-quoted (escapes newlines, quotes, ``#``, ``{{``)."""


_QuotingDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
)
_QuotingDumper.add_representer(Encoded, _QuotingDumper.yaml_representers[str])


def _plain(value: Any) -> Any:
    """``Values`` (and nested mappings) as plain dicts the YAML dumper knows."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def yaml_value(value: Any) -> Encoded:
    """Any value as one YAML flow node: strings double-quoted (``'true'``, ``1.10`` stay strings and
    a line break cannot start a new key), numbers and booleans as themselves, lists and mappings inline.
    The only way a value reaches a template's output (the environment's ``finalize``)."""
    value = _defined(value)
    if isinstance(value, Encoded):
        return value
    text = yaml.dump(_plain(value), Dumper=_QuotingDumper, default_flow_style=True, width=float("inf"), allow_unicode=True)
    return Encoded(text.removesuffix("\n...\n").rstrip("\n"))


def _yaml_block(value: Any, indent: int) -> Encoded:
    """A mapping as block YAML, indented to sit under a key at ``indent`` spaces."""
    text = yaml.dump(
        _plain(_defined(value)), Dumper=_QuotingDumper, default_flow_style=False, sort_keys=True, width=float("inf"), allow_unicode=True
    ).rstrip("\n")
    return Encoded(text.replace("\n", "\n" + " " * indent))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=_NamedUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=yaml_value,
    )
    env.filters["yaml"] = _yaml_block
    # ``tojson`` is the same encoder under the name older templates use (finalize applies it anyway).
    env.filters["tojson"] = yaml_value
    return env


def public_paths(config: Config) -> list[dict[str, str]]:
    """What the public Ingress routes: the API and /health; the docs only with ``app.public_docs``.
    Never /metrics (Prometheus scrapes the Service inside the cluster)."""
    paths = [{"path": "/api", "type": "Prefix"}, {"path": "/health", "type": "Exact"}]
    if config.app.public_docs:
        paths += [{"path": "/docs", "type": "Prefix"}, {"path": "/redoc", "type": "Exact"}, {"path": "/openapi.json", "type": "Exact"}]
    return paths


def middlewares(config: Config) -> dict[str, str]:
    """The Traefik Middleware names and the Ingress annotation that chains them (rate, then in-flight)."""
    names = {"rate_limit": f"{APP_NAME}-ratelimit", "in_flight": f"{APP_NAME}-inflight"}
    chain = ",".join(f"{config.app.namespace}-{name}@kubernetescrd" for name in names.values())
    return {**names, "ingress_annotation": chain}


def _db_mount_file(config: Config) -> str:
    return posixpath.join(DB_MOUNT_DIR, posixpath.basename(config.database.path))


def values(config: Config, *, image: str | None = None, change_cause: str | None = None) -> dict[str, Any]:
    """Everything the templates may use: the inventory sections plus derived values
    (the Deployment template also gets :func:`deployment_values`)."""
    dump = config.model_dump(mode="json")
    selector = {"app.kubernetes.io/name": APP_NAME}
    return {
        **{section: Values(dump[section], section) for section in ("cluster", "app", "database", "secrets", "backup", "monitoring")},
        "name": APP_NAME,
        "image": image or config.app.image,
        "change_cause": change_cause,
        "selector": selector,
        "labels": {**selector, "app.kubernetes.io/part-of": "oews", "app.kubernetes.io/managed-by": "oewsctl"},
        "db_host_dir": posixpath.dirname(config.database.path),
        "db_mount_dir": DB_MOUNT_DIR,
        "db_mount_file": _db_mount_file(config),
        "acme_resolver": ACME_RESOLVER,
        "eso_chart_version": ESO_CHART_VERSION,
        "progress_deadline_seconds": PROGRESS_DEADLINE_SECONDS,
        "public_paths": public_paths(config),
        "middlewares": middlewares(config),
        "traefik_namespace": TRAEFIK_NAMESPACE,
        "monitoring_namespace": MONITORING_NAMESPACE,
        "api_server_source": API_SERVER_SOURCE,
    }


def deployment_values(config: Config, db_artifact: Published | None = None) -> dict[str, Any]:
    """What only the Deployment template needs: ``db_image``, the database release to fetch with
    delivery image (``db_artifact``, else the last ``db publish`` here, else a placeholder ``deploy``
    resolves; see :mod:`oewsctl.runbooks.db_artifact`), None for hostpath."""
    return {"db_image": delivery_values(config, _db_mount_file(config), db_artifact)}


def render_template(name: str, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Render one template into its objects; a missing value is a UsageError naming it."""
    try:
        text = _environment().get_template(name).render(**context)
    except jinja2.TemplateNotFound:
        raise UsageError(f"template {name} not found under {TEMPLATES_DIR}") from None
    except jinja2.UndefinedError as exc:
        raise UsageError(
            f"cannot render {name}: the value {exc.message} is missing",
            hint=f"set {exc.message} in oewsctl.yaml",
        ) from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc]
    except yaml.YAMLError as exc:
        raise UsageError(f"template {name} rendered invalid YAML ({exc}); a value probably needs quoting") from None


def secrets_templates(config: Config) -> tuple[str, ...]:
    """The External Secrets objects (secrets.provider azure-keyvault); none for plain Secrets."""
    if config.secrets.provider != "azure-keyvault":
        return ()
    if not config.secrets.keys:
        raise UsageError(
            "secrets.keys is empty: nothing would be synced from Azure Key Vault into oews-api-secrets",
            hint="map env names to vault secret names, e.g. secrets.keys: {OPENAI_API_KEY: OPENAI-API-KEY}",
        )
    return AZURE_TEMPLATES


def app_templates(config: Config) -> tuple[str, ...]:
    """Which templates make up the app for this inventory: ESO's chart first, its objects last."""
    eso = secrets_templates(config)
    return eso[:1] + APP_TEMPLATES + eso[1:]


def render(
    config: Config, *, image: str | None = None, change_cause: str | None = None, templates: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """The app's objects for ``config`` (or those of ``templates``), in the order the templates list them."""
    context = values(config, image=image, change_cause=change_cause)
    objects: list[dict[str, Any]] = []
    for name in app_templates(config) if templates is None else templates:
        objects.extend(render_template(name, {**context, **deployment_values(config)} if name == DEPLOYMENT_TEMPLATE else context))
    return objects


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (chart values) as ``|`` blocks a person can read."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_representer)


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML, as ``oewsctl render`` prints it."""
    return yaml.dump_all(objects, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False)


def file_name(index: int, obj: Mapping[str, Any]) -> str:
    """``03-deployment-oews-api.yaml``: apply order first, then kind and name."""
    return f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def write_dir(objects: list[dict[str, Any]], out: Path) -> list[Path]:
    """One file per object in ``out`` (created if needed); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, obj in enumerate(objects, 1):
        path = out / file_name(index, obj)
        path.write_text(to_yaml([obj]))
        paths.append(path)
    return paths
