# oews-api container image. Build it with `oewsctl image build` (README, section "image").
#
# BASE_IMAGE: production should pin the official image by digest
# (python:3.14-slim@sha256:<digest from `docker buildx imagetools inspect python:3.14-slim`>);
# the digest could not be looked up from the machine this file was written on, so the tag is
# the default. Any Debian-like image with python3 (and python3-venv) works: the tests build
# FROM a local debootstrap image whose python is /usr/bin/python3.
# Uses only classic-builder syntax, so the Debian docker.io engine (no BuildKit) builds it.
ARG BASE_IMAGE=python:3.14-slim

FROM ${BASE_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    UV_PYTHON=python3 UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1 UV_NO_DEFAULT_GROUPS=1
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}"
WORKDIR /build
# Dependencies first (from the lock, frozen): this layer is reused until uv.lock changes.
# Only [project].dependencies, what oews_api imports: the default groups (ctl: oewsctl's
# kubernetes, paramiko, azure, docker, ...; dev) stay out (UV_NO_DEFAULT_GROUPS above).
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-install-project
COPY src ./src
# The wheel bundles the manifests (oewsctl/templates, pyproject force-include): the build needs them.
COPY templates ./templates
RUN /opt/uv/bin/uv sync --frozen --no-editable

FROM ${BASE_IMAGE}
# Settings and metadata come before the venv: those steps depend on the base image only, so
# they stay cached across releases (each step is a full copy on the vfs storage driver).
ENV PATH=/opt/venv/bin:$PATH HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    API_HOST=0.0.0.0 API_PORT=8000 SQLITE_DB_PATH=/data/oews.db
# No database and no secrets in the image: the DB is mounted read-only at /data/oews.db,
# secrets come from the environment (Kubernetes Secret oews-api-secrets).
USER 1000:1000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('API_PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "oews_api"]
# Declared before the venv copy: its step (and the copy) stay cached whatever values are passed.
ARG VERSION=0.0.0 REVISION=unknown SOURCE=https://github.com/example/oews-api
# The venv's python is a symlink to the base image's python3, at the same path in both stages.
# Owned by root: the app (uid 1000) can read but not change its own code.
COPY --from=builder /opt/venv /opt/venv
LABEL org.opencontainers.image.title="oews-api" \
      org.opencontainers.image.description="BLS OEWS wage questions answered from a read-only SQLite file" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
