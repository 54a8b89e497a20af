"""The SSH layer against real OpenSSH sshd test nodes (tests/fixtures/sshd.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
import time
from pathlib import Path

import pytest
import yaml

from oewsctl.clients import transfer as ssh_transfer
from oewsctl.clients.known_hosts import HostKeyChanged, HostKeyUnknown
from oewsctl.clients.ssh import SSHPool, SudoPasswordRequired, remote_command
from oewsctl.core.context import RunContext
from oewsctl.core.errors import OewsctlError
from oewsctl.core.plan import Plan, Step
from oewsctl.core.runner import run_plan
from tests.fixtures.sshd import TestCluster, TestNode

pytestmark = pytest.mark.sshd

SECRET = "K10-s3cr3t-token-never-in-argv-8f2c"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def test_run_as_user_and_with_sudo(ssh_nodes: TestCluster) -> None:
    with SSHPool(ssh_nodes.config) as pool:
        plain = pool.run("machine1", ["sh", "-c", "id -un; echo oops >&2; exit 3"])
        assert (plain.exit_code, plain.stdout.strip(), plain.stderr.strip()) == (3, "oewsops", "oops")
        assert pool.run("machine1", ["id", "-u"], sudo=True).stdout.strip() == "0"
        assert pool.run("machine2", ["wc", "-c"], stdin=b"x" * 3_000_000).stdout.strip() == "3000000"


def test_verbose_streams_remote_output_per_node(ssh_nodes: TestCluster, capsys: pytest.CaptureFixture[str]) -> None:
    with SSHPool(ssh_nodes.config, verbose=True) as pool:
        pool.run("machine2", ["sh", "-c", "echo first; echo to-stderr >&2; printf 'no newline'"])
        pool.read_file("machine2", "/etc/hostname")  # file contents are data, never echoed
    err = capsys.readouterr().err
    assert "machine2| first" in err and "machine2| to-stderr" in err and "machine2| no newline" in err
    assert Path("/etc/hostname").read_text().strip() not in err.replace("machine2|", "")


def test_sudo_that_wants_a_password_is_a_clear_error(ssh_nodes: TestCluster) -> None:
    ssh_nodes.node("machine2").require_sudo_password()
    with SSHPool(ssh_nodes.config) as pool, pytest.raises(SudoPasswordRequired) as info:
        pool.run("machine2", ["true"], sudo=True)
    assert "machine2: sudo asks oewsops for a password" in info.value.message
    assert "NOPASSWD" in (info.value.hint or "")


def test_command_timeout_names_node(ssh_nodes: TestCluster) -> None:
    with SSHPool(ssh_nodes.config) as pool, pytest.raises(OewsctlError, match=r"machine1: .*did not finish within 0.5s"):
        pool.run("machine1", ["sleep", "5"], timeout=0.5)


def test_unknown_host_refused_with_fingerprint_then_accepted(ssh_nodes: TestCluster) -> None:
    node = ssh_nodes.node("machine2")
    ssh_nodes.forget_host_key(node)
    expected = node.host_key.with_suffix(".pub").read_text().split()[1]
    with SSHPool(ssh_nodes.config) as pool, pytest.raises(HostKeyUnknown) as info:
        pool.run("machine2", ["true"])
    assert "SHA256:" in info.value.message and "--accept-new-host-keys" in (info.value.hint or "")
    assert expected not in ssh_nodes.known_hosts.read_text()
    with SSHPool(ssh_nodes.config, accept_new_host_keys=True) as pool:
        assert pool.run("machine2", ["true"]).ok
        assert [a.node for a in pool.accepted] == ["machine2"]
        assert info.value.message.split("(ssh-ed25519 ")[1].rstrip(")") == pool.accepted[0].fingerprint
    assert expected in ssh_nodes.known_hosts.read_text()
    with SSHPool(ssh_nodes.config) as pool:  # strict again, now known
        assert pool.run("machine2", ["true"]).ok


def test_changed_host_key_refused_even_with_accept_flag(ssh_nodes: TestCluster) -> None:
    node = ssh_nodes.node("machine3")
    node.new_host_key()
    before = ssh_nodes.known_hosts.read_text()
    for accept in (False, True):
        with SSHPool(ssh_nodes.config, accept_new_host_keys=accept) as pool, pytest.raises(HostKeyChanged) as info:
            pool.run("machine3", ["true"])
        assert "HOST KEY CHANGED" in info.value.message and "ssh-keygen -R" in (info.value.hint or "")
    assert ssh_nodes.known_hosts.read_text() == before
    with SSHPool(ssh_nodes.config) as pool, pytest.raises(HostKeyChanged):  # paramiko's check, before any data moves
        ssh_transfer.upload(pool, "machine3", _random_file(ssh_nodes.root / "small", 10), "/tmp/never-written")
    assert not Path("/tmp/never-written").exists()


def test_openssh_data_path_refuses_a_changed_host_key_itself(ssh_nodes: TestCluster, tmp_path: Path) -> None:
    """The fast path's own ssh client (files >= FAST_PATH_MIN_BYTES), run without paramiko's
    check first, still refuses a node whose host key changed and writes nothing there."""
    import subprocess

    node = ssh_nodes.node("machine3")
    target = node.path("/opt/k3s/storage/kept.db")
    target.write_bytes(b"old contents")
    node.new_host_key()
    data = _random_file(tmp_path / "big.db", 1024 * 1024)
    argv = SSHPool(ssh_nodes.config).openssh_argv("machine3")
    with data.open("rb") as stdin:
        done = subprocess.run([*argv, "cat > /opt/k3s/storage/kept.db"], stdin=stdin, capture_output=True, text=True, timeout=30)
    assert done.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in done.stderr and "Host key verification failed" in done.stderr
    assert target.read_bytes() == b"old contents"


def test_openssh_data_path_checks_host_keys_itself(ssh_nodes: TestCluster) -> None:
    """Even used on its own, the fast path's ssh client refuses an unknown host (no silent add)."""
    import subprocess

    ssh_nodes.forget_host_key(ssh_nodes.node("machine1"))
    argv = SSHPool(ssh_nodes.config).openssh_argv("machine1")
    done = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 255 and "Host key verification failed" in done.stderr
    assert "127.0.0.11" not in ssh_nodes.known_hosts.read_text()


