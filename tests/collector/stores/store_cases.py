"""Messages and store fixtures the store tests share."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from collector.config import InfluxStoreSettings, RetentionSettings
from collector.stores.base import ReceivedMessage, Store, WriteOutcome
from collector.stores.influxdb import InfluxStore
from iotwire.messages import ClockSync, Quality, Reading, Sample, Telemetry

# Data sits a day back from now, well inside any retention policy the server applies.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


def message(
    device: str, seq: int, minute: float, *, epoch: str | None = None, **values: float | None
) -> Telemetry:
    """Telemetry of one sample at T0 + `minute`; `epoch` None as from an agent older than
    epochs."""
    readings = tuple(
        Reading(
            parameter=p,
            value=v,
            unit="µg/m³",
            quality=Quality.OK if v is not None else Quality.FAULT,
        )
        for p, v in values.items()
    )
    sample = Sample(sensor="aqms", ts=T0 + timedelta(minutes=minute), readings=readings)
    return Telemetry(device=device, seq=seq, epoch=epoch, clock=ClockSync.SYNCED, samples=(sample,))


def with_quality(msg: Telemetry, quality: Quality) -> Telemetry:
    sample = msg.samples[0]
    readings = tuple(r.model_copy(update={"quality": quality}) for r in sample.readings)
    return msg.model_copy(update={"samples": (sample.model_copy(update={"readings": readings}),)})


def write(store: Store, site: str, msg: Telemetry, received: datetime = T0) -> WriteOutcome:
    [outcome] = store.write_batch([ReceivedMessage(site, msg, received)])
    return outcome


@contextmanager
def influx_store(url: str, **overrides: object) -> Iterator[InfluxStore]:
    """An InfluxDB store on a database of its own: tests share one server."""
    settings = InfluxStoreSettings.model_validate(
        {"kind": "influxdb", "url": url, "api": "v1", "database": f"t{uuid.uuid4().hex[:12]}"}
        | overrides
    )
    store = InfluxStore(settings, RetentionSettings())
    try:
        yield store
    finally:
        store.close()
