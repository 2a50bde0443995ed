"""A public wifi access point's associated clients, read from the AP itself.

Either `iw dev IFACE station dump` (any Linux AP driver through nl80211) or hostapd's
control interface (`hostapd_cli -i IFACE all_sta`). The AP may be the box itself or a
separate unit reached with a command such as `ssh ap iw dev wlan0 station dump`.
Client MAC addresses are personal data: they are parsed to count, and never leave here.
"""

import asyncio
import re
from dataclasses import dataclass
from statistics import fmean

from edge_agent.config import WifiApSource
from edge_agent.i18n import _
from edge_agent.sources.base import SourceError
from iotwire.messages import Reading

_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_IW_STATION = re.compile(r"^Station ((?:[0-9a-f]{2}:){5}[0-9a-f]{2}) \(on (\S+)\)$")
MAX_OUTPUT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Client:
    authorized: bool
    signal_dbm: float | None


def parse_iw_station_dump(text: str) -> list[Client]:
    clients: list[Client] = []
    fields: dict[str, str] | None = None
    for line in [*text.splitlines(), "Station end"]:
        if line.startswith("Station "):
            if fields is not None:
                signal = re.match(r"-?\d+", fields.get("signal", ""))
                clients.append(
                    Client(fields.get("authorized") == "yes", float(signal[0]) if signal else None)
                )
            fields = {} if _IW_STATION.match(line.strip()) else None
        elif fields is not None and ":" in line:
            key, _sep, value = line.strip().partition(":")
            fields[key.strip()] = value.strip()
    return clients


def parse_hostapd_all_sta(text: str) -> list[Client]:
    clients: list[Client] = []
    fields: dict[str, str] | None = None
    for line in [*text.splitlines(), "00:00:00:00:00:00"]:
        line = line.strip()
        if _MAC.match(line):
            if fields is not None:
                signal = fields.get("signal")
                clients.append(
                    Client(
                        "[AUTHORIZED]" in fields.get("flags", ""),
                        float(signal) if signal and re.fullmatch(r"-?\d+", signal) else None,
                    )
                )
            fields = {}
        elif fields is not None and "=" in line:
            key, _sep, value = line.partition("=")
            fields[key] = value
    return clients


PARSERS = {"iw": parse_iw_station_dump, "hostapd": parse_hostapd_all_sta}


class WifiApReader:
    def __init__(self, settings: WifiApSource) -> None:
        self.name = settings.name
        self._settings = settings
        self._command = settings.command or (
            ["iw", "dev", settings.interface, "station", "dump"]
            if settings.method == "iw"
            else ["hostapd_cli", "-i", settings.interface, "all_sta"]
        )

    @property
    def parameters(self) -> tuple[tuple[str, str], ...]:
        return (("clients", "count"), ("clients_signal_avg", "dBm"))

    async def read(self) -> tuple[Reading, ...]:
        where = _("access point {interface} ({command})").format(
            interface=self._settings.interface, command=self._command[0]
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
        except OSError as exc:
            raise SourceError(
                _("{where}: cannot run {command}: {why}").format(
                    where=where, command=self._command[0], why=exc
                )
            ) from exc
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise SourceError(
                _("{where}: no answer within {seconds} s").format(
                    where=where, seconds=f"{self._settings.timeout_s:g}"
                )
            ) from None
        if process.returncode != 0:
            detail = err.decode(errors="replace").strip()[:200]
            raise SourceError(
                _("{where}: exit status {status}: {detail}").format(
                    where=where, status=process.returncode, detail=detail
                )
            )
        clients = [
            c
            for c in PARSERS[self._settings.method](out[:MAX_OUTPUT_BYTES].decode(errors="replace"))
            if c.authorized
        ]
        signals = [c.signal_dbm for c in clients if c.signal_dbm is not None]
        readings = [Reading(parameter="clients", value=float(len(clients)), unit="count")]
        if signals:
            readings.append(
                Reading(parameter="clients_signal_avg", value=round(fmean(signals), 1), unit="dBm")
            )
        return tuple(readings)

    async def close(self) -> None:
        """Nothing held between reads."""
