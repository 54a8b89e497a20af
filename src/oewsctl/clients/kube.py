"""The one Kubernetes layer every runbook module uses (deploy, db, backup, secrets, monitoring).

- :func:`load_api_client` / :meth:`Kube.from_config`: the official client from
  ``cluster.kubeconfig``, context ``cluster.name``, with errors that say what to fix.
- :meth:`Kube.apply`: server-side apply with field manager ``oewsctl`` (which also creates);
  fields a template stops rendering are pruned by the API server (they belong to ``oewsctl``);
  an object a dry-run apply would leave as it is counts as ``unchanged`` and is not written.
  Objects of a custom resource wait until the API serves their kind (a CRD installed by a
  HelmChart appears a little later).
- :meth:`Kube.get` / :meth:`Kube.list` / :meth:`Kube.patch` / :meth:`Kube.delete`: plain dicts
  through the dynamic client; ``patch`` is an RFC 7386 merge patch (see :func:`merge_patch`).
- :meth:`Kube.proxy_get`: GET through the API server's service or pod proxy (``/health``).
- :func:`wait_until`: poll a check, print each new state line once, time out with the last state.

A run shares one client (``RunContext.kube``); the plan step that applies one object is
``oewsctl.runbooks.kube_steps.apply_step``.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.state import state_dir

if TYPE_CHECKING:
    from kubernetes.dynamic.resource import Resource

    from oewsctl.configuration.schema import Config

FIELD_MANAGER = "oewsctl"
REQUEST_TIMEOUT = 30
CRD_WAIT_SECONDS = 180
POLL_ENV = "OEWSCTL_KUBE_POLL_SECONDS"

ApplyOutcome = Literal["created", "configured", "unchanged"]

KIND_ORDER = (
    "Namespace",
    "CustomResourceDefinition",
    "HelmChart",
    "HelmChartConfig",
    "PriorityClass",
    "StorageClass",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Secret",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "SecretStore",
    "ClusterSecretStore",
    "ExternalSecret",
    "Service",
    "DaemonSet",
    "Deployment",
    "StatefulSet",
    "Job",
    "CronJob",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Middleware",
    "Ingress",
    "ServiceMonitor",
    "PrometheusRule",
)
"""Apply order: what others refer to first (namespace, CRDs, secrets) before what uses it."""

BUILTIN_GROUPS = frozenset({"", "apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
                            "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io"})


def poll_seconds() -> float:
    """Seconds between polls while waiting (tests shorten it through the environment)."""
    return float(os.environ.get(POLL_ENV, "1"))


def apply_order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``objects`` sorted into dependency order (stable; unknown kinds go last)."""
    rank = {kind: index for index, kind in enumerate(KIND_ORDER)}
    return sorted(objects, key=lambda obj: rank.get(obj["kind"], len(KIND_ORDER)))


def ref(obj: Mapping[str, Any]) -> str:
    """``Deployment oews/oews-api`` — how an object is named in messages."""
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']} {where}{meta.get('name')}"


def is_ready(obj: Mapping[str, Any]) -> bool:
    """True when a Node's or Pod's ``Ready`` condition is ``True``."""
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or [])


def is_custom(api_version: str) -> bool:
    """True for kinds served by a CRD (their API appears only once the CRD is installed)."""
    group = api_version.rpartition("/")[0]
    return group not in BUILTIN_GROUPS and not group.endswith(".k8s.io")


def contains(live: Any, desired: Any) -> bool:
    """True when every field of ``desired`` has the same value in ``live`` (defaults may be extra)."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(key in live and contains(live[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(contains(a, b) for a, b in zip(live, desired, strict=True))
    return bool(live == desired)


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without what changes on every write or by controllers (status, versions, managedFields)."""
    clean = {key: value for key, value in obj.items() if key != "status"}
    clean["metadata"] = {key: value for key, value in (obj.get("metadata") or {}).items()
                         if key not in ("managedFields", "resourceVersion", "generation")}
    return clean


def project(live: Any, desired: Any) -> Any:
    """The part of ``live`` that ``desired`` talks about (for a readable diff)."""
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        return {key: project(live[key], value) for key, value in desired.items() if key in live}
    if isinstance(desired, list) and isinstance(live, list):
        return [project(a, b) for a, b in zip(live, desired, strict=False)] + live[len(desired):]
    return live


