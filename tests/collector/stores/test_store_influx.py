"""What only the InfluxDB store does: the v2 write path, and what it does when the server
is down, failing, or refuses part of a batch. Counted, retried or dropped, nothing else
lost."""

import json
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from collector.config import InfluxStoreSettings, RetentionSettings
from collector.query import ReadingQuery
from collector.stores.base import ReceivedMessage, StoreUnavailableError
from collector.stores.influxdb import InfluxStore
from collector.stores.influxdb import line_protocol as lp
from collector.stores.influxdb.http import InfluxHttp, RejectedError, Target
from iotwire.messages import ClockSync, Health, Telemetry
from testbed.faulty_http import FaultyRelay
from testbed.influxdb2_api import InfluxDB2Api
from testbed.waiting import wait_until
from tests.collector.stores.store_cases import T0, influx_store, message

pytestmark = pytest.mark.servers  # InfluxDB, VictoriaMetrics or a local HTTP stand-in


def batch(first_seq: int, count: int, device: str = "air-1") -> list[ReceivedMessage]:
    return [
        ReceivedMessage("dd", message(device, seq, seq, pm10=float(seq), no2=seq / 2), T0)
        for seq in range(first_seq, first_seq + count)
    ]


def health(seq: int) -> Health:
    return Health(
        device="air-1",
        seq=seq,
        ts=T0 + timedelta(minutes=seq),
        clock=ClockSync.SYNCED,
        boot_id="b1",
        uptime_s=60.0,
        load1=0.2,
        mem_used_pct=30.0,
        disk_used_pct=10.0,
        outbox_depth=0,
        outbox_dropped=0,
        source_errors={"aqms": 3},
    )


def influxql(url: str, statement: str, database: str) -> dict:
    data = urllib.parse.urlencode({"q": statement, "db": database}).encode()
    with urllib.request.urlopen(f"{url}/query", data=data, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read())


