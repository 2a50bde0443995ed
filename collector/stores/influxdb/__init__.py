"""The InfluxDB store; see store.py."""

from collector.stores.influxdb.store import InfluxStore

__all__ = ["InfluxStore"]
