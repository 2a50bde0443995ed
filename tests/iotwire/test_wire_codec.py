"""The decoder is the boundary with untrusted bytes: it returns a valid message or raises
DecodeError with a reason, and nothing else, whatever arrives."""

import base64
import contextlib
import json
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotwire import (
    Command,
    CommandAck,
    DecodeError,
    DecodeReason,
    Health,
    PlateRead,
    Reading,
    Sample,
    Status,
    Telemetry,
    decode,
    decode_any,
    encode,
)
from iotwire.backlog import marked
from iotwire.codec import MAX_PAYLOAD_BYTES, field_path
from iotwire.messages import MODEL_FOR_CHANNEL, ClockSync, Quality

# Drawing a message is most of these tests' cost (a few ms each, in Hypothesis itself), so
# the tests of whole messages draw fewer of them than the fuzz tests draw bytes and JSON.
# Examples differ from run to run, and the database (.hypothesis) replays any that failed.
MESSAGES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _slugs(then: str) -> st.SearchStrategy[str]:
    """Text matching `[a-z0-9][a-z0-9<then>]{0,20}`, as st.from_regex would draw it but two
    to three times faster: regex draws were half the time the tests of whole messages took."""
    first = string.ascii_lowercase + string.digits
    return st.tuples(st.sampled_from(first), st.text(first + then, max_size=20)).map("".join)


idents = _slugs("-")
names = _slugs("_.-")
finite = st.floats(allow_nan=False, allow_infinity=False)
seqs = st.integers(min_value=0, max_value=2**63 - 1)
zones = st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3))])
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
)
# Text on the wire may be anything printable: control characters (category Cc: C0, DEL,
# C1) are refused in every identifier, and a unit takes no backslash either.
printable = st.characters(exclude_categories=["Cc", "Cs"])
short_text = st.text(printable, min_size=1, max_size=40)
units = st.text(st.characters(exclude_categories=["Cc", "Cs"], exclude_characters="\\"), max_size=8)
clocks = st.sampled_from(ClockSync)

readings = st.builds(
    Reading,
    parameter=names,
    value=finite,
    unit=units,
    quality=st.sampled_from(Quality),
) | st.builds(
    Reading,
    parameter=names,
    value=st.none(),
    unit=units,
    quality=st.just(Quality.FAULT),
)
samples = st.builds(
    Sample, sensor=names, ts=times, readings=st.lists(readings, min_size=1, max_size=5).map(tuple)
)
telemetry = st.builds(
    Telemetry,
    device=idents,
    seq=seqs,
    clock=clocks,
    samples=st.lists(samples, min_size=1, max_size=4).map(tuple),
)
plates = st.builds(
    PlateRead,
    device=idents,
    seq=seqs,
    camera=names,
    ts=times,
    clock=clocks,
    text=st.text(string.digits + string.ascii_uppercase, min_size=5, max_size=12),
    display=st.text(printable, min_size=5, max_size=20),
    confidence=st.floats(0, 1),
    box=st.tuples(
        st.integers(0, 4000), st.integers(0, 4000), st.integers(1, 4000), st.integers(1, 4000)
    ),
    colour=st.sampled_from(["white", "yellow", "blue", "red", None]),
    crop_jpeg_b64=st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()) | st.none(),
)
health = st.builds(
    Health,
    device=idents,
    seq=seqs,
    ts=times,
    clock=clocks,
    boot_id=short_text,
    uptime_s=st.floats(0, 1e9),
    load1=st.floats(0, 64),
    mem_used_pct=st.floats(0, 100),
    disk_used_pct=st.floats(0, 100),
    cpu_temp_c=st.floats(-60, 150) | st.none(),
    outbox_depth=seqs,
    outbox_dropped=seqs,
    source_errors=st.dictionaries(names, st.integers(0, 10**9), max_size=4),
    bus_errors=st.dictionaries(names, st.integers(0, 10**9), max_size=3),
)
status = st.builds(
    Status,
    device=idents,
    seq=seqs,
    state=st.sampled_from(["online", "offline"]),
    ts=times,
    version=short_text,
    boot_id=short_text,
)
commands = st.builds(
    Command,
    device=idents,
    seq=seqs,
    id=short_text,
    name=st.sampled_from(["reload_config", "read_sensor", "report_status"]),
    args=st.dictionaries(
        names, st.text(max_size=10) | st.integers(-100, 100) | st.booleans() | finite, max_size=4
    ),
    ts=times,
)
acks = st.builds(
    CommandAck,
    device=idents,
    seq=seqs,
    id=short_text,
    ok=st.booleans(),
    ts=times,
    detail=st.text(max_size=50),
)
messages = st.one_of(telemetry, plates, health, status, commands, acks)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def decode_everything(data: bytes) -> None:
    """Run every decoder on `data`; only DecodeError may come out."""
    for model in MODEL_FOR_CHANNEL.values():
        with contextlib.suppress(DecodeError):
            decode(data, model)
    with contextlib.suppress(DecodeError):
        decode_any(data)


