"""A real HTTP server that receives alert webhooks, told how often to fail before it
answers 2xx (or to fail forever), and keeping every request it saw."""

import json
import threading
from dataclasses import dataclass
from typing import cast

from testbed.local_http import LocalHttpServer, QuietHandler


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        return cast(dict[str, object], json.loads(self.body))


class WebhookReceiver(LocalHttpServer):
    def __init__(self, fail_first: int = 0, fail_status: int = 503) -> None:
        self.fail_first = fail_first  # -1: never recover
        self.fail_status = fail_status
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append(Received(dict(self.headers.items()), body))
                    seen, fail_first = len(receiver.requests), receiver.fail_first
                failing = fail_first < 0 or seen <= fail_first
                self.answer(receiver.fail_status if failing else 204)

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}/alerts"
