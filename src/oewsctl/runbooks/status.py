"""``oewsctl status``: the one-screen overview of the cluster, read-only.

Nodes, API replicas and image, database release per node, certificate expiry, last
backup, firing alerts. Every source is probed on its own: one that cannot be reached
shows ``unknown (why)`` and the others still show, so the screen is useful exactly
when something is broken.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from oewsctl.clients.kube import Kube
from oewsctl.configuration.schema import Config
from oewsctl.core.errors import OewsctlError
from oewsctl.runbooks.monitoring import Prometheus, prometheus_source
from oewsctl.runbooks.render import APP_NAME
from oewsctl.runbooks.report import KubeOnce, Section, probe, reason

API_PORT = 8000
TLS_TIMEOUT = 5.0
STALE_RELEASE_MONTHS = 15  # the OewsDatabaseReleaseOld alert's threshold


def _ready(node: dict[str, Any]) -> str:
    for condition in node.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return "Ready" if condition.get("status") == "True" else "NotReady"
    return "Unknown"


def nodes(kube: Kube, config: Config) -> tuple[list[str], Any]:
    """Every inventory node: Ready, k3s version, arch, role labels; and whether it joined at all."""
    live = {n["metadata"]["name"]: n for n in kube.list("v1", "Node")}
    lines, data = [], []
    for node in config.nodes:
        item = live.get(node.name)
        if item is None:
            lines.append(f"{node.name}: not in the cluster (run `oewsctl cluster install`)")
            data.append({"name": node.name, "ready": None})
            continue
        info = item.get("status", {}).get("nodeInfo") or {}
        labels = item["metadata"].get("labels") or {}
        roles = [f"{key.removeprefix('oews/')}={labels[key]}" for key in ("oews/db", "oews/role") if key in labels]
        ready = _ready(item)
        facts = [ready, info.get("kubeletVersion", "?"), info.get("architecture", node.arch), *roles]
        lines.append(f"{node.name}: {', '.join(facts)}")
        data.append({"name": node.name, "ready": ready == "Ready", "version": info.get("kubeletVersion"), "labels": labels})
    return lines, data


def api(kube: Kube, config: Config) -> tuple[list[str], Any]:
    """The Deployment: ready/desired replicas and the image it runs."""
    deployment = kube.get("apps/v1", "Deployment", APP_NAME, config.app.namespace)
    if deployment is None:
        return [f"Deployment {config.app.namespace}/{APP_NAME} not found (run `oewsctl deploy`)"], None
    spec, status = deployment["spec"], deployment.get("status") or {}
    desired, ready = spec.get("replicas", 1), status.get("readyReplicas", 0) or 0
    images = [c["image"] for c in spec["template"]["spec"]["containers"]]
    line = f"{ready}/{desired} replicas ready, image {', '.join(images)}"
    return [line], {"ready": ready, "desired": desired, "images": images}


def database(kube: Kube, config: Config) -> tuple[list[str], Any]:
    """What each API pod serves (its /health through the API server's pod proxy), by node."""
    selector = f"app.kubernetes.io/name={APP_NAME}"
    pods = [p for p in kube.list("v1", "Pod", config.app.namespace, label_selector=selector)
            if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == APP_NAME]
    if not pods:
        return [f"no {APP_NAME} pods in namespace {config.app.namespace} (run `oewsctl deploy`)"], []
    lines, data = [], []
    for pod in sorted(pods, key=lambda p: (p["spec"].get("nodeName") or "", p["metadata"]["name"])):
        name, node = pod["metadata"]["name"], pod["spec"].get("nodeName") or "(unscheduled)"
        try:
            health = json.loads(kube.proxy_get("pods", name, config.app.namespace, "/health", port=API_PORT))
            db = health["database"]
            lines.append(f"{node}: {db.get('release')}, sha256 {str(db.get('sha256'))[:12]}… (pod {name}){_age_note(db.get('release'))}")
            data.append({"node": node, "pod": name, "release": db.get("release"), "sha256": db.get("sha256")})
        except Exception as exc:  # noqa: BLE001 - one pod's failure is that pod's line, not the section
            lines.append(f"{node}: unknown ({reason(exc)}) (pod {name})")
            data.append({"node": node, "pod": name, "unknown": reason(exc)})
    return lines, data


def release_age_months(release: object, today: date | None = None) -> int | None:
    """Whole months since a release like ``May 2025`` (BLS's reference month); None if unparsable."""
    try:
        month = datetime.strptime(str(release), "%B %Y")
    except ValueError:
        return None
    today = today or date.today()
    return (today.year - month.year) * 12 + today.month - month.month


def _age_note(release: object) -> str:
    months = release_age_months(release)
    if months is None or months <= STALE_RELEASE_MONTHS:
        return ""
    return f" — {months} months old: build the new BLS release and `oewsctl db update` it"


def certificate_expiry(host: str, port: int = 443, context: ssl.SSLContext | None = None) -> datetime:
    """When the certificate served for ``host`` expires (verified against the trust store)."""
    context = context or ssl.create_default_context()
    try:
        with socket.create_connection((host, port), timeout=TLS_TIMEOUT) as sock:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                cert = tls.getpeercert()
    except socket.gaierror:
        raise OewsctlError(f"cannot resolve {host}") from None
    except ssl.SSLCertVerificationError as exc:
        raise OewsctlError(f"{host}:{port}: {exc.verify_message}") from None
    except OSError as exc:
        raise OewsctlError(f"{host}:{port}: {exc.strerror or exc}") from None
    assert cert is not None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), tz=timezone.utc)


