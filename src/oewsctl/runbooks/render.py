"""Render the cluster's manifests from ``templates/`` with values from ``oewsctl.yaml``.

Templates are Jinja2 with StrictUndefined: a value the inventory does not provide
is a UsageError naming it (``secrets.tenant_id``), never an empty string in YAML.
``None`` in the inventory counts as missing. Templates live at the repository
root (``templates/``) and ship in the wheel as ``oewsctl/templates`` (see
:func:`templates_dir`); other runbook modules render their own files with
:func:`render_template`.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

from oewsctl.configuration.schema import Config
from oewsctl.core.errors import UsageError


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

APP_TEMPLATES = (
    "app/namespace.yaml.j2",
    "app/traefik-config.yaml.j2",
    "app/service.yaml.j2",
    "app/deployment.yaml.j2",
    "app/pdb.yaml.j2",
    "app/ingress.yaml.j2",
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


def _tojson(value: Any) -> str:
    """A scalar as a JSON (hence YAML) literal: quotes strings so ``'true'`` or ``1.10`` stay strings."""
    return json.dumps(_defined(value))


def _yaml_block(value: Any, indent: int) -> str:
    """A mapping as block YAML, indented to sit under a key at ``indent`` spaces."""
    value = _defined(value)
    data = dict(value.items()) if isinstance(value, Mapping) else value
    text = yaml.safe_dump(data, default_flow_style=False, sort_keys=True).rstrip("\n")
    return text.replace("\n", "\n" + " " * indent)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=_NamedUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["yaml"] = _yaml_block
    env.filters["tojson"] = _tojson
    return env


def values(config: Config, *, image: str | None = None, change_cause: str | None = None) -> dict[str, Any]:
    """Everything the templates may use: the inventory sections plus derived values."""
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
        "db_mount_file": posixpath.join(DB_MOUNT_DIR, posixpath.basename(config.database.path)),
        "acme_resolver": ACME_RESOLVER,
        "eso_chart_version": ESO_CHART_VERSION,
        "progress_deadline_seconds": PROGRESS_DEADLINE_SECONDS,
    }


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


def app_templates(config: Config) -> tuple[str, ...]:
    """Which templates make up the app for this inventory (secrets provider decides ESO)."""
    if config.secrets.provider != "azure-keyvault":
        return APP_TEMPLATES
    if not config.secrets.keys:
        raise UsageError(
            "secrets.keys is empty: nothing would be synced from Azure Key Vault into oews-api-secrets",
            hint="map env names to vault secret names, e.g. secrets.keys: {OPENAI_API_KEY: OPENAI-API-KEY}",
        )
    return AZURE_TEMPLATES[:1] + APP_TEMPLATES + AZURE_TEMPLATES[1:]


def render(config: Config, *, image: str | None = None, change_cause: str | None = None) -> list[dict[str, Any]]:
    """All the app's objects for ``config``, in the order the templates list them."""
    context = values(config, image=image, change_cause=change_cause)
    objects: list[dict[str, Any]] = []
    for name in app_templates(config):
        objects.extend(render_template(name, context))
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
