"""Requests to InfluxDB, each sent at once and answered later, with every outcome sorted
into three kinds.

An `Exchange` is one request on the wire whose answer the caller reads when it needs it.
The store sends a batch's data and its ledger lookup, and formats the next batch while
the server works on them: one thread, the server's work and the formatting overlapping
(bench/bench_stores.py measures what that is worth against a bare POST).

That is why writes go over urllib3's connections here rather than through
influxdb-client's write API, v2 included: its synchronous write returns only with the
answer, and its background modes answer on other threads, which wait for the interpreter
lock behind the formatting. The v1 `/write` endpoint and `/query` are not in
influxdb-client at all (it speaks Flux and /api/v2). influxdb-client is kept for what it
does well: the v2 management API (DBRP mappings, buckets).

Retrying is the caller's: the store decides per batch whether to wait, split or drop.
"""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from http.client import HTTPException
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from urllib3.connection import HTTPConnection, HTTPSConnection

from collector.config import InfluxStoreSettings
from collector.stores.influxdb.influxql import Series, UnexpectedAnswer, series_of

# A batch the server refuses for its content: retrying it cannot help, splitting it can.
REJECTED_STATUS = frozenset({400, 413, 422})
# Idle connections kept for the next requests; a batch has its lookup, data and ledger
# requests in flight at once.
_IDLE_KEPT = 4
_NETWORK_ERRORS = (HTTPException, OSError, urllib3.exceptions.HTTPError)


class Target(Enum):
    RAW = "raw"
    HOURLY = "hourly"


class TransientError(Exception):
    """The server is down, slow, overloaded or misconfigured: the batch may succeed later."""


class RejectedError(Exception):
    """The server refused the batch's content (bad point, type conflict, too old, too big)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail.strip()[:500]}")
        self.status = status


def _sorted(status: int, body: str) -> Exception:
    return (
        RejectedError(status, body)
        if status in REJECTED_STATUS
        else TransientError(f"HTTP {status}: {body.strip()[:500]}")
    )


@dataclass(frozen=True)
class _Request:
    path: str
    body: bytes
    headers: dict[str, str]
    statements: int = 0  # InfluxQL statements in a query, each answered with a result


class Exchange:
    """One request sent; its answer is read once, by `written()` or `series()`.

    A request that could not even be sent (server down) is an exchange too, one whose
    answer is that failure, so the caller meets every outcome in the same place."""

    def __init__(self, http: "InfluxHttp", request: _Request) -> None:
        self._http = http
        self._request = request
        self._conn: HTTPConnection | None = None
        self._failure: TransientError | None = None
        conn = http.checkout()
        try:
            conn.request("POST", request.path, body=request.body, headers=request.headers)
        except _NETWORK_ERRORS as exc:
            conn.close()
            self._failure = TransientError(f"{type(exc).__name__}: {exc}")
        else:
            self._conn = conn

    def again(self) -> "Exchange":
        """The same request, sent anew: writes are idempotent, queries read-only."""
        return Exchange(self._http, self._request)

    def written(self) -> None:
        status, text = self._answer()
        if status != 204:
            raise _sorted(status, text)

    def series(self) -> list[list[Series]]:
        status, text = self._answer()
        if status >= 500 or status in (401, 403, 404, 429):
            raise TransientError(f"HTTP {status}: {text.strip()[:500]}")
        try:
            answer: Any = json.loads(text)
        except ValueError:
            raise UnexpectedAnswer(f"HTTP {status}, not JSON: {text.strip()[:200]!r}") from None
        return series_of(answer, self._request.statements)

    def abandon(self) -> None:
        """Drop an answer nobody will read; its connection cannot carry another request."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _answer(self) -> tuple[int, str]:
        if self._failure is not None:
            raise self._failure
        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError("an exchange is answered once")
        try:
            response = conn.getresponse()
            body = response.data
        except _NETWORK_ERRORS as exc:
            conn.close()
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        self._http.checkin(conn)
        return response.status, body.decode(errors="replace")


class InfluxHttp:
    def __init__(self, settings: InfluxStoreSettings) -> None:
        self._settings = settings
        url = urlsplit(settings.url)
        self._prefix = url.path.rstrip("/")
        ca = str(settings.ca_file) if settings.ca_file else None
        self._connect: Callable[[], HTTPConnection] = (
            (lambda: HTTPSConnection(url.netloc, timeout=settings.timeout_s, ca_certs=ca))
            if url.scheme == "https"
            else (lambda: HTTPConnection(url.netloc, timeout=settings.timeout_s))
        )
        self._idle: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._headers: dict[str, str] = {}
        secret = settings.secret()
        self.client: InfluxDBClient | None = None
        if settings.api == "v2":
            if secret:
                self._headers["Authorization"] = f"Token {secret}"
            self.client = InfluxDBClient(
                url=settings.url.rstrip("/"),
                token=secret or "",
                org=cast(str, settings.org),  # set: api v2 requires it
                timeout=int(settings.timeout_s * 1000),
                ssl_ca_cert=ca,
            )
        elif settings.username:
            self._headers.update(urllib3.make_headers(basic_auth=f"{settings.username}:{secret}"))

    def start_write(self, lines: list[str], target: Target) -> Exchange:
        s = self._settings
        if s.api == "v2":
            bucket = s.bucket if target is Target.RAW else s.hourly_bucket
            path = "/api/v2/write?" + urlencode({"org": s.org or "", "bucket": bucket})
        else:
            policy = s.raw_policy if target is Target.RAW else s.hourly_policy
            path = "/write?" + urlencode({"db": s.database, "rp": policy})
        headers = self._headers | {"Content-Type": "text/plain; charset=utf-8"}
        body = "\n".join(lines).encode()
        return Exchange(self, _Request(f"{self._prefix}{path}&precision=ns", body, headers))

    def start_query(self, *statements: str, write: bool = False) -> Exchange:
        """InfluxQL, the statements sent at once; `write` marks statements that change the
        server (CREATE, ALTER)."""
        fields = {"q": ";".join(statements), "epoch": "u"}
        if not write:
            fields["db"] = self._settings.database
        headers = self._headers | {"Content-Type": "application/x-www-form-urlencoded"}
        body = urlencode(fields).encode()
        return Exchange(
            self, _Request(f"{self._prefix}/query", body, headers, statements=len(statements))
        )

    def query(self, *statements: str, write: bool = False) -> list[list[Series]]:
        return self.start_query(*statements, write=write).series()

    def checkout(self) -> HTTPConnection:
        """An idle connection still open, or a new one: a server that closed an idle
        connection (a restart, an idle timeout) costs a reconnect, not a failed request."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if conn.is_connected:
                    return conn
                conn.close()
        return self._connect()

    def checkin(self, conn: HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < _IDLE_KEPT:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()  # type: ignore[no-untyped-call]
        with self._lock:
            for conn in self._idle:
                conn.close()
            self._idle.clear()
