"""The box's own health: is the Pi itself fine, and is it keeping up?"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from psutil._ntuples import shwtemp


@dataclass(frozen=True)
class HostHealth:
    uptime_s: float
    load1: float
    mem_used_pct: float
    disk_used_pct: float
    cpu_temp_c: float | None


def _cpu_temperature() -> float | None:
    """The SoC temperature on a Pi or Jetson; None where the kernel exposes no sensor."""
    # psutil has sensors_temperatures on Linux and FreeBSD only.
    sensors: dict[str, list[shwtemp]] = getattr(psutil, "sensors_temperatures", dict)()
    for name in ("cpu_thermal", "soc_thermal", "thermal-fan-est", "coretemp", "k10temp"):
        for entry in sensors.get(name, []):
            if -60 <= entry.current <= 150:
                return float(entry.current)
    return None


def read_host(state_dir: Path) -> HostHealth:
    return HostHealth(
        uptime_s=max(0.0, time.time() - psutil.boot_time()),
        load1=psutil.getloadavg()[0],
        mem_used_pct=psutil.virtual_memory().percent,
        disk_used_pct=psutil.disk_usage(str(state_dir)).percent,
        cpu_temp_c=_cpu_temperature(),
    )
