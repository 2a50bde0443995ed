"""Text from the wire in InfluxDB's line protocol: a unit can neither write a point of its
own nor lose its device's message, and every unit an instrument prints is stored and read
back exactly, from a real InfluxDB 1.x and through the v2 write path of VictoriaMetrics."""

import json
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest

from collector.config import InfluxStoreSettings
from collector.ingest.committer import Committer
from collector.query import Aggregate, AggregateQuery, LatestQuery, ReadingQuery
from collector.stores.base import ReceivedMessage
from collector.stores.influxdb import line_protocol as lp
from collector.stores.influxdb.http import InfluxHttp, Target
from iotwire import encode
from iotwire.messages import ClockSync, Quality, Reading, Sample, Telemetry
from iotwire.topics import Channel, topic_for
from testbed.waiting import wait_until
from tests.collector.stores.store_cases import T0, influx_store

DEVICE = "ww-at-01"
TOPIC = topic_for("pq", "dd", DEVICE, Channel.TELEMETRY)
INJECTED = "\nreading,device=ww-at-01"
# What analysers print, spaces, commas and equals signs included.
UNITS = ["µg/m³", "°C", "m³/h", "mg/L as N, total", "pH=7 ref", "%"]


def telemetry(seq: int, unit: str = "mg/L", value: float | None = None) -> Telemetry:
    reading = Reading(parameter="cod", value=float(seq) if value is None else value, unit=unit)
    sample = Sample(sensor="sonde", ts=T0 + timedelta(minutes=seq), readings=(reading,))
    return Telemetry(device=DEVICE, seq=seq, clock=ClockSync.SYNCED, samples=(sample,))


def with_unit(seq: int, unit: str) -> bytes:
    """A message as an agent would send it, but with `unit` put in on the way."""
    document = json.loads(encode(telemetry(seq)))
    document["samples"][0]["readings"][0]["unit"] = unit
    return json.dumps(document).encode()


def influxql(url: str, database: str, statement: str) -> list[dict]:
    data = urllib.parse.urlencode({"q": statement, "db": database}).encode()
    with urllib.request.urlopen(f"{url}/query", data=data, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read())["results"][0].get("series", [])


def measurements_and_series(url: str, database: str) -> tuple[set[str], list[str]]:
    found = influxql(url, database, "SHOW MEASUREMENTS")
    names = {row[0] for s in found for row in s["values"]}
    series = influxql(url, database, "SHOW SERIES")
    return names, sorted(row[0] for s in series for row in s["values"])


def test_a_unit_with_a_line_break_or_backslash_is_refused_and_its_batch_is_stored(influxd):
    arrivals = [
        (TOPIC, encode(telemetry(1)), False),
        (TOPIC, with_unit(2, INJECTED), False),
        (TOPIC, with_unit(3, "mm\\"), False),
        (TOPIC, with_unit(4, "\r"), False),
        (TOPIC, encode(telemetry(5)), False),
    ]
    with influx_store(influxd.url, database="refused_units") as store:
        result = Committer(store, "pq").commit(arrivals, T0)
        rows = store.query(ReadingQuery(limit=100))
        measurements, series = measurements_and_series(influxd.url, "refused_units")
    assert (result.stored, dict(result.invalid)) == (2, {"invalid_value": 3})
    assert result.invalid_from == {(DEVICE, "invalid_value"): 3}
    assert [(r.device, r.value, r.unit) for r in rows] == [
        (DEVICE, 1.0, "mg/L"),
        (DEVICE, 5.0, "mg/L"),
    ]
    assert measurements == {"reading", "delivery"}
    assert [s for s in series if s.startswith("reading")] == [
        "reading,device=ww-at-01,parameter=cod,sensor=sonde,site=dd,unit=mg/L"
    ]


def unchecked(seq: int, unit: str) -> Telemetry:
    """A message built without the wire's checks, as a bug or a future field might."""
    reading = Reading.model_construct(parameter="cod", value=float(seq), unit=unit)
    sample = Sample.model_construct(
        sensor="sonde", ts=T0 + timedelta(minutes=seq), readings=(reading,)
    )
    return Telemetry.model_construct(
        device=DEVICE, seq=seq, clock=ClockSync.SYNCED, samples=(sample,)
    )


