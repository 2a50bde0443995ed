"""The operations center's Mosquitto configuration, generated from the device registry.

Hand-kept broker files drift from the boxes in the field; these are rewritten whole from
the registry each time a box is registered, so the broker admits exactly the registered
devices, each confined to its own topics. Devices with a password connect to the TLS
listener; devices with a client certificate to a second listener that requires one and
takes the certificate's common name as the username. The collector gets its own password,
kept beside the files for its config's `broker.password_file`, and made once: regenerating
the files never changes it.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from collector.fleet.registry import RegisteredDevice
from iotruntime.broker_access import (
    collector_acl,
    console_acl,
    device_acl,
    new_password,
    password_entry,
)


@dataclass(frozen=True)
class BrokerTls:
    """Paths as they are on the broker's host."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class BrokerLayout:
    prefix: str = "pq"
    port: int = 8883
    cert_port: int = 8884
    persistence: Path = Path("/var/lib/mosquitto")
    collector_user: str = "collector"
    consoles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Written:
    devices: int
    password_devices: int
    certificate_devices: int
    files: tuple[Path, ...]


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    """Replace the file whole, so the broker never reads half of one."""
    part = path.with_name(f".{path.name}.part")
    part.write_text(text, encoding="utf-8")
    part.chmod(mode)
    os.replace(part, path)
    return path


def _secret(path: Path) -> str:
    """The password kept in `path`, made the first time."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    password = new_password()
    _write(path, password + "\n", 0o600)
    return password


def write_broker_config(
    devices: list[RegisteredDevice], tls: BrokerTls, layout: BrokerLayout, out: Path
) -> Written:
    out.mkdir(parents=True, exist_ok=True)
    missing = [d.device for d in devices if d.credential is None]
    if missing:
        raise ValueError(
            f"registered without a broker credential (provision them again): {', '.join(missing)}"
        )
    collector_password = _secret(out / f"{layout.collector_user}.password")
    consoles = {name: _secret(out / f"{name}.password") for name in layout.consoles}
    passwords = [password_entry(layout.collector_user, collector_password)]
    passwords += [password_entry(name, secret) for name, secret in consoles.items()]
    acl = [*collector_acl(layout.prefix, layout.collector_user), ""]
    for name in consoles:
        acl += [*console_acl(layout.prefix, name), ""]
    by_certificate = 0
    for d in devices:
        credential = d.credential
        if credential is None:
            continue
        if credential.password_entry:
            passwords.append(credential.password_entry)
        else:
            by_certificate += 1
        acl += [
            f"# {d.name} ({d.kind})",
            *device_acl(layout.prefix, d.site, d.device, credential.username),
            "",
        ]
    conf = [
        f"# Written by `collector broker-config` from {len(devices)} registered device(s).",
        "# Regenerate it rather than edit it: the registry is the source.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {out / 'passwords'}",
        f"acl_file {out / 'acl'}",
        "persistence true",
        f"persistence_location {layout.persistence}/",
        "max_inflight_messages 1000",
        "max_queued_messages 100000",
        "set_tcp_nodelay true",
        "",
        "# Devices with a password, the collector and consoles.",
        f"listener {layout.port}",
        f"cafile {tls.ca_file}",
        f"certfile {tls.cert_file}",
        f"keyfile {tls.key_file}",
        "tls_version tlsv1.2",
    ]
    if by_certificate:
        conf += [
            "",
            "# Devices with a client certificate: its common name is the username.",
            f"listener {layout.cert_port}",
            f"cafile {tls.ca_file}",
            f"certfile {tls.cert_file}",
            f"keyfile {tls.key_file}",
            "tls_version tlsv1.2",
            "require_certificate true",
            "use_identity_as_username true",
        ]
    files = (
        _write(out / "mosquitto.conf", "\n".join(conf) + "\n"),
        _write(out / "passwords", "\n".join(passwords) + "\n", 0o600),
        _write(out / "acl", "\n".join(acl)),
    )
    return Written(len(devices), len(devices) - by_certificate, by_certificate, files)
