"""The collector's configuration, loaded and checked like the agent's."""

from datetime import time
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from collector.i18n import services
from collector.wall.scenarios import WallSettings
from iotruntime.configfile import RelativePath, StrictModel, load_model
from iotruntime.connection import BrokerSettings
from iotwire.topics import IDENT_PATTERN

_ = services.gettext
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]


class SqliteStoreSettings(StrictModel):
    """The embedded store: zero setup, for the demo, a laptop or a small site."""

    kind: Literal["sqlite"]
    path: RelativePath = Path("/var/lib/collector/telemetry.sqlite")


class InfluxStoreSettings(StrictModel):
    """An InfluxDB server: `v2` writes to /api/v2/write (InfluxDB 2.x, 3.x and 1.8+),
    `v1` to /write for 1.x servers older than 1.8. Queries are InfluxQL in both cases."""

    kind: Literal["influxdb"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")] = "http://127.0.0.1:8086"
    api: Literal["v2", "v1"] = "v2"
    database: Identifier = Field(default="telemetry", description="InfluxQL database (v1, DBRP)")
    raw_policy: Identifier = Field(default="raw", description="retention policy of raw data")
    hourly_policy: Identifier = Field(default="hourly", description="policy of hourly rollups")
    org: str | None = Field(default=None, description="v2: organisation")
    bucket: Identifier = Field(default="telemetry", description="v2: bucket of raw data")
    hourly_bucket: Identifier = Field(default="telemetry_hourly", description="v2: rollup bucket")
    token_file: RelativePath | None = Field(default=None, description="v2: file with the token")
    username: str | None = Field(default=None, description="v1: user")
    password_file: RelativePath | None = Field(default=None, description="v1: password file")
    ca_file: RelativePath | None = Field(default=None, description="CA for an https url")
    create_dbrp: bool = Field(
        default=True, description="v2: map database/policy to the buckets when unmapped"
    )
    manage_policies: bool = Field(
        default=True, description="v1: create the database and its retention policies"
    )
    batch_points: Annotated[int, Field(ge=1, le=100_000)] = 5000
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    retry_for_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=30.0, description="keep retrying 5xx and network errors this long"
    )

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.password_file is not None and self.username is None:
            raise ValueError(_("password_file needs a username"))
        if self.api == "v1" and self.token_file is not None:
            raise ValueError(_("token_file is for api v2; api v1 uses username and password_file"))
        if self.api == "v2" and self.org is None:
            raise ValueError(_("api v2 needs `org`, the organisation that owns the buckets"))
        return self

    def secret(self) -> str | None:
        path = self.token_file or self.password_file
        return path.read_text(encoding="utf-8").strip() if path else None


StoreSettings = Annotated[SqliteStoreSettings | InfluxStoreSettings, Field(discriminator="kind")]


class RetentionSettings(StrictModel):
    """How long data is kept. The hourly rollup is recomputed over `late_hours`, so a
    backlog that arrives after an outage still lands in its hour's aggregates: keep it at
    least as long as an agent's outbox holds messages."""

    raw_days: Annotated[int, Field(ge=1, le=36_500)] = 90
    hourly_days: Annotated[int, Field(ge=1, le=36_500)] = 1825
    late_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 48
    every_s: Annotated[float, Field(ge=1, le=86_400)] = Field(
        default=600.0, description="how often the rollup and purge run"
    )

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.hourly_days < self.raw_days:
            raise ValueError(_("hourly_days must not be shorter than raw_days"))
        if self.late_hours > self.raw_days * 24:
            raise ValueError(_("late_hours must fit inside raw_days: the rollup reads raw data"))
        return self


