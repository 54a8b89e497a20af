"""Backups (``backup run | list | verify``) and ``restore``: made for cron and for a lost machine.

One folder per run under ``backup.dest``, named by its UTC time (``20261126T031500Z``)::

    oews.db            copied from a DB node (SHA-256 checked against the node's file); with
                       database.delivery image, pulled from the artifact the Deployment fetches
                       (manifest.json records its reference; restore points the Deployment back at it)
    state/NN-kind-name.yaml   the live objects oewsctl manages (what `oewsctl render` lists),
                       without status, managedFields, uid, resourceVersion and other server fields
    oewsctl.yaml       the inventory used
    manifest.json      time, versions, database facts, the Secrets' names and keys (never values),
                       every file with size and SHA-256

It is written as ``.ID.partial`` and renamed when complete and verified, so a crashed run never
looks like a backup; older backups are pruned (newest ``keep`` kept) only after that, together
with the ``.ID.partial`` folders a killed run (SIGKILL, power loss) could not remove itself: those
untouched for the lock's stale age (``core.lock.STALE_SECONDS``), never a folder another backup
(another cluster's, or another machine's, into the same ``dest``) is still writing.

``restore`` applies only what ``verify`` checked: state files listed in ``manifest.json`` with
their SHA-256, holding objects oewsctl itself renders (same kind, namespace and name); ``verify`` reports any file the manifest
does not list (a planted ``state/99-clusterrolebinding-x.yaml`` makes the backup unusable).
Secret objects are never written: their values live in Azure Key Vault (ESO syncs them back)
or are set again with ``oewsctl secrets set``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from oews_api.checksum import file_sha256
from oewsctl import __version__
from oewsctl.clients import transfer
from oewsctl.clients.kube import Kube, ref
from oewsctl.configuration.loading import parse_config, resolve_config_path
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.lock import STALE_SECONDS, is_stale
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.runbooks.database import PushOptions, Release, db_node_names, push_steps, restart_and_confirm
from oewsctl.runbooks.db_image import backup_artifact_step, restore_artifact_step
from oewsctl.runbooks.manifests import listing
from oewsctl.runbooks.render import file_name, to_yaml
from oewsctl.runbooks.rollout import Target, wait_step

if TYPE_CHECKING:
    from oewsctl.configuration.schema import Config
    from oewsctl.core.context import RunContext

ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
MANIFEST = "manifest.json"
DB_FILE = "oews.db"
CONFIG_FILE = "oewsctl.yaml"
STATE_DIR = "state"
SERVER_FIELDS = ("uid", "resourceVersion", "managedFields", "creationTimestamp", "generation", "selfLink", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "ownerReferences")
SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")


# -- cluster state ---------------------------------------------------------------------------


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as it would be applied: no status, no server-assigned metadata."""
    out = {key: value for key, value in obj.items() if key != "status"}
    meta = {key: value for key, value in (obj.get("metadata") or {}).items() if key not in SERVER_FIELDS}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in SERVER_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def managed_objects(config: "Config") -> list[dict[str, Any]]:
    """What a backup exports and a restore may bring back: everything oewsctl applies (``render``'s
    listing, in apply order), never a Secret."""
    return [obj for obj in listing(config) if obj["kind"] != "Secret"]


def export_state(kube: Kube, config: "Config") -> list[dict[str, Any]]:
    """The live counterparts of :func:`managed_objects`, cleaned."""
    found = []
    for obj in managed_objects(config):
        live = kube.live(obj)
        if live is not None:
            found.append(clean(live))
    return found


def secret_names(kube: Kube, config: "Config") -> list[dict[str, Any]]:
    """The app namespace's Secrets by name, type and key names: what a restore must bring back (no values)."""
    return [{"name": s["metadata"]["name"], "type": s.get("type"), "keys": sorted((s.get("data") or {}).keys())}
            for s in kube.list("v1", "Secret", config.app.namespace)]


# -- files -----------------------------------------------------------------------------------


def new_id(dest: Path) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate, n = stamp, 1
    while (dest / candidate).exists() or (dest / f".{candidate}.partial").exists():
        candidate, n = f"{stamp}-{n}", n + 1
    return candidate


@dataclass(frozen=True)
class Backup:
    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def database(self) -> Release:
        return Release(**self.manifest["database"])

    def summary(self) -> dict[str, Any]:
        size = sum(int(f["size"]) for f in self.manifest.get("files", []))
        db = self.manifest.get("database") or {}
        return {"id": self.id, "time": self.manifest.get("time"), "path": str(self.path), "size": size,
                "database_sha256": db.get("sha256"), "release": db.get("release"), "objects": len(self.manifest.get("objects", []))}


