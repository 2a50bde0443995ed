"""Alerts delivered to webhooks: signed, retried with backoff, dead-lettered when an
endpoint never recovers, and sent again on request. Real HTTP servers receive them."""

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from collector.config import AlertSettings, WebhookSettings
from collector.police import audit
from collector.police.database import PoliceDb
from collector.police.deliveries import MQTT, Deliveries, State
from collector.police.service import Police, open_police
from collector.police.watchlist import Priority
from iotwire.messages import PlateAlert
from testbed.webhook_receiver import WebhookReceiver
from tests.helpers import plate_read

SECRET = b"s3cret-shared-with-the-console"
NOW = datetime.now(UTC).replace(microsecond=0)


def open_with_webhooks(tmp_path, *receivers: tuple[str, WebhookReceiver]) -> Police:
    secret = tmp_path / "webhook.secret"
    secret.write_bytes(SECRET + b"\n")
    webhooks = [
        WebhookSettings(
            name=name,
            url=receiver.url,
            secret_file=secret,
            attempts=3,
            backoff_s=0.05,
            backoff_max_s=0.2,
            timeout_s=2,
        )
        for name, receiver in receivers
    ]
    police = open_police(AlertSettings(path=tmp_path / "police.sqlite", webhooks=webhooks))
    police.watchlist.add("68-B1 234.56", "snatch theft", "officer-1", Priority.HIGH)
    return police


async def send_until_settled(police: Police, timeout_s: float = 10) -> None:
    stop = asyncio.Event()
    senders = [asyncio.create_task(w.run(stop)) for w in police.webhooks]
    police.wakeup.notify()
    try:
        async with asyncio.timeout(timeout_s):
            while any(
                d.state is State.PENDING
                for d in police.deliveries.of(police.alerts.recent()[0].alert.id)
                if d.channel != MQTT
            ):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*senders)


@pytest.mark.servers
def test_each_endpoint_gets_a_signed_alert_retried_until_it_recovers_or_dead_lettered(tmp_path):
    with (
        WebhookReceiver() as healthy,
        WebhookReceiver(fail_first=2) as flaky,
        WebhookReceiver(fail_first=-1) as down,
    ):
        police = open_with_webhooks(
            tmp_path, ("console", healthy), ("dispatch", flaky), ("archive", down)
        )
        [alert] = police.plates.record(
            "pole-7", plate_read(1, ts=NOW, display="68-B1 234.56"), NOW, backlog=False
        )
        asyncio.run(send_until_settled(police))

        assert [len(r.requests) for r in (healthy, flaky, down)] == [1, 3, 3]
        for request in healthy.requests + flaky.requests + down.requests:
            stamp = request.headers["X-PQ-Timestamp"]
            expected = hmac.new(SECRET, stamp.encode() + b"." + request.body, hashlib.sha256)
            assert request.headers["X-PQ-Signature"] == f"sha256={expected.hexdigest()}"
            assert request.headers["X-PQ-Alert-Id"] == alert.id
            assert PlateAlert.model_validate_json(request.body) == alert
        assert [r.headers["X-PQ-Attempt"] for r in flaky.requests] == ["1", "2", "3"]

        states = {d.channel: (d.state, d.attempts) for d in police.deliveries.of(alert.id)}
        assert states == {
            "mqtt": (State.PENDING, 0),  # no broker in this test: it waits for one
            "webhook:console": (State.DELIVERED, 1),
            "webhook:dispatch": (State.DELIVERED, 3),
            "webhook:archive": (State.DEAD, 3),
        }
        [dead] = police.deliveries.dead()
        assert (dead.alert.id, dead.channel) == (alert.id, "webhook:archive")
        assert (dead.last_error or "").startswith("HTTP 503")
        trail = [(r.action, r.detail.get("channel")) for r in audit.records(police.db)]
        assert ("alert.dead_letter", "webhook:archive") in trail
        assert trail.count(("alert.deliver", "webhook:console")) == 1
        assert trail.count(("alert.deliver", "webhook:dispatch")) == 1

        down.fail_first = 0  # the archive is repaired; police send the alert again
        assert police.deliveries.retry(alert.id, "officer-2") == 1
        asyncio.run(send_until_settled(police))
        assert len(down.requests) == 4
        assert police.deliveries.dead() == []
        assert ("alert.retry", "webhook:archive") in [
            (r.action, r.detail.get("channel")) for r in audit.records(police.db)
        ]
        police.close()


@pytest.mark.servers
def test_backoff_doubles_up_to_its_cap_and_ends_after_the_last_attempt(tmp_path):
    with WebhookReceiver() as receiver:
        police = open_with_webhooks(tmp_path, ("console", receiver))
        sender = police.webhooks[0]
        police.close()
    waits = [sender.retry_at(n, NOW) for n in (1, 2, 3)]
    assert [w - NOW for w in waits[:2] if w] == [timedelta(seconds=0.05), timedelta(seconds=0.1)]
    assert waits[2] is None  # the third attempt was the last


def test_a_webhook_secret_that_cannot_be_read_is_a_clear_error(tmp_path):
    webhook = WebhookSettings(
        name="console", url="http://127.0.0.1:9/x", secret_file=tmp_path / "missing.secret"
    )
    with pytest.raises(FileNotFoundError, match=r"missing\.secret"):
        open_police(AlertSettings(path=tmp_path / "police.sqlite", webhooks=[webhook]))


@pytest.mark.servers
def test_a_claimed_delivery_is_not_sent_by_a_second_collector_until_its_lease_ends(tmp_path):
    with WebhookReceiver() as receiver:
        police = open_with_webhooks(tmp_path, ("console", receiver))
        [alert] = police.plates.record(
            "pole-7", plate_read(1, ts=NOW, display="68-B1 234.56"), NOW, backlog=False
        )
        other = PoliceDb(tmp_path / "police.sqlite")  # a second collector on the same file
        now = datetime.now(UTC)
        [mine] = police.deliveries.claim(MQTT, now, lease_s=10)
        assert mine.alert.id == alert.id
        assert Deliveries(other).claim(MQTT, now, lease_s=10) == []
        assert Deliveries(other).claim(MQTT, now + timedelta(seconds=5), lease_s=10) == []
        [taken_over] = Deliveries(other).claim(MQTT, now + timedelta(seconds=11), lease_s=10)
        assert taken_over.alert.id == alert.id  # the first one died without a word
        other.close()
        police.close()