class IngestSettings(StrictModel):
    client_id: Annotated[str, Field(pattern=f"^{IDENT_PATTERN}$")] = "collector"
    share_group: Annotated[str, Field(pattern=f"^{IDENT_PATTERN}$")] | None = Field(
        default=None, description="MQTT 5 shared-subscription group, to split load"
    )
    batch_messages: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=500, description="most messages committed to the store at once"
    )
    spool_path: RelativePath | None = Field(
        default=None,
        description="local file where messages wait, acknowledged, while the store is down"
        " or a flood of backlog outruns it",
    )
    silent_after_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=300.0,
        description="an online device not heard from this long is shown as silent",
    )
    commit_process: bool = Field(
        default=True,
        description="validate and commit in a second process, on a core of its own",
    )


def _tls_pair(cert: Path | None, key: Path | None) -> None:
    """A certificate needs its key and a key its certificate; neither is plain HTTP."""
    if (cert is None) != (key is None):
        given, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        raise ValueError(
            _("{given} is set but {missing} is not: give both for https, or neither").format(
                given=given, missing=missing
            )
        )


class MetricsSettings(StrictModel):
    """The Prometheus endpoint: counters that prove delivery, scraped over HTTP. It binds
    to its own address, loopback unless told otherwise; a scraper on another host is asked
    for the token in `token_file` (Prometheus: `authorization: {credentials_file: ...}`),
    over https with `tls_cert` and `tls_key`."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 9108
    token_file: RelativePath | None = Field(
        default=None, description="file holding the bearer token a scrape must send"
    )
    tls_cert: RelativePath | None = Field(default=None, description="PEM certificate, for https")
    tls_key: RelativePath | None = Field(default=None, description="its PEM private key")

    @model_validator(mode="after")
    def _tls(self) -> Self:
        _tls_pair(self.tls_cert, self.tls_key)
        return self

    def token(self) -> str | None:
        return self.token_file.read_text(encoding="utf-8").strip() if self.token_file else None


# The largest body a client sends is a watchlist CSV for POST /watchlist/import, some 60
# bytes a plate: 10 MB is over 150,000 plates, far more than any watchlist, and small enough
# that a few requests at once do not crowd a small server's memory.
DEFAULT_MAX_BODY_MB = 10


class ApiSettings(StrictModel):
    """The HTTP API, served by `collector run`; users and their tokens live in `users_path`.

    `docs` decides who reads the OpenAPI document (/openapi.json, /docs, /redoc): `token`,
    any user with a valid token; `public`, anyone who reaches the port (a browser cannot
    send a token, so browsing /docs needs this); `off`, nobody. It lists every endpoint,
    the police ones too, and is nobody's business without a token: `token` by default.
    """

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    users_path: RelativePath = Path("/var/lib/collector/users.sqlite")
    tls_cert: RelativePath | None = Field(
        default=None, description="PEM certificate (with its chain), for https"
    )
    tls_key: RelativePath | None = Field(default=None, description="its PEM private key")
    max_body_mb: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=DEFAULT_MAX_BODY_MB, description="larger request bodies are refused, 413"
    )
    docs: Literal["public", "token", "off"] = "token"

    @model_validator(mode="after")
    def _tls(self) -> Self:
        _tls_pair(self.tls_cert, self.tls_key)
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


StationKind = Literal[
    "air", "surface_water", "seawater", "wastewater", "domestic_water", "noise", "weather"
]
StationZone = Literal["special", "normal", "coastal", "nearshore"]
# The zones a kind's regulation tells apart: QCVN 26's noise zones, QCVN 10:2023's coastal
# (shore to 6 nautical miles, Table 2) and nearshore (6 to 24, Table 3) seawater.
ZONES: dict[str, tuple[StationZone, ...]] = {
    "noise": ("special", "normal"),
    "seawater": ("coastal", "nearshore"),
}
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,32}$")]


class StationSettings(StrictModel):
    """What the compliance exports must know of a device that the wire does not say: the
    kind of station it is (which decides the regulation), and how that regulation applies
    to it (a wastewater column and K factor, a noise or seawater zone, whether the facility
    predates a replaced regulation, AQI qualification)."""

    kind: StationKind
    name: str = ""
    aqi: bool = Field(
        default=False,
        description="qualified to publish VN_AQI (Circular 10/2021, Articles 30-31)",
    )
    interval_s: Annotated[float, Field(gt=0, le=3600)] | None = Field(
        default=None, description="sampling interval; inferred from the data when unset"
    )
    column: Literal["A", "B"] | None = Field(default=None, description="wastewater column")
    k: Annotated[float, Field(gt=0, le=10)] = Field(
        default=1.0, description="QCVN 14:2008 K factor of the discharging facility"
    )
    zone: StationZone | None = Field(
        default=None, description="noise zone (special, normal); seawater (coastal, nearshore)"
    )
    existing_facility: bool = Field(
        default=True,
        description="approved before a replaced regulation's successor took effect, so the "
        "transition keeps the old one (QCVN 14:2008 to 2031-12-31, QCVN 26:2010 to 2026-12-31)",
    )
    tt10_code: Code | None = Field(
        default=None, description="station code in Circular 10/2021 file names; none, no files"
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        if (self.kind == "wastewater") != (self.column is not None):
            raise ValueError(_("column (A or B) is set for wastewater stations and only for them"))
        zones = ZONES.get(self.kind, ())
        if zones and self.zone not in zones:
            raise ValueError(
                _("a {kind} station needs zone: {zones}").format(
                    kind=self.kind,
                    # Translators: between the zones a station may take, "special or normal".
                    zones=_(" or ").join(zones),
                )
            )
        if not zones and self.zone is not None:
            raise ValueError(_("zone is set for noise and seawater stations only"))
        if self.kind != "wastewater" and self.k != 1.0:
            raise ValueError(_("k applies to wastewater stations only"))
        if self.aqi and self.kind != "air":
            raise ValueError(_("aqi applies to air stations only"))
        return self


class ExportSettings(StrictModel):
    """How averages are formed for the environmental officer. No legal text found states
    the share of valid samples an average needs; these defaults are the common 75 %."""

    timezone: str = "Asia/Ho_Chi_Minh"
    hour_min_share: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.75, description="an hour counts with this share of its expected samples"
    )
    day_min_hours: Annotated[int, Field(ge=1, le=24)] = Field(
        default=18, description="a daily mean needs this many valid hours"
    )
    eight_hour_min_hours: Annotated[int, Field(ge=1, le=8)] = Field(
        default=6, description="an 8-hour mean needs this many valid hours"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(_("unknown time zone {name!r}").format(name=name)) from None
        return name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Tt10UploadSettings(StrictModel):
    """Sending the station data files to the authority's server. The password is read from
    `password_file`, so the config can be shown and kept in version control. `ftps` is
    explicit FTPS (AUTH TLS on the FTP port), checked against `ca_file` or the system's
    CAs; `sftp` (the `tt10` extra) is SSH's file transfer, the server known only by its
    host key in `known_hosts`, since an unknown key would hand the files and password to
    whoever answers; plain `ftp` sends the password in clear and is for servers that offer
    nothing else. The port defaults to the protocol's: 21, or 22 for sftp. A failed attempt
    is retried with exponential backoff (full jitter, doubling from half a second up to
    `backoff_max_s`) for as long as the collector runs."""

    protocol: Literal["ftp", "ftps", "sftp"] = "ftps"
    host: Annotated[str, Field(pattern=r"^[A-Za-z0-9.:-]{1,253}$")]
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=21, description="the server's port; 21, or 22 for sftp, when not given"
    )
    username: Annotated[str, Field(min_length=1, max_length=128)]
    password_file: RelativePath = Field(description="file holding the server's password")
    remote_dir: Annotated[str, Field(pattern=r"^[^\x00-\x1f]{0,1024}$")] = Field(
        default="", description="folder on the server the files go to; empty, the login folder"
    )
    ca_file: RelativePath | None = Field(default=None, description="ftps: CA of the server")
    known_hosts: RelativePath | None = Field(
        default=None, description="sftp: the server's host key, an OpenSSH known_hosts file"
    )
    ledger_path: RelativePath | None = Field(
        default=None, description="what was sent; default .tt10-ledger.sqlite in the directory"
    )
    scan_every_s: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=30.0, description="how often the directory is looked at for new files"
    )
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 30.0
    backoff_max_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=600.0, description="longest wait between two tries while the server fails"
    )

    @model_validator(mode="before")
    @classmethod
    def _port_of_the_protocol(cls, data: object) -> object:
        """The default port depends on another key, so it is filled in before validation:
        the model is frozen, and `port` stays a plain int for everything that reads it."""
        if isinstance(data, dict) and "port" not in data and data.get("protocol") == "sftp":
            return data | {"port": 22}
        return data

    @model_validator(mode="after")
    def _server_check_of_the_protocol(self) -> Self:
        """Each protocol checks the server its own way; a key for the other is a mistake
        that would leave the server unchecked while the config seems to check it."""
        if self.protocol == "sftp":
            if self.known_hosts is None:
                raise ValueError(
                    _(
                        "protocol sftp needs known_hosts, a file with the server's host key"
                        " (as ssh-keyscan prints it, checked with the authority)"
                    )
                )
            if self.ca_file is not None:
                raise ValueError(_("ca_file is for ftps; sftp checks the server by known_hosts"))
        elif self.known_hosts is not None:
            raise ValueError(
                _("known_hosts is for sftp, not {protocol}").format(protocol=self.protocol)
            )
        return self

    def password(self) -> str:
        """Read when the uploader starts, so a missing file stops `collector run` at once."""
        return self.password_file.read_text(encoding="utf-8").strip()


class Tt10Settings(StrictModel):
    """Station data files for the provincial authority (Circular 10/2021/TT-BTNMT), one
    file per station and interval, written by `collector run` as intervals close.

    `facility` is the facility code of every station; `facilities` gives station groups
    a code of their own (facility code -> device ids), for a collector that serves
    several facilities (a treatment plant, a water plant, the air network)."""

    directory: RelativePath
    province: Code
    facility: Code
    facilities: dict[Code, list[Annotated[str, Field(pattern=f"^{IDENT_PATTERN}$")]]] = Field(
        default_factory=dict, description="facility code -> its stations, over `facility`"
    )
    every_s: Annotated[int, Field(ge=60, le=3600)] = Field(
        default=300, description="one file per station per interval of this length"
    )
    delay_s: Annotated[int, Field(ge=0, le=3600)] = Field(
        default=120, description="wait this long after an interval for late samples"
    )
    catch_up_h: Annotated[int, Field(ge=1, le=24 * 60)] = Field(
        default=48, description="after a stop, write the missed intervals back this far"
    )
    codes: dict[str, Code] = Field(
        default_factory=dict, description="parameter -> file code, over the built-in table"
    )
    upload: Tt10UploadSettings | None = Field(
        default=None, description="send the files to the authority's FTP server"
    )

    @model_validator(mode="after")
    def _whole_intervals(self) -> Self:
        if 86_400 % self.every_s:
            raise ValueError(_("every_s must divide a day, so files fall on the same times daily"))
        return self

    @model_validator(mode="after")
    def _one_facility_per_station(self) -> Self:
        seen: dict[str, str] = {}
        for code, devices in self.facilities.items():
            for device in devices:
                if device in seen:
                    raise ValueError(
                        _("facilities: station {device} is in both {first} and {second}").format(
                            device=device, first=seen[device], second=code
                        )
                    )
                seen[device] = code
        return self

    def facility_of(self, device: str) -> str:
        return next((c for c, ds in self.facilities.items() if device in ds), self.facility)

    @property
    def ledger_path(self) -> Path | None:
        """Where the uploader's ledger lives, when there is an uploader."""
        if self.upload is None:
            return None
        return self.upload.ledger_path or self.directory / ".tt10-ledger.sqlite"


