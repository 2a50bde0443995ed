"""The wire contract's JSON Schemas: the files in docs/wire/ are what the models say, every
message the codec encodes validates against its schema, and what the codec refuses the
schema refuses too."""

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings

from iotwire import encode
from iotwire.schemas import MESSAGES, schema_file_text, wire_schema
from tests.iotwire.test_wire_codec import messages

FOLDER = Path(__file__).resolve().parents[2] / "docs" / "wire"
NAME_OF = {model: name for name, model in MESSAGES.items()}
VALIDATORS = {
    name: jsonschema.Draft202012Validator(
        wire_schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for name in MESSAGES
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_the_published_schema_file_is_what_the_models_say(name):
    path = FOLDER / f"{name}.schema.json"
    assert path.read_text() == schema_file_text(wire_schema(name)), (
        f"{path} is stale: run scripts/write_wire_schemas.py"
    )
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@settings(max_examples=300, deadline=None)
@given(messages)
def test_every_encoded_message_validates_against_its_schema(message):
    VALIDATORS[NAME_OF[type(message)]].validate(json.loads(encode(message)))


def telemetry() -> dict:
    return {
        "v": 1,
        "kind": "telemetry",
        "device": "air-dd-01",
        "seq": 7,
        "clock": "synced",
        "samples": [
            {
                "sensor": "pm",
                "ts": "2026-11-30T08:15:00+07:00",
                "readings": [{"parameter": "pm10", "value": 41.5, "unit": "µg/m³"}],
            }
        ],
    }


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda m: m.update(colour="red"), "Additional properties are not allowed"),
        (lambda m: m.pop("kind"), "'kind' is a required property"),
        (lambda m: m.update(v=2), "1 was expected"),
        (lambda m: m["samples"][0].update(ts="30/11/2026 08:15"), "is not a 'date-time'"),
        (lambda m: m["samples"][0].update(ts="2026-11-30T08:15:00"), "is not a 'date-time'"),
    ],
)
def test_the_schema_refuses_what_the_codec_refuses(change, why):
    VALIDATORS["telemetry"].validate(telemetry())
    message = telemetry()
    change(message)
    with pytest.raises(jsonschema.ValidationError, match=why):
        VALIDATORS["telemetry"].validate(message)
