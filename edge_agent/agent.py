"""One running agent: sources feed the outbox, the uplink empties it.

The two halves meet only at the outbox, so sampling never waits on the network and the
network never loses a sample: with the broker gone, readings pile up on disk and leave in
order once it returns.
"""

import asyncio
import logging
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.clock import clock_sync
from edge_agent.commands import CommandHandler
from edge_agent.config import (
    CameraSettings,
    LoadedAgent,
    ModbusSource,
    SerialLineSource,
    WifiApSource,
)
from edge_agent.modbus.bus import ModbusBus
from edge_agent.modbus.source import ModbusReader
from edge_agent.outbox import Outbox
from edge_agent.poller import poll
from edge_agent.profiles import LineProfile, Profile
from edge_agent.sources.base import Source, SourceStats
from edge_agent.sources.host import read_host
from edge_agent.sources.serial_lines import SerialLineReader
from edge_agent.sources.wifi_ap import WifiApReader
from edge_agent.status import AgentStatus, keep_writing, source_states
from edge_agent.uplink import Uplink
from iotruntime.private_files import make_private_dirs
from iotruntime.stopping import sleep_unless_stopped
from iotruntime.systemd import supervise
from iotwire.messages import Health, PlateRead, Sample, Telemetry
from iotwire.plate_formats import CATEGORY
from iotwire.topics import Channel

if TYPE_CHECKING:
    from edge_agent.plates.reader import PlateReader
    from edge_agent.plates.tracker import PlateEvent

log = logging.getLogger(__name__)
RESTART_DELAY_S = 1.0
PRODUCERS_STOP_S = 3.0
"""How long the uplink's final drain waits for sources and cameras to stop producing."""


def build_readers(loaded: LoadedAgent, buses: dict[str, ModbusBus]) -> dict[str, Source]:
    """One reader per configured source, Modbus units sharing their bus's connection.

    The SNMP stack is imported only by a box with an SNMP source: pysnmp takes a third of
    a second to import on a PC, more on a Pi, and an air station never needs it."""
    readers: dict[str, Source] = {}
    for source in loaded.config.sources:
        profile = loaded.profiles.get(source.name)
        if isinstance(source, WifiApSource):
            reader: Source = WifiApReader(source)
        elif source.type == "snmp_ap":
            from edge_agent.sources.snmp_ap import SnmpApReader

            reader = SnmpApReader(source)
        elif isinstance(source, ModbusSource) and isinstance(profile, Profile):
            reader = ModbusReader(source.name, buses[source.bus], source.unit, profile)
        elif isinstance(source, SerialLineSource) and isinstance(profile, LineProfile):
            reader = SerialLineReader(source, profile)
        else:
            raise TypeError(f"source {source.name}: profile does not fit its type")
        readers[source.name] = reader
    return readers


def _plate_readers(loaded: LoadedAgent) -> dict[str, "PlateReader"]:
    """One plate reader per camera. The vision stack (OpenCV, ONNX Runtime, the OCR
    models) is imported only by a box that has cameras: an air station never loads it."""
    if not loaded.config.cameras:
        return {}
    from edge_agent.sources.camera import build_reader

    return {camera.name: build_reader(camera) for camera in loaded.config.cameras}


