"""The agent's configuration: which box this is, where the broker is, what to read.

Loaded from YAML through iotwire.configfile, so every mistake is reported with the file and
the key path. Firmware profiles named by sources are resolved here too: a source pointing
at a profile that does not exist is a config error, found before the agent starts.
"""

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from edge_agent.profiles import Profile, find_profile, load_profile
from iotwire.configfile import ConfigError, RelativePath, StrictModel, load_model
from iotwire.connection import BrokerSettings
from iotwire.messages import DeviceId, Name

Seconds = Annotated[float, Field(gt=0, le=86400)]


class BoxKind(StrEnum):
    AIR = "air"
    DOMESTIC_WATER = "domestic_water"
    WASTEWATER = "wastewater"
    SEAWATER = "seawater"
    NOISE = "noise"
    CAMERA_POLE = "camera_pole"
    WIFI_AP = "wifi_ap"


class Location(StrictModel):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


class DeviceSettings(StrictModel):
    id: DeviceId
    site: DeviceId
    kind: BoxKind
    name: Annotated[str, Field(min_length=1, max_length=128)]
    location: Location | None = None


class ModbusTcpSource(StrictModel):
    """An analyser on Ethernet, or an RS-485 bus behind a Modbus TCP gateway."""

    type: Literal["modbus_tcp"]
    name: Name
    profile: str = Field(description="firmware profile name or path to its YAML file")
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    unit: Annotated[int, Field(ge=0, le=247)] = 1
    interval_s: Seconds = 60
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0


Source = Annotated[ModbusTcpSource, Field(discriminator="type")]


class HealthSettings(StrictModel):
    interval_s: Seconds = 60


class AgentConfig(StrictModel):
    device: DeviceSettings
    broker: BrokerSettings = BrokerSettings()
    state_dir: RelativePath = Field(
        default=Path("/var/lib/edge-agent"), description="outbox and sequence numbers live here"
    )
    profiles_dir: RelativePath | None = Field(
        default=None, description="extra folder searched for firmware profiles before built-ins"
    )
    sources: list[Source] = Field(default_factory=list)
    health: HealthSettings = HealthSettings()

    @model_validator(mode="after")
    def _unique_sources(self) -> Self:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return self


class LoadedAgent(StrictModel):
    """A validated config with every source's firmware profile loaded."""

    config: AgentConfig
    profiles: dict[str, Profile]


def load_agent(path: Path) -> LoadedAgent:
    config = load_model(path, AgentConfig)
    search = [config.profiles_dir] if config.profiles_dir else []
    profiles: dict[str, Profile] = {}
    for index, source in enumerate(config.sources):
        try:
            profile_path = find_profile(source.profile, search, path.parent)
        except LookupError as exc:
            raise ConfigError(path, [(f"sources[{index}].profile", str(exc))]) from None
        profiles[source.name] = load_profile(profile_path)
    return LoadedAgent(config=config, profiles=profiles)
