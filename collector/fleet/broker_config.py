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
The files the broker reads are 0640, given to `group` (the broker's own) when asked; the
folder is made 0755 whatever the umask (a listing holds no secret: each file guards
itself), and with a group, a folder on the way that the group cannot pass is refused
before anything is written, since the broker would then fail to start or to reload.

The broker writes its pid to `pid_file`, so that `reload_broker` can make it read the
passwords and ACLs again after boxes are registered or revoked: a SIGHUP, as `systemctl
reload mosquitto` sends, keeps every client connected, where a restart would drop them
all. A reload cannot open or close a listener (Mosquitto refuses the whole new
configuration then), so `Written.listeners_changed` says when only a restart will do.
"""

import grp
import itertools
import os
import pwd
import re
import signal
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.fleet.registry import RegisteredDevice
from collector.i18n import services
from iotruntime.broker_access import (
    CERTIFICATE_PORT,
    PASSWORD_PORT,
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
from iotwire.codec import MAX_PAYLOAD_BYTES
from iotwire.topics import IDENT_PATTERN

_ = services.gettext
NAME = re.compile(f"^{IDENT_PATTERN}$")
STALE = ("passwords", "acl")
"""What versions before per-listener files wrote: stale credentials, removed."""

AUTOSAVE_INTERVAL_S = 60
"""How often the broker writes its in-memory state (sessions, queued QoS 1 messages,
retained statuses) to `mosquitto.db`; it also writes it when it stops cleanly. A SIGKILL,
an out-of-memory kill or a power cut loses what changed since the last save: messages
queued for a collector that was away, commands and confirmations queued for boxes that
were, sessions made since. Agents keep every message until a collector confirms it is
committed, and send it again otherwise, so for the data the broker's disk is a second
line: a lost queue costs resends, not readings. What the broker alone holds is commands
queued for absent boxes (`collector command` then sees no answer and is run again) and
alerts queued for absent consoles (the police database keeps them, webhooks carry them):
a minute bounds that loss. Mosquitto's default, 30 minutes, would not. Shorter would
rewrite the whole database more often, and it is largest (up to `max_queued_messages`
per collector) during a collector outage, when the broker's disk is busiest; saving by
count of changes instead (`autosave_on_changes`) would save most often exactly then."""

PACKET_HEADROOM = 4096
"""What an MQTT packet adds to the largest payload the wire allows: the fixed header (at
most 5 bytes), the topic (2 bytes and the name; ours stay under 300), the packet id and
MQTT 5 properties. A CONNECT (credentials, the status will) is far smaller."""


def size_limits() -> list[str]:
    """The wire contract's maximum, enforced by the broker before anything is queued:
    `message_size_limit` counts the payload alone, so it is `MAX_PAYLOAD_BYTES` exactly, and
    a larger payload is neither forwarded nor queued (the sender's QoS 1 flow completes;
    MQTT 5 senders get reason code 0x83); collectors would drop it anyway. The broker
    judges it only once it has read the whole packet, though, and MQTT allows 256 MiB:
    `max_packet_size`, checked on the length a packet announces before its body is read,
    disconnects a client sending more than the contract can ever need, so a stolen
    credential cannot make the broker hold hundreds of megabytes per packet. Mosquitto 2.0
    logs at start that it recommends `max_packet_size` instead; alone, it could not be
    exact about the payload, since the topic's length varies."""
    return [
        f"message_size_limit {MAX_PAYLOAD_BYTES}",
        f"max_packet_size {MAX_PAYLOAD_BYTES + PACKET_HEADROOM}",
    ]


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
    port: int = PASSWORD_PORT
    cert_port: int = CERTIFICATE_PORT
    center_port: int = 8885
    persistence: Path = Path("/var/lib/mosquitto")
    collectors: tuple[str, ...] = ("collector",)
    consoles: tuple[str, ...] = ()
    client_ids: tuple[str, ...] = ()  # collectors' ingest.client_id, no device's to take
    group: str | None = None
    pid_file: Path | None = None  # None: mosquitto.pid in `persistence`

    @property
    def pid_path(self) -> Path:
        """Where the broker writes its pid. By default in its data folder: the one folder
        its own user surely writes, whether it starts as that user or as root and drops to
        it (Mosquitto writes the pid after dropping), and which Debian's package makes."""
        return self.pid_file or self.persistence / "mosquitto.pid"


@dataclass(frozen=True)
class Written:
    devices: int
    password_devices: int
    certificate_devices: int
    revoked: int
    files: tuple[Path, ...]
    listeners_changed: bool = False  # against the config written before: restart, not reload


class BrokerConfigError(ValueError):
    """The registry or the options would give the broker a hole; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(_("refused, nothing written:") + "\n" + listed)
        self.problems = problems


class BrokerReloadError(RuntimeError):
    """The running broker could not be told to reload; the files are written."""


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
        problems.append(_("no collector user: the broker would admit no collector"))
    for name in sorted(set(names)):
        if not NAME.match(name):
            problems.append(
                _("{name}: a broker user is 1-63 lowercase letters, digits or -").format(
                    name=repr(name)
                )
            )
        if names.count(name) > 1:
            problems.append(
                _("{name} is given twice (collectors and consoles need their own)").format(
                    name=repr(name)
                )
            )
        if name in registered:
            problems.append(
                _("{name} is a registered device: choose another name").format(name=repr(name))
            )
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
            problems.append(
                _("{device}: registered without a credential (provision it again)").format(
                    device=d.device
                )
            )
            continue
        if d.device in taken:
            problems.append(
                _("{device}: the operations center's name on the broker, not a box's").format(
                    device=d.device
                )
            )
        if credential.username != d.device:
            problems.append(
                _(
                    "{device}: signs in as {username}, not as itself"
                    " (import its bundle again: this registry predates the check)"
                ).format(device=d.device, username=repr(credential.username))
            )
        if credential.certificate_sha256 is None:
            continue
        if credential.certificate is None:
            problems.append(
                _(
                    "{device}: its bundle carries no certificate (provisioned before the device"
                    " CA): provision it again with --device-ca, or revoke it"
                ).format(device=d.device)
            )
        elif device_ca is not None and not issued_by(credential.certificate.encode(), device_ca):
            problems.append(
                _("{device}: its certificate is not from the device CA").format(device=d.device)
            )
    return problems


def _closed_to(gid: int, path: Path) -> Path | None:
    """The first existing folder on the way to `path` that the broker's group cannot
    pass: not open to others, nor to that group, nor owned by a user whose own group it
    is (the broker's user). Folders still to be made are made open to it."""
    for directory in reversed((path, *path.parents)):
        if not directory.exists():
            return None
        status = directory.stat()
        if status.st_mode & 0o001 or (status.st_mode & 0o010 and status.st_gid == gid):
            continue
        try:
            owner_gid = pwd.getpwuid(status.st_uid).pw_gid
        except KeyError:
            owner_gid = None
        if not (status.st_mode & 0o100 and owner_gid == gid):
            return directory
    return None


def _make_dirs(path: Path) -> None:
    """Make `path` and its missing parents 0755 whatever the umask: under 077 they would
    be closed to the broker's user, which then could not read its passwords and ACLs."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        directory.chmod(0o755)


def _listeners(conf: Path) -> list[str]:
    if not conf.is_file():
        return []
    return [
        line
        for line in conf.read_text(encoding="utf-8").splitlines()
        if line.startswith("listener ")
    ]


def _tls_problems(
    tls: BrokerTls, certificates: bool, device_ca: bytes | None, revoked: Collection[int]
) -> list[str]:
    problems = []
    if certificates and device_ca is None:
        problems.append(_("devices with a certificate need --device-ca, the CA that signs them"))
    if device_ca is not None and same_certificate(device_ca, tls.ca_file.read_bytes()):
        problems.append(
            _(
                "--device-ca is the site CA: a CA of its own signs devices, so that its key,"
                " which technicians carry, cannot sign the collector or the broker"
            )
        )
    if not revoked:
        return problems
    if tls.crl_file is None or device_ca is None:
        return [*problems, _("revoked certificates need --crl, from collector devices revoke")]
    listed = revoked_serials(tls.crl_file.read_bytes(), device_ca)
    if listed is None:
        problems.append(_("{crl} is not signed by the device CA").format(crl=tls.crl_file))
    elif missing := set(revoked) - listed:
        problems.append(
            _(
                "{crl} leaves out {count} revoked certificate(s):"
                " write it again with collector devices revoke"
            ).format(crl=tls.crl_file, count=len(missing))
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
    gid = grp.getgrnam(layout.group).gr_gid if layout.group else None
    if gid is not None and (closed := _closed_to(gid, out)) is not None:
        problems.append(
            _(
                "{folder} is closed to group {group}: the broker could not read its"
                " files (chmod o+x, or chgrp {group} and chmod g+x)"
            ).format(folder=closed, group=layout.group)
        )
    if problems:
        raise BrokerConfigError(problems)
    _make_dirs(out)
    listeners_before = _listeners(out / "mosquitto.conf")
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
        "# Saved every minute and at a clean stop: a SIGKILL loses at most the last minute's",
        "# queues, which agents send again (they keep each message until it is confirmed).",
        f"autosave_interval {AUTOSAVE_INTERVAL_S}",
        "# Where `collector broker-config --reload` finds the broker to signal.",
        f"pid_file {layout.pid_path}",
        "# The wire contract's largest payload; a packet far over it is refused unread.",
        *size_limits(),
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
        bool(listeners_before) and listeners_before != _listeners(out / "mosquitto.conf"),
    )


def _config_argument(args: Sequence[bytes]) -> bytes | None:
    for flag, value in itertools.pairwise(args):
        if flag in (b"-c", b"--config-file"):
            return value
    return None


def _runs(pid: int, conf: Path) -> bool:
    """Whether process `pid` is a Mosquitto started on `conf`."""
    proc = Path(f"/proc/{pid}")
    if (proc / "comm").read_text(encoding="utf-8").strip() != "mosquitto":
        return False
    argument = _config_argument((proc / "cmdline").read_bytes().split(b"\0"))
    if argument is None:
        return False
    started_on = Path(os.fsdecode(argument))
    if not started_on.is_absolute():
        started_on = Path(os.readlink(proc / "cwd")) / started_on
    try:
        return started_on.samefile(conf)
    except FileNotFoundError:
        return False


def reload_broker(conf: Path, pid_file: Path) -> int:
    """Send SIGHUP to the Mosquitto running `conf`, whose pid is in `pid_file`, and return
    that pid: it reads its passwords and ACLs again and its clients stay connected. The
    process is checked first: a broker killed with SIGKILL leaves its pid file, whose
    number may since be another process's, and a broker started on another config would
    not read these files at all."""
    try:
        text = pid_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise BrokerReloadError(
            _(
                "no {pid_file}: the broker is not running, or was started on a config without"
                " this pid_file; restart it once"
            ).format(pid_file=pid_file)
        ) from None
    if not text.isdigit():
        raise BrokerReloadError(
            _("{pid_file} holds no pid: {text}").format(pid_file=pid_file, text=repr(text[:40]))
        )
    pid = int(text)
    try:
        running = _runs(pid, conf)
    except FileNotFoundError:
        raise BrokerReloadError(
            _("no process {pid} (from {pid_file}): the broker is not running; start it").format(
                pid=pid, pid_file=pid_file
            )
        ) from None
    except PermissionError:
        raise BrokerReloadError(
            _("not allowed to look at process {pid}: run as root").format(pid=pid)
        ) from None
    if not running:
        raise BrokerReloadError(
            _(
                "process {pid} (from {pid_file}) is not a mosquitto running {conf}: nothing sent"
            ).format(pid=pid, pid_file=pid_file, conf=conf)
        )
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise BrokerReloadError(
            _("the broker (pid {pid}) ended meanwhile; start it").format(pid=pid)
        ) from None
    except PermissionError:
        raise BrokerReloadError(
            _(
                "not allowed to signal the broker (pid {pid}): run as root, or"
                " systemctl reload mosquitto"
            ).format(pid=pid)
        ) from None
    return pid
