"""The secrets runbook: set, rotate, list, status, bootstrap.

Azure mode (``secrets.provider: azure-keyvault``): values go to Key Vault and External
Secrets Operator (ESO) copies them into the Secret ``oews-api-secrets``. ESO never restarts
pods, and a restart issued before ESO has synced starts pods with the old value, so
``rotate`` runs in stages: set the values; annotate the ExternalSecret ``force-sync``; wait
until it is Ready with a new sync marker (ESO's refreshTime or syncedResourceVersion, never compared
with the local clock) AND every rotated key in the Secret
holds the new value (compared by SHA-256, never shown); then roll the pods.

Pods are rolled by writing the SHA-256 of the Secret's data into the Deployment's pod
template (annotation :data:`HASH_ANNOTATION`, like Helm's checksum annotation): a value
change rolls the pods exactly once, and writing the same hash again changes nothing. When
ESO syncs on its own (its refresh interval), ``secrets status --reconcile`` (or the next
``deploy``, via :func:`secret_data_hash`) brings the annotation up to date.

``provider: kubernetes`` writes the Secret directly, with the same roll semantics.
Values live only in memory: never in a step description, result, error or log line.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from oewsctl.clients.kube import wait_until
from oewsctl.clients.kube_secrets import ClusterSecrets, Condition
from oewsctl.configuration.schema import Config
from oewsctl.core.context import RunContext
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.runbooks.kube_steps import apply_step
from oewsctl.runbooks.render import APP_NAME
from oewsctl.runbooks.rollout import Target, echo_for, wait_step

if TYPE_CHECKING:
    from oewsctl.clients.keyvault import KeyVault, SecretInfo

APP_SECRET = "oews-api-secrets"
"""The Secret the pods read (envFrom) and the ExternalSecret that fills it share this name."""
SP_SECRET = "azure-sp-credentials"
SP_KEYS = ("ClientID", "ClientSecret")
HASH_ANNOTATION = "oews/secrets-sha256"
FORCE_SYNC_ANNOTATION = "force-sync"
DEPLOY_FIRST = "run `oewsctl deploy` first: it creates the SecretStore, the ExternalSecret and the Deployment"


def secret_data_hash(data: Mapping[str, str] | None) -> str:
    """SHA-256 over a Secret's ``data`` (keys sorted; values as the API stores them, base64)."""
    digest = hashlib.sha256()
    for key in sorted(data or {}):
        digest.update(key.encode() + b"\0" + (data or {})[key].encode() + b"\n")
    return digest.hexdigest()


def encode(value: str) -> str:
    """A value as Secret ``data`` stores it."""
    return base64.b64encode(value.encode()).decode()


def _same(stored: str | None, value: str) -> bool:
    return stored is not None and hmac.compare_digest(stored.encode(), value.encode())


@dataclass
class SecretsEnv:
    """What secrets plans reach: the inventory, a vault opened on first use, the timeouts."""

    config: Config
    vault_factory: Callable[[], KeyVault]
    sync_timeout: float = 180.0
    vault: Callable[[], KeyVault] = field(init=False)

    def __post_init__(self) -> None:
        self.vault = cache(self.vault_factory)

    def cluster(self, ctx: RunContext) -> ClusterSecrets:
        """The app namespace through the run's shared Kubernetes client."""
        return ClusterSecrets(ctx.kube, self.namespace)

    @property
    def namespace(self) -> str:
        return self.config.app.namespace

    @property
    def azure(self) -> bool:
        return self.config.secrets.provider == "azure-keyvault"

    @property
    def vault_label(self) -> str:
        return f"Key Vault {self.config.secrets.vault_url}"


def secrets_env(config: Config, sync_timeout: float = 180.0) -> SecretsEnv:
    """The env for ``config``: its vault opens on first use, so the Azure SDK loads only for commands that reach it."""

    def vault() -> KeyVault:
        from oewsctl.clients import keyvault

        return keyvault.open_vault(config.secrets.vault_url or "")

    return SecretsEnv(config, vault_factory=vault, sync_timeout=sync_timeout)


