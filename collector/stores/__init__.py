"""Where time series go. Stores take decoded iotwire messages and know nothing of MQTT."""

from collector.stores.base import Store, WriteOutcome
from collector.stores.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "WriteOutcome"]
