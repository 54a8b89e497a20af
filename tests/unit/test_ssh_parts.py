"""The SSH layer's building blocks, checked without a network: commands, scripts, host key files."""

from __future__ import annotations

import hashlib
import shlex
import stat
import subprocess
from pathlib import Path

import paramiko
import pytest

from oewsctl.clients.known_hosts import append_key, fingerprint, host_id
from oewsctl.clients.ssh import ENV_WRAPPER, remote_command
from oewsctl.clients.transfer import FINALIZE, RECEIVE, temp_name
from oewsctl.runbooks.doctor import listeners


def test_remote_command_quotes_and_uses_sudo_n_unless_root() -> None:
    argv = ["sh", "-c", 'echo "$1"', "sh", "it's; rm -rf /"]
    assert remote_command(argv, sudo=False, user="ops") == shlex.join(argv)
    assert remote_command(argv, sudo=True, user="ops").startswith("sudo -n -- sh -c ")
    assert remote_command(argv, sudo=True, user="root") == shlex.join(argv)
    out = subprocess.run(["sh", "-c", remote_command(argv, sudo=False, user="ops")], capture_output=True, text=True).stdout
    assert out == "it's; rm -rf /\n"


def test_temp_name_is_beside_the_target() -> None:
    assert temp_name("/opt/k3s/storage/oews.db") == "/opt/k3s/storage/.oews.db.oewsctl-part"


def _sh(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script, "sh", *args], capture_output=True, text=True)


def test_receive_and_finalize_scripts(tmp_path: Path) -> None:
    """The exact scripts the nodes run: a bad checksum leaves the old file; a good one replaces it."""
    dest = tmp_path / "sub" / "oews.db"
    tmp = temp_name(str(dest))
    data = b"new database bytes"
    assert subprocess.run(["sh", "-c", RECEIVE, "sh", tmp], input=data).returncode == 0
    assert stat.S_IMODE(Path(tmp).stat().st_mode) == 0o600  # private until verified
    dest.write_bytes(b"old")
    wrong = _sh(FINALIZE, tmp, str(dest), "0" * 64, "444")
    assert wrong.returncode == 65 and "SHA-256 mismatch on the node" in wrong.stderr
    assert dest.read_bytes() == b"old" and not Path(tmp).exists()
    subprocess.run(["sh", "-c", RECEIVE, "sh", tmp], input=data, check=True)
    right = _sh(FINALIZE, tmp, str(dest), hashlib.sha256(data).hexdigest(), "444")
    assert right.returncode == 0, right.stderr
    assert dest.read_bytes() == data and stat.S_IMODE(dest.stat().st_mode) == 0o444 and not Path(tmp).exists()


def test_env_wrapper_sources_then_deletes_the_file(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    value = "a'b\"c $HOME `x`"
    env_file.write_text(f"TOKEN={shlex.quote(value)}\n")
    done = subprocess.run(["sh", "-c", ENV_WRAPPER, str(env_file), "sh", "-c", 'printf %s "$TOKEN"'], capture_output=True, text=True)
    assert done.stdout == value and not env_file.exists()


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    key_path = tmp_path / "host"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True)
    expected = subprocess.run(["ssh-keygen", "-lf", str(key_path) + ".pub"], capture_output=True, text=True, check=True).stdout.split()[1]
    key = paramiko.Ed25519Key.from_private_key_file(str(key_path))
    assert fingerprint(key) == expected


def test_append_key_creates_a_private_file_openssh_reads(tmp_path: Path) -> None:
    key_path = tmp_path / "host"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True)
    key = paramiko.Ed25519Key.from_private_key_file(str(key_path))
    known = tmp_path / "ssh" / "known_hosts"
    append_key(known, host_id("127.0.0.11", 2222), key)
    append_key(known, host_id("203.0.113.10", 22), key)
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    found = subprocess.run(["ssh-keygen", "-F", "[127.0.0.11]:2222", "-f", str(known)], capture_output=True, text=True)
    assert found.returncode == 0 and key.get_base64() in found.stdout
    assert known.read_text().splitlines()[1].startswith("203.0.113.10 ssh-ed25519 ")


SS_OUTPUT = """\
LISTEN 0 4096 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=812,fd=6))
LISTEN 0 4096 127.0.0.12:10250 0.0.0.0:* users:(("python3",pid=9,fd=3))
LISTEN 0 4096 *:6443 *:* users:(("k3s-server",pid=77,fd=9))
LISTEN 0 4096 [::1]:443 [::]:*
LISTEN 0 128 127.0.0.53%lo:53 0.0.0.0:*
"""


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.11", [(80, "nginx"), (6443, "k3s-server"), (443, "another program")]),
    ("127.0.0.12", [(80, "nginx"), (10250, "python3"), (6443, "k3s-server"), (443, "another program")]),
])
def test_listeners_that_block_k3s(address: str, expected: list[tuple[int, str]]) -> None:
    assert listeners(SS_OUTPUT, address) == expected
