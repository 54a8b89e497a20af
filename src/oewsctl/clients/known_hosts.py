"""Host key checking against ``ssh.known_hosts``: never trust a key silently.

An unknown host fails with its SHA256 fingerprint and the way to accept it
(``oewsctl doctor --accept-new-host-keys``). A host whose key differs from the
recorded one is refused always: paramiko raises ``BadHostKeyException`` before any
policy is consulted, so no flag can accept a changed key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import paramiko

from oewsctl.core.errors import OewsctlError

ACCEPT_HINT = "check the fingerprint on the node's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run `oewsctl doctor --accept-new-host-keys`"


def fingerprint(key: paramiko.PKey) -> str:
    """The OpenSSH form, ``SHA256:<base64 without padding>`` (what ``ssh-keygen -l`` prints)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_id(host: str, port: int) -> str:
    """How known_hosts names a host: ``host`` on port 22, ``[host]:port`` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


class HostKeyUnknown(OewsctlError):
    """The node's host key is not in known_hosts."""


class HostKeyChanged(OewsctlError):
    """The node presented a different key than the one recorded: refused, always."""


def changed_key_error(node: str, host: str, port: int, known_hosts: Path, got: paramiko.PKey, expected: paramiko.PKey) -> HostKeyChanged:
    name = host_id(host, port)
    return HostKeyChanged(
        f"{node} ({name}): HOST KEY CHANGED — it offers {got.get_name()} {fingerprint(got)}, "
        f"{known_hosts} has {fingerprint(expected)}; refusing to connect (possible man-in-the-middle)",
        hint=f"if {node} was reinstalled, confirm the new fingerprint on its console, remove the old entry with "
        f"`ssh-keygen -R '{name}' -f {known_hosts}`, then run `oewsctl doctor --accept-new-host-keys`",
    )


class RejectUnknown(paramiko.MissingHostKeyPolicy):
    """paramiko's RejectPolicy, with an error that shows the fingerprint and the fix."""

    def __init__(self, node: str, known_hosts: Path) -> None:
        self.node = node
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyUnknown(
            f"{self.node} ({hostname}): host key not in {self.known_hosts} ({key.get_name()} {fingerprint(key)})",
            hint=ACCEPT_HINT,
        )


@dataclass(frozen=True)
class AcceptedKey:
    node: str
    host: str
    key_type: str
    fingerprint: str


class RecordUnknown(paramiko.MissingHostKeyPolicy):
    """``--accept-new-host-keys``: append keys of hosts not yet known (only those) to known_hosts."""

    def __init__(self, node: str, known_hosts: Path, accepted: list[AcceptedKey]) -> None:
        self.node = node
        self.known_hosts = known_hosts
        self.accepted = accepted

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        append_key(self.known_hosts, hostname, key)
        self.accepted.append(AcceptedKey(self.node, hostname, key.get_name(), fingerprint(key)))


def append_key(known_hosts: Path, hostname: str, key: paramiko.PKey) -> None:
    """Add one ``hostname keytype base64`` line, creating the file 0600 (and its directory 0700)."""
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as handle:
        if handle.tell() > 0 and not known_hosts.read_bytes().endswith(b"\n"):
            handle.write("\n")
        handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
