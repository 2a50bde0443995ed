"""MQTT topic layout: `{prefix}/v1/{site}/{device}/{channel}[/{name}]`.

Topics carry identity (site, device) so the broker's ACL can confine each device to its own
subtree; the payload repeats the device id so a message stays attributable once it has left
the broker.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

WIRE_LEVEL = "v1"
IDENT_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"
_IDENT = re.compile(IDENT_PATTERN)


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    PLATE = "plate"
    HEALTH = "health"
    STATUS = "status"
    CMD = "cmd"
    CMD_ACK = "cmd_ack"
    COMMITTED = "committed"
    BATCH = "batch"


class TopicError(ValueError):
    """A topic that is not part of the contract."""


@dataclass(frozen=True)
class Topic:
    prefix: str
    site: str
    device: str
    channel: Channel
    name: str | None = None

    def __str__(self) -> str:
        base = f"{self.prefix}/{WIRE_LEVEL}/{self.site}/{self.device}/{self.channel}"
        return f"{base}/{self.name}" if self.name else base


def _check_ident(kind: str, value: str) -> str:
    if not _IDENT.fullmatch(value):
        raise TopicError(
            f"{kind} {value!r} must be 1-63 lowercase letters, digits or '-', "
            "starting with a letter or digit"
        )
    return value


def topic_for(
    prefix: str, site: str, device: str, channel: Channel, name: str | None = None
) -> str:
    """Build a topic, refusing identifiers that would break the layout or the ACL."""
    _check_ident("prefix", prefix)
    _check_ident("site", site)
    _check_ident("device", device)
    if (channel is Channel.CMD) != (name is not None):
        raise TopicError("a command topic needs a command name, and only a command topic")
    if name is not None:
        _check_ident("command name", name.replace("_", "-"))
    return str(Topic(prefix, site, device, channel, name))


def parse_topic(topic: str, prefix: str) -> Topic:
    """Split a received topic into its parts, or raise TopicError saying what is wrong."""
    parts = topic.split("/")
    if len(parts) not in (5, 6) or parts[0] != prefix or parts[1] != WIRE_LEVEL:
        raise TopicError(f"topic {topic!r} is not under {prefix}/{WIRE_LEVEL}/site/device/...")
    _, _, site, device, channel_text, *rest = parts
    try:
        channel = Channel(channel_text)
    except ValueError:
        raise TopicError(f"topic {topic!r} has unknown channel {channel_text!r}") from None
    name = rest[0] if rest else None
    if (channel is Channel.CMD) != (name is not None):
        raise TopicError(f"topic {topic!r}: only cmd topics carry a command name")
    return Topic(prefix, _check_ident("site", site), _check_ident("device", device), channel, name)


def command_filter(prefix: str, site: str, device: str) -> str:
    """Every command to one device: what its agent subscribes to."""
    _check_ident("prefix", prefix)
    _check_ident("site", site)
    _check_ident("device", device)
    return f"{prefix}/{WIRE_LEVEL}/{site}/{device}/{Channel.CMD}/+"


def alerts_topic(prefix: str, kind: str) -> str:
    """`{prefix}/v1/alerts/{kind}`: where the collector publishes alerts for consoles."""
    _check_ident("prefix", prefix)
    _check_ident("alert kind", kind)
    return f"{prefix}/{WIRE_LEVEL}/alerts/{kind}"


def dispatch_topic(prefix: str, unit: str) -> str:
    """`{prefix}/v1/dispatch/{unit}`: where the collector sends a police unit the alerts
    at the poles it covers."""
    _check_ident("prefix", prefix)
    _check_ident("unit", unit)
    return f"{prefix}/{WIRE_LEVEL}/dispatch/{unit}"


def subscription(
    prefix: str, channel: Channel | None = None, *, share_group: str | None = None
) -> str:
    """A filter for one channel (or all) of every device, optionally as an MQTT 5 shared one."""
    filt = f"{prefix}/{WIRE_LEVEL}/+/+/{channel}" if channel else f"{prefix}/{WIRE_LEVEL}/+/+/#"
    if channel is Channel.CMD:
        filt += "/+"
    return f"$share/{share_group}/{filt}" if share_group else filt
