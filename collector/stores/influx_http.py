"""One attempt at a write or an InfluxQL query, with every outcome sorted into three kinds.

v2 writes go through influxdb-client's synchronous write API. The v1 `/write` endpoint and
`/query` are not in influxdb-client (it speaks Flux and /api/v2), so they are plain HTTP
through urllib3, the pool influxdb-client itself stands on.

Retrying is the caller's: the store must decide per batch whether to wait, split or drop,
and influxdb-client's `WritesRetry` fixes its deadline when it is constructed, which suits
its background batch writer but not a long-lived synchronous client.
"""

import json
from enum import Enum
from typing import Any
from urllib.parse import urlencode

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from collector.config import InfluxStoreSettings
from collector.stores.influxql import Series, series_of

# A batch the server refuses for its content: retrying it cannot help, splitting it can.
REJECTED_STATUS = frozenset({400, 413, 422})


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


class InfluxHttp:
    def __init__(self, settings: InfluxStoreSettings) -> None:
        self._settings = settings
        self._url = settings.url.rstrip("/")
        secret = settings.secret()
        timeout = urllib3.Timeout(connect=min(5.0, settings.timeout_s), read=settings.timeout_s)
        ca = str(settings.ca_file) if settings.ca_file else None
        self._pool = urllib3.PoolManager(timeout=timeout, retries=False, ca_certs=ca, maxsize=4)
        self._headers: dict[str, str] = {}
        self.client: InfluxDBClient | None = None
        if settings.api == "v2":
            self._headers["Authorization"] = f"Token {secret}" if secret else ""
            self.client = InfluxDBClient(
                url=self._url,
                token=secret or "",
                org=settings.org,
                timeout=int(settings.timeout_s * 1000),
                ssl_ca_cert=ca,
            )
            self._write_api = self.client.write_api(write_options=SYNCHRONOUS)
        elif settings.username:
            self._headers.update(urllib3.make_headers(basic_auth=f"{settings.username}:{secret}"))
        self._headers = {k: v for k, v in self._headers.items() if v}

    def write(self, lines: list[str], target: Target) -> None:
        body = "\n".join(lines).encode()
        s = self._settings
        try:
            if self.client is not None:
                bucket = s.bucket if target is Target.RAW else s.hourly_bucket
                self._write_api.write(
                    bucket=bucket, org=s.org, record=body, write_precision=WritePrecision.NS
                )
                return
            policy = s.raw_policy if target is Target.RAW else s.hourly_policy
            params = urlencode({"db": s.database, "rp": policy, "precision": "ns"})
            response = self._pool.request(
                "POST", f"{self._url}/write?{params}", body=body, headers=self._headers
            )
        except ApiException as exc:
            raise _sorted(exc.status or 0, str(exc.body or exc.reason)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        if response.status != 204:
            raise _sorted(response.status, response.data.decode(errors="replace"))

    def query(self, statement: str, *, write: bool = False) -> list[list[Series]]:
        """Run InfluxQL; `write` marks statements that change the server (CREATE, ALTER)."""
        fields = {"q": statement, "epoch": "u"}
        if not write:
            fields["db"] = self._settings.database
        try:
            response = self._pool.request_encode_body(
                "POST",
                f"{self._url}/query",
                fields=fields,
                headers=self._headers,
                encode_multipart=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        text = response.data.decode(errors="replace")
        if response.status >= 500 or response.status in (401, 403, 404, 429):
            raise TransientError(f"HTTP {response.status}: {text.strip()[:500]}")
        answer: dict[str, Any] = json.loads(text) if text.strip() else {}
        return series_of(answer)

    def close(self) -> None:
        if self.client is not None:
            self._write_api.close()
            self.client.close()
        self._pool.clear()
