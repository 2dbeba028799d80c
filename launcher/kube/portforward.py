"""127.0.0.1:PORT → a pod's port through the API server, as `kubectl port-forward` does.

Each local connection gets its own port-forward stream (the official client's websocket
port-forward), so HTTP clients that open several connections work unchanged.
"""

from __future__ import annotations

import selectors
import socket
import threading


class PortForward:
    def __init__(self, cluster, pod: str, remote_port: int, local_port: int = 0):
        self.cluster, self.pod, self.remote_port = cluster, pod, remote_port
        self._server = socket.create_server(("127.0.0.1", local_port))
        self.local_port = self._server.getsockname()[1]
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def __enter__(self) -> PortForward:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._closed.set()
        self._server.close()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        from kubernetes.stream import portforward

        try:
            forward = portforward(self.cluster.core().connect_get_namespaced_pod_portforward,
                                  self.pod, self.cluster.namespace, ports=str(self.remote_port))
        except Exception:  # the pod is gone or refused: the client sees a closed connection
            conn.close()
            return
        remote = forward.socket(self.remote_port)
        try:
            _pump(conn, remote, self._closed)
        finally:
            conn.close()
            forward.close()


def _pump(a: socket.socket, b: socket.socket, closed: threading.Event) -> None:
    """Copy bytes both ways until either side closes."""
    selector = selectors.DefaultSelector()
    selector.register(a, selectors.EVENT_READ, b)
    selector.register(b, selectors.EVENT_READ, a)
    while not closed.is_set():
        for key, _ in selector.select(timeout=1):
            data = key.fileobj.recv(65536)
            if not data:
                return
            key.data.sendall(data)