@MESSAGES
@given(messages)
def test_every_message_round_trips_exactly(message):
    data = encode(message)
    assert decode(data, type(message)) == message
    assert decode_any(data) == message
    assert encode(decode_any(data)) == data


@MESSAGES
@given(st.one_of(telemetry, plates, health))
def test_a_backlog_mark_changes_nothing_but_the_mark(message):
    assert not message.backlog
    assert decode(marked(encode(message)), type(message)) == message.model_copy(
        update={"backlog": True}
    )


@pytest.mark.parametrize("payload", [b"", b"[]", b"{}", b'"text"'])
def test_only_an_encoded_message_takes_a_backlog_mark(payload):
    with pytest.raises(ValueError, match="JSON object"):
        marked(payload)


@MANY
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_decode_errors(data):
    decode_everything(data)


@MANY
@given(json_values)
def test_random_json_raises_only_decode_errors(value):
    decode_everything(json.dumps(value).encode())


MUTATIONS = ("drop", "retype", "replace", "add")


def _mutate(obj, path, how, new_value):
    """Apply one mutation at the node `path` points to, inside nested dicts and lists."""
    target = obj
    for step in path[:-1]:
        target = target[step]
    key = path[-1]
    if how == "drop" and isinstance(target, dict):
        del target[key]
    elif how == "retype":
        target[key] = [target[key]] if not isinstance(target[key], list) else "text"
    elif how == "add" and isinstance(target, dict):
        target["unexpected_" + str(key)] = new_value
    else:
        target[key] = new_value


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


@MESSAGES
@given(messages, st.data(), json_values)
def test_mutated_messages_are_valid_or_rejected_with_a_reason(message, data, new_value):
    # Every kind of mutation, each at a path drawn for it: one drawn message serves four.
    encoded = encode(message)
    paths = list(_paths(json.loads(encoded)))
    for how in MUTATIONS:
        document = json.loads(encoded)
        _mutate(document, data.draw(st.sampled_from(paths), label=how), how, new_value)
        decode_everything(json.dumps(document).encode())


@settings(max_examples=300, deadline=None)
@given(messages, st.sampled_from(["v", "device", "seq", "kind"]))
def test_missing_envelope_field_is_named(message, field):
    document = json.loads(encode(message))
    del document[field]
    with pytest.raises(DecodeError) as caught:
        decode(json.dumps(document).encode(), type(message))
    assert caught.value.reason is DecodeReason.MISSING_FIELD
    assert caught.value.field == field


@settings(max_examples=300, deadline=None)
@given(messages, st.integers().filter(lambda v: v != 1) | st.text(max_size=3))
def test_other_schema_versions_are_refused_as_such(message, version):
    document = json.loads(encode(message))
    document["v"] = version
    for decoder in (lambda d: decode(d, type(message)), decode_any):
        with pytest.raises(DecodeError) as caught:
            decoder(json.dumps(document).encode())
        assert caught.value.reason is DecodeReason.WRONG_VERSION


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        (b"{not json", DecodeReason.BAD_JSON, ""),
        (b"\xff\xfe\x00", DecodeReason.BAD_JSON, ""),
        (b"[1, 2]", DecodeReason.WRONG_TYPE, ""),
        (
            b'{"v":1,"kind":"telemetry","device":"a","seq":"7","clock":"synced","samples":[]}',
            DecodeReason.WRONG_TYPE,
            "seq",
        ),
        (
            b'{"v":1,"kind":"telemetry","device":"a","seq":-1,"clock":"synced","samples":[]}',
            DecodeReason.INVALID_VALUE,
            "seq",
        ),
        (
            b'{"v":1,"kind":"telemetry","device":"A B","seq":1,"clock":"synced","samples":[]}',
            DecodeReason.INVALID_VALUE,
            "device",
        ),
        (b'{"v":1,"kind":"status","device":"a","seq":1}', DecodeReason.WRONG_KIND, "kind"),
    ],
)
def test_specific_reasons(payload, reason, field):
    with pytest.raises(DecodeError) as caught:
        decode(payload, Telemetry)
    assert caught.value.reason is reason
    assert caught.value.field == field


def test_only_fault_readings_may_lack_a_value():
    payload = (
        b'{"v":1,"kind":"telemetry","device":"a","seq":1,"clock":"synced","samples":[{"sensor":"s",'
        b'"ts":"2026-01-01T00:00:00Z","readings":[{"parameter":"p","value":null,"unit":"u",'
        b'"quality":"QUALITY"}]}]}'
    )
    assert (
        decode(payload.replace(b"QUALITY", b"fault"), Telemetry).samples[0].readings[0].value
        is None
    )
    with pytest.raises(DecodeError) as caught:
        decode(payload.replace(b"QUALITY", b"ok"), Telemetry)
    assert caught.value.reason is DecodeReason.INVALID_VALUE
    assert caught.value.field == "samples[0].readings[0]"


