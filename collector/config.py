"""The collector's configuration, loaded and checked like the agent's."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from iotwire.configfile import RelativePath, StrictModel, load_model
from iotwire.connection import BrokerSettings
from iotwire.topics import IDENT_PATTERN


class SqliteStoreSettings(StrictModel):
    """The embedded store: zero setup, for the demo, a laptop or a small site."""

    kind: Literal["sqlite"]
    path: RelativePath = Path("/var/lib/collector/telemetry.sqlite")


StoreSettings = Annotated[SqliteStoreSettings, Field(discriminator="kind")]


class IngestSettings(StrictModel):
    client_id: Annotated[str, Field(pattern=f"^{IDENT_PATTERN}$")] = "collector"
    share_group: Annotated[str, Field(pattern=f"^{IDENT_PATTERN}$")] | None = Field(
        default=None, description="MQTT 5 shared-subscription group, to split load"
    )


class CollectorConfig(StrictModel):
    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = SqliteStoreSettings(kind="sqlite")
    ingest: IngestSettings = IngestSettings()


def load_collector(path: Path) -> CollectorConfig:
    return load_model(path, CollectorConfig)
