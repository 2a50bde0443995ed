"""Messages as InfluxDB line protocol: the schema of the InfluxDB store, in one place.

| measurement     | tags                                 | fields                                  |
|-----------------|--------------------------------------|-----------------------------------------|
| reading         | site, device, sensor, parameter, unit| value (absent for a fault), quality, seq|
| reading_hourly  | site, device, sensor, parameter, unit| mean, min, max, last, count, sum        |
| health          | site, device                         | uptime_s, load1, ..., source_errors.<n> |
| delivery        | device, epoch                        | seq, site, received (µs)                |
| delivery_hourly | device, epoch                        | messages, top, received, site           |
| duplicate       | device, epoch                        | seq                                     |
| device_status   | device                               | site, state, version, boot_id           |

Tags hold the low-cardinality identity of a series; everything per sample is a field (plate
text, when plates arrive, is a field too: a tag per plate would explode the series index).
A point's series plus its timestamp is its key, so writing a message twice stores it once.

A `delivery` point's time is derived from the message itself, its first sample time
floored to the second plus `seq` nanoseconds, so a redelivery lands on the same point and
the store can look it up by time, the one index InfluxDB has on fields' points.

The ledger's `epoch` tag is the box's sequence epoch (iotwire/messages.py): a box that lost
its state numbers from 1 again in a new series, whose points are never taken for the old
one's. Agents older than epochs send none, and their points carry no `epoch` tag, as do
the points written before the store knew epochs: InfluxQL reads a missing tag as the empty
string, so both count under the empty epoch, with nothing on the server to migrate.

The lines are formatted here rather than with influxdb-client's `Point`, which builds a
dict per point and costs more than the server's own write of the same lines.

Escaping follows the line protocol reference: in tag keys, tag values and field keys a
comma, an equals sign and a space are escaped with a backslash; in string field values a
double quote and a backslash are. A backslash in a tag is written as it is: InfluxDB 1.x
and 2.x keep a doubled one doubled, and none can end a tag value or stand before an
escaped character, so such a value is refused, as is any line break, which the protocol
cannot carry at all. The wire refuses all of these already (iotwire/messages.py); this
module refuses them again so that no value can write a line of its own.
"""

import functools
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from collector.query import to_micros
from iotwire.messages import Health, PlateRead, Quality, Status, Telemetry

_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING = str.maketrans({'"': r"\"", "\\": "\\\\"})
_NS_PER_S = 1_000_000_000
# A backslash the server would read as an escape of what follows it, or of nothing.
_UNCARRIED_BACKSLASH = re.compile(r"\\(?=[,= ]|$)")


class LineProtocolError(ValueError):
    """A value the line protocol cannot carry: the message it belongs to is refused."""


def tag(value: str) -> str:
    """A tag key, tag value or field key, escaped."""
    if _breaks_line(value) or ("\\" in value and _UNCARRIED_BACKSLASH.search(value)):
        raise LineProtocolError(f"{value!r} cannot be a tag or a field key in line protocol")
    return value.translate(_KEY)


def string_field(value: str) -> str:
    """A string field value, quoted and escaped."""
    if _breaks_line(value):
        raise LineProtocolError(f"{value!r} cannot be a string field in line protocol")
    return '"' + value.translate(_STRING) + '"'


def _breaks_line(value: str) -> bool:
    return "\n" in value or "\r" in value


def ns(ts: datetime) -> int:
    return to_micros(ts) * 1000


@functools.lru_cache(maxsize=65_536)
def reading_series(site: str, device: str, sensor: str, parameter: str, unit: str) -> str:
    """A series' key, escaped once: a fleet has a few thousand series and writes each
    of them again every few seconds."""
    unit_tag = f",unit={tag(unit)}" if unit else ""
    return (
        f"reading,device={tag(device)},site={tag(site)},sensor={tag(sensor)},"
        f"parameter={tag(parameter)}{unit_tag}"
    )