def test_the_v2_write_path_lands_in_a_server_speaking_api_v2_write(victoria_metrics):
    settings = InfluxStoreSettings(
        kind="influxdb", url=victoria_metrics.url, api="v2", org="pq", bucket="telemetry"
    )
    http = InfluxHttp(settings)
    deliveries = batch(1, 20)
    try:
        lines = [line for d in deliveries for line in lp.reading_lines(d.site, d.message)]
        http.start_write(lines, Target.RAW).written()
    finally:
        http.close()
    got: set[tuple] = set()

    def exported() -> bool:
        # The server makes what it took searchable within a second or so.
        query = urllib.parse.urlencode({"match[]": '{__name__="reading_value"}'})
        with urllib.request.urlopen(f"{victoria_metrics.url}/api/v1/export?{query}") as answer:  # noqa: S310
            series = [json.loads(line) for line in answer.read().splitlines()]
        got.clear()
        got.update(
            (s["metric"]["device"], s["metric"]["parameter"], s["metric"]["unit"], ts, value)
            for s in series
            for ts, value in zip(s["timestamps"], s["values"], strict=True)
        )
        return len(got) >= 40

    wait_until(exported, timeout_s=15, what="40 values exported")
    expected = {
        ("air-1", r.parameter, r.unit, lp.ns(d.message.samples[0].ts) // 1_000_000, r.value)
        for d in deliveries
        for r in d.message.samples[0].readings
    }
    assert got == expected
    assert len(got) == 40


def v2_store(url: str, tmp_path: Path, token: str, **overrides: object) -> InfluxStore:
    (tmp_path / "token").write_text(f"{token}\n")
    settings = InfluxStoreSettings.model_validate(
        {"kind": "influxdb", "url": url, "api": "v2", "org": "pq"}
        | {"token_file": str(tmp_path / "token")}
        | overrides
    )
    return InfluxStore(settings, RetentionSettings())


def test_v2_start_up_maps_the_database_to_the_buckets_once_and_writes_with_the_token(
    tmp_path,
):
    with InfluxDB2Api("s3cret", "pq", ["telemetry", "telemetry_hourly", "other"]) as api:
        for first in (1, 4):  # a second collector start finds the mappings in place
            store = v2_store(api.url, tmp_path, "s3cret")
            try:
                assert not any(o.duplicate for o in store.write_batch(batch(first, 3)))
            finally:
                store.close()
        assert [
            (d["database"], d["retention_policy"], d["bucketID"], d["default"]) for d in api.dbrps
        ] == [
            ("telemetry", "raw", api.buckets["telemetry"], True),
            ("telemetry", "hourly", api.buckets["telemetry_hourly"], False),
        ]
        assert len(api.queries) == 2  # each batch's ledger lookup, answered once mapped
        written = {}
        for query, body in api.writes:
            assert (query["org"], query["precision"]) == ("pq", "ns")
            written.setdefault(query["bucket"], []).extend(body.decode().splitlines())
        assert len([ln for ln in written["telemetry"] if ln.startswith("reading,")]) == 6 * 2
        assert len([ln for ln in written["telemetry_hourly"] if ln.startswith("delivery,")]) == 6


def test_v2_start_up_names_a_missing_bucket(tmp_path):
    with InfluxDB2Api("s3cret", "pq", ["telemetry"]) as api:
        store = v2_store(api.url, tmp_path, "s3cret")
        try:
            with pytest.raises(StoreUnavailableError, match="'telemetry_hourly' does not exist"):
                store.write_batch(batch(1, 1))
        finally:
            store.close()
        assert api.writes == []


def test_v2_start_up_with_a_wrong_token_fails_the_batch_with_the_servers_answer(tmp_path):
    with InfluxDB2Api("s3cret", "pq", ["telemetry", "telemetry_hourly"]) as api:
        store = v2_store(api.url, tmp_path, "wrong", retry_for_s=1)
        try:
            with pytest.raises(StoreUnavailableError, match="HTTP 401"):
                store.write_batch(batch(1, 1))
        finally:
            store.close()
        assert (api.dbrps, api.writes) == ([], [])


def test_a_refused_message_is_dropped_alone_and_the_rest_is_stored(influxd):
    with influx_store(influxd.url) as store:
        # Make the server refuse one kind of point: the first `source_errors.aqms` it
        # sees in this shard is a string, so a health message's integer counter conflicts.
        # The string goes in at the refused message's own time: shards split at midnight
        # UTC, and a point an hour and more away may lie in the next day's shard.
        store.write_batch(batch(1, 1))
        refused = lp.health_line("dd", health(7)).replace(
            "source_errors.aqms=3i", 'source_errors.aqms="x"'
        )
        store._http.start_write([refused], Target.RAW).written()
        deliveries = [*batch(2, 5), ReceivedMessage("dd", health(7), T0), *batch(8, 5)]
        outcomes = store.write_batch(deliveries)
        assert [o.rejected is not None for o in outcomes] == [False] * 5 + [True] + [False] * 5
        assert "field type conflict" in outcomes[5].rejected
        assert store.stats.rejected_messages == 1
        stored = store.query(ReadingQuery(limit=10_000))
        assert sorted({r.ts for r in stored}) == [
            T0 + timedelta(minutes=m) for m in range(1, 13) if m != 7
        ]
        assert len(stored) == 2 * 11
        [device] = store.devices()
        # The refused message reached the collector: it is no gap, it is counted as refused.
        assert (device.messages, device.gaps, device.duplicates) == (12, 0, 0)


def test_a_server_error_is_retried_until_it_passes(influxd):
    with FaultyRelay(influxd.url) as relay, influx_store(relay.url, retry_for_s=30) as store:
        store.write_batch(batch(1, 1))  # creates the database and policies
        relay.failures_left = 3
        outcomes = store.write_batch(batch(2, 10))
        assert relay.failed == 3
        assert store.stats.retries == 3
        assert not any(o.duplicate or o.rejected for o in outcomes)
        assert len(store.query(ReadingQuery(limit=10_000))) == 2 * 11
        assert store.devices()[0].messages == 11


def test_a_server_error_that_outlasts_the_retries_fails_the_batch_whole(influxd):
    with FaultyRelay(influxd.url) as relay, influx_store(relay.url, retry_for_s=2) as store:
        store.write_batch(batch(1, 1))
        relay.failures_left = 10_000
        relay.failure_status = 503
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="HTTP 503"):
            store.write_batch(batch(2, 10))
        assert time.monotonic() - started < 2 + 2  # bounded by retry_for_s
        relay.failures_left = 0
        # The collector acknowledged nothing, so the broker delivers the batch again.
        outcomes = store.write_batch(batch(2, 10))
        assert not any(o.duplicate for o in outcomes)
        assert len(store.query(ReadingQuery(limit=10_000))) == 2 * 11
        [device] = store.devices()
        assert (device.messages, device.duplicates, device.gaps) == (11, 0, 0)


