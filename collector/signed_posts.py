"""Signed HTTP POSTs, as police alerts and alarms go to webhooks: one scheme, so one
receiver's check serves both.

`X-PQ-Signature` is `sha256=` and the HMAC-SHA256, keyed with the shared secret, of the
`X-PQ-Timestamp` header, a dot and the body: a receiver that refuses a stale timestamp
takes a request that can be neither forged nor replayed much later. Any answer other than
2xx, a refused connection or a timeout is a failed attempt, tried again after a backoff
that doubles up to its ceiling, until the attempts are used up.
"""

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

import urllib3

from collector.config import WebhookSettings

SIGNATURE = "X-PQ-Signature"
TIMESTAMP = "X-PQ-Timestamp"
ATTEMPT = "X-PQ-Attempt"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class SignedPoster:
    """POSTs to one webhook, signed with its secret."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self._secret = settings.secret()
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=settings.timeout_s),
            retries=False,
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
        )

    def post(self, body: bytes, headers: Mapping[str, str], attempt: int) -> str | None:
        """One attempt; None when the endpoint took it, else what went wrong. `headers`
        name what is sent (stable across attempts, so a receiver can drop a repeat)."""
        stamp = str(int(time.time()))
        sent = {
            "Content-Type": "application/json",
            TIMESTAMP: stamp,
            SIGNATURE: sign(self._secret, stamp, body),
            ATTEMPT: str(attempt),
            **headers,
        }
        try:
            answer = self._http.request("POST", self.settings.url, body=body, headers=sent)
        except urllib3.exceptions.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= answer.status < 300:
            return None
        return f"HTTP {answer.status}: {answer.data[:200].decode(errors='replace')}"

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed ones; None when they are used up."""
        if attempts >= self.settings.attempts:
            return None
        delay = min(self.settings.backoff_max_s, self.settings.backoff_s * 2 ** (attempts - 1))
        return now + timedelta(seconds=delay)
