"""oewsctl's registry API client against real Debian docker-registry servers (open and login-protected)."""

from __future__ import annotations

import pytest

from oewsctl.clients.registry import MANIFEST_LIST, Credentials, RegistryClient
from oewsctl.core.errors import OewsctlError
from tests.fixtures.docker import free_port

pytestmark = pytest.mark.docker


def test_login_protected_registry_denies_without_credentials(auth_registry: str) -> None:
    with RegistryClient(auth_registry) as client, pytest.raises(OewsctlError) as info:
        client.get_manifest("oews-api", "latest")
    assert f"registry {auth_registry} denied" in info.value.message
    assert "docker login" in (info.value.hint or "")


def test_wrong_password_is_denied_and_right_one_gets_through(auth_registry: str) -> None:
    with RegistryClient(auth_registry, Credentials("ops", "wrong-password")) as client, pytest.raises(OewsctlError, match="denied"):
        client.get_manifest("oews-api", "latest")
    with RegistryClient(auth_registry, Credentials("ops", "right-password")) as client, pytest.raises(OewsctlError) as info:
        client.get_manifest("oews-api", "never-pushed")
    assert "is not in the registry" in info.value.message  # authenticated; the tag just is not there


def test_manifest_list_naming_missing_images_is_refused(registry: str) -> None:
    body = b'{"schemaVersion": 2, "mediaType": "%s", "manifests": [{"mediaType": "x", "size": 1, "digest": "sha256:%s", "platform": {"os": "linux", "architecture": "arm64"}}]}' % (
        MANIFEST_LIST.encode(), b"0" * 64)
    with RegistryClient(registry) as client, pytest.raises(OewsctlError, match="refused the manifest"):
        client.put_manifest("oews-api-test", "broken", body, MANIFEST_LIST)


def test_unreachable_registry_says_so() -> None:
    address = f"127.0.0.1:{free_port()}"
    with RegistryClient(address, timeout=3) as client, pytest.raises(OewsctlError) as info:
        client.get_manifest("oews-api", "latest")
    assert f"registry {address} is unreachable" in info.value.message
    assert f"curl http://{address}/v2/" in (info.value.hint or "")
