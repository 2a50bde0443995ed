"""A managed access point read over SNMP: for the public APs a box cannot run `iw` on.

Readings, each tick:

- `reachable`: 1 when the AP answered, 0 when it did not (after `retries`). An AP that
  does not answer is a measurement, not a failed read: `reachable` 0 is its value, and
  everything else the AP would have told is a fault reading. A read cannot both fail and
  carry a value, so this one is returned rather than raised; the reason goes to the log,
  on the change only.
- `uptime` (s): SNMPv2-MIB sysUpTime, the AP's management agent's time since it started;
  a drop is a reboot.
- `traffic_in.<ifName>` and `traffic_out.<ifName>` (bit/s): rates from IF-MIB's 64-bit
  ifHCInOctets and ifHCOutOctets, between this read and the last one. Rates, not the
  counters, because everything downstream takes a reading as a level: the collector's
  hourly mean, min and max, its threshold alarms and the wall would all be meaningless on
  a counter that only grows. The rate spans the real time between the two reads, so a
  missed tick widens the average instead of losing traffic; the first read after the
  agent starts, after the AP reboots or after a counter goes back (reset) has no rate.
  Agents refresh these counters every few seconds, so rates over a minute are smooth and
  rates over a second are not. An interface named in `interfaces` that the AP does not
  list (renamed, a module gone) reads as a fault.
- `clients` (count), the total, and `clients.radio.<radio>` and `clients.ssid.<ssid>`,
  from the vendor's MIB (`vendor`); the same SSID on two radios is one SSID. A Cisco
  controller counts its WLANs over all its APs, without radios: its per-radio counts come
  from the controller's AP radio table instead, summed per band (`2.4ghz`, `5ghz`, ...)
  over every AP it manages, a radio of a type the MIB adds later as `type<N>`. `clients` is
  the parameter the wifi_ap source reports too, so the collector's alarms and the wall
  take either. An AP whose vendor table is empty (another vendor's AP, or no SNMP for
  wireless) gives a fault `clients` rather than a false 0.

Any other failure (a v3 user or auth key the AP refuses, an error status, unreadable
secret files) is a SourceError: the AP answered, so the box is misconfigured, and the
error shows in health and `edge-agent status`. An SNMP agent drops a request with a wrong
v2c community, or a v3 one it cannot decrypt, without a word: from here those look exactly
like an AP that is down, and the log says so.
"""

import logging
import re
import time
import unicodedata
from collections import Counter
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (  # type: ignore[import-untyped]
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES_BLUMENTHAL,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
    get_cmd,
)
from pysnmp.proto.errind import RequestTimedOut  # type: ignore[import-untyped]
from pysnmp.proto.rfc1902 import (  # type: ignore[import-untyped]
    Counter32,
    Counter64,
    Gauge32,
    Integer32,
    OctetString,
    TimeTicks,
)

from edge_agent.config import SnmpApSource
from edge_agent.i18n import _
from edge_agent.sources.base import SourceError
from iotwire.messages import Quality, Reading

log = logging.getLogger(__name__)

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"

MAX_ROWS = 256
"""Rows taken from one table: more is an agent walking in circles, or not an AP."""
MAX_RADIO_ROWS = 4096
"""Rows of a controller's AP radio table: a row per radio of every AP it manages, so a
controller of a thousand three-radio APs still reads."""
MAX_READINGS = 256
"""What one sample holds (iotwire's Sample)."""
MAX_INTERFACES = 32
"""Interfaces reported when `interfaces` names none; an AP listing more must name them."""
BULK_REPETITIONS = 25


@dataclass(frozen=True)
class RadioTable:
    """Where a controller counts the clients per radio of each AP, when its SSID table has
    no radio: a row per radio, `count` its clients and `kind` its type, an enumeration
    named by `kinds`; a row without a type is named by its last index (the slot)."""

    mib: str
    count: str
    kind: str
    kinds: dict[int, str]