def merge_patch(current: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch turning ``current`` into ``target`` (``None`` removes a key)."""
    patch: dict[str, Any] = {key: None for key in current if key not in target}
    for key, value in target.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            sub = merge_patch(old, value)
            if sub:
                patch[key] = sub
        elif key not in current or old != value:
            patch[key] = value
    return patch


def diff(live: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> str:
    """A unified diff of the live object (only the fields we set) against the rendered one."""
    name = ref(desired)
    before = yaml.safe_dump(project(live, desired), sort_keys=False) if live is not None else ""
    after = yaml.safe_dump(dict(desired), sort_keys=False)
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), f"live: {name}", f"rendered: {name}", lineterm="")
    return "\n".join(lines)


def load_api_client(config: Config) -> k8s.ApiClient:
    """The official client for context ``cluster.name`` of ``cluster.kubeconfig``."""
    path = config.cluster.kubeconfig_path
    context = config.cluster.name
    fetch = "run `oewsctl cluster kubeconfig` to fetch it from the server node and merge it"
    if not path.is_file():
        raise UsageError(f"kubeconfig {path} not found (cluster.kubeconfig in oewsctl.yaml)", hint=f"{fetch}, or fix cluster.kubeconfig")
    try:
        contexts, _ = k8s_config.list_kube_config_contexts(config_file=str(path))
    except (ConfigException, yaml.YAMLError, OSError) as exc:
        raise UsageError(f"kubeconfig {path} is not usable: {exc}", hint=fetch) from None
    names = [c["name"] for c in contexts or []]
    if context not in names:
        raise UsageError(
            f"kubeconfig {path} has no context {context!r} (cluster.name); it has: {', '.join(names) or 'none'}",
            hint=f"{fetch} as context {context!r}",
        )
    configuration = k8s.Configuration()
    try:
        k8s_config.load_kube_config(config_file=str(path), context=context, client_configuration=configuration, persist_config=False)
    except ConfigException as exc:
        raise UsageError(f"kubeconfig {path}, context {context!r}: {exc}", hint=fetch) from None
    configuration.retries = 1
    return k8s.ApiClient(configuration)


class KindNotServed(OewsctlError):
    """The API server does not serve this kind (its CRD is not installed, yet)."""


def _status_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except (ValueError, TypeError, AttributeError):
        return str(exc.reason)


class Kube:
    """Kubernetes API access for runbook steps: dicts in, dicts out, clear errors."""

    def __init__(self, api_client: k8s.ApiClient, *, context: str = "") -> None:
        self.api_client = api_client
        self.context = context
        self._dynamic: DynamicClient | None = None

    @classmethod
    def from_config(cls, config: Config) -> Kube:
        return cls(load_api_client(config), context=config.cluster.name)

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn client exceptions into one-line OewsctlErrors naming ``what`` was being done."""
        try:
            yield
        except ApiException as exc:
            hint = "the cluster rejects the kubeconfig's credentials: run `oewsctl cluster kubeconfig` again" if exc.status in (401, 403) else None
            raise OewsctlError(f"{what}: {exc.status} {exc.reason}: {_status_message(exc)}", hint=hint) from None
        except urllib3.exceptions.HTTPError as exc:
            raise OewsctlError(
                f"{what}: cannot reach the Kubernetes API at {self.host} (context {self.context!r}): {type(exc).__name__}",
                hint="is the cluster up? check `oewsctl cluster status`, the network, and cluster.kubeconfig",
            ) from None

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            cache = state_dir() / f"discovery-{self.context or 'default'}.json"
            with self.errors("API discovery"):
                self._dynamic = DynamicClient(self.api_client, cache_file=str(cache))
        return self._dynamic

    def resource(self, api_version: str, kind: str, *, wait_seconds: float = 0.0) -> Resource:
        """The API resource for ``kind``; waits up to ``wait_seconds`` for a CRD to be served."""
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                with self.errors(f"API discovery of {api_version} {kind}"):
                    return self.dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                if time.monotonic() >= deadline:
                    raise KindNotServed(
                        f"the API does not serve {kind} ({api_version})"
                        + (f" after waiting {wait_seconds:.0f}s" if wait_seconds else ""),
                        hint="its CRD is not installed yet: check the add-on's HelmChart in kube-system "
                        "(kubectl -n kube-system get helmcharts,jobs)",
                    ) from None
                time.sleep(poll_seconds())
                self.dynamic.resources.invalidate_cache()

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist."""
        res = self.resource(api_version, kind)
        with self.errors(f"read {kind} {name}"):
            try:
                return self.dynamic.get(res, name=name, namespace=namespace, _request_timeout=REQUEST_TIMEOUT).to_dict()
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

    def list(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        """Objects of ``kind`` (in ``namespace`` if given) as dicts."""
        res = self.resource(api_version, kind)
        with self.errors(f"list {kind}"):
            response = self.dynamic.get(res, namespace=namespace, label_selector=label_selector, serialize=False,
                                        _request_timeout=REQUEST_TIMEOUT)
        return list(json.loads(response.data).get("items") or [])

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        res = self.resource(obj["apiVersion"], obj["kind"])
        with self.errors(f"create {ref(obj)}"):
            return self.dynamic.create(res, body=dict(obj), namespace=obj["metadata"].get("namespace"),
                                       field_manager=FIELD_MANAGER, _request_timeout=REQUEST_TIMEOUT).to_dict()

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386) and return the updated object."""
        res = self.resource(api_version, kind)
        with self.errors(f"patch {kind} {name}"):
            return self.dynamic.patch(res, body=dict(patch), name=name, namespace=namespace, content_type="application/merge-patch+json",
                                      field_manager=FIELD_MANAGER, _request_timeout=REQUEST_TIMEOUT).to_dict()

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete one object; False when it was already gone."""
        res = self.resource(api_version, kind)
        with self.errors(f"delete {kind} {name}"):
            try:
                self.dynamic.delete(res, name=name, namespace=namespace, _request_timeout=REQUEST_TIMEOUT)
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
        return True

    def live(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The live counterpart of a rendered object (None when absent or its kind is not served yet)."""
        meta = obj["metadata"]
        try:
            return self.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        except KindNotServed:
            return None

    def _server_side_apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply ``obj`` as field manager ``oewsctl`` (``dry_run``: what the API would store)."""
        wait = CRD_WAIT_SECONDS if is_custom(obj["apiVersion"]) else 0.0
        res = self.resource(obj["apiVersion"], obj["kind"], wait_seconds=wait)
        meta = obj["metadata"]
        with self.errors(f"apply {ref(obj)}"):
            return self.dynamic.server_side_apply(res, body=dict(obj), name=meta["name"], namespace=meta.get("namespace"),
                                                  field_manager=FIELD_MANAGER, force_conflicts=True,
                                                  dry_run="All" if dry_run else None, _request_timeout=REQUEST_TIMEOUT).to_dict()

    def _would_change(self, obj: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
        """True unless ``live`` already is what applying ``obj`` stores: every rendered field set,
        and no field left over that an earlier apply set and ``obj`` no longer renders (the server
        answers that with a dry-run apply, as ``kubectl diff`` asks it)."""
        if live is None or not contains(live, obj):
            return True
        return _comparable(self._server_side_apply(obj, dry_run=True)) != _comparable(live)

    def is_unchanged(self, obj: Mapping[str, Any]) -> bool:
        """True when applying ``obj`` would change nothing in the live object."""
        return not self._would_change(obj, self.live(obj))

    def apply(self, obj: Mapping[str, Any]) -> ApplyOutcome:
        """Server-side apply ``obj`` (which creates it when absent); ``unchanged`` when nothing differs.

        Fields an earlier apply set and the template no longer renders belong to field manager
        ``oewsctl`` and are removed by the API server itself. Objects of a custom resource wait
        until the API serves their kind (a CRD installed by a HelmChart appears a little later).
        """
        live = self.live(obj)
        if not self._would_change(obj, live):
            return "unchanged"
        self._server_side_apply(obj)
        return "created" if live is None else "configured"

    def get_text(self, path: str, *, what: str, query: list[tuple[str, Any]] | None = None, accept: str = "*/*") -> str:
        """GET an API path whose answer is not an object (proxy, logs); the body as text."""
        with self.errors(what):
            request = self.api_client.param_serialize("GET", path, query_params=query or [], header_params={"Accept": accept},
                                                      auth_settings=["BearerToken"])
            response = self.api_client.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
            response.read()
            if not 200 <= response.status <= 299:
                raise ApiException(status=response.status, reason=response.reason, http_resp=response.response)
            return response.data.decode("utf-8", "replace")

    def proxy_get(self, kind: Literal["services", "pods"], name: str, namespace: str, path: str, *, port: str | int | None = None) -> str:
        """GET ``path`` on a service or pod through the API server's proxy; the body as text."""
        target = f"{name}:{port}" if port is not None else name
        url = f"/api/v1/namespaces/{namespace}/{kind}/{target}/proxy/{path.lstrip('/')}"
        return self.get_text(url, what=f"GET {path} on {kind[:-1]} {namespace}/{target}")

    def pod_log(self, namespace: str, pod: str, container: str, *, previous: bool = False, tail_lines: int = 20) -> str:
        """The last ``tail_lines`` of a container's log (``previous``: its last crashed run)."""
        query = [("container", container), ("tailLines", tail_lines), ("previous", str(previous).lower())]
        return self.get_text(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", what=f"read logs of pod {pod}", query=query, accept="text/plain")

    def close(self) -> None:
        self.api_client.close()


def wait_until(
    check: Callable[[], tuple[bool, str]],
    *,
    what: str,
    timeout: float,
    echo: Callable[[str], None] | None = None,
) -> str:
    """Poll ``check`` (returns done, state line) until done; each new state line is echoed once.

    Raises OewsctlError naming ``what`` and the last state when ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        done, message = check()
        if message != last and echo is not None:
            echo(message)
        last = message
        if done:
            return message
        if time.monotonic() >= deadline:
            raise OewsctlError(f"timed out after {timeout:.0f}s waiting for {what}: {message}")
        time.sleep(poll_seconds())