def test_openssh_data_path_skips_the_slow_sntrup761_key_exchange(ssh_nodes: TestCluster) -> None:
    """OpenSSH 9.0-9.8 prefer sntrup761x25519 (~90 ms of CPU per connection on each end): the data
    path negotiates the ML-KEM hybrid where both ends have it, else curve25519, like paramiko."""
    import subprocess

    argv = SSHPool(ssh_nodes.config).openssh_argv("machine1")
    done = subprocess.run([*argv, "-v", "true"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    negotiated = re.search(r"kex: algorithm: (\S+)", done.stderr)
    assert negotiated is not None and negotiated.group(1) in ("mlkem768x25519-sha256", "curve25519-sha256")


def test_a_clean_up_whose_connection_dies_under_it_retries_on_a_new_one(ssh_nodes: TestCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cut is noticed only by the clean-up command itself (paramiko sees the loss when it next uses the
    connection): the staged file must still go, over a fresh connection (a CI run left it behind)."""
    node = ssh_nodes.node("machine1")
    staged = node.path("/opt/k3s/storage/.oews.db.oewsctl-part")
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(b"half an upload")
    real_exec = SSHPool.exec_raw
    cut = []

    def dies_under_the_first_command(pool: SSHPool, name: str, *args: object, **kwargs: object) -> object:
        if not cut:
            cut.append(name)
            pool.connect(name).get_transport().close()  # type: ignore[union-attr]  # the loss, noticed by this command
            raise EOFError("connection lost")
        return real_exec(pool, name, *args, **kwargs)  # type: ignore[arg-type]

    with SSHPool(ssh_nodes.config) as pool:
        pool.run("machine1", ["true"])  # an open connection, as after an upload
        monkeypatch.setattr(SSHPool, "exec_raw", dies_under_the_first_command)
        pool.try_exec("machine1", remote_command(["rm", "-f", "--", "/opt/k3s/storage/.oews.db.oewsctl-part"], sudo=True, user=ssh_nodes.user))
    assert cut == ["machine1"] and not staged.exists()


def test_wrong_user_and_node_down(ssh_nodes: TestCluster) -> None:
    data = yaml.safe_load(ssh_nodes.config_path.read_text())
    data["nodes"][0]["user"] = "nobody-here"
    ssh_nodes.config_path.write_text(yaml.safe_dump(data))
    with SSHPool(ssh_nodes.config) as pool:
        with pytest.raises(OewsctlError, match=r"machine1 \(nobody-here@127.0.0.11:\d+\): SSH login refused for user 'nobody-here'"):
            pool.run("machine1", ["true"])
        ssh_nodes.node("machine2").stop()
        with pytest.raises(OewsctlError, match=r"machine2 .*unreachable \(connection refused\)") as info:
            pool.run("machine2", ["true"])
        assert "sshd" in (info.value.hint or "")


def test_key_from_ssh_agent_when_no_key_file(ssh_nodes: TestCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    data = yaml.safe_load(ssh_nodes.config_path.read_text())
    data["ssh"]["key"] = str(tmp_path / "no-such-key")
    ssh_nodes.config_path.write_text(yaml.safe_dump(data))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with SSHPool(ssh_nodes.config) as pool, pytest.raises(OewsctlError, match=r"login refused .* with ssh-agent \(key file .*no-such-key not found\)"):
        pool.run("machine1", ["true"])
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        subprocess.run(["ssh-add", "-q", str(ssh_nodes.key)], check=True, capture_output=True)
        local = _random_file(tmp_path / "blob", 17 * 1024 * 1024)  # OpenSSH data path, authenticated by the agent too
        with SSHPool(ssh_nodes.config) as pool:
            assert pool.run("machine1", ["id", "-un"]).stdout.strip() == "oewsops"
            assert ssh_transfer.upload(pool, "machine1", local, "/var/lib/rancher/blob", sudo=True) == _sha(local)
    finally:
        agent.terminate()
        agent.wait()


def test_upload_verifies_checksum_sets_mode_and_roundtrips(ssh_nodes: TestCluster, tmp_path: Path) -> None:
    local = _random_file(tmp_path / "oews.db", 20 * 1024 * 1024 + 17)  # above the OpenSSH fast-path size
    node = ssh_nodes.node("machine1")
    with SSHPool(ssh_nodes.config) as pool:
        digest = ssh_transfer.upload(pool, "machine1", local, "/opt/k3s/storage/oews.db", mode=0o444, sudo=True)
        stored = node.path("/opt/k3s/storage/oews.db")
        assert digest == _sha(local) == _sha(stored)
        info = stored.stat()
        assert stat.S_IMODE(info.st_mode) == 0o444 and info.st_uid == 0
        assert sorted(p.name for p in stored.parent.iterdir()) == ["oews.db"]  # no temp file left
        back = tmp_path / "back" / "oews.db"
        assert ssh_transfer.download(pool, "machine1", "/opt/k3s/storage/oews.db", back, sudo=True) == digest
        assert _sha(back) == digest and stat.S_IMODE(back.stat().st_mode) == 0o600


def test_upload_over_paramiko_when_no_openssh_client(ssh_nodes: TestCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh_transfer, "openssh_available", lambda: False)
    local = _random_file(tmp_path / "blob", 20 * 1024 * 1024)  # big enough that OpenSSH would carry it
    with SSHPool(ssh_nodes.config) as pool:
        assert ssh_transfer.upload(pool, "machine2", local, "/var/lib/rancher/blob", mode=0o640, sudo=True) == _sha(local)
        back = tmp_path / "back"
        assert ssh_transfer.download(pool, "machine2", "/var/lib/rancher/blob", back, sudo=True) == _sha(local) == _sha(back)
    stored = ssh_nodes.node("machine2").path("/var/lib/rancher/blob")
    assert _sha(stored) == _sha(local) and stat.S_IMODE(stored.stat().st_mode) == 0o640


def test_write_file_is_atomic_and_private(ssh_nodes: TestCluster) -> None:
    with SSHPool(ssh_nodes.config) as pool:
        ssh_transfer.write_file(pool, "machine2", "/etc/rancher/k3s/config.yaml", b"token: abc\n", mode=0o600, sudo=True)
        assert pool.read_file("machine2", "/etc/rancher/k3s/config.yaml", sudo=True) == b"token: abc\n"
        with pytest.raises(OewsctlError, match="machine2: cannot read /etc/rancher/k3s/config.yaml"):
            pool.read_file("machine2", "/etc/rancher/k3s/config.yaml")  # 0600 root: not without sudo
    written = ssh_nodes.node("machine2").path("/etc/rancher/k3s/config.yaml")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert not ssh_nodes.node("machine1").path("/etc/rancher/k3s/config.yaml").exists()  # nodes are separate


def test_interrupted_upload_leaves_old_file_untouched_and_restarts(ssh_nodes: TestCluster, tmp_path: Path) -> None:
    node = ssh_nodes.node("machine1")
    target = "/opt/k3s/storage/oews.db"
    old = _random_file(tmp_path / "old.db", 1024 * 1024)
    new = _random_file(tmp_path / "new.db", 128 * 1024 * 1024)
    stored = node.path(target)
    temp = node.path(ssh_transfer.temp_name(target))
    with SSHPool(ssh_nodes.config) as pool:
        ssh_transfer.upload(pool, "machine1", old, target, sudo=True)
        old_stat = stored.stat()

        def cut_when_half_sent() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if temp.exists() and temp.stat().st_size > 8 * 1024 * 1024:
                    node.kill_connections()
                    return
                time.sleep(0.01)

        cutter = threading.Thread(target=cut_when_half_sent)
        cutter.start()
        with pytest.raises(OewsctlError) as info:
            ssh_transfer.upload(pool, "machine1", new, target, sudo=True)
        cutter.join()
        assert "machine1: upload to /opt/k3s/storage/oews.db interrupted" in info.value.message
        assert "destination was not touched" in info.value.message
        assert _sha(stored) == _sha(old) and stored.stat().st_ino == old_stat.st_ino
        assert not temp.exists()  # removed over a fresh connection after the cut
        assert stat.S_IMODE(stored.stat().st_mode) == 0o444
        # Run it again: the same pool reconnects and the upload restarts from the beginning.
        assert ssh_transfer.upload(pool, "machine1", new, target, sudo=True) == _sha(new)
    assert _sha(stored) == _sha(new) and not temp.exists()


def test_failed_upload_removes_its_temp_file(ssh_nodes: TestCluster, tmp_path: Path) -> None:
    """Disk full on the node: a clear error, the old file untouched, no .NAME.oewsctl-part left behind."""
    import subprocess

    node = ssh_nodes.node("machine1")
    assert node.process is not None
    subprocess.run(["nsenter", "-t", str(node.process.pid), "-m", "mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", "/opt/k3s/storage"], check=True)
    target = "/opt/k3s/storage/oews.db"
    with SSHPool(ssh_nodes.config) as pool:
        ssh_transfer.write_file(pool, "machine1", target, b"old", mode=0o644, sudo=True)
        with pytest.raises(OewsctlError) as info:
            ssh_transfer.upload(pool, "machine1", _random_file(tmp_path / "big.db", 4 * 1024 * 1024), target, sudo=True)
        assert "machine1: cannot write /opt/k3s/storage/.oews.db.oewsctl-part" in info.value.message
        assert "No space left on device" in info.value.message
        listing = pool.check("machine1", ["ls", "-A", "/opt/k3s/storage"]).stdout.split()
        assert listing == ["oews.db"] and pool.read_file("machine1", target) == b"old"


def test_failed_rename_removes_its_temp_file(ssh_nodes: TestCluster, tmp_path: Path) -> None:
    """The destination is a directory the file cannot replace: an error naming it, no temp file left."""
    node = ssh_nodes.node("machine1")
    node.path("/opt/k3s/storage/oews.db/oews.db").mkdir(parents=True)
    with SSHPool(ssh_nodes.config) as pool, pytest.raises(OewsctlError) as info:
        ssh_transfer.upload(pool, "machine1", _random_file(tmp_path / "new.db", 1000), "/opt/k3s/storage/oews.db", sudo=True)
    assert "machine1: /opt/k3s/storage/oews.db not replaced: /opt/k3s/storage/oews.db is a directory" in info.value.message
    assert sorted(p.name for p in node.path("/opt/k3s/storage").iterdir()) == ["oews.db"]


def test_lost_node_error_is_not_hidden_by_env_file_cleanup(ssh_nodes: TestCluster) -> None:
    node = ssh_nodes.node("machine2")
    threading.Timer(1.0, node.stop).start()
    with SSHPool(ssh_nodes.config) as pool, pytest.raises(OewsctlError) as info:
        pool.run("machine2", ["sleep", "30"], env={"TOKEN": SECRET})
    assert "machine2: connection lost while running" in info.value.message  # not "unreachable" from the clean-up


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_openssh_path_survives_a_chatty_stderr(ssh_nodes: TestCluster, tmp_path: Path, direction: str) -> None:
    """More stderr than a pipe holds (64 KiB) while data flows: no deadlock, the output is returned."""
    noisy = "head -c 300000 /dev/zero | tr '\\0' x >&2; "
    source = _random_file(tmp_path / "data", 256 * 1024)
    result: list[tuple[int, str]] = []

    def transfer() -> None:
        with SSHPool(ssh_nodes.config) as pool:
            if direction == "upload":
                with source.open("rb") as handle:
                    result.append(ssh_transfer._send_file_openssh(pool, "machine1", noisy + "cat > /dev/null", handle, lambda _n: None)[2:])
            else:
                reader = ssh_transfer.OpenSSHReader(pool, "machine1", noisy + "head -c 262144 /dev/zero")
                assert len(reader.stream.read()) == 262144
                result.append(reader.finish())

    worker = threading.Thread(target=transfer, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the transfer hung on a full stderr pipe"
    code, err = result[0]
    assert code == 0 and err.count("x") == 300000


def _watch_processes(stop: threading.Event, seen: set[str]) -> None:
    while not stop.is_set():
        seen.update(TestNode.ps_args())
        time.sleep(0.02)


def test_secret_never_in_process_list_nor_audit_log(ssh_nodes: TestCluster, oewsctl_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seen: set[str] = set()  # every command line of every process while the commands run
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_processes, args=(stop, seen))
    watcher.start()
    try:
        ctx = RunContext(config=ssh_nodes.config)
        plan = Plan("secret demo", [
            Step("use token from stdin", node="machine1", command=["sh", "-c", 'read -r t; sleep 1; [ "${#t}" -eq 35 ]'], stdin=SECRET.encode(), sudo=True),
        ])
        run_plan(plan, ctx)
        result = ctx.ssh.run("machine2", ["sh", "-c", 'sleep 1; printf %s "${#K3S_TOKEN}"'], sudo=True, env={"K3S_TOKEN": SECRET})
        assert result.stdout == str(len(SECRET))
        leftovers = ctx.ssh.run("machine2", ["sh", "-c", "ls /tmp/.oewsctl-env-* 2>/dev/null | wc -l"]).stdout.strip()
        ctx.close()
    finally:
        stop.set()
        watcher.join()
    assert any("read -r t" in line for line in seen) and any("K3S_TOKEN" in line for line in seen)  # the watcher saw them
    assert not [line for line in seen if SECRET in line]
    assert leftovers == "0"  # the env file is gone once the command started
    audit = (oewsctl_state / "audit.jsonl").read_text()
    assert json.loads(audit.splitlines()[-1])["command"] == "secret demo"
    assert SECRET not in audit
    assert SECRET not in capsys.readouterr().err
