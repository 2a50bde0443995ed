"""The operations center's Mosquitto configuration, generated from the device registry.

Hand-kept broker files drift from the boxes in the field; these are rewritten whole from
the registry each time a box is registered or revoked, so the broker admits exactly the
registered devices, each confined to its own topics. Three listeners, each with its own
password file and ACL (`per_listener_settings`), so a credential counts only where it
belongs:

- field boxes with a password, and consoles (alerts only), on `port`;
- field boxes with a client certificate on `cert_port`, trusting the device CA alone (not
  the site CA, whose key never leaves the center) and the device CA's revocation list;
  the certificate's subject, `CN=<device>`, is the username;
- the collectors on `center_port`, which only their passwords open.

On both field listeners the broker takes the username as the client id, so no device can
take over another's session, or a collector's: a device's username is its own id (checked
again here, whatever the registry holds), a certificate's always starts with `CN=`, and no
device may bear a collector's or a console's name. The collectors' listener leaves client
ids to them: a collector keeps its session under `ingest.client_id` while `collector
command` connects beside it under an id of its own, and only the operations center holds
those passwords.

Each collector and console gets its own password, kept beside the files (a collector's
config's `broker.password_file`) and made once: regenerating the files never changes it.
The files the broker reads are 0640, given to `group` (the broker's own) when asked.
"""

import grp
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from collector.fleet.registry import RegisteredDevice
from iotruntime.broker_access import (
    RESERVED_USERNAMES,
    certificate_username,
    collector_acl,
    console_acl,
    device_acl,
    new_password,
    password_entry,
)
from iotruntime.certificates import issued_by, revoked_serials, same_certificate
from iotruntime.private_files import write_whole
from iotwire.topics import IDENT_PATTERN

NAME = re.compile(f"^{IDENT_PATTERN}$")
STALE = ("passwords", "acl")
"""What versions before per-listener files wrote: stale credentials, removed."""


@dataclass(frozen=True)
class BrokerTls:
    """Paths as they are on the broker's host, which is where this runs: the device CA
    and the CRL are read, to check the registry's certificates against them."""

    ca_file: Path  # the site CA, which signed cert_file
    cert_file: Path
    key_file: Path
    device_ca_file: Path | None = None
    crl_file: Path | None = None


@dataclass(frozen=True)
class BrokerLayout:
    prefix: str = "pq"
    port: int = 8883
    cert_port: int = 8884
    center_port: int = 8885
    persistence: Path = Path("/var/lib/mosquitto")
    collectors: tuple[str, ...] = ("collector",)
    consoles: tuple[str, ...] = ()
    client_ids: tuple[str, ...] = ()  # collectors' ingest.client_id, no device's to take
    group: str | None = None


@dataclass(frozen=True)
class Written:
    devices: int
    password_devices: int
    certificate_devices: int
    revoked: int
    files: tuple[Path, ...]


class BrokerConfigError(ValueError):
    """The registry or the options would give the broker a hole; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("refused, nothing written:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


def _write(path: Path, text: str, mode: int, gid: int | None = None) -> Path:
    return write_whole(path, text.encode(), mode, gid)


def _secret(path: Path) -> str:
    """The password kept in `path`, made the first time."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    password = new_password()
    _write(path, password + "\n", 0o600)
    return password


def _center_problems(layout: BrokerLayout, registered: Collection[str]) -> list[str]:
    problems = []
    names = [*layout.collectors, *layout.consoles]
    if not layout.collectors:
        problems.append("no collector user: the broker would admit no collector")
    for name in sorted(set(names)):
        if not NAME.match(name):
            problems.append(f"{name!r}: a broker user is 1-63 lowercase letters, digits or -")
        if names.count(name) > 1:
            problems.append(f"{name!r} is given twice (collectors and consoles need their own)")
        if name in registered:
            problems.append(f"{name!r} is a registered device: choose another name")
    return problems


def _device_problems(
    devices: list[RegisteredDevice], layout: BrokerLayout, device_ca: bytes | None
) -> list[str]:
    """Every registered box that would get a credential it should not, each named."""
    taken = RESERVED_USERNAMES | {*layout.collectors, *layout.consoles, *layout.client_ids}
    problems = []
    for d in devices:
        credential = d.credential
        if credential is None:
            problems.append(f"{d.device}: registered without a credential (provision it again)")
            continue
        if d.device in taken:
            problems.append(f"{d.device}: the operations center's name on the broker, not a box's")
        if credential.username != d.device:
            problems.append(
                f"{d.device}: signs in as {credential.username!r}, not as itself"
                " (import its bundle again: this registry predates the check)"
            )
        if credential.certificate_sha256 is None:
            continue
        if credential.certificate is None:
            problems.append(
                f"{d.device}: its bundle carries no certificate (provisioned before the device"
                " CA): provision it again with --device-ca, or revoke it"
            )
        elif device_ca is not None and not issued_by(credential.certificate.encode(), device_ca):
            problems.append(f"{d.device}: its certificate is not from the device CA")
    return problems


