"""An HTTP relay in front of a real server that can be told to fail: the server errors
(500, 503) a healthy InfluxDB will not produce on demand, with everything else real."""

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import free_port


class FaultyRelay:
    def __init__(self, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.failures_left = 0
        self.failure_status = 500
        self.failed = 0
        self.only_path = "/write"
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith(relay.only_path) and relay.failures_left > 0:
                    relay.failures_left -= 1
                    relay.failed += 1
                    self._answer(relay.failure_status, b'{"error":"injected"}')
                    return
                request = urllib.request.Request(  # noqa: S310 - the test's own server
                    target + self.path, data=body, headers=dict(self.headers), method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                        self._answer(answer.status, answer.read())
                except urllib.error.HTTPError as error:
                    self._answer(error.code, error.read())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultyRelay":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
