"""``database.delivery: image``: ``db publish``, and ``db update | rollback | status`` on the Deployment.

The pods get the database from an init container (``fetch-db``: the app image running
``python -m oews_api.fetch_db``) that pulls the release artifact by digest into an ``emptyDir``
(see :mod:`oewsctl.runbooks.db_artifact` for names and format). A release is therefore a change
of the pod template: the init container's ``--ref``, the ``emptyDir`` size and three annotations
(``oews/db-ref``, ``oews/db-sha256``, ``oews/db-release``). So every DB release is a Deployment
revision: ``rollout history`` lists it, ``rollout undo`` takes it back with the image it ran with,
and ``db rollback`` takes back only the database (the newest earlier revision with another one).
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oewsctl.clients.kube import Kube, merge_patch, ref
from oewsctl.clients.registry import OCI_MANIFEST, RegistryClient, credentials
from oewsctl.core.image_ref import ImageRef
from oewsctl.core.errors import OewsctlError, UsageError
from oewsctl.core.plan import Needs, Plan, Step
from oewsctl.runbooks.database import PodServes, Release, confirm_pods, mib, pods_serving
from oewsctl.runbooks.db_artifact import (
    FETCH_CONTAINER,
    REF_ANNOTATION,
    RELEASE_ANNOTATION,
    SHA_ANNOTATION,
    UNRESOLVED,
    Packed,
    Published,
    artifact_repository,
    default_tag,
    fetched_ref,
    pack,
    record_published,
)
from oewsctl.runbooks.render import DEPLOYMENT_TEMPLATE, deployment_values, render_template, values
from oewsctl.runbooks.rollout import APPS, CHANGE_CAUSE, Target, get_deployment, owned_replicasets, revision_of, wait_step

if TYPE_CHECKING:
    from oewsctl.configuration.schema import Config
    from oewsctl.core.context import RunContext

DB_ANNOTATIONS = (REF_ANNOTATION, SHA_ANNOTATION, RELEASE_ANNOTATION)
DB_VOLUME = "db"
AUTH_VOLUME = "registry-auth"


# -- db publish ------------------------------------------------------------------------------


@dataclass
class PublishRun:
    """What the publish steps hand on."""

    packed: Packed | None = None
    published: Published | None = None
    workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)


class PublishPlan(Plan):
    """A publish plan; ``ref`` once it ran, ``cleanup()`` removes the packed layer."""

    def __init__(self, title: str, needs: Needs) -> None:
        super().__init__(title, needs=needs)
        self.run = PublishRun()

    @property
    def ref(self) -> str | None:
        return self.run.published.ref if self.run.published else None

    def cleanup(self) -> None:
        if self.run.workdir is not None:
            self.run.workdir.cleanup()
            self.run.workdir = None


def _client(repo: ImageRef) -> RegistryClient:
    return RegistryClient(repo.registry, credentials(repo))


def publish_steps(config: Config, local: Path, facts: dict[str, Any], run: PublishRun, *, tag: str | None, compress: bool) -> list[Step]:
    """Pack, upload the blobs the registry lacks, put the manifest, record the reference."""
    repo = artifact_repository(config)
    release = Release.of(facts).release
    sha256, size = str(facts["sha256"]), int(facts["size"])
    chosen_tag = tag or default_tag(release, sha256)
    ImageRef.parse(f"{repo.name}:{chosen_tag}")  # a bad --tag is a usage error before anything runs

    def do_pack(ctx: RunContext) -> str:
        run.workdir = tempfile.TemporaryDirectory(prefix="oewsctl-db-")
        run.packed = pack(local, {**facts, "release": release}, Path(run.workdir.name), compress=compress)
        layer = run.packed.layer
        return f"layer {mib(layer.size)} ({layer.size / size:.0%} of the file), {layer.digest[:19]}…"

    def upload(ctx: RunContext) -> str:
        assert run.packed is not None
        lines = []
        with _client(repo) as client:
            for what, blob in (("layer", run.packed.layer), ("config", run.packed.config)):
                if client.has_blob(repo.repository, blob.digest):
                    lines.append(f"{what} already there")
                    continue
                client.push_blob(repo.repository, blob.digest, blob.path)
                lines.append(f"{what} {mib(blob.size)} sent")
        return ", ".join(lines)

    def put(ctx: RunContext) -> str:
        assert run.packed is not None
        with _client(repo) as client:
            digest = client.put_manifest(repo.repository, chosen_tag, run.packed.manifest, OCI_MANIFEST)
        run.published = Published(f"{repo.name}@{digest}", sha256, release, size)
        return run.published.ref

    def record(ctx: RunContext) -> str:
        assert run.published is not None
        record_published(config, run.published)
        return "render and a first deploy use it"

    how = "zstd level 3" if compress else "uncompressed"
    return [
        Step(f"pack {local.name} ({release or 'unknown release'}, sha256 {sha256[:12]}…, {mib(size)}) as an OCI artifact, {how}", action=do_pack,
             detail="layer application/vnd.oews.db.sqlite.v1" + ("+zstd" if compress else "") + ", config application/vnd.oews.db.config.v1+json"),
        Step(f"upload the layer and the config to {repo.name} (skipped when the registry has them)", action=upload,
             detail="HEAD /v2/<repo>/blobs/<digest>; POST /v2/<repo>/blobs/uploads/ then one streamed PUT ?digest=",
             remediation="check the registry login (GHCR: $GHCR_TOKEN with write:packages, or docker login) and run again"),
        Step(f"put the manifest as {repo.name}:{chosen_tag}", action=put,
             detail=f"PUT /v2/{repo.repository}/manifests/{chosen_tag} (Content-Type {OCI_MANIFEST}); the release is then referenced by digest"),
        Step("record the reference for render and deploy (oewsctl state dir)", action=record, detail="write db-artifacts.json"),
    ]


def publish_plan(config: Config, local: Path, facts: dict[str, Any], *, tag: str | None = None, compress: bool = True) -> PublishPlan:
    plan = PublishPlan(f"db publish {local.name}", Needs(registry=str(artifact_repository(config))))
    plan.extend(publish_steps(config, local, facts, plan.run, tag=tag, compress=compress))
    return plan


# -- the Deployment's database reference -------------------------------------------------------


def _named(items: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    return next((item for item in items or [] if item.get("name") == name), None)


def _replace_named(items: list[dict[str, Any]] | None, item: dict[str, Any] | None, name: str) -> list[dict[str, Any]]:
    """``items`` with the entry called ``name`` replaced by ``item`` in place (appended when new, dropped when None)."""
    out = [entry for entry in items or [] if entry.get("name") != name or item is not None]
    if item is None:
        return out
    index = next((i for i, entry in enumerate(out) if entry.get("name") == name), None)
    if index is None:
        return [*out, item]
    out[index] = item
    return out


def database_of(template: dict[str, Any]) -> Published | None:
    """The release a pod template (Deployment, ReplicaSet or Pod) fetches, from its annotations."""
    return Published.from_annotations(dict((template.get("metadata") or {}).get("annotations") or {}))


def transplant(template: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """``template`` with the database parts of ``source``: the fetch-db init container (run with
    ``template``'s own app image), the db and registry-auth volumes, the oews/db-* annotations."""
    fetch = _named(source["spec"].get("initContainers"), FETCH_CONTAINER)
    if fetch is None:
        raise OewsctlError("the source pod template has no fetch-db init container (database.delivery hostpath)")
    new = copy.deepcopy(template)
    spec = new["spec"]
    image = spec["containers"][0]["image"]
    spec["initContainers"] = _replace_named(spec.get("initContainers"), {**copy.deepcopy(fetch), "image": image}, FETCH_CONTAINER)
    for name in (DB_VOLUME, AUTH_VOLUME):
        spec["volumes"] = _replace_named(spec.get("volumes"), copy.deepcopy(_named(source["spec"].get("volumes"), name)), name)
    meta = new.setdefault("metadata", {})
    source_notes = (source.get("metadata") or {}).get("annotations") or {}
    meta["annotations"] = {**{k: v for k, v in (meta.get("annotations") or {}).items() if k not in DB_ANNOTATIONS},
                           **{k: v for k, v in source_notes.items() if k in DB_ANNOTATIONS}}
    return new


def rendered_template(config: Config, published: Published) -> dict[str, Any]:
    """The Deployment's pod template as ``render`` writes it for ``published``."""
    objects = render_template(DEPLOYMENT_TEMPLATE, {**values(config), **deployment_values(config, published)})
    return objects[0]["spec"]["template"]


def keep_live_database(kube: Kube, deployment: dict[str, Any]) -> dict[str, Any]:
    """For ``deploy``: the rendered Deployment, fetching the database the live one fetches.

    A deploy changes the image or the settings, never the database release: only ``db update``,
    ``db rollback`` and ``rollout undo`` do (the recorded ``db publish`` is for a first deploy).
    Rendered with the :data:`~oewsctl.runbooks.db_artifact.UNRESOLVED` placeholder (no ``db publish``
    recorded on this machine) and no live Deployment fetching a database: a usage error.
    """
    template = deployment["spec"]["template"]
    if _named(template["spec"].get("initContainers"), FETCH_CONTAINER) is None:
        return deployment
    meta = deployment["metadata"]
    live = kube.get(APPS, "Deployment", meta["name"], meta["namespace"])
    if live is None or _named(live["spec"]["template"]["spec"].get("initContainers"), FETCH_CONTAINER) is None:
        if fetched_ref(template["spec"]) == UNRESOLVED.ref:
            raise UsageError(f"database.delivery is image, but no database was published from this machine "
                             f"and Deployment {meta['namespace']}/{meta['name']} fetches none yet",
                             hint="run `oewsctl db publish FILE` first (it records the reference), then deploy again")
        return deployment
    kept = copy.deepcopy(deployment)
    kept["spec"]["template"] = transplant(template, live["spec"]["template"])
    return kept


def planned_deployment(config: Config, deployment: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """For the ``deploy`` plan: the Deployment and its step's description.

    With delivery image the step keeps the live Deployment's database (:func:`keep_live_database`).
    Without a ``db publish`` recorded here the live reference is read now, so the plan (and
    ``--dry-run``) shows it and a first deploy stops before any change.
    """
    fetches = fetched_ref(deployment["spec"]["template"]["spec"])
    where = f"apply {ref(deployment)}"
    if fetches is None:
        return deployment, where
    if fetches != UNRESOLVED.ref:
        return deployment, f"{where}, keeping the database the live one fetches (else {fetches}, the last `db publish` here)"
    kube = Kube.from_config(config)
    try:
        resolved = keep_live_database(kube, deployment)
    finally:
        kube.close()
    live = database_of(resolved["spec"]["template"])
    assert live is not None
    return resolved, f"{where}, keeping the database it fetches: {live.release or 'unknown release'} ({live.ref})"


def _switch(kube: Kube, target: Target, source: dict[str, Any], cause: str) -> str:
    """Patch the Deployment's pod template to fetch ``source``'s database (a new revision)."""
    deployment = get_deployment(kube, target)
    template = deployment["spec"]["template"]
    if _named(template["spec"].get("initContainers"), FETCH_CONTAINER) is None:
        raise OewsctlError(f"{target} has no fetch-db init container: it was deployed with database.delivery hostpath",
                           hint="deploy it with database.delivery: image first (`oewsctl deploy`), then run this again")
    new = transplant(template, source)
    published = database_of(new)
    assert published is not None
    if new == template:
        return f"already fetches {published.ref}"
    patch = {"metadata": {"annotations": {CHANGE_CAUSE: cause}}, "spec": {"template": merge_patch(template, new)}}
    kube.patch(APPS, "Deployment", target.name, target.namespace, patch)
    return f"now fetches {published.release or 'unknown release'} ({published.ref})"


def update_image_plan(config: Config, local: Path, facts: dict[str, Any], *, tag: str | None = None, compress: bool = True) -> PublishPlan:
    """``db update`` with delivery image: publish, point the Deployment at the digest, wait, check every pod."""
    plan = PublishPlan(f"db update {local.name}", Needs(kube=True, registry=str(artifact_repository(config))))
    plan.extend(publish_steps(config, local, facts, plan.run, tag=tag, compress=compress))
    target = Target.of(config)

    def switch(ctx: RunContext) -> str:
        assert plan.run.published is not None
        published = plan.run.published
        return _switch(ctx.kube, target, rendered_template(config, published), f"oewsctl db update {published.ref} ({published.release})")

    plan.add(Step(f"point {target}'s fetch-db init container at the new digest (a new revision)", action=switch,
                  detail="merge-patch spec.template: initContainers[fetch-db] --ref, the db emptyDir sizeLimit, annotations oews/db-*"))
    plan.add(wait_step(target))
    plan.add(Step("check every ready pod reports the new database's sha256 on /health",
                  action=lambda ctx: confirm_pods(ctx.kube, config, str(facts["sha256"])),
                  detail=f"GET /api/v1/namespaces/{config.app.namespace}/pods/<pod>:8000/proxy/health for each ready pod"))
    return plan


# -- db rollback / status with delivery image ------------------------------------------------


@dataclass(frozen=True)
class DbRevision:
    revision: int
    published: Published
    current: bool
    template: dict[str, Any] = field(repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "ref": self.published.ref, "release": self.published.release,
                "sha256": self.published.sha256, "current": self.current}


def db_revisions(kube: Kube, target: Target) -> list[DbRevision]:
    """The Deployment's revisions that fetch a database, oldest first."""
    deployment = get_deployment(kube, target)
    current = revision_of(deployment)
    found = []
    for rs in owned_replicasets(kube, deployment):
        published = database_of(rs["spec"]["template"])
        if published is not None and revision_of(rs) > 0:
            found.append(DbRevision(revision_of(rs), published, revision_of(rs) == current, rs["spec"]["template"]))
    return found


def _pick(kube: Kube, target: Target, to: int | None) -> DbRevision:
    current = database_of(get_deployment(kube, target)["spec"]["template"])
    revisions = db_revisions(kube, target)
    if to is not None:
        chosen = next((r for r in revisions if r.revision == to), None)
        if chosen is None:
            known = ", ".join(f"{r.revision} ({r.published.release})" for r in revisions) or "none"
            raise OewsctlError(f"{target} has no revision {to} with a database (revisions: {known})", hint="see them with: oewsctl db status")
        return chosen
    earlier = [r for r in reversed(revisions) if current is None or r.published.ref != current.ref]
    if not earlier:
        raise OewsctlError(f"no earlier revision of {target} fetches another database; nothing to roll back to",
                           hint="publish the database you want instead: oewsctl db update FILE")
    return earlier[0]


def rollback_image_plan(config: Config, to: int | None = None) -> Plan:
    """Point the Deployment back at an earlier revision's database (image and settings stay), wait, check."""
    target = Target.of(config)
    chosen: list[DbRevision] = []
    plan = Plan("db rollback" + (f" --to {to}" if to is not None else ""), needs=Needs(kube=True))

    def switch(ctx: RunContext) -> str:
        chosen[:] = [_pick(ctx.kube, target, to)]
        published = chosen[0].published
        return _switch(ctx.kube, target, chosen[0].template, f"oewsctl db rollback to revision {chosen[0].revision}'s {published.ref} ({published.release})")

    which = f"revision {to}'s database" if to is not None else "the newest earlier revision with another database"
    plan.add(Step(f"point {target}'s fetch-db init container back at {which}", action=switch,
                  detail="copy that ReplicaSet's fetch-db init container, db volume and oews/db-* annotations into the Deployment"))
    plan.add(wait_step(target))
    plan.add(Step("check every ready pod reports that database's sha256 on /health",
                  action=lambda ctx: confirm_pods(ctx.kube, config, chosen[0].published.sha256),
                  detail="GET /health of each ready pod through the API server's pod proxy"))
    return plan


def image_status(kube: Kube, config: Config) -> dict[str, Any]:
    """The Deployment's database, each revision's, and what each pod serves."""
    target = Target.of(config)
    current = database_of(get_deployment(kube, target)["spec"]["template"])
    return {
        "delivery": "image",
        "deployment": {"ref": current.ref, "release": current.release, "sha256": current.sha256} if current else None,
        "revisions": [r.as_dict() for r in db_revisions(kube, target)],
        "pods": [vars(p) for p in pods_serving(kube, config)],
    }


def image_status_lines(report: dict[str, Any]) -> list[str]:
    current = report["deployment"]
    lines = [f"deployment fetches {current['release'] or 'unknown release'}: {current['ref']} (sha256 {current['sha256'][:12]}…)"
             if current else "deployment fetches no database artifact (deployed with delivery hostpath?)"]
    lines += [f"    revision {r['revision']}: {r['release'] or 'unknown release'}, sha256 {r['sha256'][:12]}…, {r['ref']}"
              f"{' (current)' if r['current'] else ''}" for r in report["revisions"]]
    return lines + [PodServes(**pod).line() for pod in report["pods"]]


# -- backup and restore with delivery image ----------------------------------------------------


def backup_artifact_step(config: Config, target: Path, done: Callable[[Release, str], None]) -> Step:
    """``backup run`` with delivery image: record the artifact the Deployment fetches and pull its bytes
    into the backup (digest- and SHA-256-checked by fetch_db), so the backup outlives the registry's copy."""
    where = Target.of(config)

    def run(ctx: RunContext) -> str:
        import os

        from oews_api.fetch_db import FetchError, Reference, fetch
        from oewsctl.clients.registry import dockerconfigjson

        current = database_of(get_deployment(ctx.kube, where)["spec"]["template"])
        if current is None:
            raise OewsctlError(f"{where} fetches no database artifact (deployed with delivery hostpath?)",
                               hint="deploy with database.delivery: image (`oewsctl deploy`), or set delivery back to hostpath")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="oewsctl-auth-") as private:  # 0700, never inside the backup
            auth = Path(private) / "config.json"
            with os.fdopen(os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                handle.write(dockerconfigjson(ImageRef.parse(current.ref)) or b"{}")
            try:
                fetch(Reference.parse(current.ref), target, auth)
            except FetchError as exc:
                raise OewsctlError(f"cannot pull {current.ref} into the backup: {exc}", hint="check the registry login (docker login)") from None
        target.chmod(0o644)
        done(Release(current.sha256, target.stat().st_size, current.release), current.ref)
        return f"{current.release or 'unknown release'} from {current.ref}, sha256 {current.sha256[:12]}… checked"

    return Step(f"record the database artifact {where} fetches and pull it → {target}", action=run,
                detail="read the fetch-db --ref of the Deployment; pull it with the local registry credentials (digest and SHA-256 checked)")


def restore_artifact_step(config: Config, saved: list[dict[str, Any]], ref: str) -> Step:
    """``restore`` with delivery image: point the Deployment at the artifact the backup recorded."""
    where = Target.of(config)

    def run(ctx: RunContext) -> str:
        deployment = next((o for o in saved if o.get("kind") == "Deployment"), None)
        if deployment is None or database_of(deployment["spec"]["template"]) is None:
            raise OewsctlError("the backup holds no Deployment fetching a database artifact (made with delivery hostpath?)",
                               hint="restore it with database.delivery: hostpath, or publish its oews.db: oewsctl db update BACKUP/oews.db")
        return _switch(ctx.kube, where, deployment["spec"]["template"], f"oewsctl restore: {ref}")

    return Step(f"point {where}'s fetch-db init container at the backup's artifact {ref}", action=run,
                detail="copy the saved Deployment's fetch-db init container, db volume and oews/db-* annotations (a new revision); "
                "if the registry lost it, publish the backup's oews.db instead: oewsctl db update BACKUP/oews.db")
