#!/usr/bin/env python3
"""Write the wire contract's JSON Schemas into docs/wire/, one file per message, from
the models (iotwire/schemas.py). Run after changing a message; a test fails until then.

Run: .venv/bin/python scripts/write_wire_schemas.py
"""

from pathlib import Path

from iotwire.schemas import schema_file_text, wire_schemas

FOLDER = Path(__file__).resolve().parent.parent / "docs" / "wire"


def main() -> None:
    FOLDER.mkdir(exist_ok=True)
    for name, schema in wire_schemas().items():
        path = FOLDER / f"{name}.schema.json"
        path.write_text(schema_file_text(schema))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
