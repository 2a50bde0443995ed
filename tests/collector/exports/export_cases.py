"""A known two-day dataset for the export tests, with the figures worked by hand.

Local days D1 and D2 (Asia/Ho_Chi_Minh, UTC+7), three days back so every store keeps them:
- `air-1` (AQI-qualified), a sample every 10 minutes: PM2.5 30 µg/m³ all of D1 and 50
  all of D2, PM10 60 throughout, O3 40 ppb throughout: 40 x 48.00 / 24.45 = 78.53 µg/m³,
  under the 1-hour limit (200) and the 8-hour one (120), and below PM in VN_AQI.
  D1 04:00-05:00 has only 4 samples (5 needed: 75 % of 6): that hour is invalid.
  D1 07:00-08:00 has a calibration sample of 999: excluded and counted, the hour stays
  valid with its 5 ok samples.
- `air-2` (AQI-qualified), a sample every 10 minutes: PM2.5 -3 and PM10 -2 µg/m³
  throughout (analyser zero drift: VN_AQI 0, flagged); CO 2 ppm in D1 10:00-11:00 only
  (2 x 1000 x 28.01 / 24.45 = 2291.2 µg/m³: one valid hour, sub-index 11.46, so that
  hour's VN_AQI and D1's are 11); TSP 0.05 mg/m³ at D1 12:00 and 12:10 only (a unit the
  limit is not in, and too few samples for any valid hour).
- `noise-1` (normal zone), a sample every 15 minutes: LAeq alternating 60 and 70 dB(A)
  from 06:00 to 21:00 (hourly energy mean 67.40), 58 at night, for both days.
"""

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector.config import ExportSettings, StationSettings
from collector.stores.base import ReceivedMessage, Store
from iotwire.messages import ClockSync, Quality, Reading, Sample, Telemetry

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
D1 = datetime.now(ZONE).date() - timedelta(days=3)
D2 = D1 + timedelta(days=1)
STATIONS = {
    "air-1": StationSettings(kind="air", name="Air, market", aqi=True),
    "air-2": StationSettings(kind="air", name="Air, harbour", aqi=True),
    "noise-1": StationSettings(kind="noise", name="Night market", zone="normal"),
}
SETTINGS = ExportSettings()


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE)


def _air() -> Iterator[Sample]:
    for day in (D1, D2):
        pm2_5 = 30.0 if day == D1 else 50.0
        for hour in range(24):
            for minute in range(0, 60, 10):
                if day == D1 and hour == 4 and minute >= 40:
                    continue
                calibrating = day == D1 and hour == 7 and minute == 30
                quality = Quality.CALIBRATING if calibrating else Quality.OK
                readings = (
                    Reading(
                        parameter="pm2_5",
                        value=999.0 if calibrating else pm2_5,
                        unit="µg/m³",
                        quality=quality,
                    ),
                    Reading(parameter="pm10", value=60.0, unit="µg/m³", quality=quality),
                    Reading(parameter="o3", value=40.0, unit="ppb", quality=quality),
                )
                yield Sample(sensor="aqms", ts=local(day, hour, minute), readings=readings)


def _air_2() -> Iterator[Sample]:
    for day in (D1, D2):
        for hour in range(24):
            for minute in range(0, 60, 10):
                readings = [
                    Reading(parameter="pm2_5", value=-3.0, unit="µg/m³"),
                    Reading(parameter="pm10", value=-2.0, unit="µg/m³"),
                ]
                if day == D1 and hour == 10:
                    readings.append(Reading(parameter="co", value=2.0, unit="ppm"))
                if day == D1 and hour == 12 and minute <= 10:
                    readings.append(Reading(parameter="tsp", value=0.05, unit="mg/m³"))
                yield Sample(sensor="aqms", ts=local(day, hour, minute), readings=tuple(readings))


def _noise() -> Iterator[Sample]:
    for day in (D1, D2):
        for hour in range(24):
            for i, minute in enumerate(range(0, 60, 15)):
                level = (60.0 if i % 2 == 0 else 70.0) if 6 <= hour < 21 else 58.0
                reading = Reading(parameter="laeq", value=level, unit="dBA")
                yield Sample(sensor="slm", ts=local(day, hour, minute), readings=(reading,))


def deliveries() -> list[ReceivedMessage]:
    """One message per sample, numbered from 1 per device."""
    out = []
    for device, samples in (("air-1", _air()), ("air-2", _air_2()), ("noise-1", _noise())):
        for seq, sample in enumerate(samples, start=1):
            message = Telemetry(device=device, seq=seq, clock=ClockSync.SYNCED, samples=(sample,))
            out.append(ReceivedMessage("dd", message, sample.ts))
    return out


def load(store: Store) -> None:
    batch = deliveries()
    for i in range(0, len(batch), 500):
        store.write_batch(batch[i : i + 500])