class WebhookSettings(StrictModel):
    """An HTTP endpoint that receives every alert as a signed POST: the body is the
    alert's JSON, `X-PQ-Signature` is `sha256=` and the HMAC-SHA256, keyed with the shared
    secret, of the `X-PQ-Timestamp` header, a dot and the body. A failed POST is retried
    with exponential backoff; after `attempts` the delivery is dead-lettered."""

    name: Identifier
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
    secret_file: RelativePath = Field(description="file holding the shared HMAC secret")
    ca_file: RelativePath | None = Field(default=None, description="CA for an https url")
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    attempts: Annotated[int, Field(ge=1, le=100)] = 8
    backoff_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=2.0, description="wait before the second attempt; doubled for each one after"
    )
    backoff_max_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0

    def secret(self) -> bytes:
        return self.secret_file.read_bytes().strip()


Corner = tuple[Annotated[float, Field(ge=-90, le=90)], Annotated[float, Field(ge=-180, le=180)]]


class UnitSettings(StrictModel):
    """A police unit and what it covers: an area (a polygon of lat, lon corners) and/or a
    list of poles (device ids). An alert at a pole it covers is dispatched to it on MQTT
    (`{prefix}/v1/dispatch/{name}`) and, with `webhook`, as a signed POST like the alert
    webhooks'."""

    name: Identifier
    area: Annotated[list[Corner], Field(min_length=3)] | None = None
    poles: list[Identifier] = Field(default_factory=list)
    webhook: WebhookSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _webhook_named_for_the_unit(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("webhook"), dict):
            data["webhook"] = {"name": f"unit-{data.get('name')}", **data["webhook"]}
        return data

    @model_validator(mode="after")
    def _covers_something(self) -> Self:
        if self.area is None and not self.poles:
            raise ValueError(_("a unit covers an area, poles or both; give at least one"))
        return self