def backup_dest(config: "Config", dest: Path | None) -> Path:
    return (dest or Path(config.backup.dest)).expanduser()


def list_backups(dest: Path) -> list[Backup]:
    """Complete backups (a folder named by its time with a readable manifest.json), oldest first."""
    if not dest.is_dir():
        return []
    found = []
    for folder in sorted(dest.iterdir()):
        if not ID_PATTERN.match(folder.name):
            continue
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        found.append(Backup(folder.name, folder, manifest))
    return found


def find_backup(dest: Path, backup_id: str) -> Backup:
    for found in list_backups(dest):
        if found.id == backup_id:
            return found
    known = ", ".join(b.id for b in list_backups(dest)[-5:]) or "none"
    raise UsageError(f"no backup {backup_id!r} in {dest} (newest: {known})", hint="list them with: oewsctl backup list (or pass --dest DIR)")


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """``(apiVersion, kind, namespace, name)``: which object a manifest is."""
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion") or "", obj["kind"], meta.get("namespace") or "", meta["name"])


def managed_identities(config: "Config") -> set[tuple[str, str, str, str]]:
    """The objects of :func:`managed_objects` by identity: the only ones a restore applies (a planted
    ClusterRoleBinding is refused even though oewsctl renders other objects of that kind)."""
    return {identity(obj) for obj in managed_objects(config)}


def _listed(folder: Path, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's file entries by path, kept only when the path stays inside ``folder``."""
    root = folder.resolve()
    return {entry["path"]: entry for entry in manifest.get("files", []) if (root / entry["path"]).resolve().is_relative_to(root)}


def _state_problems(folder: Path, paths: list[str], saved: "Config | None") -> list[str]:
    """Listed state files that are not Kubernetes objects, or hold a kind oewsctl never renders."""
    problems = []
    known = None
    try:
        known = managed_identities(saved) if saved is not None else None
    except OewsctlError as exc:
        problems.append(f"{CONFIG_FILE}: cannot tell which kinds it renders ({exc.message})")
    for rel in paths:
        try:
            docs = [d for d in yaml.safe_load_all((folder / rel).read_text()) if d]
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{rel}: invalid YAML ({exc})")
            continue
        if not all(isinstance(d, dict) and d.get("kind") and (d.get("metadata") or {}).get("name") for d in docs):
            problems.append(f"{rel}: not a Kubernetes object")
            continue
        for doc in docs:
            if known is not None and identity(doc) not in known:
                problems.append(f"{rel}: {doc['kind']} {doc['metadata']['name']} ({doc.get('apiVersion')}) is not an object oewsctl renders; "
                                "restore refuses it")
    return problems


def verify(folder: Path) -> list[str]:
    """Every problem with a backup folder: hashes, files the manifest does not list, the database,
    the manifests, foreign kinds in state/. Empty when sound: then restore may use it."""
    from oews_api.builder.validate import validate_database

    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        return [f"{folder / MANIFEST}: unreadable ({exc})"]
    listed = _listed(folder, manifest)
    problems = [f"{entry['path']}: outside the backup folder" for entry in manifest.get("files", []) if entry["path"] not in listed]
    for rel, entry in listed.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry["size"] or file_sha256(path) != entry["sha256"]:
            problems.append(f"{rel}: SHA-256 or size differs from manifest.json (damaged)")
    present = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p != folder / MANIFEST)
    problems.extend(f"{rel}: not listed in manifest.json (not written by `backup run`; remove it)" for rel in present if rel not in listed)
    database = folder / DB_FILE
    if database.is_file():
        report = validate_database(database)
        problems.extend(f"{DB_FILE}: {p}" for p in report.problems)
    saved = None
    try:
        saved = parse_config((folder / CONFIG_FILE).read_text(), source=CONFIG_FILE)
    except (OSError, OewsctlError) as exc:
        problems.append(f"{CONFIG_FILE}: {getattr(exc, 'message', exc)}")
    problems.extend(_state_problems(folder, sorted(rel for rel in listed if rel.startswith(f"{STATE_DIR}/")), saved))
    return problems


# -- backup run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupOptions:
    dest: Path
    keep: int
    config_file: Path


@dataclass
class _Collected:
    """What the copy and export steps hand to the manifest step."""

    database: Release | None = None
    objects: list[str] = field(default_factory=list)
    """The exported objects, as ``Kind namespace/name``."""
    secrets: list[str] = field(default_factory=list)
    """The Secrets the cluster holds, by name only."""
    artifact: str | None = None
    """database.delivery image: the artifact reference the Deployment fetched (the manifest records it)."""

    def fetched(self, release: Release, ref: str) -> None:
        self.database, self.artifact = release, ref