@dataclass(frozen=True)
class ClientTable:
    """Where a vendor's MIB counts the associated clients: one row per SSID on a radio
    (or per SSID on a controller), with the column naming the row's SSID and the one
    naming its radio, or the radio being the interface the row's index is the ifIndex of,
    or, for a controller whose SSID rows span radios, the radios counted in `radios`."""

    mib: str
    count: str
    ssid: str
    radio: str | None = None
    radio_is_ifindex: bool = False
    radios: RadioTable | None = None


CLIENT_TABLES: dict[str, ClientTable | None] = {
    # UBNT-UniFi-MIB unifiVapTable (1.3.6.1.4.1.41112.1.6.1.2.1): a row per VAP;
    # unifiVapNumStations .8, unifiVapEssId .6, unifiVapRadio .9 ("ng" 2.4 GHz, "na" 5 GHz).
    "unifi": ClientTable(
        mib="UBNT-UniFi-MIB unifiVapTable",
        count="1.3.6.1.4.1.41112.1.6.1.2.1.8",
        ssid="1.3.6.1.4.1.41112.1.6.1.2.1.6",
        radio="1.3.6.1.4.1.41112.1.6.1.2.1.9",
    ),
    # MIKROTIK-MIB mtxrWlApTable (1.3.6.1.4.1.14988.1.1.1.3.1), indexed by the wireless
    # interface's ifIndex: mtxrWlApClientCount .6, mtxrWlApSsid .4.
    "mikrotik": ClientTable(
        mib="MIKROTIK-MIB mtxrWlApTable",
        count="1.3.6.1.4.1.14988.1.1.1.3.1.6",
        ssid="1.3.6.1.4.1.14988.1.1.1.3.1.4",
        radio_is_ifindex=True,
    ),
    # AIRESPACE-WIRELESS-MIB bsnDot11EssTable (1.3.6.1.4.1.14179.2.1.1.1) on a Cisco
    # wireless controller: a row per WLAN, bsnDot11EssNumberOfMobileStations .38 and
    # bsnDot11EssSsid .2, counted over all the controller's APs; no per-radio split there.
    # That split is in bsnAPIfTable (1.3.6.1.4.1.14179.2.2.2.1), a row per radio indexed
    # by the AP's MAC (6 sub-ids) and the radio's slot: bsnApIfNoOfUsers .15 and
    # bsnAPIfType .2, dot11b(1) "also implies 802.11b/g" (2.4 GHz), dot11a(2) 5 GHz,
    # uwb(4), dot116ghz(6), and dot11xor56ghz(7), a flexible radio serving 5 or 6 GHz.
    "cisco-wlc": ClientTable(
        mib="AIRESPACE-WIRELESS-MIB bsnDot11EssTable",
        count="1.3.6.1.4.1.14179.2.1.1.1.38",
        ssid="1.3.6.1.4.1.14179.2.1.1.1.2",
        radios=RadioTable(
            mib="AIRESPACE-WIRELESS-MIB bsnAPIfTable",
            count="1.3.6.1.4.1.14179.2.2.2.1.15",
            kind="1.3.6.1.4.1.14179.2.2.2.1.2",
            kinds={1: "2.4ghz", 2: "5ghz", 4: "uwb", 6: "6ghz", 7: "5-6ghz"},
        ),
    ),
    "none": None,
}

AUTH_PROTOCOLS = {
    "md5": USM_AUTH_HMAC96_MD5,
    "sha": USM_AUTH_HMAC96_SHA,
    "sha224": USM_AUTH_HMAC128_SHA224,
    "sha256": USM_AUTH_HMAC192_SHA256,
    "sha384": USM_AUTH_HMAC256_SHA384,
    "sha512": USM_AUTH_HMAC384_SHA512,
}
# AES-192 and AES-256 with the draft-blumenthal key extension, as net-snmp's AES192 and
# AES256 (Cisco's AES192C/AES256C extend keys differently and are not offered).
PRIV_PROTOCOLS = {
    "aes": USM_PRIV_CFB128_AES,
    "aes192": USM_PRIV_CFB192_AES_BLUMENTHAL,
    "aes256": USM_PRIV_CFB256_AES_BLUMENTHAL,
}

_NOT_IN_NAME = re.compile(r"[^a-z0-9_.-]+")