class AlertSettings(StrictModel):
    """Plate reads, the police watchlist, alerts, their deliveries and the audit log, in a
    database of their own. A collector serving camera poles needs it: without it plates
    are not subscribed to, and the poles' plate messages count as gaps."""

    path: RelativePath = Path("/var/lib/collector/police.sqlite")
    window_s: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=300.0, description="the same plate at the same pole alerts once this long"
    )
    reads_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=30, description="plate reads and their crops are purged after this long"
    )
    alerts_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=365, description="alerts, and the reads they hold, are purged after this long"
    )
    purge_every_s: Annotated[float, Field(ge=60, le=86_400)] = 3600.0
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    units: list[UnitSettings] = Field(default_factory=list)
    escalate_after_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=120.0,
        description="an alert no unit has acknowledged this long goes to the duty desk",
    )

    @model_validator(mode="after")
    def _retention(self) -> Self:
        if self.alerts_days < self.reads_days:
            raise ValueError(_("alerts_days must not be shorter than reads_days"))
        names = [w.name for w in self.webhooks] + [
            u.webhook.name for u in self.units if u.webhook is not None
        ]
        if len(set(names)) != len(names):
            raise ValueError(_("webhook names must be unique, the units' included"))
        units = [u.name for u in self.units]
        if len(set(units)) != len(units):
            raise ValueError(_("unit names must be unique"))
        return self


