"""An HTTP relay in front of a real server that can be told to fail: the server errors
(500, 503) a healthy InfluxDB will not produce on demand, with everything else real."""

import urllib.error
import urllib.request

from testbed.local_http import LocalHttpServer, QuietHandler


class FaultyRelay(LocalHttpServer):
    def __init__(self, target: str) -> None:
        self.failures_left = 0
        self.failure_status = 500
        self.failed = 0
        self.only_path = "/write"
        relay = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith(relay.only_path) and relay.failures_left > 0:
                    relay.failures_left -= 1
                    relay.failed += 1
                    self.answer(relay.failure_status, b'{"error":"injected"}')
                    return
                request = urllib.request.Request(  # noqa: S310 - the test's own server
                    target + self.path, data=body, headers=dict(self.headers), method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                        self.answer(answer.status, answer.read())
                except urllib.error.HTTPError as error:
                    self.answer(error.code, error.read())

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}"
