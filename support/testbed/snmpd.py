"""A real net-snmp `snmpd` on a free loopback UDP port, posing as a managed access point.

The standard MIBs (sysUpTime, IF-MIB's interfaces, the loopback among them) come from
snmpd itself. The vendors' client-count tables are served through snmpd's `pass_persist`
by this module run as a script, from a JSON file the test may rewrite between reads: the
values are the test's, the SNMP (GETBULK, v3 USM, a community it ignores) is snmpd's.

Run as a script, the module is that `pass_persist` handler: snmpd writes `PING`, `get`,
`getnext` or `set` and an OID on stdin, and reads the answer on stdout.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

SNMPD = Path("/usr/sbin/snmpd")

Value = tuple[str, int | str]
"""A pass_persist type (integer, gauge, counter, counter64, string, timeticks) and value."""


CISCO_AP_RADIOS = "1.3.6.1.4.1.14179.2.2.2.1"
"""AIRESPACE-WIRELESS-MIB bsnAPIfTable, a Cisco controller's row per radio of each AP."""


def cisco_ap_radio(mac: str, slot: int, radio_type: int | None, users: int) -> dict[str, Value]:
    """A bsnAPIfTable row as a controller serves it: indexed by the AP's MAC, a sub-id per
    octet, and the radio's slot; bsnAPIfType (.2, left out when None, as for a radio the
    controller has not typed yet) and bsnApIfNoOfUsers (.15), a Counter32 in the MIB."""
    index = ".".join(str(int(octet, 16)) for octet in mac.split(":")) + f".{slot}"
    row: dict[str, Value] = {f"{CISCO_AP_RADIOS}.15.{index}": ("counter", users)}
    if radio_type is not None:
        row[f"{CISCO_AP_RADIOS}.2.{index}"] = ("integer", radio_type)
    return row


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


class Snmpd:
    """snmpd answering v2c for `community` and v3 authPriv (SHA, AES) for `user`, with
    `values` served under their vendors' enterprise numbers. It may be stopped and
    started again on the same port, keeping its engine boots as a rebooted AP does."""

    def __init__(
        self,
        workdir: Path,
        values: dict[str, Value],
        community: str = "pq-ro-community",
        user: str = "pqmon",
        auth_key: str = "auth-key-123",
        priv_key: str = "priv-key-456",
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_udp_port()
        self.community, self.user = community, user
        self.auth_key, self.priv_key = auth_key, priv_key
        self._workdir = workdir
        self._data = workdir / "snmpd-values.json"
        self._config = workdir / "snmpd.conf"
        self._log = workdir / "snmpd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.set_values(values)
        handler = workdir / "snmpd-pass.sh"
        handler.write_text(
            f"#!/bin/sh\nexec {sys.executable} -S {Path(__file__).resolve()} {self._data}\n"
        )
        handler.chmod(0o755)
        roots = sorted({".".join(oid.split(".")[:7]) for oid in values})
        self._config.write_text(
            f"agentAddress udp:127.0.0.1:{self.port}\n"
            f"rocommunity {community} 127.0.0.1\n"
            f'createUser {user} SHA "{auth_key}" AES "{priv_key}"\n'
            f"rouser {user} priv\n" + "".join(f"pass_persist .{root} {handler}\n" for root in roots)
        )

    def set_values(self, values: dict[str, Value]) -> None:
        """Serve these from the next request on; written whole, then moved in place."""
        fresh = self._data.with_suffix(".new")
        fresh.write_text(json.dumps(values))
        fresh.replace(self._data)

    def start(self, timeout_s: float = 10.0) -> None:
        log = self._log.open("ab")
        # -C: this config only, none of the host's; its own persistent folder, so the
        # engine ID and boots are this agent's and survive a restart.
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self._workdir / "snmpd-state")}
        self.process = subprocess.Popen(
            [str(SNMPD), "-f", "-C", "-c", str(self._config), "-Lf", str(self._log)],
            stdout=log,
            stderr=log,
            env=env,
        )
        deadline = time.monotonic() + timeout_s
        while not _udp_bound(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"snmpd did not start: {self._log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in oid.strip(".").split("."))


def serve(data: Path) -> None:
    """Answer snmpd's pass_persist requests from the JSON file at `data`, read afresh for
    each request so a test can change the values while snmpd runs."""
    while line := sys.stdin.readline():
        command = line.strip()
        if command == "PING":
            answer = "PONG\n"
        elif command in ("get", "getnext"):
            asked = _oid_key(sys.stdin.readline())
            values = {_oid_key(oid): value for oid, value in json.loads(data.read_text()).items()}
            if command == "get":
                found = asked if asked in values else None
            else:
                found = min((oid for oid in values if oid > asked), default=None)
            if found is None:
                answer = "NONE\n"
            else:
                kind, value = values[found]
                answer = f".{'.'.join(map(str, found))}\n{kind}\n{value}\n"
        elif command == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            answer = "not-writable\n"
        else:
            continue
        sys.stdout.buffer.write(answer.encode())  # SSIDs are UTF-8, whatever the locale
        sys.stdout.flush()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