def _copy_database(config: "Config", work: Path, collected: _Collected) -> Step:
    nodes = db_node_names(config)

    def run(ctx: "RunContext") -> str:
        from oews_api.builder.validate import validate_database

        work.mkdir(parents=True, exist_ok=True)
        target = work / DB_FILE
        failures = []
        for node in nodes:  # any DB node holds the same file: the next one stands in for one that is down
            try:
                sha = transfer.download(ctx.ssh, node, config.database.path, target, sudo=True, progress=ctx.options.output == "text")
            except OewsctlError as exc:
                failures.append(exc.message)
                continue
            report = validate_database(target)
            collected.database = Release.of(report.facts) if "releases" in report.facts else Release(sha, target.stat().st_size)
            return f"sha256 {sha[:12]}… from {node} (matches the node's file)"
        raise OewsctlError("; ".join(failures), hint="check the DB nodes hold the database: oewsctl db status")

    return Step(f"copy {config.database.path} from {' or '.join(nodes)} → {work / DB_FILE}", action=run,
                detail="stream over SSH; the SHA-256 is checked against the file on the node")


def _export(config: "Config", work: Path, collected: _Collected) -> Step:
    def run(ctx: "RunContext") -> str:
        kube = ctx.kube
        objects = export_state(kube, config)
        state = work / STATE_DIR
        state.mkdir(parents=True, exist_ok=True)
        for index, obj in enumerate(objects, 1):
            (state / file_name(index, obj)).write_text(to_yaml([obj]))
        collected.objects = [ref(o) for o in objects]
        collected.secrets = secret_names(kube, config)
        return f"{len(objects)} objects, {len(collected.secrets)} Secret(s) by name only"

    return Step(f"export the cluster state of namespace {config.app.namespace} → {work / STATE_DIR}", action=run,
                detail="every object `oewsctl render` lists, live, minus status/managedFields/uid/resourceVersion; Secret values never")