AlarmSeverity = Literal["info", "warning", "critical"]
AlarmRole = Literal["ops", "env", "technician"]
DeviceName = Annotated[str, Field(pattern=f"^{IDENT_PATTERN}$")]
BoxOrStationKind = Literal[
    "air",
    "surface_water",
    "seawater",
    "wastewater",
    "domestic_water",
    "noise",
    "weather",
    "camera_pole",
    "wifi_ap",
]


class _AlarmRuleBase(StrictModel):
    """What every alarm rule says: its name, how grave it is, who is told, and which boxes
    it watches (every box when `devices` and `kinds` are empty; a box is of a kind when
    its station in `stations` is, or the device registry says so)."""

    name: Identifier
    severity: AlarmSeverity = "warning"
    roles: Annotated[tuple[AlarmRole, ...], Field(min_length=1)] = ("ops",)
    devices: list[DeviceName] = Field(default_factory=list)
    kinds: list[BoxOrStationKind] = Field(default_factory=list)


class OfflineRule(_AlarmRuleBase):
    """A box whose retained status says offline: its last will fired, or it stopped."""

    type: Literal["offline"]


class SilentRule(_AlarmRuleBase):
    """A box its status calls online that has sent nothing, health included, this long."""

    type: Literal["silent"]
    after_s: Annotated[float, Field(ge=10, le=7 * 86_400)] = 600.0


