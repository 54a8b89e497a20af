"""SSH to inventory nodes: run commands, read and write files, upload and download.

One :class:`SSHPool` per run opens one paramiko connection per node on first use
and reuses it. Host keys are checked strictly against ``ssh.known_hosts`` (see
``oewsctl.clients.known_hosts``). Every failure is an ``OewsctlError`` naming the node with
a hint: unreachable, login refused, host key unknown or changed, sudo wants a password.

Secrets never go into argv: pass them as ``stdin`` or as ``env`` (written to a 0600
file on the node over stdin, sourced by a wrapper, then removed).
Large transfers use the OpenSSH client with the same known_hosts and strict checking
as the fast data path (see ``oewsctl.clients.transfer``).
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import select
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from oewsctl.configuration.schema import Config, NodeConfig
from oewsctl.core.console import err_console
from oewsctl.core.errors import OewsctlError

if TYPE_CHECKING:
    import paramiko

    from oewsctl.clients.known_hosts import AcceptedKey

WINDOW_SIZE = 64 * 1024 * 1024
"""Flow-control window per channel; paramiko's 2 MiB default stalls bulk data on every round trip."""
PACKET_SIZE = 32768
CHUNK = 1024 * 1024
KEEPALIVE_SECONDS = 15
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr")
"""AES-GCM first: with AES-NI it is the cheapest authenticated cipher on both ends."""
OPENSSH_CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr"

SUDO_HINT = "give {user} passwordless sudo on {node}: `echo '{user} ALL=(ALL) NOPASSWD: ALL' | sudo tee /etc/sudoers.d/oewsctl` (then `sudo chmod 0440 /etc/sudoers.d/oewsctl`)"
ENV_WRAPPER = 'set -a; . "$0"; rm -f -- "$0"; set +a; exec "$@"'
"""Sources the 0600 env file named by $0, deletes it, then execs the real command."""
CLEANUP_TIMEOUT = 15.0
"""Seconds a best-effort clean-up (temp or env file removal) may take before it is given up."""
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class SudoPasswordRequired(OewsctlError):
    """``sudo -n`` refused: the login user needs passwordless sudo."""


SILENT_PEER = ("protocol banner", "No existing session", "Negotiation failed")
"""How paramiko says the handshake never happened: TCP connected, but no SSH server spoke."""

# paramiko's transport thread logs a full traceback when a peer never speaks SSH (through logging's
# last-resort handler, i.e. on stderr, into cron mails); the connect error above says it in one line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def remote_command(argv: Sequence[str], *, sudo: bool, user: str) -> str:
    """The shell line sent to the node (``sudo -n`` unless the login user already is root)."""
    words = list(argv)
    if sudo and user != "root":
        words = ["sudo", "-n", "--", *words]
    return shlex.join(words)


@functools.cache
def openssh_kex() -> str:
    """The key exchanges the OpenSSH data path prefers, in paramiko's order for the control
    connection: the ML-KEM hybrid where the local ssh has it, then curve25519, then the rest of
    ssh's default list. OpenSSH 9.0-9.8 would otherwise pick sntrup761x25519 first, which costs
    ~90 ms of CPU per connection on each end (a third of a 64 MiB upload on loopback). Trade-off,
    on purpose: with such a local ssh the bulk transfers (public BLS data, backups) use classical
    curve25519, as paramiko does with any sshd older than 9.9."""
    try:
        known = subprocess.run(["ssh", "-Q", "kex"], capture_output=True, text=True, timeout=10, check=False).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        known = []
    return ",".join(k for k in ("mlkem768x25519-sha256", "curve25519-sha256") if k in known) or "curve25519-sha256"


def _transport_factory(sock: Any, **kwargs: Any) -> paramiko.Transport:
    import paramiko

    transport = paramiko.Transport(sock, default_window_size=WINDOW_SIZE, default_max_packet_size=PACKET_SIZE, **kwargs)
    options = transport.get_security_options()
    available = tuple(options.ciphers)
    options.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in available) + tuple(c for c in available if c not in PREFERRED_CIPHERS)
    return transport