def test_when_a_begun_batch_fails_the_batch_begun_after_it_fails_too(influxd):
    with FaultyRelay(influxd.url) as relay, influx_store(relay.url, retry_for_s=1) as store:
        store.write_batch(batch(1, 1))
        relay.failures_left = 10_000
        first, second = store.begin_batch(batch(2, 5)), store.begin_batch(batch(7, 5))
        with pytest.raises(RuntimeError, match="in the order they began"):
            second.outcomes()
        with pytest.raises(StoreUnavailableError, match="HTTP 500"):
            first.outcomes()
        relay.failures_left = 0
        # The second counted the first's messages as delivered, so it cannot stand alone,
        # though the server would now take it.
        with pytest.raises(StoreUnavailableError, match="a batch begun before it failed"):
            second.outcomes()
        for redelivered in (batch(2, 5), batch(7, 5)):
            assert not any(o.duplicate for o in store.write_batch(redelivered))
        assert len(store.query(ReadingQuery(limit=10_000))) == 2 * 11
        [device] = store.devices()
        assert (device.messages, device.duplicates, device.gaps) == (11, 0, 0)


def test_a_stopped_server_fails_the_batch_and_a_restarted_one_takes_it(own_influxd):
    with influx_store(own_influxd.url, retry_for_s=1) as store:
        store.write_batch(batch(1, 5))
        own_influxd.stop()
        with pytest.raises(StoreUnavailableError, match="InfluxDB at"):
            store.write_batch(batch(6, 5))
        own_influxd.start()
        store.write_batch(batch(6, 5))
        store.write_batch(batch(6, 5))  # and once more, as a redelivery would
        assert len(store.query(ReadingQuery(limit=10_000))) == 2 * 10
        [device] = store.devices()
        assert (device.messages, device.duplicates, device.gaps) == (10, 5, 0)


def test_a_malformed_line_is_a_rejection_not_a_retry(influxd):
    influxql(influxd.url, 'CREATE DATABASE "t4xx"', "t4xx")
    settings = InfluxStoreSettings(
        kind="influxdb", url=influxd.url, api="v1", database="t4xx", raw_policy="autogen"
    )
    http = InfluxHttp(settings)
    try:
        with pytest.raises(RejectedError, match="HTTP 400"):
            http.start_write(["reading,device=a value=1 notatime"], Target.RAW).written()
    finally:
        http.close()


def test_ledger_points_from_before_epochs_count_under_the_empty_epoch(influxd):
    # What the store wrote before it knew epochs, by hand: seq 1, 2 and 4 in hour 0 (3
    # lost) rolled up, the horizon after it, seq 5 and 6 in hour 1, and one repeat.
    def sent(seq: int) -> Telemetry:
        return message("air-1", seq, seq * 10 + (30 if seq > 4 else 0), pm10=1.0)

    legacy = [
        f'delivery,device=air-1 seq={seq}i,site="dd",received={seq}i {lp.delivery_key(sent(seq))}'
        for seq in (1, 2, 4, 5, 6)
    ] + [
        f'delivery_hourly,device=air-1 messages=3i,top=4i,received=4i,site="dd" {lp.ns(T0)}',
        f"ledger_rollup done=1i {lp.ns(T0 + timedelta(hours=1))}",
        f"duplicate,device=air-1 seq=2i {lp.ns(T0 + timedelta(minutes=30))}",
    ]
    with influx_store(influxd.url) as store:
        store.rollup_horizon()  # makes the database and its policies
        store._http.start_write(legacy, Target.HOURLY).written()

        def accounts() -> tuple[int, int, int, int]:
            [device] = store.devices()
            return (device.messages, device.duplicates, device.gaps, device.state_resets)

        assert accounts() == (5, 1, 1, 0)
        outcomes = store.write_batch(
            [
                ReceivedMessage("dd", m, T0)
                for m in (
                    sent(2),  # a repeat from the old agent
                    message("air-1", 1, 130, epoch="0123456789abcdef", pm10=1.0),  # upgraded
                    message("air-1", 1, 131, epoch="fedcba9876543210", pm10=1.0),  # reset
                )
            ]
        )
        assert [o.duplicate for o in outcomes] == [True, False, False]
        assert accounts() == (7, 2, 1, 1)
        # Rolled up again, the old hours land on the old rollup's points, not beside them.
        store.roll_up(T0, T0 + timedelta(hours=3))
        assert accounts() == (7, 2, 1, 1)