_QUALITY_FIELD = {q: f'quality="{q.value}"' for q in Quality}


def reading_lines(site: str, message: Telemetry) -> Iterator[str]:
    device, tail = message.device, f",seq={message.seq}i"
    for sample in message.samples:
        sensor, when = sample.sensor, f"{tail} {ns(sample.ts)}"
        for r in sample.readings:
            series = reading_series(site, device, sensor, r.parameter, r.unit)
            quality = _QUALITY_FIELD[r.quality]
            if r.value is None:
                yield f"{series} {quality}{when}"
            else:
                yield f"{series} value={r.value!r},{quality}{when}"


def health_line(site: str, message: Health) -> str:
    fields = [
        f"uptime_s={message.uptime_s!r}",
        f"load1={message.load1!r}",
        f"mem_used_pct={message.mem_used_pct!r}",
        f"disk_used_pct={message.disk_used_pct!r}",
        f"outbox_depth={message.outbox_depth}i",
        f"outbox_dropped={message.outbox_dropped}i",
        f"clock={string_field(message.clock.value)}",
        f"boot_id={string_field(message.boot_id)}",
        f"seq={message.seq}i",
    ]
    if message.cpu_temp_c is not None:
        fields.append(f"cpu_temp_c={message.cpu_temp_c!r}")
    fields += [f"source_errors.{tag(k)}={v}i" for k, v in message.source_errors.items()]
    fields += [f"bus_errors.{tag(k)}={v}i" for k, v in message.bus_errors.items()]
    series = f"health,device={tag(message.device)},site={tag(site)}"
    return f"{series} {','.join(fields)} {ns(message.ts)}"


def message_time(message: Telemetry | Health | PlateRead) -> datetime:
    return message.samples[0].ts if isinstance(message, Telemetry) else message.ts


def epoch_tag(epoch: str) -> str:
    """The ledger's epoch tag, none for the empty epoch: line protocol has no empty tag."""
    return f",epoch={tag(epoch)}" if epoch else ""


def delivery_key(message: Telemetry | Health | PlateRead) -> int:
    """The ledger point's time in ns: unique per (device, seq) within the epoch's series,
    equal for a redelivery."""
    second = to_micros(message_time(message)) // 1_000_000
    return second * _NS_PER_S + message.seq % _NS_PER_S


def delivery_line(site: str, message: Telemetry | Health | PlateRead, received: datetime) -> str:
    return (
        f"delivery,device={tag(message.device)}{epoch_tag(message.epoch or '')}"
        f" seq={message.seq}i,"
        f"site={string_field(site)},"
        f"received={to_micros(received)}i {delivery_key(message)}"
    )


def delivery_hourly_line(device: str, epoch: str, record: dict[str, Any]) -> str:
    """One device's ledger of one epoch over one hour, counted: what devices() reads
    beyond the raw ledger's recent tail."""
    return (
        f"delivery_hourly,device={tag(device)}{epoch_tag(epoch)}"
        f" messages={int(record['messages'])}i,"
        f"top={int(record['top'])}i,received={int(record['received'])}i,"
        f"site={string_field(str(record['site']))} {int(record['time']) * 1000}"
    )


def duplicate_line(
    message: Telemetry | Health | PlateRead, received: datetime, position: int
) -> str:
    """One point per repeated delivery; `position` in its batch keeps the repeats of one
    batch, which share a receive time, from landing on one point."""
    return (
        f"duplicate,device={tag(message.device)}{epoch_tag(message.epoch or '')}"
        f" seq={message.seq}i {ns(received) + position}"
    )


def status_line(site: str, status: Status, received: datetime) -> str:
    return (
        f"device_status,device={tag(status.device)} site={string_field(site)},"
        f"state={string_field(status.state)},version={string_field(status.version)},"
        f"boot_id={string_field(status.boot_id)} {ns(received)}"
    )