# -- plan pieces -------------------------------------------------------------------------


def _needs(env: SecretsEnv, *, kube: bool = True) -> Needs:
    """The cluster, plus the vault with provider azure-keyvault (checked before the first change)."""
    return Needs(kube=kube, keyvault=env.vault if env.azure else None)


def _vault_set_step(env: SecretsEnv, app_var: str, vault_name: str, value: str) -> Step:
    def unchanged(ctx: RunContext) -> str | None:
        return "already holds this value" if _same(env.vault().get(vault_name), value) else None

    def write(ctx: RunContext) -> str:
        return f"new version {env.vault().set(vault_name, value)}"

    return Step(
        f"{env.vault_label}: set {vault_name} (app variable {app_var})",
        action=write,
        skip_if=unchanged,
        detail=f"PUT {env.config.secrets.vault_url}/secrets/{vault_name} (value withheld)",
        remediation="check the vault role with `az role assignment list --scope <vault id>`",
    )


def _secret_write_step(env: SecretsEnv, values: Mapping[str, str]) -> Step:
    """provider kubernetes: all keys in one patch, so a failure changes nothing."""
    encoded = {key: encode(value) for key, value in values.items()}

    def unchanged(ctx: RunContext) -> str | None:
        current = env.cluster(ctx).secret_data(APP_SECRET) or {}
        return "already holds these values" if all(_same(current.get(k), v) for k, v in encoded.items()) else None

    def write(ctx: RunContext) -> str | None:
        return "created the Secret" if env.cluster(ctx).write_secret_keys(APP_SECRET, encoded) else None

    keys = ", ".join(sorted(values))
    return Step(
        f"Secret {env.namespace}/{APP_SECRET}: write {keys}",
        action=write,
        skip_if=unchanged,
        detail=f"PATCH secrets/{APP_SECRET} data.{{{keys}}} (values withheld)",
    )


def _preflight_external_secret(env: SecretsEnv, vault_names: list[str]) -> Step:
    """Before any write: the ExternalSecret exists and maps every rotated vault secret."""

    def check(ctx: RunContext) -> str:
        es = env.cluster(ctx).external_secret(APP_SECRET)
        if es is None:
            raise OewsctlError(f"ExternalSecret {env.namespace}/{APP_SECRET} not found", hint=DEPLOY_FIRST)
        mapped = ClusterSecrets.mapping(es)
        unmapped = [n for n in vault_names if n not in mapped.values()]
        if unmapped:
            raise OewsctlError(
                f"ExternalSecret {env.namespace}/{APP_SECRET} does not map {', '.join(unmapped)}",
                hint="add the name under secrets.keys in oewsctl.yaml and run `oewsctl deploy`",
            )
        return f"maps {len(mapped)} key(s)"

    return Step(f"check ExternalSecret {env.namespace}/{APP_SECRET} maps {', '.join(vault_names)}", action=check, detail=f"GET externalsecrets/{APP_SECRET}")


def _preflight_deployment(env: SecretsEnv) -> Step:
    def check(ctx: RunContext) -> str:
        if env.cluster(ctx).pod_annotations(APP_NAME) is None:
            raise OewsctlError(f"Deployment {env.namespace}/{APP_NAME} not found", hint=DEPLOY_FIRST)
        return "found"

    return Step(f"check Deployment {env.namespace}/{APP_NAME} exists", action=check, detail=f"GET deployments/{APP_NAME}")


def _refresh_time(es: Mapping[str, Any] | None) -> str | None:
    return (es or {}).get("status", {}).get("refreshTime")


