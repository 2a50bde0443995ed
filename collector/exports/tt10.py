"""Station data files for the provincial authority, as Circular 10/2021/TT-BTNMT lays out.

One file per station and interval, named `Province_Facility_Station_yyyyMMddHHmmss.txt`
after the interval's end in local time, one line per parameter with five TAB-separated
fields: code, value, unit, time, status. Status 00 is measuring, 01 calibrating, 02 device
error: the device's own quality flag decides it. The value is the mean of the interval's
ok samples; an interval with none carries its last reading and that reading's status, with
an empty value when the device had no value to give.

Only intervals that have ended, and whose `delay_s` for late samples has passed, are
written, on the schedule and on demand alike: a file under a name is never a running
interval's partial mean, to be followed by a different file under the same name.

The file layout and the codes in `CODES` come from the reference notes (a datalogger's
notes citing the circular's appendix), not from the circular's own text. `MORE_CODES`
are the project's own choice for the other parameters the station profiles measure, in
the appendix's style: confirm them with the authority. The tables are data, and a
config's `tt10.codes` extends or overrides them. `DIAGNOSTICS` are the analysers' own
working values (a sample line's flow, the enclosure's temperature): they are not
measurements of the environment and have no code.
"""

import asyncio
import logging
import os
import statistics
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.config import StationSettings, Tt10Settings
from collector.query import ReadingQuery, ReadingRow
from collector.stores.base import Store, StoreUnavailableError
from iotruntime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)

CODES = {
    "flow": "Flow",
    "temperature": "Temp",
    "colour": "Color",
    "ph": "pH",
    "tss": "TSS",
    "cod": "COD",
    "nh4": "NH4",
    "tp": "TP",
    "tn": "TN",
    "toc": "TOC",
    "chloride": "Cl",
    "humidity": "RH",
    "pressure": "P",
    "no": "NO",
    "no2": "NO2",
    "co": "CO",
    "so2": "SO2",
    "o2": "O2",
    "h2s": "H2S",
    "nh3": "NH3",
    "hg": "VHg",
    "tsp": "PM",
    "o3": "O3",
    "pm10": "PM10",
    "pm2_5": "PM2,5",
}
MORE_CODES = {
    "dissolved_oxygen": "DO",
    "do_saturation": "DOsat",
    "turbidity": "Turbidity",
    "conductivity": "EC",
    "specific_conductance": "EC25",
    "salinity": "Salinity",
    "tds": "TDS",
    "free_chlorine": "Cl2",
    "potential": "ORP",
    "pm1": "PM1",
    "laeq": "LAeq",
    "lamax": "LAmax",
    "lamin": "LAmin",
    "noise": "Noise",
    "wind_speed": "WS",
    "wind_direction": "WD",
    "wind_gust": "WG",
    "rain_intensity": "Rain",
    "dew_point": "DewPoint",
}
DIAGNOSTICS = frozenset({"box_temperature", "sample_flow", "sample_pressure", "sample_temperature"})
STATUS = {"ok": "00", "calibrating": "01", "fault": "02", "out_of_range": "02"}
STATE_FILE = ".tt10-last"
MAX_ROWS = 1_000_000


def stamp(ts: datetime, zone: ZoneInfo) -> str:
    return ts.astimezone(zone).strftime("%Y%m%d%H%M%S")


def file_lines(rows: list[ReadingRow], codes: dict[str, str], at: str) -> list[str]:
    """The file's lines for one station's readings in one interval, parameters with no
    code left out."""
    by_parameter: dict[str, list[ReadingRow]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.ts):
        by_parameter[row.parameter].append(row)
    out = []
    for parameter, readings in sorted(by_parameter.items()):
        code = codes.get(parameter)
        if code is None:
            continue
        ok = [r.value for r in readings if r.quality == "ok" and r.value is not None]
        value: float | None
        if ok:
            value, status = statistics.fmean(ok), STATUS["ok"]
        else:
            value, status = readings[-1].value, STATUS[readings[-1].quality]
        text = "" if value is None else f"{value:.3f}"
        out.append("\t".join((code, text, readings[-1].unit, at, status)))
    return out


def replace_file(path: Path, text: str) -> None:
    """Readers (and a restart) see the old file or the new one, never half of one."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


class Tt10Writer:
    """Writes the files of whole intervals; the same interval written twice gives the
    same file, replaced atomically, so a catch-up after a restart is safe."""

    def __init__(
        self,
        store: Store,
        settings: Tt10Settings,
        stations: dict[str, StationSettings],
        zone: ZoneInfo,
    ) -> None:
        self._store = store
        self._settings = settings
        self._zone = zone
        self._codes = CODES | MORE_CODES | settings.codes
        self._stations = {d: s.tt10_code for d, s in stations.items() if s.tt10_code}
        self.every = timedelta(seconds=settings.every_s)
        self.delay = timedelta(seconds=settings.delay_s)

    def interval_end_before(self, ts: datetime) -> datetime:
        """The latest interval end at or before `ts`, intervals counted from local midnight."""
        local = ts.astimezone(self._zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        steps = (local - midnight) // self.every
        return (midnight + steps * self.every).astimezone(UTC)

    def last_closed(self, now: datetime) -> datetime:
        """The end of the latest interval that is over and past its wait for late samples."""
        return self.interval_end_before(now - self.delay)

    def write_interval(self, end: datetime, directory: Path) -> list[Path]:
        """One file per station that sent readings in the interval ending at `end`."""
        at = stamp(end, self._zone)
        written = []
        for device, code in self._stations.items():
            query = ReadingQuery(end - self.every, end, (device,), (), MAX_ROWS)
            content = file_lines(self._store.query(query), self._codes, at)
            if not content:
                continue
            s = self._settings
            path = directory / f"{s.province}_{s.facility_of(device)}_{code}_{at}.txt"
            replace_file(path, "\n".join(content) + "\n")
            written.append(path)
        return written

    def write_range(
        self,
        start: datetime,
        end: datetime,
        directory: Path,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Path]:
        """Every interval that ends in (start, end] and is closed by now: asked for today,
        the running interval (and one still waiting for late samples) is left out."""
        end = min(end, self.last_closed(datetime.now(UTC)))
        ends = []
        at = self.interval_end_before(start) + self.every
        while at <= end:
            ends.append(at)
            at += self.every
        written = []
        for i, at in enumerate(ends, start=1):
            written += self.write_interval(at, directory)
            if progress is not None:
                progress(i, len(ends))
        return written

    async def run(self, stop: asyncio.Event) -> None:
        """Write each interval once it has closed and `delay_s` has passed for late
        samples; after a stop, catch up from the last interval written (at most
        `catch_up_h` back). A store that is down delays the files, it loses none."""
        directory = self._settings.directory
        directory.mkdir(parents=True, exist_ok=True)
        state = directory / STATE_FILE
        while not stop.is_set():
            latest = self.last_closed(datetime.now(UTC))
            oldest = latest - timedelta(hours=self._settings.catch_up_h)
            last = datetime.fromisoformat(state.read_text()) if state.exists() else None
            start = max(last, oldest) if last else latest - self.every
            try:
                files = await asyncio.to_thread(self.write_range, start, latest, directory)
            except StoreUnavailableError as exc:
                log.warning("station data files wait, store unavailable: %s", exc)
            else:
                replace_file(state, latest.isoformat())
                if files:
                    log.info("station data files: %d written up to %s", len(files), latest)
            wake = latest + self.every + self.delay - datetime.now(UTC)
            await sleep_unless_stopped(stop, max(wake.total_seconds(), 1.0))
