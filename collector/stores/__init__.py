"""Where the collector keeps what it receives: the embedded SQLite file or InfluxDB.

The InfluxDB store is imported only when a config names it: its client library takes
most of a second to import, which every `collector` command would otherwise pay on a
site that runs the embedded store.
"""

from collector.config import CollectorConfig, SqliteStoreSettings
from collector.stores.base import ReceivedMessage, Store, StoreUnavailableError, WriteOutcome
from collector.stores.sqlite import SqliteStore


def open_store(config: CollectorConfig) -> Store:
    if isinstance(config.store, SqliteStoreSettings):
        return SqliteStore(config.store.path, config.retention)
    from collector.stores.influxdb import InfluxStore

    return InfluxStore(config.store, config.retention)


__all__ = [
    "ReceivedMessage",
    "SqliteStore",
    "Store",
    "StoreUnavailableError",
    "WriteOutcome",
    "open_store",
]
