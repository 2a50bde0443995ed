"""A collector config for a test or benchmark: this broker, an SQLite store beside it."""

from pathlib import Path
from typing import Any, Protocol

import yaml


class Address(Protocol):
    host: str
    port: int


def collector_config(folder: Path, broker: Address, client_id: str, **sections: Any) -> Path:
    """`folder`/collector.yaml: a collector on this broker with an SQLite store in the same
    folder; `sections` add config sections or replace these."""
    config = folder / "collector.yaml"
    base = {
        "broker": {"host": broker.host, "port": broker.port},
        "store": {"kind": "sqlite", "path": str(folder / "store.sqlite")},
        "ingest": {"client_id": client_id},
    }
    config.write_text(yaml.safe_dump(base | sections))
    return config
