"""Turning a bare box into this device: its config, its broker credential and the
registration bundle the operations center imports.

The credential is a random password, or a client certificate signed by the device CA:
a CA of its own, not the site CA (which signed the broker's certificate and stays at the
operations center), since its key travels on technicians' laptops. A box is never given
a name the operations center uses on the broker, whichever credential it gets.

The sensors come from flags (`--sensor PROFILE:UNIT`, on `--serial` or `--modbus-host`;
`--camera NAME=URL` on a pole; `--wifi-interface` on an access point the box runs `iw`
on, `--snmp-host` for managed ones read over SNMP), or stay as the box's present config
has them; a new box without them gets its type's
template. Everything is planned before anything is written: each file is compared with what the box
already has, and a re-run on a provisioned box keeps what is still right (above all the
password or certificate the broker already knows) and says what it would change. The
planned config is loaded and checked like any config before it is written, so a template
and a request that do not fit together leave the box as it was.
"""

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from edge_agent.config import DEFAULT_RELEASES_DIR, load_agent
from edge_agent.i18n import _
from edge_agent.wiring import Sensor, Wiring, wired, with_cameras, with_wifi_interface
from iotruntime.broker_access import (
    RESERVED_USERNAMES,
    certificate_username,
    device_acl,
    entry_matches,
    new_password,
    password_entry,
)
from iotruntime.certificates import (
    Issued,
    certificate_sha256,
    common_name,
    issue_client,
    issued_by,
    same_certificate,
)
from iotruntime.configfile import ConfigError, load_model, read_yaml
from iotruntime.registration import BoxKind, Credential, Location, Registration


def template_dir() -> Path:
    """configs/ of a source checkout, or the copy an installed package carries."""
    checkout = Path(__file__).resolve().parent.parent / "configs"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share/phuquoc-telemetry/configs"


TEMPLATE_FOR = {
    BoxKind.AIR: "air-station.yaml",
    BoxKind.DOMESTIC_WATER: "domestic-water.yaml",
    BoxKind.WASTEWATER: "wastewater.yaml",
    BoxKind.SEAWATER: "seawater.yaml",
    BoxKind.NOISE: "noise.yaml",
    BoxKind.CAMERA_POLE: "camera-pole.yaml",
    BoxKind.WIFI_AP: "wifi-ap.yaml",
}
CONFIG, PASSWORD, CA, CERT, KEY, BUNDLE = (
    "agent.yaml",
    "broker-password",
    "ca.crt",
    "client.crt",
    "client.key",
    "registration.yaml",
)
COLLECTOR_KEY = "collector-key.pub"
KEY_NOTE = _("the center's key: only configs it signed are taken (collector devices config push)")
RENEW_DAYS = 30  # a certificate closer than this to its end is issued again
# Copies of the SNMP secrets beside the config, as the broker password is, so the config
# travels whole and the technician's own copy may be deleted.
SNMP_COMMUNITY, SNMP_AUTH_KEY, SNMP_PRIV_KEY = "snmp-community", "snmp-auth-key", "snmp-priv-key"
SNMP_KEY_MIN = 8  # what SNMP v3 (RFC 3414) and the reader take as a key's shortest
SNMP_CREDENTIAL_KEYS = (
    "version",
    "community_file",
    "user",
    "auth_protocol",
    "auth_key_file",
    "priv_protocol",
    "priv_key_file",
)
SNMP_TUNING_KEYS = ("interval_s", "timeout_s", "retries")
NO_RELEASES_DIR = "none"
_AP_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class _BundleDumper(yaml.SafeDumper):
    """YAML for files people read: a multi-line string (the certificate in the bundle)
    as a literal block, the way it reads on screen, rather than a quoted run of lines."""


def _literal(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    )


_BundleDumper.add_representer(str, _literal)


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    KEEP = "keep"


@dataclass(frozen=True)
class AccessPoint:
    """A managed access point the box reads over SNMP: its source's name and address."""

    name: str
    host: str
    port: int = 161


@dataclass(frozen=True)
class SnmpAccess:
    """How the box reads its managed access points, all alike (one site, one controller
    or one make): the vendor's MIB, and the v2c community's file or the v3 user with its
    keys' files, the technician's files whose content is copied onto the box."""

    vendor: str
    community_file: Path | None = None
    user: str | None = None
    auth_protocol: str = "sha"
    auth_key_file: Path | None = None
    priv_protocol: str = "aes"
    priv_key_file: Path | None = None


