"""`oews_api.fetch_db` without a registry: references and the pull Secret's file as Kubernetes mounts it.

Pulling, tampering and credentials against real registries: tests/integration/test_db_artifact.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from oews_api.fetch_db import FetchError, Reference, credentials, main

DIGEST = "sha256:" + "ab" * 32


def test_reference_must_name_a_digest() -> None:
    ref = Reference.parse(f"ghcr.io/you/oews-api-db@{DIGEST}")
    assert (ref.registry, ref.repository, ref.base_url) == ("ghcr.io", "you/oews-api-db", "https://ghcr.io")
    assert Reference.parse(f"127.0.0.1:5000/oews-api-db:may-2025@{DIGEST}").base_url == "http://127.0.0.1:5000"  # loopback: plain HTTP
    for bad in ("ghcr.io/you/oews-api-db:latest", "oews-api-db@" + DIGEST, "ghcr.io/you/db@sha256:123"):
        with pytest.raises(FetchError, match="must be REGISTRY/REPOSITORY@sha256"):
            Reference.parse(bad)


@pytest.mark.parametrize("key", ["ghcr.io", "https://ghcr.io", "https://ghcr.io/v1/"])
def test_credentials_from_the_dockerconfigjson_in_every_shape_kubernetes_sees(tmp_path: Path, key: str) -> None:
    auth = tmp_path / ".dockerconfigjson"
    auth.write_text(json.dumps({"auths": {key: {"auth": base64.b64encode(b"ops:s3cret:with:colons").decode()}}}))
    assert credentials(auth, "ghcr.io") == ("ops", "s3cret:with:colons")
    assert credentials(auth, "registry.example") is None
    assert credentials(tmp_path / "absent", "ghcr.io") is None  # a public artifact needs no Secret


def test_a_bad_reference_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--ref", "ghcr.io/you/oews-api-db:latest", "--out", str(tmp_path / "oews.db")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fetch_db: error: --ref") and f"{tmp_path / 'oews.db'} not written" in err
    assert list(tmp_path.iterdir()) == []
