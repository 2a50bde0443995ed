"""Where the collector keeps what it receives: the embedded SQLite file or InfluxDB."""

from collector.config import CollectorConfig, SqliteStoreSettings
from collector.stores.base import ReceivedMessage, Store, StoreUnavailableError, WriteOutcome
from collector.stores.influxdb import InfluxStore
from collector.stores.sqlite import SqliteStore


def open_store(config: CollectorConfig) -> Store:
    if isinstance(config.store, SqliteStoreSettings):
        return SqliteStore(config.store.path, config.retention)
    return InfluxStore(config.store, config.retention)


__all__ = [
    "InfluxStore",
    "ReceivedMessage",
    "SqliteStore",
    "Store",
    "StoreUnavailableError",
    "WriteOutcome",
    "open_store",
]
