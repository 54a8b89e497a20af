"""CLI wiring for `image build` and `image push` (logic in oewsctl.runbooks.images)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oewsctl.commands._common import run_context
from oewsctl.core.console import out_console
from oewsctl.core.context import RunContext
from oewsctl.core.runner import run_plan

if TYPE_CHECKING:
    from oewsctl.runbooks.images import ImagePlan

image_app = typer.Typer(
    help="Build and push the oews-api container image (tags: VERSION, git short SHA, latest).",
    no_args_is_help=True,
)

TagOption = Annotated[
    list[str] | None,
    typer.Option("--tag", "-t", help="Full ref (ghcr.io/you/oews-api:1.2), a repository (gets VERSION, SHA, latest) or a bare tag for app.image. Repeatable.", show_default=False),
]
ContextOption = Annotated[Path, typer.Option("--context", help="Build context: the repository root holding the Dockerfile.")]


def _with_image(ctx: typer.Context, tags: list[str]) -> tuple[RunContext, str | None]:
    """A RunContext, and app.image from the inventory unless every --tag names its repository."""
    from oewsctl.runbooks import images
    run = run_context(ctx, need_config=images.needs_inventory(tags))
    return run, run.config.app.image if run.config is not None else None


def _run_and_print_pinned(plan: ImagePlan, run: RunContext) -> None:
    """Run ``plan``; the pinned reference on stdout, for `deploy --image "$(oewsctl image build --push)"`."""
    result = run_plan(plan, run)
    if plan.pushed.pinned and not result.dry_run and run.options.output == "text":
        out_console.print(plan.pushed.pinned, markup=False, highlight=False)


@image_app.command("build")
def build(
    ctx: typer.Context,
    tag: TagOption = None,
    platform: Annotated[str | None, typer.Option("--platform", help="Comma-separated, e.g. linux/amd64,linux/arm64 (several need --push). Default: this machine's.", show_default=False)] = None,
    build_arg: Annotated[list[str] | None, typer.Option("--build-arg", help="KEY=VALUE passed to the Dockerfile (e.g. BASE_IMAGE=...). Repeatable. Not for secrets.", show_default=False)] = None,
    network: Annotated[str | None, typer.Option("--network", help="Network for RUN steps (host when the default bridge has no NAT).", show_default=False)] = None,
    allow_dirty: Annotated[bool, typer.Option("--allow-dirty", help="Build even with uncommitted changes (the SHA tag ends in -dirty).")] = False,
    push: Annotated[bool, typer.Option("--push", help="Push every tag, print the pushed digest and record it for deploy.")] = False,
    context: ContextOption = Path("."),
) -> None:
    """Build the API image from the Dockerfile; with --push, push it and record its digest.

    Changes: local docker images; with --push, tags in the registry and the digest
    that `oewsctl deploy` pins (state dir, images.json). Refuses a dirty work tree
    unless --allow-dirty. Several platforms use docker buildx when installed, else
    one SDK build per platform (qemu for arm64) joined by a manifest list.

    Example: oewsctl image build --platform linux/amd64,linux/arm64 --push
    """
    from oewsctl.runbooks import images
    tags = tag or []
    source = images.read_source(context, allow_dirty=allow_dirty)
    run, default_image = _with_image(ctx, tags)
    spec = images.BuildSpec(
        source=source,
        refs=images.resolve_refs(tags, default_image, source),
        platforms=images.parse_platforms(platform),
        build_args=images.parse_build_args(build_arg or []),
        network=network,
        push=push,
    )
    buildx = len(spec.platforms) > 1 and images.buildx_available()
    _run_and_print_pinned(images.build_plan(spec, buildx=buildx), run)


@image_app.command("push")
def push(ctx: typer.Context, tag: TagOption = None, context: ContextOption = Path(".")) -> None:
    """Push image tags built on this machine, print the pushed digest and record it for deploy.

    Login comes from `docker login` state, or $GHCR_TOKEN for ghcr.io (never a flag).
    Changes: tags in the registry and the recorded digest (state dir, images.json).

    Example: GHCR_TOKEN=... oewsctl image push --tag ghcr.io/you/oews-api:0.1.0
    """
    from oewsctl.runbooks import images
    tags = tag or []
    run, default_image = _with_image(ctx, tags)
    source = images.read_source(context, allow_dirty=True) if images.needs_default_tags(tags) else None
    refs = images.resolve_refs(tags, default_image, source)
    _run_and_print_pinned(images.push_plan(refs, source), run)


def register(app: typer.Typer) -> None:
    """Add the `image` group to the root app."""
    app.add_typer(image_app, name="image")