def _sync_marker(es: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """What changes when ESO syncs: its refreshTime (whole seconds) and the syncedResourceVersion
    it records (which follows the force-sync annotation, so a sync within the same second shows)."""
    status = (es or {}).get("status", {})
    return status.get("refreshTime"), status.get("syncedResourceVersion")


@dataclass
class _SyncSeen:
    """ESO's sync marker before the force-sync, handed from the annotate step to the wait step."""

    before: tuple[str | None, str | None] | None = None


def _force_sync_step(env: SecretsEnv, seen: _SyncSeen) -> Step:
    """Annotate force-sync, remembering ESO's sync marker from before (the wait looks for a new one)."""

    def annotate(ctx: RunContext) -> str:
        stamp = time.time_ns()  # a new value every time: ESO syncs on a *changed* annotation
        cluster = env.cluster(ctx)
        seen.before = _sync_marker(cluster.external_secret(APP_SECRET))
        cluster.annotate_external_secret(APP_SECRET, {FORCE_SYNC_ANNOTATION: str(stamp)})
        return f"{FORCE_SYNC_ANNOTATION}={stamp}"

    return Step(
        f"ask ESO to sync now: annotate ExternalSecret {env.namespace}/{APP_SECRET} {FORCE_SYNC_ANNOTATION}=<now>",
        action=annotate,
        detail=f"PATCH externalsecrets/{APP_SECRET} metadata.annotations.{FORCE_SYNC_ANNOTATION}",
    )


def _wait_sync_step(env: SecretsEnv, app_values: Mapping[str, str], seen: _SyncSeen) -> Step:
    """Ready with a sync marker other than the one before the force-sync, and every rotated key holds its new value.

    Only ESO's own status is compared (never with this machine's clock, which may be skewed).
    """
    expected = {key: _digest(encode(value)) for key, value in app_values.items()}
    what = f"ESO to sync the new values into Secret {env.namespace}/{APP_SECRET}"

    def synced(ctx: RunContext) -> str:
        before = seen.before
        cluster = env.cluster(ctx)

        def check() -> tuple[bool, str]:
            es = cluster.external_secret(APP_SECRET) or {}
            ready = Condition.of(es, "Ready")
            refreshed = _refresh_time(es)
            condition = f"ExternalSecret Ready={ready.status} ({ready.reason}): {ready.message}"
            if not ready.true:
                return False, condition
            if not refreshed or _sync_marker(es) == before:
                return False, f"last refresh {refreshed or 'never'} is from before the force-sync; {condition}"
            data = cluster.secret_data(APP_SECRET) or {}
            stale = [key for key, digest in expected.items() if _digest(data.get(key, "")) != digest]
            if stale:
                return False, f"refreshed at {refreshed} but the Secret lacks the new {', '.join(stale)}; {condition}"
            return True, f"synced at {refreshed} (Secret sha256 {secret_data_hash(data)[:12]})"

        try:
            return wait_until(check, what=what, timeout=env.sync_timeout, echo=echo_for(ctx))
        except OewsctlError as exc:
            raise OewsctlError(
                exc.message,
                hint="the vault has the new values and the pods were NOT restarted. Check `oewsctl secrets status` "
                "(SecretStore credentials, vault role), then re-run the same rotate: it writes no new versions.",
            ) from None

    return Step(
        f"wait for {what} (timeout {env.sync_timeout:.0f}s)",
        action=synced,
        detail=f"GET externalsecrets/{APP_SECRET} until Ready with a new refreshTime; compare SHA-256 of secrets/{APP_SECRET} keys",
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Roll:
    """Handed between the roll steps: the Secret's data hash found by the check, and whether pods were rolled."""

    secret_sha256: str = ""
    rolled: bool = False


def roll_steps(env: SecretsEnv) -> list[Step]:
    """Write the Secret's data hash into the pod template (rolls once per change), then wait."""
    roll = _Roll()

    def in_sync(ctx: RunContext) -> str | None:
        data = env.cluster(ctx).secret_data(APP_SECRET)
        if data is None:
            raise OewsctlError(f"Secret {env.namespace}/{APP_SECRET} not found", hint="set the values first: oewsctl secrets rotate NAME --from-stdin")
        current = roll.secret_sha256 = secret_data_hash(data)
        annotations = env.cluster(ctx).pod_annotations(APP_NAME)
        if annotations is None:
            raise OewsctlError(f"Deployment {env.namespace}/{APP_NAME} not found", hint=DEPLOY_FIRST)
        return f"pods already use this Secret (sha256 {current[:12]})" if annotations.get(HASH_ANNOTATION) == current else None

    def annotate(ctx: RunContext) -> str:
        digest = roll.secret_sha256
        env.cluster(ctx).set_pod_annotation(APP_NAME, HASH_ANNOTATION, digest)
        roll.rolled = True
        return f"{HASH_ANNOTATION}={digest[:12]}…"

    rolled = dataclasses.replace(
        wait_step(Target(env.namespace)),
        skip_if=lambda ctx: None if roll.rolled else "nothing rolled",
    )
    return [
        Step(
            f"roll Deployment {env.namespace}/{APP_NAME}: set pod annotation {HASH_ANNOTATION} to the Secret's data hash",
            action=annotate,
            skip_if=in_sync,
            detail=f"PATCH deployments/{APP_NAME} spec.template.metadata.annotations.{HASH_ANNOTATION}",
        ),
        rolled,
    ]


# -- plans ---------------------------------------------------------------------------------


def set_plan(env: SecretsEnv, values: Mapping[str, tuple[str, str]]) -> Plan:
    """``secrets set``: write values only (Key Vault, or the Secret with provider kubernetes).

    ``values`` maps app variable -> (vault name, value).
    """
    plan = Plan("secrets set", needs=_needs(env, kube=not env.azure))
    if env.azure:
        plan.extend([_vault_set_step(env, app, vault, value) for app, (vault, value) in values.items()])
    else:
        plan.add(_secret_write_step(env, {app: value for app, (_, value) in values.items()}))
    return plan


def rotate_plan(env: SecretsEnv, values: Mapping[str, tuple[str, str]]) -> Plan:
    """``secrets rotate``: write, make the Secret hold the values, roll pods once, wait."""
    plan = Plan("secrets rotate", needs=_needs(env))
    app_values = {app: value for app, (_, value) in values.items()}
    if env.azure:
        plan.add(_preflight_external_secret(env, [vault for vault, _ in values.values()]))
        plan.add(_preflight_deployment(env))
        plan.extend([_vault_set_step(env, app, vault, value) for app, (vault, value) in values.items()])
        seen = _SyncSeen()
        plan.add(_force_sync_step(env, seen))
        plan.add(_wait_sync_step(env, app_values, seen))
    else:
        plan.add(_preflight_deployment(env))
        plan.add(_secret_write_step(env, app_values))
    plan.extend(roll_steps(env))
    return plan


def reconcile_plan(env: SecretsEnv) -> Plan:
    """``secrets status --reconcile``: roll the pods if the Secret changed since they started."""
    plan = Plan("secrets reconcile", needs=Needs(kube=True))
    plan.extend(roll_steps(env))
    return plan


def require_azure(env: SecretsEnv) -> None:
    """ESO is only for Key Vault: say so before asking for any credential."""
    if not env.azure:
        raise UsageError(
            "secrets bootstrap sets up External Secrets Operator for Azure Key Vault, but secrets.provider is kubernetes",
            hint="with provider kubernetes nothing needs installing: use `oewsctl secrets set/rotate` directly",
        )


def bootstrap_plan(env: SecretsEnv, helm_chart: Mapping[str, Any], credentials: Mapping[str, str]) -> Plan:
    """``secrets bootstrap``: install ESO (HelmChart) and create the service principal Secret."""
    encoded = {key: encode(value) for key, value in credentials.items()}
    chart = f"{helm_chart['metadata']['namespace']}/{helm_chart['metadata']['name']}"

    def sp_unchanged(ctx: RunContext) -> str | None:
        current = env.cluster(ctx).secret_data(SP_SECRET) or {}
        return "already holds these credentials" if all(_same(current.get(k), v) for k, v in encoded.items()) else None

    def write_sp(ctx: RunContext) -> str | None:
        env.cluster(ctx).ensure_namespace()
        return "created" if env.cluster(ctx).write_secret_keys(SP_SECRET, encoded) else None

    plan = Plan("secrets bootstrap", needs=Needs(kube=True))
    plan.add(apply_step(
        helm_chart,
        description=f"install External Secrets Operator: apply HelmChart {chart}",
        detail=f"apply helm.cattle.io/v1 HelmChart {chart} (k3s helm-controller installs the chart)",
        unchanged_reason="already installed",
    ))
    plan.add(Step(
        f"Secret {env.namespace}/{SP_SECRET}: write {', '.join(SP_KEYS)} (the SecretStore's service principal)",
        action=write_sp,
        skip_if=sp_unchanged,
        detail=f"PATCH secrets/{SP_SECRET} (values withheld)",
    ))
    return plan


# -- read-only views -----------------------------------------------------------------------


def list_vault(env: SecretsEnv) -> list[dict[str, Any]]:
    """Vault secrets with the app variable each feeds; mapped names missing from the vault too."""
    by_vault = {vault: app for app, vault in env.config.secrets.keys.items()}
    infos: list[SecretInfo] = env.vault().list()
    rows = [
        {
            "name": info.name,
            "app_variable": by_vault.get(info.name),
            "enabled": info.enabled,
            "content_type": info.content_type,
            "updated": info.updated.isoformat() if info.updated else None,
            "version": info.version,
        }
        for info in infos
    ]
    present = {info.name for info in infos}
    rows += [
        {"name": vault, "app_variable": app, "enabled": None, "content_type": None, "updated": None, "version": None, "missing": True}
        for vault, app in sorted(by_vault.items())
        if vault not in present
    ]
    return rows


def list_cluster(env: SecretsEnv, ctx: RunContext) -> list[dict[str, Any]]:
    """provider kubernetes: the keys of the app Secret (names only) and which app variables lack one."""
    data = env.cluster(ctx).secret_data(APP_SECRET)
    if data is None:
        raise OewsctlError(f"Secret {env.namespace}/{APP_SECRET} not found", hint="create it with `oewsctl secrets set NAME --from-stdin`")
    wanted = set(env.config.secrets.keys)
    rows: list[dict[str, Any]] = [{"name": key, "app_variable": key, "present": True} for key in sorted(data)]
    rows += [{"name": key, "app_variable": key, "present": False, "missing": True} for key in sorted(wanted - set(data))]
    return rows


def status(env: SecretsEnv, ctx: RunContext) -> dict[str, Any]:
    """SecretStore and ExternalSecret conditions, last refresh, mapping, missing keys, pod sync."""
    cluster = env.cluster(ctx)
    report: dict[str, Any] = {"provider": env.config.secrets.provider, "namespace": env.namespace}
    data = cluster.secret_data(APP_SECRET)
    if env.azure:
        es = cluster.external_secret(APP_SECRET)
        if es is None:
            raise OewsctlError(f"ExternalSecret {env.namespace}/{APP_SECRET} not found", hint=DEPLOY_FIRST)
        store_name = es.get("spec", {}).get("secretStoreRef", {}).get("name", "")
        store = cluster.secret_store(store_name)
        report["secret_store"] = {"name": store_name, "found": store is not None, **Condition.of(store or {}, "Ready").as_dict()}
        report["external_secret"] = {
            "name": APP_SECRET,
            **Condition.of(es, "Ready").as_dict(),
            "refresh_time": es.get("status", {}).get("refreshTime"),
            "refresh_interval": es.get("spec", {}).get("refreshInterval"),
            "mapped": ClusterSecrets.mapping(es),
        }
    wanted = sorted(env.config.secrets.keys) or sorted(data or {})
    current = secret_data_hash(data) if data is not None else None
    annotations = cluster.pod_annotations(APP_NAME)
    report["secret"] = {
        "name": APP_SECRET,
        "found": data is not None,
        "keys": sorted(data or {}),
        "missing": [key for key in wanted if key not in (data or {})],
        "sha256": current,
    }
    report["deployment"] = {
        "name": APP_NAME,
        "found": annotations is not None,
        "pods_sha256": (annotations or {}).get(HASH_ANNOTATION),
        "in_sync": annotations is not None and current is not None and annotations.get(HASH_ANNOTATION) == current,
    }
    return report