def parse_access_point(text: str, default_port: int, index: int, count: int) -> AccessPoint:
    """`[NAME=]HOST[:PORT]` as typed after --snmp-host (an IPv6 address with a port in
    brackets); unnamed, the one access point is `ap` as in the templates, several are
    `ap-1`, `ap-2`, ... in the order given."""
    name, sep, address = text.partition("=")
    if not sep:
        name, address = ("ap" if count == 1 else f"ap-{index + 1}"), text
    host, port_text = address, ""
    if address.startswith("["):
        host, _close, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, _colon, port_text = address.partition(":")
    problem = None
    if not _AP_NAME.match(name):
        problem = _("name {name}: lowercase letters, digits, - _ .").format(name=repr(name))
    elif not host or len(host) > 253:
        problem = _("no host")
    elif port_text and not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
        problem = _("port {port}: a number from 1 to 65535").format(port=repr(port_text))
    if problem:
        raise ValueError(
            _("--snmp-host {text}: {problem}; give [NAME=]HOST[:PORT]").format(
                text=repr(text), problem=problem
            )
        )
    return AccessPoint(name, host, int(port_text) if port_text else default_port)


@dataclass(frozen=True)
class Request:
    device: str
    site: str
    kind: BoxKind
    name: str
    location: Location | None
    broker_host: str
    broker_port: int
    ca_file: Path  # the site CA, which signed the broker's certificate
    device_ca_file: Path | None = None  # both given: a client certificate; else a password
    device_ca_key_file: Path | None = None
    template: Path | None = None
    prefix: str = "pq"
    sensors: tuple[Sensor, ...] = ()  # with `wiring`: the box's Modbus sensors
    wiring: Wiring | None = None
    cameras: tuple[tuple[str, str], ...] = ()  # a camera pole's (name, url)
    wifi_interface: str | None = None  # a Linux access point's wireless interface
    access_points: tuple[AccessPoint, ...] = ()  # with `snmp`: managed APs, over SNMP
    snmp: SnmpAccess | None = None
    # The install folder for software updates; `none` takes it out; unset, a box given
    # `collector_key` gets the installer's, unless its config names one already.
    releases_dir: str | None = None
    collector_key: Path | None = None  # the center's public key that signs config pushes
    reset: bool = False  # start from the template, not from the box's present config


@dataclass(frozen=True)
class Change:
    name: str
    action: Action
    detail: str
    content: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Plan:
    out: Path
    changes: list[Change]
    registration: Registration
    acl: list[str]

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action is not Action.KEEP]


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _change(out: Path, name: str, content: bytes, mode: int = 0o644, detail: str = "") -> Change:
    old = _read(out / name)
    if old is None:
        return Change(name, Action.CREATE, detail, content, mode)
    if old == content:
        return Change(name, Action.KEEP, "", content, mode)
    return Change(name, Action.UPDATE, detail, content, mode)


def _flatten(data: object, path: str = "") -> dict[str, object]:
    if isinstance(data, dict):
        flat: dict[str, object] = {}
        for key, value in data.items():
            flat |= _flatten(value, f"{path}.{key}" if path else str(key))
        return flat
    return {path: data}


def _differences(old: bytes | None, new: dict[str, Any]) -> str:
    if old is None:
        return ""
    try:
        before = _flatten(yaml.safe_load(old) or {})
    except yaml.YAMLError:
        return _("the present file is not valid YAML")
    after = _flatten(new)
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    more = _(" and {count} more").format(count=len(keys) - 8) if len(keys) > 8 else ""
    return ", ".join(keys[:8]) + more


def _base_config(request: Request, out: Path) -> dict[str, Any]:
    """What the new config starts from: the box's present one, so a technician's edits
    (a sensor added by hand, an interval, the outbox's bound) survive a re-run; the
    template for its type on a new box or with `reset`."""
    present = out / CONFIG
    if not request.reset and request.template is None and present.is_file():
        return read_yaml(present)
    return read_yaml(request.template or template_dir() / TEMPLATE_FOR[request.kind])


def _agent_config(request: Request, certificate: bool, out: Path) -> dict[str, Any]:
    data = _base_config(request, out)
    if request.sensors:
        data = wired(data, list(request.sensors), request.wiring or Wiring())
    if request.cameras:
        data = with_cameras(data, list(request.cameras))
    if request.wifi_interface is not None:
        data = with_wifi_interface(data, request.wifi_interface)
    if request.access_points and request.snmp is not None:
        data = _with_access_points(data, request.access_points, request.snmp)
    if request.collector_key is not None:
        data["collector_key"] = COLLECTOR_KEY
    if request.releases_dir is not None and request.releases_dir.lower() == NO_RELEASES_DIR:
        data.pop("releases_dir", None)
    elif request.releases_dir is not None:
        data["releases_dir"] = request.releases_dir
    elif request.collector_key is not None and "releases_dir" not in data:
        data["releases_dir"] = DEFAULT_RELEASES_DIR
    device: dict[str, Any] = {
        "id": request.device,
        "site": request.site,
        "kind": request.kind.value,
        "name": request.name,
    }
    if request.location is not None:
        device["location"] = {"lat": request.location.lat, "lon": request.location.lon}
    broker: dict[str, Any] = {"host": request.broker_host, "port": request.broker_port}
    if certificate:
        broker["tls"] = {"ca_file": CA, "cert_file": CERT, "key_file": KEY}
    else:
        broker |= {"username": request.device, "password_file": PASSWORD, "tls": {"ca_file": CA}}
    if request.prefix != "pq":
        broker["topic_prefix"] = request.prefix
    return {"device": device, "broker": broker} | {
        k: v for k, v in data.items() if k not in ("device", "broker")
    }


