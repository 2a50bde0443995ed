"""A real HTTP server that receives alert webhooks, told how often to fail before it
answers 2xx (or to fail forever), and keeping every request it saw."""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import free_port


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, fail_first: int = 0, fail_status: int = 503) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self.fail_first = fail_first  # -1: never recover
        self.fail_status = fail_status
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append(Received(dict(self.headers.items()), body))
                    seen, fail_first = len(receiver.requests), receiver.fail_first
                failing = fail_first < 0 or seen <= fail_first
                status = receiver.fail_status if failing else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
