"""One module per way of reading the world. Sources know nothing of MQTT or the outbox:
they return readings or raise SourceError, and the poller decides what happens next."""

from edge_agent.sources.base import Source, SourceError

__all__ = ["Source", "SourceError"]