def _finish(options: BackupOptions, work: Path, final: Path, collected: _Collected) -> Step:
    def run(ctx: "RunContext") -> str:
        shutil.copyfile(options.config_file, work / CONFIG_FILE)
        files = sorted(p for p in work.rglob("*") if p.is_file())
        release = collected.database
        assert release is not None, "the copy step runs first"
        manifest = {
            "id": final.name,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "versions": {"oewsctl": __version__, "format": 1},
            "database": {"sha256": release.sha256, "size": release.size, "release": release.release, "years": release.years},
            **({"artifact": collected.artifact} if collected.artifact else {}),
            "objects": collected.objects,
            "secrets": collected.secrets,
            "files": [{"path": str(p.relative_to(work)), "size": p.stat().st_size, "sha256": file_sha256(p)} for p in files],
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        problems = verify(work)
        if problems:
            raise OewsctlError(f"the new backup in {work} did not verify: " + "; ".join(problems), hint="nothing was pruned; check the disk and run again")
        os.rename(work, final)
        return f"backup {final.name} complete in {final}"

    return Step(f"write manifest.json, verify, rename to {final}", action=run,
                detail="re-hash every file, validate the database, then rename the temp folder (a crashed run leaves only .ID.partial)")


def prunable(dest: Path, keep: int) -> list[Path]:
    """The oldest complete backups beyond ``keep``, then the stale ``.ID.partial`` folders of dead runs.

    Called after this run's own folder was renamed (a failed run removes its own). The cluster lock
    does not cover a ``dest`` shared with another cluster or machine, so a partial folder counts as
    dead only once nothing in it changed for the lock's stale age.
    """
    backups = list_backups(dest)
    stale = sorted(p for p in dest.glob(".*.partial") if p.is_dir() and is_stale(p)) if dest.is_dir() else []
    return [b.path for b in backups[: max(0, len(backups) - keep)]] + stale


def prune(dest: Path, keep: int) -> list[str]:
    """Remove what :func:`prunable` names; the removed folder names."""
    removed = []
    for path in prunable(dest, keep):
        shutil.rmtree(path)
        removed.append(path.name)
    return removed


def backup_plan(config: "Config", options: BackupOptions) -> tuple[Plan, Path]:
    """backup run: copy the database, export the state, write and verify, then prune; (plan, its temp folder)."""
    if not options.config_file.is_file():
        raise UsageError(f"config file {options.config_file} not found")
    backup_id = new_id(options.dest)
    work = options.dest / f".{backup_id}.partial"
    final = options.dest / backup_id
    plan = Plan("backup run", needs=Needs(kube=True))  # the database comes from any DB node that answers
    collected = _Collected()
    if config.database.delivery == "image":
        plan.add(backup_artifact_step(config, work / DB_FILE, collected.fetched))
    else:
        plan.add(_copy_database(config, work, collected))
    plan.add(_export(config, work, collected))
    plan.add(_finish(options, work, final, collected))
    plan.add(Step(f"prune backups in {options.dest} beyond the newest {options.keep}",
                  action=lambda ctx: ", ".join(f"removed {i}" for i in prune(options.dest, options.keep)) or None,
                  skip_if=lambda ctx: None if prunable(options.dest, options.keep) else "nothing to prune",
                  detail="only complete, verified backups count; the new one is never pruned; "
                  f".ID.partial folders of dead runs (untouched for {STALE_SECONDS // 3600} h) are removed, a running backup's never"))
    return plan, work


def options_for(config: "Config", config_path: Path | None, dest: Path | None, keep: int | None) -> BackupOptions:
    if keep is not None and keep < 1:
        raise UsageError(f"--keep must be at least 1, got {keep}")
    return BackupOptions(backup_dest(config, dest), keep or config.backup.keep, resolve_config_path(config_path))


# -- restore ---------------------------------------------------------------------------------


def saved_objects(backup: Backup) -> list[dict[str, Any]]:
    """The saved objects, from the state files manifest.json lists, each read once and checked against
    its SHA-256 (what :func:`verify` passed is what gets applied; an unlisted file never is)."""
    objects = []
    for rel, entry in sorted(_listed(backup.path, backup.manifest).items()):
        if not rel.startswith(f"{STATE_DIR}/"):
            continue
        data = (backup.path / rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise OewsctlError(f"backup {backup.id}: {rel} changed after it was verified", hint="run `oewsctl backup verify` and restore again")
        objects.extend(doc for doc in yaml.safe_load_all(data) if doc)
    return objects


def _restore_object(obj: dict[str, Any], overwrite: bool) -> Step:
    def run(ctx: "RunContext") -> str:
        kube = ctx.kube
        if kube.live(obj) is None:
            kube.create(obj)
            return "created"
        return str(kube.apply(obj))

    def present(ctx: "RunContext") -> str | None:
        if overwrite:
            return "unchanged" if ctx.kube.is_unchanged(obj) else None
        return "exists, left alone (--overwrite replaces it)" if ctx.kube.live(obj) is not None else None

    return Step(f"restore {ref(obj)}", action=run, skip_if=present,
                detail="create if missing" + ("; apply the saved object over a live one (--overwrite)" if overwrite else "; an existing object is left alone"))


def dns_change(saved: "Config", current: "Config") -> str | None:
    """The DNS record the operator must change when the server's address changed."""
    old, new = saved.server_node.host, current.server_node.host
    if old == new:
        return None
    return f"DNS: point {current.app.domain} (A record) at {new} — it still points at {old}, the old server's address"


def restore_plan(config: "Config", backup: Backup, *, node: str | None = None, overwrite: bool = False) -> Plan:
    """Push the saved database, recreate the saved objects, wait, check every pod serves it."""
    problems = verify(backup.path)
    if problems:
        raise OewsctlError(f"backup {backup.id} failed verification, nothing restored: " + "; ".join(problems),
                           hint=f"see `oewsctl backup verify {backup.id}`; pick another backup (oewsctl backup list) or remove what it names")
    release = backup.database
    artifact = backup.manifest.get("artifact")
    if config.database.delivery == "image" and artifact:  # the Deployment goes back to the artifact the backup recorded
        plan = Plan(f"restore {backup.id}", needs=Needs(kube=True))
        plan.add(restore_artifact_step(config, saved_objects(backup), artifact))
    elif config.database.delivery == "image":
        raise UsageError(f"backup {backup.id} was made with database.delivery hostpath: it records no artifact to point the pods at",
                         hint=f"publish its database and switch the pods to it: oewsctl db update {backup.path / DB_FILE}")
    else:
        plan = Plan(f"restore {backup.id}" + (f" --node {node}" if node else ""), needs=Needs(kube=True, nodes=tuple(db_node_names(config, node))))
        plan.extend(push_steps(config, backup.path / DB_FILE, release, PushOptions(node=node)))
    plan.extend([_restore_object(obj, overwrite) for obj in saved_objects(backup)])
    plan.add(wait_step(Target.of(config)))
    plan.extend(restart_and_confirm(config, release.sha256))
    return plan