class GapsRule(_AlarmRuleBase):
    """Sequence numbers a box's stream is missing grew: messages lost or dropped by its
    outbox. Resolved when no new gap appeared for `quiet_s`."""

    type: Literal["gaps"]
    quiet_s: Annotated[float, Field(ge=10, le=7 * 86_400)] = 3600.0


class OutboxDropsRule(_AlarmRuleBase):
    """A box's outbox dropped messages it never sent (its size bound hit, or its disk
    full), as the `outbox_dropped` counter of its health messages says: data lost on the
    box itself, which wants a technician rather than the network. Resolved when no new
    drop was reported for `quiet_s`."""

    type: Literal["outbox_drops"]
    quiet_s: Annotated[float, Field(ge=10, le=7 * 86_400)] = 3600.0


class LimitRule(_AlarmRuleBase):
    """A running mean over a limit in force, judged by the exports' limit table and unit
    rules. Cleared only once the mean is back inside the limit narrowed by `hysteresis`
    (a share of the limit), so a value hovering at it does not flap."""

    type: Literal["limit"]
    severity: AlarmSeverity = "critical"
    roles: Annotated[tuple[AlarmRole, ...], Field(min_length=1)] = ("env", "ops")
    averaging: Annotated[tuple[Literal["1h", "8h", "24h"], ...], Field(min_length=1)] = ("1h",)
    parameters: list[str] = Field(default_factory=list, description="every parameter if empty")
    hysteresis: Annotated[float, Field(ge=0, lt=1)] = 0.05


class ThresholdRule(_AlarmRuleBase):
    """A raw value beyond a fixed bound (a pH probe reading 2), sample by sample."""

    type: Literal["threshold"]
    parameter: Annotated[str, Field(min_length=1)]
    min: float | None = None
    max: float | None = None
    hysteresis: Annotated[float, Field(ge=0)] = Field(
        default=0.0, description="cleared only this far inside the bound, in the value's unit"
    )
    for_s: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=0.0, description="raised only once the value has stayed beyond this long"
    )
    hours: (
        Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")] | None
    ) = Field(
        default=None,
        description="judged only in these local hours (export timezone), e.g. 07:00-22:00"
        " for an access point with no clients in opening hours; cleared outside them",
    )

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError(_("a threshold rule needs min, max or both"))
        if self.min is not None and self.max is not None and self.max <= self.min:
            raise ValueError(
                _("max ({max}) must be above min ({min})").format(max=self.max, min=self.min)
            )
        return self

    def in_hours(self, local: time) -> bool:
        """Whether `local` falls in the rule's hours; a span past midnight wraps."""
        if self.hours is None:
            return True
        first, last = (time.fromisoformat(t) for t in self.hours.split("-"))
        return first <= local < last if first <= last else local >= first or local < last


class FaultsRule(_AlarmRuleBase):
    """A source on a box faulting: the share of its readings that are faults (a Modbus
    unit not answering, an access point out of reach) over the last `window_s`, at
    `share` or more. Cleared once the share falls under half of it."""

    type: Literal["faults"]
    sensors: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="the box's sources judged; every one if empty"
    )
    window_s: Annotated[float, Field(ge=10, le=86_400)] = 900.0
    share: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_readings: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=4, description="a window with fewer readings is not judged"
    )


