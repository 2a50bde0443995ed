"""Telling systemd the process is ready, and alive, through $NOTIFY_SOCKET.

The units are `Type=notify` with `WatchdogSec`: systemd restarts a process that stops
pinging. The pings come from the event loop itself, so a loop that hangs (a blocking call
that never returns, a deadlock) stops them and gets the process restarted, which a crash
alone would not catch. The protocol is one datagram per message on a Unix socket; the
`sdnotify` package that wraps it has not been released since 2017, and `systemd-python`
needs libsystemd's headers to build on the box, so these few lines are the project's own.
Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
"""

import asyncio
import logging
import os
import socket

from iotruntime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send `message` (READY=1, WATCHDOG=1, STOPPING=1, STATUS=...); whether it went."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("systemd notification %r not sent: %s", message, exc)
        return False
    return True


def watchdog_interval_s() -> float | None:
    """Half the watchdog period systemd set for this process, or None without one."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


async def supervise(stop: asyncio.Event) -> None:
    """Say ready, then ping the watchdog from the event loop until `stop`."""
    notify("READY=1")
    interval = watchdog_interval_s()
    while interval is not None and not stop.is_set():
        notify("WATCHDOG=1")
        await sleep_unless_stopped(stop, interval)
    await stop.wait()
    notify("STOPPING=1")