def _raise_for_sudo(node: NodeConfig, command: str, result: tuple[int, bytes, bytes]) -> None:
    code, _, err = result
    if code == 0 or not command.startswith("sudo -n"):
        return
    text = err.decode(errors="replace")
    if "password is required" in text or "a terminal is required" in text:
        raise SudoPasswordRequired(f"{node.name}: sudo asks {node.user} for a password (oewsctl runs `sudo -n`)",
                                   hint=SUDO_HINT.format(user=node.user, node=node.name))
    if code == 127 and "sudo" in text and "not found" in text:
        raise OewsctlError(f"{node.name}: sudo is not installed", hint=f"install it on {node.name} (apt-get install sudo) or log in as root")


class SSHPool:
    """Connections to the inventory's nodes, opened on first use (``accept_new_host_keys`` for doctor)."""

    def __init__(self, config: Config, verbose: bool = False, accept_new_host_keys: bool = False) -> None:
        self.config = config
        self.verbose = verbose
        self.accept_new_host_keys = accept_new_host_keys
        self.accepted: list[AcceptedKey] = []
        self._clients: dict[str, paramiko.SSHClient] = {}

    # -- connections -----------------------------------------------------------------

    def _key_file(self) -> str | None:
        path = self.config.ssh.key_path
        return str(path) if path is not None and path.exists() else None

    def _where(self, node: NodeConfig) -> str:
        return f"{node.name} ({node.user}@{node.host}:{self.config.ssh_port(node)})"

    def connect(self, name: str) -> paramiko.SSHClient:
        """The open connection to node ``name`` (connecting and verifying the host key first)."""
        client = self._clients.get(name)
        if client is not None and client.get_transport() is not None and client.get_transport().is_active():  # type: ignore[union-attr]
            return client
        node = self.config.node(name)
        client = self._open(node)
        self._clients[name] = client
        return client

    def _open(self, node: NodeConfig) -> paramiko.SSHClient:
        # paramiko (and invoke, which it imports) costs ~0.12 s: imported on the first connection, so that
        # commands that never open one, and `db push` until its OpenSSH uploads have started, do not wait for it.
        import paramiko

        from oewsctl.clients.known_hosts import RecordUnknown, RejectUnknown, changed_key_error

        ssh = self.config.ssh
        known_hosts = ssh.known_hosts_path
        port = self.config.ssh_port(node)
        client = paramiko.SSHClient()
        if known_hosts.exists():
            client.load_host_keys(str(known_hosts))
        policy = RecordUnknown(node.name, known_hosts, self.accepted) if self.accept_new_host_keys else RejectUnknown(node.name, known_hosts)
        client.set_missing_host_key_policy(policy)
        key_file = self._key_file()
        timeout = ssh.connect_timeout
        try:
            client.connect(
                node.host, port=port, username=node.user, key_filename=key_file, allow_agent=True, look_for_keys=False,
                timeout=timeout, banner_timeout=timeout, auth_timeout=timeout, transport_factory=_transport_factory,
            )
        except OewsctlError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise changed_key_error(node.name, node.host, port, known_hosts, exc.key, exc.expected_key) from None
        except paramiko.PasswordRequiredException:
            client.close()
            raise OewsctlError(f"{self._where(node)}: the SSH key {ssh.key} is passphrase-protected",
                               hint=f"load it into ssh-agent (`ssh-add {ssh.key}`) and run again") from None
        except paramiko.AuthenticationException:
            client.close()
            raise self._login_refused(node, key_file) from None
        except (TimeoutError, socket.timeout):
            client.close()
            raise OewsctlError(f"{self._where(node)}: unreachable (no answer within {timeout:g}s)",
                               hint=f"is {node.name} powered on and on the network? check `host` and `port` in the inventory") from None
        except socket.gaierror as exc:
            client.close()
            raise OewsctlError(f"{self._where(node)}: cannot resolve host {node.host!r} ({exc.strerror})",
                               hint="fix the node's `host` in the inventory (an IP address avoids DNS)") from None
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            if "No authentication methods available" in str(exc):  # no key file and no agent keys
                raise self._login_refused(node, key_file) from None
            if any(sign in str(exc) for sign in SILENT_PEER):
                raise OewsctlError(f"{self._where(node)}: port {port} accepts connections but no SSH server answered within {timeout:g}s",
                                   hint=f"check `host` and `port` of {node.name} in the inventory: something other than sshd listens there, or sshd hangs") from None
            reason = "connection refused" if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) else str(exc) or type(exc).__name__
            raise OewsctlError(f"{self._where(node)}: unreachable ({reason})",
                               hint=f"is sshd running on {node.name}? check `host` and `port` in the inventory") from None
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(KEEPALIVE_SECONDS)
        return client

    def openssh_argv(self, name: str) -> list[str]:
        """The OpenSSH client command for node ``name`` with the same strict host key checking."""
        node = self.config.node(name)
        ssh = self.config.ssh
        argv = [
            "ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={ssh.known_hosts_path}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"ConnectTimeout={max(1, round(ssh.connect_timeout))}", "-o", f"ServerAliveInterval={KEEPALIVE_SECONDS}",
            "-o", f"KexAlgorithms=^{openssh_kex()}", "-c", OPENSSH_CIPHERS, "-p", str(self.config.ssh_port(node)), "-l", node.user,
        ]
        key = self._key_file()
        if key:
            argv += ["-i", key, "-o", "IdentitiesOnly=yes"]
        return [*argv, node.host]

    def _login_refused(self, node: NodeConfig, key_file: str | None) -> OewsctlError:
        key = self.config.ssh.key
        used = f"key {key}" if key_file else f"ssh-agent (key file {key} not found)"
        return OewsctlError(f"{self._where(node)}: SSH login refused for user {node.user!r} with {used}",
                            hint=f"check the node's `user` in the inventory and that the public key is in ~{node.user}/.ssh/authorized_keys on {node.name} (ssh-copy-id)")

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> "SSHPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands --------------------------------------------------------------------

    def exec_raw(self, name: str, command: str, stdin: bytes | IO[bytes] | None = None, timeout: float | None = None, echo: bool = False) -> tuple[int, bytes, bytes]:
        """Run a shell line; return (exit code, stdout, stderr) as bytes; ``echo`` streams output lines."""
        node = self.config.node(name)
        transport = self.connect(name).get_transport()
        assert transport is not None
        channel = transport.open_session(window_size=WINDOW_SIZE, max_packet_size=PACKET_SIZE)
        try:
            channel.exec_command(command)
            feeder = _Feeder(channel, stdin)
            out, err = _collect(channel, _LineEcho(node.name) if echo else None, timeout)
            feeder.join()
            code = channel.recv_exit_status() if channel.exit_status_ready() or transport.is_active() else -1
            if code == -1:  # the channel closed without an exit status: the session or the node died
                raise OewsctlError(f"{node.name}: connection lost while running `{command}`",
                                   hint=f"check that {node.name} is up (`oewsctl doctor`) and run again")
            result = (code, out, err)
        except TimeoutError:
            raise OewsctlError(f"{node.name}: `{command}` did not finish within {timeout:g}s") from None
        finally:
            channel.close()
        _raise_for_sudo(node, command, result)
        return result

    def run(
        self,
        name: str,
        argv: Sequence[str],
        sudo: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``argv`` on node ``name`` (as root with ``sudo``); secrets go in ``stdin`` or ``env``, never argv."""
        node = self.config.node(name)
        env_file = self._write_env(name, env) if env else None
        words = ["sh", "-c", ENV_WRAPPER, env_file, *argv] if env_file else list(argv)
        try:
            code, out, err = self.exec_raw(name, remote_command(words, sudo=sudo, user=node.user), stdin=stdin, timeout=timeout, echo=self.verbose)
        finally:
            if env_file:
                self.try_exec(name, shlex.join(["rm", "-f", "--", env_file]))  # ENV_WRAPPER removes it too, once started
        return CommandResult(code, out.decode(errors="replace"), err.decode(errors="replace"))

    def try_exec(self, name: str, command: str) -> None:
        """Run a clean-up command, ignoring every failure: when the connection is gone, the error
        that led here is the one the operator must see, not a second one from the clean-up.

        A cut connection can still look open (paramiko learns of the loss only when it next uses it,
        i.e. by failing this very command), so a failure on a connection opened earlier drops it and
        tries once more on a new one; a failure on a new connection is not retried (connecting failed:
        a retry would only wait again)."""
        for _ in range(2):
            reused = name in self._clients
            try:
                self.exec_raw(name, command, timeout=CLEANUP_TIMEOUT)
                return
            except Exception:  # noqa: BLE001 - best effort by design
                stale = self._clients.pop(name, None)
                if stale is not None:
                    stale.close()
                if not reused:
                    return

    def _write_env(self, name: str, env: Mapping[str, str]) -> str:
        """Write ``KEY='value'`` lines to a fresh 0600 file in /tmp over stdin; return its path."""
        bad = [key for key in env if not ENV_NAME.fullmatch(key)]
        if bad:
            raise ValueError(f"not valid environment variable names: {', '.join(bad)}")
        path = f"/tmp/.oewsctl-env-{secrets.token_hex(8)}"
        body = "".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items()).encode()
        self.check(name, ["sh", "-c", 'umask 077; set -C; cat > "$0"', path], stdin=body, what="write the environment file")
        return path

    def check(self, name: str, argv: Sequence[str], *, sudo: bool = False, stdin: bytes | None = None, what: str | None = None) -> CommandResult:
        """``run`` that raises an OewsctlError naming the node and command when the exit code is not 0."""
        result = self.run(name, argv, sudo=sudo, stdin=stdin)
        if not result.ok:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise OewsctlError(f"{name}: {what or shlex.join(argv)} failed (exit {result.exit_code})" + (f": {detail[-1]}" if detail else ""))
        return result

    # -- files -----------------------------------------------------------------------

    def read_file(self, name: str, path: str, sudo: bool = False) -> bytes:
        """The bytes of ``path`` on the node (an OewsctlError if it is missing or unreadable)."""
        node = self.config.node(name)
        code, out, err = self.exec_raw(name, remote_command(["cat", "--", path], sudo=sudo, user=node.user))
        if code != 0:
            raise OewsctlError(f"{name}: cannot read {path}: {err.decode(errors='replace').strip() or f'exit {code}'}")
        return out


class _LineEcho:
    """Prints remote output line by line as ``node| line`` (for --verbose)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.pending = {1: b"", 2: b""}

    def feed(self, stream: int, data: bytes) -> None:
        lines = (self.pending[stream] + data).split(b"\n")
        self.pending[stream] = lines.pop()
        for line in lines:
            self._print(line)

    def flush(self) -> None:
        for stream, rest in self.pending.items():
            if rest:
                self._print(rest)
            self.pending[stream] = b""

    def _print(self, line: bytes) -> None:
        err_console.print(f"{self.node}| {line.decode(errors='replace')}", markup=False, highlight=False)


def _collect(channel: paramiko.Channel, echo: _LineEcho | None, timeout: float | None) -> tuple[bytes, bytes]:
    """Read stdout and stderr until the remote side closes them (TimeoutError after ``timeout``)."""
    out, err = bytearray(), bytearray()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        for ready, receive, buffer, stream in ((channel.recv_ready, channel.recv, out, 1), (channel.recv_stderr_ready, channel.recv_stderr, err, 2)):
            while ready():
                data = receive(CHUNK)
                buffer += data
                if echo is not None:
                    echo.feed(stream, data)
        if channel.eof_received or channel.closed:
            if not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            continue
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError
        select.select([channel], [], [], 0.2)
    if echo is not None:
        echo.flush()
    return bytes(out), bytes(err)


class _Feeder:
    """Writes stdin on its own thread so a chatty remote command cannot deadlock us."""

    def __init__(self, channel: paramiko.Channel, stdin: bytes | IO[bytes] | None) -> None:
        self.channel = channel
        self.stdin = stdin
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import paramiko  # already loaded: the channel exists

        try:
            if isinstance(self.stdin, bytes):
                self.channel.sendall(self.stdin)
            elif self.stdin is not None:
                while chunk := self.stdin.read(CHUNK):
                    self.channel.sendall(chunk)
            self.channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join()
        if self.error is not None and not self.channel.exit_status_ready():
            raise OewsctlError(f"sending data failed: {self.error}")