class AlarmWebhookSettings(WebhookSettings):
    """An alarm webhook, signed as the alert webhooks are; with `roles`, it receives only
    the alarms of rules that tell one of them."""

    roles: tuple[AlarmRole, ...] = ()


class AqiRule(_AlarmRuleBase):
    """An air station qualified for VN_AQI (`aqi: true`) whose hourly VN_AQI, computed as
    the exports compute it (collector/compliance/aqi.py) from each completed hour, enters
    `band` or worse. Cleared once the index is `hysteresis` points below that band."""

    type: Literal["aqi"]
    roles: Annotated[tuple[AlarmRole, ...], Field(min_length=1)] = ("env", "ops")
    band: Literal["poor", "bad", "very bad", "hazardous"] = "poor"
    hysteresis: Annotated[int, Field(ge=0, le=50)] = 10


AlarmRule = Annotated[
    OfflineRule
    | SilentRule
    | GapsRule
    | OutboxDropsRule
    | LimitRule
    | ThresholdRule
    | FaultsRule
    | AqiRule,
    Field(discriminator="type"),
]


class AlarmSettings(StrictModel):
    """Alarms for operations staff and the environmental officer: rules evaluated inside
    `collector run`, their lifecycle in a database of their own (`path`), delivered on
    MQTT (`{prefix}/v1/alarms/{severity}`) and to signed webhooks."""

    path: RelativePath = Path("/var/lib/collector/alarms.sqlite")
    every_s: Annotated[float, Field(ge=0.5, le=600)] = Field(
        default=2.0, description="how often new readings and device states are looked at"
    )
    mqtt: bool = Field(default=True, description="publish each alarm change on MQTT")
    late_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=60.0, description="readings arriving this long after a later one still count"
    )
    rules: list[AlarmRule] = Field(default_factory=list)
    webhooks: list[AlarmWebhookSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        for problem, names in (
            (_("rule names must be unique: {names} repeated"), [r.name for r in self.rules]),
            (_("webhook names must be unique: {names} repeated"), [w.name for w in self.webhooks]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(problem.format(names=", ".join(repeated)))
        return self


class RegistrySettings(StrictModel):
    """The device registry (`collector devices import`): names and places of the boxes.
    Without it, alerts carry no pole name or coordinates."""

    path: RelativePath = Path("/var/lib/collector/devices.sqlite")


class CollectorBrokerSettings(BrokerSettings):
    """The collector subscribes over MQTT 3.1.1 unless told otherwise. Nothing it reads
    needs MQTT 5: the backlog mark is in the payload (iotwire/backlog.py), shared
    subscriptions work over 3.1.1 on Mosquitto and EMQX, and a 3.1.1 persistent session
    does not expire. And paho builds a properties object for every MQTT 5 message it
    receives, which slows the receiving process, the one that limits ingest
    (bench/bench_delivery.py compares the two versions)."""

    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="3.1.1", description="MQTT version; auto tries 5, then 3.1.1"
    )


class CollectorConfig(StrictModel):
    broker: CollectorBrokerSettings = CollectorBrokerSettings()
    store: StoreSettings = SqliteStoreSettings(kind="sqlite")
    retention: RetentionSettings = RetentionSettings()
    ingest: IngestSettings = IngestSettings()
    metrics: MetricsSettings | None = None
    api: ApiSettings | None = None
    stations: dict[Annotated[str, Field(pattern=f"^{IDENT_PATTERN}$")], StationSettings] = Field(
        default_factory=dict, description="device id -> station, for compliance exports"
    )
    export: ExportSettings = ExportSettings()
    site_limits: RelativePath | None = Field(
        default=None,
        description="limits file of the site, merged over the built-in table "
        "(collector/compliance/limits.py)",
    )
    tt10: Tt10Settings | None = None
    alerts: AlertSettings | None = None
    registry: RegistrySettings | None = None
    alarms: AlarmSettings | None = None
    wall: WallSettings = WallSettings()


def load_collector(path: Path) -> CollectorConfig:
    return load_model(path, CollectorConfig)