def certificate(config: Config, context: ssl.SSLContext | None = None, port: int = 443) -> tuple[list[str], Any]:
    expires = certificate_expiry(config.app.domain, port, context)
    days = (expires - datetime.now(timezone.utc)).total_seconds() / 86400
    warn = " — renew now (alert threshold 14 days)" if days < 14 else ""
    line = f"{config.app.domain}: expires {expires:%Y-%m-%d %H:%M} UTC ({days:.0f} days){warn}"
    return [line], {"host": config.app.domain, "not_after": expires.isoformat(), "days_left": round(days, 1)}


def _backup_time(folder: Path) -> float:
    """A backup's time: ``manifest.json`` ``time`` when readable, else the folder's mtime."""
    try:
        stamp = json.loads((folder / "manifest.json").read_text()).get("time")
        return datetime.fromisoformat(str(stamp)).timestamp()
    except (OSError, ValueError, TypeError, AttributeError):
        return folder.stat().st_mtime


def last_backup(config: Config) -> tuple[list[str], Any]:
    """The newest complete backup (a folder with ``manifest.json``) under ``backup.dest``."""
    dest = Path(config.backup.dest).expanduser()
    if not dest.is_dir():
        raise OewsctlError(f"no backup folder {dest} on this machine")
    folders = [p.parent for p in dest.glob("*/manifest.json")]
    if not folders:
        return [f"no backup in {dest} (run `oewsctl backup run`)"], None
    newest = max(folders, key=_backup_time)
    when = _backup_time(newest)
    hours = (time.time() - when) / 3600
    stamp = datetime.fromtimestamp(when, tz=timezone.utc)
    return [f"{newest.name}: {stamp:%Y-%m-%d %H:%M} UTC ({hours:.0f} h ago) in {dest}"], {"id": newest.name, "time": stamp.isoformat()}


def alerts(prometheus: Prometheus) -> tuple[list[str], Any]:
    """Alerts firing now (pending ones are not news yet)."""
    firing = prometheus.firing_alerts()
    lines = [f"{a['labels'].get('severity', '?')} {a['labels']['alertname']}: {a.get('annotations', {}).get('summary', '')}"
             for a in firing]
    return lines or ["none firing"], firing


def overview(config: Config, kube_factory: Callable[[], Kube], prometheus_url: str | None = None) -> list[Section]:
    """Every section of ``oewsctl status``; each source probed independently."""
    kube = KubeOnce(kube_factory)
    return [
        probe("nodes", kube.source(lambda k: nodes(k, config))),
        probe("api", kube.source(lambda k: api(k, config))),
        probe("database", kube.source(lambda k: database(k, config))),
        probe("certificate", lambda: certificate(config)),
        probe("last backup", lambda: last_backup(config)),
        probe("alerts", prometheus_source(kube, prometheus_url, alerts)),
    ]
