"""How both sides reach the broker: address, TLS and credentials, from config to client.

Agents and collectors connect the same way, with one credential each, so the settings and
the code that turns them into an MQTT client live here once.
"""

import contextlib
import random
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, Self, TypedDict, Unpack

import aiomqtt
from aiomqtt import ProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import Field, model_validator

from iotruntime.configfile import RelativePath, StrictModel
from iotruntime.i18n import _
from iotwire.topics import IDENT_PATTERN


class TlsSettings(StrictModel):
    ca_file: RelativePath = Field(description="CA that signed the broker's certificate")
    cert_file: RelativePath | None = Field(default=None, description="client certificate")
    key_file: RelativePath | None = None

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(_("cert_file and key_file go together"))
        return self

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx


class BrokerSettings(StrictModel):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password_file: RelativePath | None = Field(
        default=None, description="file holding the password, kept out of the config itself"
    )
    tls: TlsSettings | None = None
    topic_prefix: Annotated[str, Field(pattern=f"^{IDENT_PATTERN}$")] = "pq"
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    reconnect_max_s: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=60.0, description="longest wait between reconnection attempts"
    )
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto", description="MQTT version; auto tries 5, then 3.1.1"
    )
    session_expiry_s: Annotated[int, Field(ge=60, le=2**32 - 1)] = Field(
        default=7 * 86_400, description="MQTT 5: how long the broker keeps a lost session"
    )

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.password_file is not None and self.username is None:
            raise ValueError(_("password_file needs a username"))
        return self

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiomqtt.Client: address, credential and TLS."""
        password = None
        if self.password_file is not None:
            password = self.password_file.read_text(encoding="utf-8").strip()
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "password": password,
            "keepalive": self.keepalive_s,
            "tls_context": self.tls.context() if self.tls else None,
        }


BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 60.0


def backoff_delay(attempt: int, rng: random.Random, cap_s: float = BACKOFF_CAP_S) -> float:
    """Exponential backoff with full jitter, so a fleet does not reconnect in lockstep."""
    return rng.uniform(0, min(cap_s, BACKOFF_FIRST_S * 2**attempt))


class ProtocolChoice:
    """MQTT 5 where the broker speaks it, 3.1.1 otherwise. With `auto` both are tried, in
    that order, until one connects; the one that did is used from then on. A 3.1.1-only
    broker may not refuse an MQTT 5 CONNECT but let it time out, so `auto` costs one
    connect timeout against such a broker, once."""

    def __init__(self, setting: Literal["auto", "5", "3.1.1"]) -> None:
        self._fixed = {"5": ProtocolVersion.V5, "3.1.1": ProtocolVersion.V311}.get(setting)
        self._learned: ProtocolVersion | None = None

    def candidates(self) -> list[ProtocolVersion]:
        known = self._fixed or self._learned
        return [known] if known else [ProtocolVersion.V5, ProtocolVersion.V311]

    def worked(self, version: ProtocolVersion) -> None:
        self._learned = version


def version_name(version: ProtocolVersion) -> str:
    return "5" if version is ProtocolVersion.V5 else "3.1.1"


def session_kwargs(
    version: ProtocolVersion, expiry_s: int, persistent: bool = True
) -> dict[str, Any]:
    """A persistent session in either version: 3.1.1 clean_session off, 5 clean_start
    off with a session expiry, without which an MQTT 5 session ends at disconnect. Or,
    not `persistent`, one that ends with the connection."""
    if not persistent:
        if version is ProtocolVersion.V5:
            return {"protocol": version, "clean_start": True}
        return {"protocol": version, "clean_session": True}
    if version is ProtocolVersion.V5:
        # paho-mqtt ships py.typed but leaves Properties.__init__ unannotated.
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = expiry_s
        return {"protocol": version, "clean_start": False, "properties": properties}
    return {"protocol": version, "clean_session": False}


class ClientArgs(TypedDict, total=False):
    """The aiomqtt.Client arguments a caller adds to the broker's and the session's."""

    identifier: str
    will: aiomqtt.Will
    timeout: float
    max_inflight_messages: int


@asynccontextmanager
async def mqtt_session(
    broker: BrokerSettings,
    choice: ProtocolChoice,
    prepare: Callable[[aiomqtt.Client], aiomqtt.Client] = lambda client: client,
    *,
    persistent: bool = True,
    **client_args: Unpack[ClientArgs],
) -> AsyncIterator[tuple[aiomqtt.Client, ProtocolVersion]]:
    """Connect with a persistent session (unless not `persistent`) in the best version
    the broker speaks. `prepare` sees each client before it connects (the collector turns
    on manual acknowledgements)."""
    failure = aiomqtt.MqttError("no MQTT version to try")
    async with contextlib.AsyncExitStack() as stack:
        for version in choice.candidates():
            client = prepare(
                aiomqtt.Client(
                    **broker.client_kwargs(),
                    **session_kwargs(version, broker.session_expiry_s, persistent),
                    **client_args,
                )
            )
            try:
                await stack.enter_async_context(client)
            except aiomqtt.MqttError as exc:
                failure = exc
                continue
            choice.worked(version)
            yield client, version
            return
    raise failure