def _tls_problems(
    tls: BrokerTls, certificates: bool, device_ca: bytes | None, revoked: Collection[int]
) -> list[str]:
    problems = []
    if certificates and device_ca is None:
        problems.append("devices with a certificate need --device-ca, the CA that signs them")
    if device_ca is not None and same_certificate(device_ca, tls.ca_file.read_bytes()):
        problems.append(
            "--device-ca is the site CA: a CA of its own signs devices, so that its key,"
            " which technicians carry, cannot sign the collector or the broker"
        )
    if not revoked:
        return problems
    if tls.crl_file is None or device_ca is None:
        return [*problems, "revoked certificates need --crl, from collector devices revoke"]
    listed = revoked_serials(tls.crl_file.read_bytes(), device_ca)
    if listed is None:
        problems.append(f"{tls.crl_file} is not signed by the device CA")
    elif missing := set(revoked) - listed:
        problems.append(
            f"{tls.crl_file} leaves out {len(missing)} revoked certificate(s):"
            " write it again with collector devices revoke"
        )
    return problems


def write_broker_config(
    devices: list[RegisteredDevice],
    tls: BrokerTls,
    layout: BrokerLayout,
    out: Path,
    revoked: Collection[int] = (),
) -> Written:
    """Write the broker's files for the registered boxes not revoked; `revoked` are the
    serials of revoked certificates, which the CRL must list. BrokerConfigError names
    every device or option at fault, and nothing is written."""
    admitted = [d for d in devices if d.revoked is None]
    device_ca = tls.device_ca_file.read_bytes() if tls.device_ca_file else None
    certified = [d for d in admitted if d.credential and d.credential.certificate_sha256]
    problems = [
        *_center_problems(layout, {d.device for d in devices}),
        *_device_problems(admitted, layout, device_ca),
        *_tls_problems(tls, bool(certified), device_ca, revoked),
    ]
    if problems:
        raise BrokerConfigError(problems)
    gid = grp.getgrnam(layout.group).gr_gid if layout.group else None
    out.mkdir(parents=True, exist_ok=True)
    collectors = {name: _secret(out / f"{name}.password") for name in layout.collectors}
    consoles = {name: _secret(out / f"{name}.password") for name in layout.consoles}

    center_passwords = [password_entry(name, secret) for name, secret in collectors.items()]
    center_acl = [line for name in collectors for line in (*collector_acl(layout.prefix, name), "")]
    field_passwords = [password_entry(name, secret) for name, secret in consoles.items()]
    field_acl = [line for name in consoles for line in (*console_acl(layout.prefix, name), "")]
    certificate_acl: list[str] = []
    for d in admitted:
        credential = d.credential
        assert credential is not None  # checked above
        plates = d.kind.sends_plates
        if credential.password_entry:
            field_passwords.append(credential.password_entry)
            acl = device_acl(layout.prefix, d.site, d.device, plates=plates)
            field_acl += [f"# {d.name} ({d.kind})", *acl, ""]
        else:
            username = certificate_username(d.device)
            acl = device_acl(layout.prefix, d.site, d.device, plates=plates, username=username)
            certificate_acl += [f"# {d.name} ({d.kind})", *acl, ""]

    server = [
        f"cafile {tls.ca_file}",
        f"certfile {tls.cert_file}",
        f"keyfile {tls.key_file}",
        "tls_version tlsv1.2",
    ]
    conf = [
        f"# Written by `collector broker-config` from {len(admitted)} registered device(s).",
        "# Regenerate it rather than edit it: the registry is the source.",
        "# Each listener has its own passwords and ACL: a credential counts where it belongs.",
        "per_listener_settings true",
        "persistence true",
        f"persistence_location {layout.persistence}/",
        "max_inflight_messages 1000",
        "max_queued_messages 100000",
        "set_tcp_nodelay true",
        "",
        "# Field boxes with a password, and consoles (alerts only). The username is the",
        "# client id: no credential can take another's session, or a collector's.",
        f"listener {layout.port}",
        "allow_anonymous false",
        f"password_file {out / 'field.passwords'}",
        f"acl_file {out / 'field.acl'}",
        "use_username_as_clientid true",
        *server,
    ]
    if certified:
        assert tls.device_ca_file is not None  # checked above
        conf += [
            "",
            "# Field boxes with a certificate from the device CA, the only CA trusted here.",
            "# Its subject (CN=<device>) is the username and the client id.",
            f"listener {layout.cert_port}",
            "allow_anonymous false",
            f"acl_file {out / 'certificates.acl'}",
            f"cafile {tls.device_ca_file}",
            *server[1:],
            "require_certificate true",
            "use_subject_as_username true",
            "use_username_as_clientid true",
        ]
        if tls.crl_file is not None:
            conf.append(f"crlfile {tls.crl_file}")
    conf += [
        "",
        "# The collectors, and nobody else: they choose their own client ids.",
        f"listener {layout.center_port}",
        "allow_anonymous false",
        f"password_file {out / 'center.passwords'}",
        f"acl_file {out / 'center.acl'}",
        *server,
    ]
    files = (
        _write(out / "mosquitto.conf", "\n".join(conf) + "\n", 0o644),
        _write(out / "field.passwords", "\n".join(field_passwords) + "\n", 0o640, gid),
        _write(out / "field.acl", "\n".join(field_acl), 0o640, gid),
        _write(out / "certificates.acl", "\n".join(certificate_acl), 0o640, gid),
        _write(out / "center.passwords", "\n".join(center_passwords) + "\n", 0o640, gid),
        _write(out / "center.acl", "\n".join(center_acl), 0o640, gid),
    )
    for name in STALE:
        (out / name).unlink(missing_ok=True)
    return Written(
        len(admitted),
        len(admitted) - len(certified),
        len(certified),
        len(devices) - len(admitted),
        files,
    )