class Agent:
    def __init__(self, loaded: LoadedAgent, config_path: Path | None = None) -> None:
        self._config = loaded.config
        self._device = loaded.config.device
        make_private_dirs(self._config.state_dir, group_read=True)
        self.boot_id = uuid.uuid4().hex
        self.started_at = time.time()
        self.outbox = Outbox(self._config.state_dir / "outbox.sqlite", self._config.outbox)
        self.buses = {name: ModbusBus(settings) for name, settings in loaded.buses.items()}
        self.readers = build_readers(loaded, self.buses)
        self.plate_readers = _plate_readers(loaded)
        self.source_stats = {name: SourceStats() for name in (*self.readers, *self.plate_readers)}
        self.plates_read: Counter[str] = Counter()
        commands = CommandHandler(
            self._config, self.status, self.readers, config_path, self._restart_soon
        )
        self.uplink = Uplink(
            self._config.broker,
            self._device,
            self.outbox,
            self.boot_id,
            backlog_after_s=self._config.outbox.backlog_after_s,
            commands=commands.handle,
            confirmations=self._config.outbox.delete_on == "commit",
            resend_after_s=self._config.outbox.resend_after_s,
        )
        self.restart_requested = False
        self._stop: asyncio.Event | None = None

    def _restart_soon(self) -> None:
        """Stop, so the caller starts the agent again with the config re-read; after a
        moment, so the acknowledgement goes out first."""
        self.restart_requested = True
        stop = self._stop
        if stop is not None:
            asyncio.get_running_loop().call_later(RESTART_DELAY_S, stop.set)

    def _commit_sample(self, sample: Sample) -> None:
        clock = clock_sync()
        self.outbox.append(
            Channel.TELEMETRY,
            lambda seq: Telemetry(device=self._device.id, seq=seq, clock=clock, samples=(sample,)),
        )

    def _commit_plate(self, camera: str, event: "PlateEvent", crop_b64: str) -> None:
        """Commit a vehicle's plate. A plate is personal data: the box keeps it in its
        outbox until the collector confirms it, and nowhere else. The log and `edge-agent
        status` say that a plate was read, never which (DEBUG logs it, for a technician
        aiming a camera on site)."""
        best = event.best
        stats = self.source_stats[camera]
        self.plates_read[camera] += 1
        stats.last_value = f"plates read: {self.plates_read[camera]}"
        stats.last_value_at = time.time()
        self.outbox.append(
            Channel.PLATE,
            lambda seq: PlateRead(
                device=self._device.id,
                seq=seq,
                camera=camera,
                ts=datetime.fromtimestamp(best.at, UTC),
                clock=clock_sync(),
                text=best.plate.canonical,
                display=best.plate.display,
                confidence=round(event.confidence, 4),
                box=best.box,
                colour=best.colour.value if best.colour else None,
                crop_jpeg_b64=crop_b64,
            ),
        )
        log.info(
            "camera %s: a plate read, %s (%d of %d frames agree)",
            camera,
            f"{best.colour} plate, {CATEGORY[best.colour]}" if best.colour else "colour unknown",
            event.votes,
            event.frames,
        )
        log.debug("camera %s read %s", camera, best.plate.display)

    def status(self) -> AgentStatus:
        kinds: dict[str, str] = {s.name: s.type for s in self._config.sources}
        kinds |= {c.name: "camera" for c in self._config.cameras}
        return AgentStatus(
            device=self._device.id,
            kind=self._device.kind,
            pid=os.getpid(),
            boot_id=self.boot_id,
            started_at=self.started_at,
            written_at=time.time(),
            outbox_depth=self.outbox.depth(),
            outbox_dropped=self.outbox.dropped(),
            broker_connected=self.uplink.connected,
            last_publish_at=self.uplink.last_publish_at,
            sources=source_states(self.source_stats, kinds),
        )

    def _commit_health(self) -> None:
        host = read_host(self._config.state_dir)
        depth = self.outbox.depth()
        self.outbox.append(
            Channel.HEALTH,
            lambda seq: Health(
                device=self._device.id,
                seq=seq,
                ts=datetime.now(UTC),
                clock=clock_sync(),
                boot_id=self.boot_id,
                uptime_s=host.uptime_s,
                load1=host.load1,
                mem_used_pct=host.mem_used_pct,
                disk_used_pct=host.disk_used_pct,
                cpu_temp_c=host.cpu_temp_c,
                outbox_depth=depth,
                outbox_dropped=self.outbox.dropped(),
                source_errors={name: s.errors for name, s in self.source_stats.items()},
                bus_errors={
                    name: bus.stats.timeouts + bus.stats.exceptions + bus.stats.link_errors
                    for name, bus in self.buses.items()
                },
            ),
        )

    async def _health_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._commit_health()
            await sleep_unless_stopped(stop, self._config.health.interval_s)

    async def _watch(self, camera: CameraSettings, stop: asyncio.Event) -> None:
        from edge_agent.sources.camera import watch_camera

        await watch_camera(
            camera,
            self.plate_readers[camera.name],
            self.source_stats[camera.name],
            self._commit_plate,
            stop,
        )

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        log.info(
            "agent %s (%s) starting with %d source(s)",
            self._device.id,
            self._device.kind,
            len(self.readers),
        )
        try:
            async with asyncio.TaskGroup() as group:
                workers = [
                    group.create_task(
                        poll(
                            self.readers[s.name],
                            s.interval_s,
                            self.source_stats[s.name],
                            self._commit_sample,
                            stop,
                        )
                    )
                    for s in self._config.sources
                ]
                # Cameras stop on `stop` by themselves, deciding the plates still in view.
                cameras = [
                    group.create_task(self._watch(camera, stop)) for camera in self._config.cameras
                ]
                workers.append(group.create_task(self._health_loop(stop)))
                draining = asyncio.Event()
                group.create_task(self.uplink.run(draining))
                group.create_task(supervise(stop))
                group.create_task(keep_writing(self._config.state_dir, self.status, stop))
                await stop.wait()
                # Every task ends on `stop` by itself; the cancel ends a read in progress
                # at once, and a cancel lost in a library's wait (iotruntime/stopping.py)
                # costs no more than that read. The uplink's final drain begins once they
                # have ended, so that what they commit as they stop (a camera's plates
                # still in view, a read that answered as the stop came) goes out with it.
                for worker in workers:
                    worker.cancel()
                await asyncio.wait([*workers, *cameras], timeout=PRODUCERS_STOP_S)
                draining.set()
        finally:
            for reader in self.readers.values():
                await reader.close()
            for bus in self.buses.values():
                bus.close()
            self.outbox.close()
