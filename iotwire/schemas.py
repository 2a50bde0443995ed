"""The wire contract as JSON Schema, for another vendor's box or console.

The schemas are generated from the models the agent and the collector themselves encode
and decode with, so they cannot drift from what is enforced: `docs/wire/` holds them as
files (written by `scripts/write_wire_schemas.py`) and a test fails when a file differs
from what the models say. Three rules the models carry are stated in each schema: `v`
and `kind` must be on the wire (the code defaults them, a payload must not rely on
that), unknown fields are refused (`additionalProperties: false`), and times are RFC 3339
date-times with an offset (`2026-11-30T08:15:00+07:00`), never naive.
"""

import json
from typing import Any

from iotwire.messages import (
    Batch,
    Command,
    CommandAck,
    Committed,
    Health,
    PlateAlert,
    PlateRead,
    Status,
    Telemetry,
    WireModel,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "urn:phuquoc:pq:v1:"
TIMES = (
    " Times are RFC 3339 date-times with an offset; unknown fields are refused; `v` and"
    " `kind` must be present."
)
# Each message by the name its schema file carries: the topic's channel, or the alert.
MESSAGES: dict[str, type[WireModel]] = {
    "telemetry": Telemetry,
    "plate": PlateRead,
    "health": Health,
    "status": Status,
    "cmd": Command,
    "cmd_ack": CommandAck,
    "committed": Committed,
    "batch": Batch,
    "plate_alert": PlateAlert,
}


def _state_envelope(schema: dict[str, Any]) -> None:
    stated = {"v", "kind"} & set(schema.get("properties", ()))
    if stated:
        schema["required"] = sorted(set(schema.get("required", ())) | stated)


def wire_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of the message named `name` (a key of MESSAGES); a batch's
    members must state their envelope as a message alone does."""
    schema = MESSAGES[name].model_json_schema(mode="validation")
    for part in (schema, *schema.get("$defs", {}).values()):
        _state_envelope(part)
    schema["description"] = (schema.get("description") or name).strip() + TIMES
    return {"$schema": DIALECT, "$id": f"{ID_PREFIX}{name}", **schema}


def wire_schemas() -> dict[str, dict[str, Any]]:
    return {name: wire_schema(name) for name in MESSAGES}


def schema_file_text(schema: dict[str, Any]) -> str:
    """A schema as its file in docs/wire/ holds it: stable, so a diff shows a change."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