def _snmp_credentials(access: SnmpAccess) -> dict[str, Any]:
    """The source's credential keys, naming the copies provisioning writes beside it."""
    if access.community_file is not None:
        return {"version": "2c", "community_file": SNMP_COMMUNITY}
    return {
        "version": 3,
        "user": access.user,
        "auth_protocol": access.auth_protocol,
        "auth_key_file": SNMP_AUTH_KEY,
        "priv_protocol": access.priv_protocol,
        "priv_key_file": SNMP_PRIV_KEY,
    }


def _with_access_points(
    config: dict[str, Any], access_points: tuple[AccessPoint, ...], access: SnmpAccess
) -> dict[str, Any]:
    """`config` with these managed access points as its access-point sources: an AP the
    box runs `iw` on is not one it reads over SNMP, so `wifi_ap` sources (the template's)
    go too. An AP already there at the same address keeps what the technician tuned
    (`interfaces`, its interval); a new one takes the first one's interval, timeout and
    retries, or the `iw` source's interval it replaces."""
    sources = config.get("sources", [])
    present = [s for s in sources if s.get("type") == "snmp_ap"]
    linux = [s for s in sources if s.get("type") == "wifi_ap"]
    model = {k: v for k, v in (present[0] if present else {}).items() if k in SNMP_TUNING_KEYS}
    if not present and linux and "interval_s" in linux[0]:
        model = {"interval_s": linux[0]["interval_s"]}  # the template's, or the technician's
    kept = [s for s in sources if s.get("type") not in ("wifi_ap", "snmp_ap")]
    credentials = _snmp_credentials(access)
    made = []
    for ap in access_points:
        same = [s for s in present if (s.get("host"), s.get("port", 161)) == (ap.host, ap.port)]
        tuned = same[0] if same else model
        entry: dict[str, Any] = {"name": ap.name, "type": "snmp_ap", "host": ap.host}
        entry |= {"port": ap.port, "vendor": access.vendor, **credentials}
        entry |= {
            k: v for k, v in tuned.items() if k not in entry and k not in SNMP_CREDENTIAL_KEYS
        }
        made.append(entry)
    return {**config, "sources": kept + made}


def _secret(path: Path, minimum: int = 1) -> bytes:
    """A secret file's content, checked now as the reader would on the box: a box
    provisioned with an empty or short key would only say so at its first read."""
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(_("{path} is empty").format(path=path))
    if len(text) < minimum:
        raise ValueError(
            _("{path} holds fewer than {minimum} characters, the shortest SNMP v3 key").format(
                path=path, minimum=minimum
            )
        )
    return f"{text}\n".encode()


def _snmp_secrets(out: Path, access: SnmpAccess | None) -> list[Change]:
    if access is None:
        return []
    if access.community_file is not None:
        community = _secret(access.community_file)
        return [_change(out, SNMP_COMMUNITY, community, 0o600, _("the SNMP v2c community"))]
    assert access.auth_key_file is not None  # the CLI ensures v3 has both
    assert access.priv_key_file is not None
    return [
        _change(
            out, SNMP_AUTH_KEY, _secret(access.auth_key_file, SNMP_KEY_MIN), 0o600,
            _("the SNMP v3 auth key"),
        ),
        _change(
            out, SNMP_PRIV_KEY, _secret(access.priv_key_file, SNMP_KEY_MIN), 0o600,
            _("the SNMP v3 priv key"),
        ),
    ]  # fmt: skip


def _certificate_still_good(out: Path, request: Request, device_ca_pem: bytes) -> bool:
    """Whether the box's certificate is this device CA's, for this device, and not due
    for renewal: one signed by the site CA, as before the device CA, is issued again."""
    cert_pem, key_pem = _read(out / CERT), _read(out / KEY)
    if cert_pem is None or key_pem is None:
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return False
    if not issued_by(cert_pem, device_ca_pem):
        return False
    renew_at = cert.not_valid_after_utc - timedelta(days=RENEW_DAYS)
    return common_name(cert_pem) == request.device and datetime.now(UTC) < renew_at


