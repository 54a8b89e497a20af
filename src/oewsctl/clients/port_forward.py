"""Port-forward without kubectl: a local TCP listener relayed to a pod port through the API server.

The API server's ``pods/<pod>/portforward`` is a WebSocket (``v4.channel.k8s.io``) carrying one
data and one error channel per port; the official client speaks it (``kubernetes.stream.portforward``)
and hands back a socket. One WebSocket carries one TCP stream, so :class:`Relay` opens one per
accepted connection (a browser opens several at once) and pumps bytes both ways in a thread.
The pod is picked again for every connection (``pick``), so a replaced pod is followed.
Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client as k8s
from kubernetes.stream import portforward

LISTEN_HOST = "127.0.0.1"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class PodPort:
    """Where one forwarded connection goes: a pod's container port."""

    namespace: str
    pod: str
    port: int


def listen(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0 picks a free one); OSError when it is taken."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((LISTEN_HOST, port))
    except OSError:
        server.close()
        raise
    server.listen(16)
    return server


def _pump(local: socket.socket, remote: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes (no half-close over the WebSocket) or ``stop``."""
    peers = {local: remote, remote: local}
    while not stop.is_set():
        readable, _, _ = select.select(list(peers), [], [], 0.5)
        for sock in readable:
            data = sock.recv(CHUNK)
            if not data:
                return
            peers[sock].sendall(data)


class Relay:
    """Accept on ``server``; relay each connection to ``pick()`` through the API (see the module doc).

    ``on_error(line)`` hears of a connection that could not be relayed (no ready pod, API refused);
    the listener keeps serving. :meth:`close` ends the listener and every open relay.
    """

    def __init__(self, api_client: k8s.ApiClient, server: socket.socket, pick: Callable[[], PodPort], on_error: Callable[[str], None]) -> None:
        self.core = k8s.CoreV1Api(api_client)
        self.server = server
        self.pick = pick
        self.on_error = on_error
        self.stop = threading.Event()
        self.connections = 0
        # The client's portforward() swaps api_client.call_api while it connects: one connection
        # opens (picks its pod, upgrades to a WebSocket) at a time; the streams then run in parallel.
        self._opening = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server.getsockname()[1])

    def serve_forever(self) -> None:
        """Accept until :meth:`close` (Ctrl-C in the caller's thread ends ``accept`` too)."""
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                if self.stop.is_set():
                    return
                raise
            self.connections += 1
            threading.Thread(target=self._relay, args=(conn,), name=f"port-forward-{self.connections}", daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        with conn:
            try:
                with self._opening:
                    target = self.pick()
                    forward = portforward(self.core.connect_get_namespaced_pod_portforward, target.pod, target.namespace, ports=str(target.port))
            except Exception as exc:  # noqa: BLE001 - one failed connection is reported, the listener keeps serving
                self.on_error(f"connection {self.connections}: {getattr(exc, 'message', None) or exc}")
                return
            remote = forward.socket(target.port)
            try:
                _pump(conn, remote, self.stop)
            except OSError:
                pass  # either side went away mid-copy: that connection is over
            finally:
                forward.close()
            problem = forward.error(target.port)
            if problem:
                self.on_error(f"pod {target.namespace}/{target.pod} port {target.port}: {problem}")

    def close(self) -> None:
        self.stop.set()
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
