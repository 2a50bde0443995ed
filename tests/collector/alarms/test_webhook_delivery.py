"""Alarm webhooks against a real HTTP receiver: signed like the police alert webhooks,
retried with backoff while the endpoint fails, dead-lettered after the last attempt."""

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

from collector.alarms.book import DEAD, SENT, AlarmBook
from collector.alarms.delivery import AlarmWebhookSender, webhook_channel
from collector.alarms.events import Breach, Subject
from collector.config import AlarmWebhookSettings, OfflineRule
from testbed.webhook_receiver import WebhookReceiver

SECRET = b"s3cret"
RULE = OfflineRule(name="box-offline", type="offline")


def sender(tmp_path: Path, url: str, attempts: int) -> tuple[AlarmWebhookSender, AlarmBook]:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    settings = AlarmWebhookSettings(
        name="ops-desk", url=url, secret_file=secret, attempts=attempts, backoff_s=0.05
    )
    book = AlarmBook(tmp_path / "alarms.sqlite")
    subject = Subject(RULE.name, "ww-1", "ww-1")
    channels = [webhook_channel("ops-desk")]
    book.raise_alarm(RULE, subject, Breach("ww-1 is offline"), datetime.now(UTC), channels)
    return AlarmWebhookSender(settings, book), book


async def send_until(webhook: AlarmWebhookSender, done: int) -> None:
    async with asyncio.timeout(10):
        while webhook.delivered + webhook.dead < done:
            await webhook.send_due()
            await asyncio.sleep(0.05)


def test_a_failing_endpoint_gets_the_alarm_again_signed_until_it_takes_it(tmp_path):
    with WebhookReceiver(fail_first=2) as receiver:
        webhook, book = sender(tmp_path, receiver.url, attempts=5)
        asyncio.run(send_until(webhook, 1))
    assert [r.headers["X-PQ-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
    assert {r.headers["X-PQ-Alarm-Event"] for r in receiver.requests} == {"raised"}
    for request in receiver.requests:
        stamp = request.headers["X-PQ-Timestamp"]
        mac = hmac.new(SECRET, stamp.encode() + b"." + request.body, hashlib.sha256)
        assert request.headers["X-PQ-Signature"] == f"sha256={mac.hexdigest()}"
    assert book.delivery_counts() == {("webhook:ops-desk", SENT): 1}
    book.close()


def test_an_endpoint_that_never_recovers_dead_letters_the_alarm(tmp_path):
    with WebhookReceiver(fail_first=-1) as receiver:
        webhook, book = sender(tmp_path, receiver.url, attempts=3)
        asyncio.run(send_until(webhook, 1))
    assert len(receiver.requests) == 3
    assert (webhook.failed, webhook.dead) == (3, 1)
    assert book.delivery_counts() == {("webhook:ops-desk", DEAD): 1}
    book.close()