def name_part(text: str, room: int) -> str:
    """`text` (an SSID, a radio, an interface) as part of a parameter name: lower case,
    accents dropped (`Phú Quốc` reads `phu_quoc`), anything else an underscore."""
    plain = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_only = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    return _NOT_IN_NAME.sub("_", ascii_only).strip("_.-")[:room] or "unnamed"


def _text(value: object) -> str:
    """A DisplayString's text; SSIDs are bytes on the air and may not be UTF-8."""
    if not isinstance(value, OctetString):
        return ""
    return bytes(value.asOctets()).decode("utf-8", errors="replace").strip()


class Unreachable(Exception):
    """No answer at all, after the retries."""


class SnmpApReader:
    """One managed AP. Its SNMP engine, credentials and last counters live as long as the
    agent: v3's engine discovery happens once, and a rate needs the read before."""

    def __init__(self, settings: SnmpApSource) -> None:
        self.name = settings.name
        self._settings = settings
        self._table = CLIENT_TABLES[settings.vendor]
        self._where = f"access point {settings.host}:{settings.port} (SNMP v{settings.version})"
        self._engine = SnmpEngine()
        self._auth: CommunityData | UsmUserData | None = None
        self._target: UdpTransportTarget | None = None
        self._last: tuple[float, float, dict[str, tuple[int, int]]] | None = None
        self._answering = True
        self._table_empty = False

    @property
    def parameters(self) -> tuple[tuple[str, str], ...]:
        fixed = (("reachable", ""), ("uptime", "s"))
        return (*fixed, ("clients", "count")) if self._table else fixed

    async def read(self) -> tuple[Reading, ...]:
        try:
            readings = await self._read_answering()
        except Unreachable as exc:
            if self._answering:
                hint = (
                    "the community is wrong (an SNMP v2c agent ignores a wrong one)"
                    if self._settings.version == "2c"
                    else "the priv key or protocol is wrong (what an agent cannot decrypt, it"
                    " drops)"
                )
                log.warning("source %s: %s: %s: down, or %s", self.name, self._where, exc, hint)
            self._answering = False
            self._start_over()
            return self._unreachable()
        if not self._answering:
            log.info("source %s: %s answers again", self.name, self._where)
            self._answering = True
        return readings

    def _start_over(self) -> None:
        """A new engine for the next read. An AP that restarts may come back with another
        engine ID or boot count, which pysnmp's engine, once it has learnt the old ones,
        never learns again: v3 requests then go unanswered for good. A fresh engine
        discovers the AP anew."""
        self._engine.close_dispatcher()
        self._engine = SnmpEngine()
        self._target = None

    def _unreachable(self) -> tuple[Reading, ...]:
        return (
            Reading(parameter="reachable", value=0.0, unit=""),
            *(
                Reading(parameter=name, value=None, unit=unit, quality=Quality.FAULT)
                for name, unit in self.parameters[1:]
            ),
        )

    async def _read_answering(self) -> tuple[Reading, ...]:
        uptime_s = await self._uptime()
        readings = [
            Reading(parameter="reachable", value=1.0, unit=""),
            Reading(parameter="uptime", value=uptime_s, unit="s"),
        ]
        names = await self._walk(IF_NAME)
        if_names = {index: _text(value) or f"if{index[0]}" for index, value in names.items()}
        if self._table is not None:
            readings += await self._clients(self._table, if_names)
        readings += await self._traffic(uptime_s, if_names)
        if len(readings) > MAX_READINGS:
            raise SourceError(
                _(
                    "{where}: {count} readings, more than a sample holds;"
                    " name fewer interfaces in `interfaces`"
                ).format(where=self._where, count=len(readings))
            )
        return tuple(readings)

    async def _uptime(self) -> float:
        error, status, index, varbinds = await get_cmd(
            self._engine,
            *await self._session(),
            ContextData(),
            ObjectType(ObjectIdentity(SYS_UPTIME)),
            lookupMib=False,
        )
        self._check(error, status, index, "SNMPv2-MIB sysUpTime")
        ((_oid, ticks),) = varbinds
        if not isinstance(ticks, TimeTicks):
            raise SourceError(
                _("{where}: sysUpTime is not a time: {value}").format(
                    where=self._where, value=ticks.prettyPrint()
                )
            )
        return int(ticks) / 100

    async def _walk(self, column: str, limit: int = MAX_ROWS) -> dict[tuple[int, ...], Any]:
        """The column's rows by index, in as few GETBULK round trips as the AP allows."""
        rows: dict[tuple[int, ...], Any] = {}
        prefix = len(column.split("."))
        walk = bulk_walk_cmd(
            self._engine,
            *await self._session(),
            ContextData(),
            0,
            BULK_REPETITIONS,
            ObjectType(ObjectIdentity(column)),
            lookupMib=False,
            lexicographicMode=False,
        )
        async with aclosing(walk) as answers:
            async for error, status, index, varbinds in answers:
                self._check(error, status, index, column)
                for oid, value in varbinds:
                    rows[tuple(oid)[prefix:]] = value
                if len(rows) > limit:
                    raise SourceError(
                        _("{where}: more than {count} rows under {column}").format(
                            where=self._where, count=limit, column=column
                        )
                    )
        return rows

    async def _clients(
        self, table: ClientTable, if_names: dict[tuple[int, ...], str]
    ) -> list[Reading]:
        counts = await self._walk(table.count)
        if not counts:
            if not self._table_empty:
                log.warning(
                    "source %s: %s has nothing in %s: is vendor %r right?",
                    self.name,
                    self._where,
                    table.mib,
                    self._settings.vendor,
                )
            self._table_empty = True
            return [Reading(parameter="clients", value=None, unit="count", quality=Quality.FAULT)]
        self._table_empty = False
        ssids = await self._walk(table.ssid)
        radios = await self._walk(table.radio) if table.radio else {}
        by_ssid: Counter[str] = Counter()
        by_radio: Counter[str] = Counter()
        for index, value in counts.items():
            count = self._number(value, table.count)
            ssid = _text(ssids[index]) if index in ssids else ""
            by_ssid[f"clients.ssid.{name_part(ssid, 50)}"] += count
            radio = if_names.get(index) if table.radio_is_ifindex else None
            if index in radios:
                radio = _text(radios[index])
            if radio is not None:
                by_radio[f"clients.radio.{name_part(radio, 49)}"] += count
        if table.radios is not None:
            by_radio = await self._clients_per_radio(table.radios)
        total = Reading(parameter="clients", value=float(sum(by_ssid.values())), unit="count")
        return [
            total,
            *(
                Reading(parameter=name, value=float(n), unit="count")
                for name, n in sorted({**by_radio, **by_ssid}.items())
            ),
        ]

    async def _clients_per_radio(self, table: RadioTable) -> Counter[str]:
        """A controller's clients per radio band, summed over the radios of all its APs:
        per AP would be a parameter per AP and radio, more than a sample holds on a
        controller of any size, and the band is what the wall and the alarms compare."""
        counts = await self._walk(table.count, MAX_RADIO_ROWS)
        kinds = await self._walk(table.kind, MAX_RADIO_ROWS) if counts else {}
        by_radio: Counter[str] = Counter()
        for index, value in counts.items():
            if index in kinds:
                kind = self._number(kinds[index], table.kind)
                radio = table.kinds.get(kind, f"type{kind}")
            else:
                radio = f"slot{index[-1]}" if index else "unnamed"
            by_radio[f"clients.radio.{name_part(radio, 49)}"] += self._number(value, table.count)
        return by_radio

    async def _traffic(
        self, uptime_s: float, if_names: dict[tuple[int, ...], str]
    ) -> list[Reading]:
        wanted = self._settings.interfaces
        if wanted is None and len(if_names) > MAX_INTERFACES:
            raise SourceError(
                _(
                    "{where}: lists {count} interfaces; name the ones to report in `interfaces`"
                ).format(where=self._where, count=len(if_names))
            )
        inbound = await self._walk(IF_HC_IN_OCTETS)
        outbound = await self._walk(IF_HC_OUT_OCTETS)
        now = time.monotonic()
        counters = {
            name: (
                self._number(inbound[index], IF_HC_IN_OCTETS),
                self._number(outbound[index], IF_HC_OUT_OCTETS),
            )
            for index, name in if_names.items()
            if index in inbound and index in outbound and (wanted is None or name in wanted)
        }
        last, self._last = self._last, (now, uptime_s, counters)
        readings: list[Reading] = []
        for name in sorted(counters) if wanted is None else wanted:
            part = name_part(name, 50)
            if name not in counters:
                readings += [
                    Reading(
                        parameter=f"traffic_{way}.{part}",
                        value=None,
                        unit="bit/s",
                        quality=Quality.FAULT,
                    )
                    for way in ("in", "out")
                ]
                continue
            if last is None or uptime_s < last[1] or name not in last[2]:
                continue
            seconds = now - last[0]
            for way, before, after in zip(
                ("in", "out"), last[2][name], counters[name], strict=True
            ):
                if after >= before and seconds > 0:
                    rate = round((after - before) * 8 / seconds, 1)
                    readings.append(
                        Reading(parameter=f"traffic_{way}.{part}", value=rate, unit="bit/s")
                    )
        return readings

    async def _session(self) -> tuple[CommunityData | UsmUserData, UdpTransportTarget]:
        """Credentials and transport, made at the first read and kept: the secrets are
        read from their files then, so a missing file is a fault reading that clears
        once the file is there, never an agent that does not start."""
        if self._auth is None:
            self._auth = self._credentials()
        if self._target is None:
            settings = self._settings
            try:
                self._target = await UdpTransportTarget.create(
                    (settings.host, settings.port),
                    timeout=settings.timeout_s,
                    retries=settings.retries,
                )
            except Exception as exc:  # pysnmp reports a name it cannot resolve this way
                raise SourceError(f"{self._where}: {exc}") from exc
        return self._auth, self._target

    def _credentials(self) -> CommunityData | UsmUserData:
        settings = self._settings
        if settings.version == "2c":
            assert settings.community_file is not None  # the settings model ensures it
            community = self._secret("community_file", settings.community_file)
            # The AP offers v2c only, or the site chose it: v3 is the setting for anything else.
            return CommunityData(community, mpModel=1)  # noqa: S508
        assert settings.user is not None  # as are the key files: the settings model ensures it
        assert settings.auth_key_file is not None
        assert settings.priv_key_file is not None
        auth_key = self._secret("auth_key_file", settings.auth_key_file, minimum=8)
        priv_key = self._secret("priv_key_file", settings.priv_key_file, minimum=8)
        return UsmUserData(
            settings.user,
            auth_key,
            priv_key,
            authProtocol=AUTH_PROTOCOLS[settings.auth_protocol],
            privProtocol=PRIV_PROTOCOLS[settings.priv_protocol],
        )

    def _secret(self, key: str, path: Path, minimum: int = 1) -> str:
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(
                _("{where}: cannot read {key} {path}: {why}").format(
                    where=self._where, key=key, path=path, why=exc
                )
            ) from None
        if len(secret) < minimum:
            problem = (
                _("{where}: {key} {path} is empty")
                if not secret
                else _("{where}: {key} {path} holds fewer than {minimum} characters")
            )
            raise SourceError(
                problem.format(where=self._where, key=key, path=path, minimum=minimum)
            )
        return secret

    def _check(self, error: object, status: object, index: object, what: str) -> None:
        if isinstance(error, RequestTimedOut):
            timeout = f"{self._settings.timeout_s:g} s"
            tries = self._settings.retries + 1
            raise Unreachable(f"no answer to {what} within {timeout}, tried {tries} time(s)")
        if error:
            raise SourceError(f"{self._where}: {what}: {error}")
        if status:
            raise SourceError(
                _("{where}: {what}: error status {status} at {index}").format(
                    where=self._where, what=what, status=status, index=index
                )
            )

    def _number(self, value: object, column: str) -> int:
        if not isinstance(value, Integer32 | Counter32 | Counter64 | Gauge32):
            raise SourceError(
                _("{where}: {column} holds a {kind}").format(
                    where=self._where, column=column, kind=type(value).__name__
                )
            )
        return int(value)

    async def close(self) -> None:
        """Close the engine's UDP socket."""
        self._engine.close_dispatcher()