def test_the_store_refuses_a_value_line_protocol_cannot_carry_and_keeps_the_rest(influxd):
    batch = [
        ReceivedMessage("dd", telemetry(1), T0),
        ReceivedMessage("dd", unchecked(2, INJECTED), T0),
        ReceivedMessage("dd", unchecked(3, "a\\,zone=evil"), T0),
        ReceivedMessage("dd", telemetry(4), T0),
    ]
    with influx_store(influxd.url, database="uncarried_units") as store:
        outcomes = store.write_batch(batch)
        rows = store.query(ReadingQuery(limit=100))
        [device] = store.devices()
        _, series = measurements_and_series(influxd.url, "uncarried_units")
        rejected = store.stats.rejected_messages
    assert [o.rejected is not None for o in outcomes] == [False, True, True, False]
    assert "cannot be a tag" in (outcomes[1].rejected or "")
    assert rejected == 2
    assert [r.value for r in rows] == [1.0, 4.0]
    # The refused messages reached the collector: counted in the ledger, no gaps.
    assert (device.messages, device.gaps) == (4, 0)
    assert [s for s in series if s.startswith("reading")] == [
        "reading,device=ww-at-01,parameter=cod,sensor=sonde,site=dd,unit=mg/L"
    ]


def test_line_protocol_escapes_exactly_what_the_reference_says():
    assert lp.tag("mg/L as N, total=1") == r"mg/L\ as\ N\,\ total\=1"
    assert lp.tag("a\\b") == "a\\b"  # 1.x and 2.x keep a backslash before another character
    assert lp.string_field('say "hi" \\ bye') == r'"say \"hi\" \\ bye"'
    for uncarried in ("mm\\", "a\\,b", "a\\ b", "a\\=b", "x\ny", "x\ry"):
        with pytest.raises(lp.LineProtocolError):
            lp.tag(uncarried)
    for uncarried in ("x\ny", "x\ry"):
        with pytest.raises(lp.LineProtocolError):
            lp.string_field(uncarried)


def test_units_with_spaces_commas_and_symbols_are_stored_and_read_back_exactly(influxd):
    arrivals = [(TOPIC, with_unit(n + 1, unit), False) for n, unit in enumerate(UNITS)]
    hour = T0.replace(minute=0)
    with influx_store(influxd.url) as store:
        result = Committer(store, "pq").commit(arrivals, T0)
        rows = store.query(ReadingQuery(limit=100))
        latest = store.latest(LatestQuery())
        store.roll_up(hour, hour + timedelta(hours=1))
        rolled = store.aggregate(
            AggregateQuery(
                start=hour,
                end=hour + timedelta(hours=1),
                window=timedelta(hours=1),
                functions=(Aggregate.COUNT,),
            ),
            rollup=True,
        )
    assert (result.stored, dict(result.invalid)) == (len(UNITS), {})
    assert [r.unit for r in rows] == UNITS
    assert sorted(r.unit for r in latest) == sorted(UNITS)
    assert sorted(r.unit for r in rolled) == sorted(UNITS)
    assert all(r.quality == Quality.OK for r in rows)


def test_units_with_spaces_commas_and_symbols_reach_victoria_metrics_exactly(victoria_metrics):
    settings = InfluxStoreSettings(
        kind="influxdb", url=victoria_metrics.url, api="v2", org="pq", bucket="telemetry"
    )
    http = InfluxHttp(settings)
    try:
        lines = [
            line
            for n, unit in enumerate(UNITS)
            for line in lp.reading_lines("dd", telemetry(n + 1, unit))
        ]
        http.start_write(lines, Target.RAW).written()
    finally:
        http.close()
    units: set[str] = set()

    def exported() -> bool:
        query = urllib.parse.urlencode({"match[]": '{__name__="reading_value"}'})
        with urllib.request.urlopen(f"{victoria_metrics.url}/api/v1/export?{query}") as answer:  # noqa: S310
            series = [json.loads(line) for line in answer.read().splitlines()]
        units.update(s["metric"]["unit"] for s in series)
        return len(units) >= len(UNITS)

    wait_until(exported, timeout_s=15, what="every unit exported")
    assert units == set(UNITS)