def test_non_finite_values_are_refused():
    good = encode(
        Telemetry(
            device="a",
            seq=1,
            clock=ClockSync.SYNCED,
            samples=(
                Sample(
                    sensor="s",
                    ts=datetime(2026, 1, 1, tzinfo=UTC),
                    readings=(Reading(parameter="p", value=1.5, unit="u"),),
                ),
            ),
        )
    )
    for bad in (b"NaN", b"Infinity", b"1e999"):
        with pytest.raises(DecodeError) as caught:
            decode(good.replace(b"1.5", bad), Telemetry)
        assert caught.value.field == "samples[0].readings[0].value"


def test_naive_timestamps_are_refused():
    payload = (
        b'{"v":1,"kind":"status","device":"a","seq":1,"state":"online",'
        b'"ts":"2026-01-01T00:00:00","version":"1","boot_id":"b"}'
    )
    with pytest.raises(DecodeError) as caught:
        decode(payload, Status)
    assert caught.value.field == "ts"


def test_oversized_payload_is_refused_before_parsing():
    with pytest.raises(DecodeError) as caught:
        decode_any(b" " * (MAX_PAYLOAD_BYTES + 1))
    assert caught.value.reason is DecodeReason.TOO_LARGE


def test_deeply_nested_json_is_a_decode_error():
    decode_everything(b"[" * 100_000 + b"]" * 100_000)


def _document(message) -> dict:
    return json.loads(encode(message))


WHEN = datetime(2026, 1, 1, tzinfo=UTC)
A_READING = Telemetry(
    device="ww-at-01",
    seq=1,
    clock=ClockSync.SYNCED,
    samples=(
        Sample(sensor="sonde", ts=WHEN, readings=(Reading(parameter="cod", value=1, unit="mg/L"),)),
    ),
)
A_STATUS = Status(device="ww-at-01", seq=1, state="online", ts=WHEN, version="0.3.1", boot_id="b-1")
A_PLATE = PlateRead(
    device="cam-1",
    seq=1,
    camera="north",
    ts=WHEN,
    clock=ClockSync.SYNCED,
    text="51G12345",
    display="51G-123.45",
    confidence=0.9,
    box=(1, 1, 10, 10),
)
AN_ACK = CommandAck(device="ww-at-01", seq=1, id="c-1", ok=True, ts=WHEN)
# Each identifier or unit on the wire, as the path to it in the payload.
TEXT_FIELDS = [
    pytest.param(message, path, id=f"{message.kind}.{field_path(path)}")
    for message, path in [
        (A_READING, ("samples", 0, "readings", 0, "unit")),
        (A_READING, ("samples", 0, "readings", 0, "parameter")),
        (A_READING, ("samples", 0, "sensor")),
        (A_READING, ("device",)),
        (A_STATUS, ("version",)),
        (A_STATUS, ("boot_id",)),
        (A_PLATE, ("display",)),
        (A_PLATE, ("camera",)),
        (AN_ACK, ("id",)),
    ]
]


@pytest.mark.parametrize(("message", "path"), TEXT_FIELDS)
@pytest.mark.parametrize("control", ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9f"])
def test_a_control_character_in_any_identifier_or_unit_is_an_invalid_value(message, path, control):
    document = _document(message)
    _mutate(document, path, "replace", "\nreading,device=ww-at-01".replace("\n", control))
    with pytest.raises(DecodeError) as caught:
        decode(json.dumps(document).encode(), type(message))
    assert caught.value.reason is DecodeReason.INVALID_VALUE
    assert caught.value.field == field_path(path)


@pytest.mark.parametrize("unit", ["mm\\", "a\\,b", "\\"])
def test_a_unit_with_a_backslash_is_an_invalid_value(unit):
    document = _document(A_READING)
    document["samples"][0]["readings"][0]["unit"] = unit
    with pytest.raises(DecodeError) as caught:
        decode(json.dumps(document).encode(), Telemetry)
    assert caught.value.reason is DecodeReason.INVALID_VALUE
    assert caught.value.field == "samples[0].readings[0].unit"


@pytest.mark.parametrize("unit", ["µg/m³", "°C", "m³/h", "mg/L as N, total", "pH=7 ref", ""])
def test_units_as_instruments_print_them_pass_the_wire(unit):
    document = _document(A_READING)
    document["samples"][0]["readings"][0]["unit"] = unit
    decoded = decode(json.dumps(document).encode(), Telemetry)
    assert decoded.samples[0].readings[0].unit == unit
