"""Instruments that stream text lines on a serial port, parsed as their profile describes.

The port is read as data arrives (an asyncio reader on its file descriptor), so lines are
never left to pile up in the driver; each tick takes the newest valid line. Lines that do
not parse are garbage (noise, a half line after plugging in, a line that lost bytes on
the way, a menu the meter printed): they are counted and skipped, and yield no values.
A line parses when the profile's pattern matches all of it and its checksum, if the
profile declares one, is right (edge_agent/profiles.py). A port that disappears is
reopened with backoff.
"""

import asyncio
import logging
import time

import serial

from edge_agent.config import SerialLineSource
from edge_agent.i18n import _
from edge_agent.profiles import LineProfile
from edge_agent.sources.base import ReopenBackoff, SourceError, checked_reading
from iotwire.messages import Reading

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4096


class SerialLineReader:
    def __init__(self, settings: SerialLineSource, profile: LineProfile) -> None:
        self.name = settings.name
        self.profile = profile
        self._settings = settings
        self._port: serial.Serial | None = None
        self._buffer = bytearray()
        self._latest: tuple[float, dict[str, float | None]] | None = None
        self._reopen = ReopenBackoff()
        self.lines = 0
        self.garbage_lines = 0

    @property
    def parameters(self) -> tuple[tuple[str, str], ...]:
        return tuple((f.parameter, f.unit) for f in self.profile.fields)

    def _open(self) -> None:
        if wait := self._reopen.wait_left():
            raise SourceError(
                _("port {port} is down, next attempt in {seconds} s").format(
                    port=self._settings.port, seconds=f"{wait:.1f}"
                )
            )
        s = self.profile.serial
        try:
            port = serial.Serial(
                self._settings.port,
                baudrate=s.baudrate,
                parity=s.parity,
                stopbits=s.stopbits,
                bytesize=s.bytesize,
                timeout=0,
            )
        except (serial.SerialException, OSError) as exc:
            self._reopen.failed()
            raise SourceError(
                _("port {port}: cannot open: {why}").format(port=self._settings.port, why=exc)
            ) from exc
        self._reopen.succeeded()
        self._buffer.clear()
        self._port = port
        asyncio.get_running_loop().add_reader(port.fileno(), self._on_readable)

    def _drop_port(self, why: str) -> None:
        if self._port is not None:
            asyncio.get_running_loop().remove_reader(self._port.fileno())
            self._port.close()
            self._port = None
            log.warning("source %s: port %s lost: %s", self.name, self._settings.port, why)

    def _on_readable(self) -> None:
        assert self._port is not None
        try:
            data = self._port.read(self._port.in_waiting or 1)
        except (serial.SerialException, OSError) as exc:
            self._drop_port(str(exc))
            return
        if not data:  # readable with nothing to read: the other end hung up
            self._drop_port("end of file")
            return
        self._buffer += data
        *lines, rest = self._buffer.split(b"\n")
        self._buffer = bytearray(rest)
        if len(self._buffer) > MAX_LINE_BYTES:
            self._buffer.clear()
            self.garbage_lines += 1
        for raw in lines:
            self._take(raw)

    def _take(self, raw: bytes | bytearray) -> None:
        text = raw.rstrip(b"\r").decode(self.profile.encoding, errors="replace")
        if not text.strip():
            return
        values = self.profile.parse(text)
        if values is None:
            self.garbage_lines += 1
            return
        self.lines += 1
        self._latest = (time.monotonic(), values)

    async def read(self) -> tuple[Reading, ...]:
        if self._port is None:
            self._open()
        if self._latest is None or time.monotonic() - self._latest[0] > self._settings.max_age_s:
            raise SourceError(
                _(
                    "port {port}: no valid line in the last {seconds} s"
                    " ({garbage} garbage line(s) so far)"
                ).format(
                    port=self._settings.port,
                    seconds=f"{self._settings.max_age_s:g}",
                    garbage=self.garbage_lines,
                )
            )
        values = self._latest[1]
        return tuple(
            checked_reading(f.parameter, f.unit, values[f.parameter], f.range)
            for f in self.profile.fields
        )

    async def close(self) -> None:
        if self._port is not None:
            self._drop_port("closing")
