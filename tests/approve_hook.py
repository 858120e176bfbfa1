"""An approve webhook on 127.0.0.1 for tests: answers every POST with one JSON body (or what a
function answers at the time) and keeps what it got (headers and the raw body), over plain HTTP or
over TLS."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

APPROVED = b'{"result": "OK"}'


class Hook:
    def __init__(
        self, answer: bytes | Callable[[], tuple[int, bytes]] = APPROVED, tls: ssl.SSLContext | None = None
    ) -> None:
        """``answer``: the body of every 200, or a function giving each request's (status, body)."""
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self
        respond = answer if callable(answer) else lambda: (200, answer)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers.items()), body))
                status, reply = respond()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/validate_cr"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
