"""HTTP servers the tests run in a thread on a free loopback port, for what answers over
HTTP and cannot run here or cannot be told to fail: a webhook receiver, a failing relay
in front of InfluxDB, the InfluxDB 2.x API."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from testbed.waiting import free_port


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that answers in one call and keeps the test output clean."""

    def answer(
        self, status: int, body: bytes = b"", content_type: str = "application/json"
    ) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


class LocalHttpServer:
    """Serves `handler` while the `with` block runs."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
