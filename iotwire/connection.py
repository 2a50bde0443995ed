"""How both sides reach the broker: address, TLS and credentials, from config to client.

Agents and collectors connect the same way, with one credential each, so the settings and
the code that turns them into an MQTT client live here once.
"""

import random
import ssl
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from iotwire.configfile import RelativePath, StrictModel
from iotwire.topics import IDENT_PATTERN


class TlsSettings(StrictModel):
    ca_file: RelativePath = Field(description="CA that signed the broker's certificate")
    cert_file: RelativePath | None = Field(default=None, description="client certificate")
    key_file: RelativePath | None = None

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
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

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs a username")
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
