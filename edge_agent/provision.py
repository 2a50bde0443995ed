"""Turning a bare box into this device: its config, its broker credential and the
registration bundle the operations center imports.

The credential is a random password, or a client certificate signed by the device CA:
a CA of its own, not the site CA (which signed the broker's certificate and stays at the
operations center), since its key travels on technicians' laptops. A box is never given
a name the operations center uses on the broker, whichever credential it gets.

The sensors come from flags (`--sensor PROFILE:UNIT`, on `--serial` or `--modbus-host`;
`--camera NAME=URL` on a pole; `--wifi-interface` on an access point), or stay as the
box's present config has them; a new box without them gets its type's
template. Everything is planned before anything is written: each file is compared with what the box
already has, and a re-run on a provisioned box keeps what is still right (above all the
password or certificate the broker already knows) and says what it would change. The
planned config is loaded and checked like any config before it is written, so a template
and a request that do not fit together leave the box as it was.
"""

import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from edge_agent.config import load_agent
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
KEY_NOTE = "the center's key: only configs it signed are taken (collector devices config push)"
RENEW_DAYS = 30  # a certificate closer than this to its end is issued again


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
        return "the present file is not valid YAML"
    after = _flatten(new)
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")


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
    if request.collector_key is not None:
        data["collector_key"] = COLLECTOR_KEY
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
            f"{device_ca} is the site CA: device certificates come from the device CA"
            " (collector devices ca), whose key cannot sign the collector or the broker"
        )
    if _certificate_still_good(out, request, device_ca_pem):
        issued = Issued(out.joinpath(CERT).read_bytes(), out.joinpath(KEY).read_bytes())
    else:
        issued = issue_client(Issued(device_ca_pem, device_ca_key.read_bytes()), request.device)
    changes = [
        _change(out, CERT, issued.cert_pem, detail=f"CN={request.device}, from the device CA"),
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
    change = _change(out, PASSWORD, f"{password}\n".encode(), 0o600, "a new random password")
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
            f"{request.device!r} is the operations center's name on the broker, not a box's"
        )
    if (request.device_ca_file is None) != (request.device_ca_key_file is None):
        raise ValueError("the device CA certificate and its key go together")
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
        _change(out, CA, ca_pem, detail="the site CA"),
        *credential_changes,
        *(
            [_change(out, COLLECTOR_KEY, request.collector_key.read_bytes(), detail=KEY_NOTE)]
            if request.collector_key is not None
            else []
        ),
        _change(
            out,
            BUNDLE,
            bundle_text,
            detail=_differences(_read(out / BUNDLE), bundle) or "for collector devices import",
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