def _certificate(
    out: Path, request: Request, device_ca: Path, device_ca_key: Path, ca_pem: bytes
) -> tuple[Credential, list[Change]]:
    device_ca_pem = device_ca.read_bytes()
    if same_certificate(device_ca_pem, ca_pem):
        raise ValueError(
            _(
                "{device_ca} is the site CA: device certificates come from the device CA"
                " (collector devices ca), whose key cannot sign the collector or the broker"
            ).format(device_ca=device_ca)
        )
    if _certificate_still_good(out, request, device_ca_pem):
        issued = Issued(out.joinpath(CERT).read_bytes(), out.joinpath(KEY).read_bytes())
    else:
        issued = issue_client(Issued(device_ca_pem, device_ca_key.read_bytes()), request.device)
    changes = [
        _change(
            out,
            CERT,
            issued.cert_pem,
            detail=_("CN={device}, from the device CA").format(device=request.device),
        ),
        _change(out, KEY, issued.key_pem, 0o600),
    ]
    credential = Credential(
        username=request.device,
        certificate_sha256=certificate_sha256(issued.cert_pem),
        certificate=issued.cert_pem.decode(),
    )
    return credential, changes


def _credential(out: Path, request: Request, ca_pem: bytes) -> tuple[Credential, list[Change]]:
    if request.device_ca_file is not None and request.device_ca_key_file is not None:
        return _certificate(
            out, request, request.device_ca_file, request.device_ca_key_file, ca_pem
        )
    present = (_read(out / PASSWORD) or b"").decode().strip()
    password = present or new_password()
    entry = _registered_entry(out, request.device, password) or password_entry(
        request.device, password
    )
    change = _change(out, PASSWORD, f"{password}\n".encode(), 0o600, _("a new random password"))
    return Credential(username=request.device, password_entry=entry), [change]


def _registered_entry(out: Path, username: str, password: str) -> str | None:
    """The password entry of the bundle made before, if it still accepts the password:
    kept, so a re-run changes nothing the broker holds."""
    if not (out / BUNDLE).is_file():
        return None
    try:
        before = load_model(out / BUNDLE, Registration)
    except ConfigError:
        return None
    entry = before.credential.password_entry if before.credential else None
    if entry and entry.startswith(f"{username}:") and entry_matches(entry, password):
        return entry
    return None


def plan(request: Request, out: Path) -> Plan:
    """What provisioning would write to `out`; raises ConfigError when the config it
    would write does not load, ValueError for a request no broker should admit."""
    if request.device in RESERVED_USERNAMES:
        raise ValueError(
            _("{device} is the operations center's name on the broker, not a box's").format(
                device=repr(request.device)
            )
        )
    if (request.device_ca_file is None) != (request.device_ca_key_file is None):
        raise ValueError(_("the device CA certificate and its key go together"))
    ca_pem = request.ca_file.read_bytes()
    certificate = request.device_ca_key_file is not None
    config = _agent_config(request, certificate, out)
    credential, credential_changes = _credential(out, request, ca_pem)
    registration = Registration(
        device=request.device,
        site=request.site,
        kind=request.kind,
        name=request.name,
        location=request.location,
        credential=credential,
    )
    config_text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode()
    header = b"# Written by edge-agent provision; run it again rather than edit by hand.\n"
    bundle = registration.model_dump(mode="json", exclude_none=True)
    bundle_text = yaml.dump(
        bundle, Dumper=_BundleDumper, sort_keys=False, allow_unicode=True
    ).encode()
    changes = [
        _change(
            out, CONFIG, header + config_text, detail=_differences(_read(out / CONFIG), config)
        ),
        _change(out, CA, ca_pem, detail=_("the site CA")),
        *credential_changes,
        *_snmp_secrets(out, request.snmp if request.access_points else None),
        *(
            [_change(out, COLLECTOR_KEY, request.collector_key.read_bytes(), detail=KEY_NOTE)]
            if request.collector_key is not None
            else []
        ),
        _change(
            out,
            BUNDLE,
            bundle_text,
            detail=_differences(_read(out / BUNDLE), bundle) or _("for collector devices import"),
        ),
    ]
    _check(changes)
    username = certificate_username(request.device) if certificate else request.device
    acl = device_acl(
        request.prefix,
        request.site,
        request.device,
        plates=request.kind.sends_plates,
        username=username,
    )
    return Plan(out, changes, registration, acl)


def _check(changes: list[Change]) -> None:
    """Load the planned config beside the planned files, as the agent will."""
    with tempfile.TemporaryDirectory() as directory:
        for change in changes:
            Path(directory, change.name).write_bytes(change.content)
        try:
            load_agent(Path(directory, CONFIG))
        except ConfigError as exc:
            raise ConfigError(Path(CONFIG), exc.problems) from None


def apply(plan_: Plan) -> None:
    plan_.out.mkdir(parents=True, exist_ok=True)
    for change in plan_.pending:
        path = plan_.out / change.name
        part = path.with_name(f".{change.name}.part")
        part.write_bytes(change.content)
        part.chmod(change.mode)
        os.replace(part, path)
