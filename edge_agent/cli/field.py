"""The technician's commands on site: `provision` a bare box, `check` it before leaving,
and see its `status` while it runs."""

import asyncio
import logging
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer
from rich.markup import escape
from rich.table import Table

from edge_agent.check import run_checks
from edge_agent.config import DEFAULT_RELEASES_DIR, SnmpApSource, load_agent
from edge_agent.i18n import _
from edge_agent.profiles import Profile, builtin_profiles_dir, load_profile
from edge_agent.status import EVERY_S as STATUS_EVERY_S
from edge_agent.status import outbox_counts, read_status
from edge_agent.wiring import (
    SENSOR_FORMAT,
    Sensor,
    Wiring,
    parse_camera,
    parse_sensor,
    profile_names,
    serial_adapters,
)
from iotruntime.broker_access import CERTIFICATE_PORT, PASSWORD_PORT
from iotruntime.configfile import ConfigError
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail
from iotruntime.registration import BoxKind, Location

if TYPE_CHECKING:  # imported when used: provision needs `cryptography`, see provision()
    from edge_agent.provision import AccessPoint, SnmpAccess

# The settings model's choices, so a flag offers exactly what a config may say.
SNMP_VENDORS: tuple[str, ...] = get_args(SnmpApSource.model_fields["vendor"].annotation)
SNMP_AUTH_PROTOCOLS: tuple[str, ...] = get_args(
    SnmpApSource.model_fields["auth_protocol"].annotation
)
SNMP_PRIV_PROTOCOLS: tuple[str, ...] = get_args(
    SnmpApSource.model_fields["priv_protocol"].annotation
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help=_("agent config (YAML)"))]
ACTION_STYLE = {"create": "green", "update": "yellow", "keep": "dim"}
# What each planned action is called on screen; the plan itself keeps the English names.
ACTION_LABEL = {"create": _("create"), "update": _("update"), "keep": _("keep")}


def provision(
    device: Annotated[str | None, typer.Option(help=_("the device id, e.g. cam-dd-07"))] = None,
    site: Annotated[str | None, typer.Option(help=_("the site, e.g. duong-dong"))] = None,
    kind: Annotated[BoxKind | None, typer.Option(help=_("what the box is"))] = None,
    name: Annotated[
        str | None, typer.Option(help=_("the pole or station: where it stands"))
    ] = None,
    broker_host: Annotated[str | None, typer.Option(help=_("the center's broker"))] = None,
    ca: Annotated[Path | None, typer.Option(help=_("the site CA certificate (PEM)"))] = None,
    lat: Annotated[float | None, typer.Option(min=-90, max=90, help=_("latitude"))] = None,
    lon: Annotated[float | None, typer.Option(min=-180, max=180, help=_("longitude"))] = None,
    broker_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help=_(
                "default {password_port} for a password, {certificate_port} for a"
                " certificate, as `collector broker-config` sets the broker up"
            ).format(password_port=PASSWORD_PORT, certificate_port=CERTIFICATE_PORT),
        ),
    ] = None,
    device_ca: Annotated[
        Path | None,
        typer.Option(help=_("the device CA: issue a client certificate instead of a password")),
    ] = None,
    device_ca_key: Annotated[Path | None, typer.Option(help=_("the device CA's key"))] = None,
    sensor: Annotated[
        list[str] | None,
        typer.Option(
            help=_("a Modbus sensor, {format} (repeat; `edge-agent profiles`)").format(
                format=SENSOR_FORMAT
            )
        ),
    ] = None,
    serial: Annotated[
        str | None, typer.Option(help=_("the sensors' RS-485 adapter, e.g. /dev/ttyUSB0"))
    ] = None,
    baudrate: Annotated[int | None, typer.Option(help=_("default: the profiles'"))] = None,
    parity: Annotated[str | None, typer.Option(help=_("N, E or O; default: the profiles'"))] = None,
    modbus_host: Annotated[
        str | None, typer.Option(help=_("the sensors' Modbus TCP device or gateway"))
    ] = None,
    modbus_port: Annotated[
        int, typer.Option(min=1, max=65535, help=_("Modbus TCP port (with --modbus-host)"))
    ] = 502,
    camera: Annotated[
        list[str] | None,
        typer.Option(help=_("a camera pole's camera, NAME=URL (repeat; rtsp://, /dev/video0)")),
    ] = None,
    wifi_interface: Annotated[
        str | None, typer.Option(help=_("an access point's wireless interface, e.g. wlan1"))
    ] = None,
    snmp_host: Annotated[
        list[str] | None,
        typer.Option(
            help=_(
                "a managed access point read over SNMP, [NAME=]HOST[:PORT]"
                " (repeat; replaces the box's access point sources)"
            )
        ),
    ] = None,
    snmp_port: Annotated[
        int, typer.Option(min=1, max=65535, help=_("SNMP port of an --snmp-host without one"))
    ] = 161,
    snmp_vendor: Annotated[
        str | None,
        typer.Option(
            help=_("whose MIB counts the clients: {vendors}").format(
                vendors=", ".join(SNMP_VENDORS)
            )
        ),
    ] = None,
    snmp_community_file: Annotated[
        Path | None,
        typer.Option(help=_("SNMP v2c: a file holding the community (never the community)")),
    ] = None,
    snmp_community: Annotated[str | None, typer.Option(hidden=True)] = None,
    snmp_user: Annotated[
        str | None, typer.Option(help=_("SNMP v3 (authenticated and encrypted): the user"))
    ] = None,
    snmp_auth_protocol: Annotated[
        str | None,
        typer.Option(
            help=_("SNMP v3: {protocols}; default sha").format(
                protocols=", ".join(SNMP_AUTH_PROTOCOLS)
            )
        ),
    ] = None,
    snmp_auth_file: Annotated[
        Path | None, typer.Option(help=_("SNMP v3: a file holding the auth key"))
    ] = None,
    snmp_priv_protocol: Annotated[
        str | None,
        typer.Option(
            help=_("SNMP v3: {protocols}; default aes").format(
                protocols=", ".join(SNMP_PRIV_PROTOCOLS)
            )
        ),
    ] = None,
    snmp_priv_file: Annotated[
        Path | None, typer.Option(help=_("SNMP v3: a file holding the priv key"))
    ] = None,
    collector_key: Annotated[
        Path | None,
        typer.Option(help=_("the center's config-signing.pub: lets it push configs to the box")),
    ] = None,
    releases_dir: Annotated[
        str | None,
        typer.Option(
            help=_(
                "where software updates are installed; with --collector-key the default is"
                " {path}, as install-edge.sh lays it out; `none`: no updates"
            ).format(path=DEFAULT_RELEASES_DIR)
        ),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option("--reset", help=_("start again from the template, not the box's config")),
    ] = False,
    template: Annotated[
        Path | None,
        typer.Option(help=_("config template (default: configs/ for the box type)")),
    ] = None,
    out: Annotated[Path, typer.Option(help=_("where the agent's files go"))] = Path(
        "/etc/edge-agent"
    ),
    yes: Annotated[
        bool, typer.Option("--yes", help=_("change a provisioned box without asking"))
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help=_("say what would change, write nothing"))
    ] = False,
) -> None:
    # Imported here: certificates need `cryptography`, a large import that `edge-agent run`,
    # which shares this module and runs all day on a small box, has no use for.
    from edge_agent.provision import Action, Request, apply, plan

    answers = _answers(
        {"device": device, "site": site, "kind": kind, "name": name},
        {"broker_host": broker_host, "ca": ca},
    )
    device, site, name = answers["device"], answers["site"], answers["name"]
    kind, broker_host = BoxKind(answers["kind"]), answers["broker_host"]
    ca = Path(answers["ca"])
    try:
        sensors = [parse_sensor(text) for text in sensor or ()]
        new_box = not (out / "agent.yaml").is_file() and template is None
        if sys.stdin.isatty() and not sensors and new_box and not snmp_host:
            sensors, serial = _ask_sensors(serial, modbus_host)
    except ValueError as exc:
        raise fail(exc) from None
    if sensors and (serial is None) == (modbus_host is None):
        raise fail(ValueError(_("sensors hang on --serial PORT or --modbus-host HOST: give one")))
    if camera and kind is not BoxKind.CAMERA_POLE:
        raise fail(ValueError(_("--camera is for a camera_pole, not a {kind}").format(kind=kind)))
    if wifi_interface is not None and kind is not BoxKind.WIFI_AP:
        raise fail(
            ValueError(_("--wifi-interface is for a wifi_ap, not a {kind}").format(kind=kind))
        )
    try:
        cameras = tuple(parse_camera(text) for text in camera or ())
    except ValueError as exc:
        raise fail(exc) from None
    snmp = SnmpFlags(
        snmp_vendor,
        snmp_community_file,
        snmp_community,
        snmp_user,
        snmp_auth_protocol,
        snmp_auth_file,
        snmp_priv_protocol,
        snmp_priv_file,
    )
    try:
        access_points, access = _snmp_request(
            snmp_host or [], snmp_port, snmp, kind, wifi_interface
        )
    except ValueError as exc:
        raise fail(exc) from None
    wiring = Wiring(serial, baudrate, parity, modbus_host, modbus_port)
    if (lat is None) != (lon is None):
        raise fail(ValueError(_("--lat and --lon go together")))
    location = Location(lat=lat, lon=lon) if lat is not None and lon is not None else None
    if (device_ca is None) != (device_ca_key is None):
        raise fail(ValueError(_("--device-ca and --device-ca-key go together")))
    request = Request(
        device,
        site,
        kind,
        name,
        location,
        broker_host,
        broker_port or (PASSWORD_PORT if device_ca is None else CERTIFICATE_PORT),
        ca,
        device_ca,
        device_ca_key,
        template,
        sensors=tuple(sensors),
        wiring=wiring,
        cameras=cameras,
        wifi_interface=wifi_interface,
        access_points=access_points,
        snmp=access,
        collector_key=collector_key,
        releases_dir=releases_dir,
        reset=reset,
    )
    try:
        planned = plan(request, out)
    except (ConfigError, OSError, ValueError) as exc:
        raise fail(exc) from None
    table = Table(
        _("file"),
        _("action"),
        _("what"),
        title=_("Provisioning {device} in {out}").format(device=device, out=out),
    )
    for change in planned.changes:
        style = ACTION_STYLE[change.action]
        label = ACTION_LABEL[change.action]
        table.add_row(change.name, f"[{style}]{label}[/{style}]", escape(change.detail))
    console.print(table)
    updates = [c for c in planned.pending if c.action is Action.UPDATE]
    if dry_run or not planned.pending:
        console.print(
            _("nothing to change") if not planned.pending else _("dry run: nothing written")
        )
        return
    if updates and not yes and not typer.confirm(_("this box is provisioned already; change it?")):
        raise typer.Exit(1)
    apply(planned)
    credential = planned.registration.credential
    console.print(_("written to {out}. Broker ACL for {device}:").format(out=out, device=device))
    for line in planned.acl:
        console.print(f"  {line}", highlight=False)
    if credential is not None and credential.password_entry:
        console.print(_("password-file entry:"), highlight=False)
        console.print(f"  {credential.password_entry}", highlight=False, soft_wrap=True)
    console.print(
        _(
            "bring {bundle} to the operations center:"
            " collector devices import, then collector broker-config"
        ).format(bundle=out / "registration.yaml")
    )


def _answers(identity: dict[str, object], broker: dict[str, object]) -> dict[str, str]:
    """The required values: given as flags, or asked (a terminal, or answers piped in);
    when the input ends first, the values still missing are named, all at once."""
    wanted = {**identity, **broker}
    kinds = ", ".join(k.value for k in BoxKind)
    questions = {
        "device": _("device id (e.g. air-dd-01)"),
        "site": _("site (e.g. duong-dong)"),
        "kind": _("box type ({kinds})").format(kinds=kinds),
        "name": _("pole or station name"),
        "broker_host": _("broker host"),
        "ca": _("site CA certificate (PEM file)"),
    }
    found: dict[str, str] = {}
    for key, value in wanted.items():
        if value is not None:
            found[key] = str(value)
            continue
        try:
            found[key] = typer.prompt(questions[key])
        except typer.Abort:
            missing = [k for k, v in wanted.items() if v is None and k not in found]
            flags = ", ".join("--" + k.replace("_", "-") for k in missing)
            raise fail(
                ValueError(
                    _("missing {flags}: give them as flags, or answer the questions").format(
                        flags=flags
                    )
                )
            ) from None
    try:
        BoxKind(found["kind"])
    except ValueError:
        raise fail(
            ValueError(
                _("box type {kind}: one of {kinds}").format(kind=repr(found["kind"]), kinds=kinds)
            )
        ) from None
    return found


@dataclass(frozen=True)
class SnmpFlags:
    """The --snmp-* flags but the hosts, as given."""

    vendor: str | None = None
    community_file: Path | None = None
    community: str | None = None
    user: str | None = None
    auth_protocol: str | None = None
    auth_file: Path | None = None
    priv_protocol: str | None = None
    priv_file: Path | None = None

    def given(self) -> list[str]:
        """The flags given, as typed."""
        return [
            "--snmp-" + flag.replace("_", "-")
            for flag, value in vars(self).items()
            if value is not None and flag != "community"
        ]


def _snmp_request(
    hosts: list[str],
    port: int,
    flags: SnmpFlags,
    kind: BoxKind,
    wifi_interface: str | None,
) -> tuple[tuple["AccessPoint", ...], "SnmpAccess | None"]:
    """The managed access points and how to read them, from the flags and, for what they
    leave out, the questions; ValueError naming the flags that do not go together."""
    from edge_agent.provision import SnmpAccess, parse_access_point

    if flags.community is not None:
        raise ValueError(
            _(
                "the SNMP community never goes on the command line, where the shell history"
                " and `ps` show it: put it in a file only root reads and give"
                " --snmp-community-file PATH"
            )
        )
    if not hosts:
        if flags.given():
            raise ValueError(
                _("{flags}: only with --snmp-host").format(flags=", ".join(flags.given()))
            )
        return (), None
    if kind is not BoxKind.WIFI_AP:
        raise ValueError(_("--snmp-host is for a wifi_ap, not a {kind}").format(kind=kind))
    if wifi_interface is not None:
        raise ValueError(
            _(
                "--wifi-interface is for an access point the box runs iw on, --snmp-host"
                " for a managed one read over SNMP: give one"
            )
        )
    points = tuple(parse_access_point(h, port, i, len(hosts)) for i, h in enumerate(hosts))
    for what in ([p.name for p in points], [f"{p.host}:{p.port}" for p in points]):
        repeated = sorted({n for n in what if what.count(n) > 1})
        if repeated:
            raise ValueError(
                _("--snmp-host: {names} given twice").format(names=", ".join(repeated))
            )
    if any(v is not None for v in (flags.community_file, flags.user, flags.auth_file)):
        _check_snmp_version(flags)  # before any question: the flags given are wrong already
    flags = _ask_snmp(flags)
    _check_snmp_version(flags)
    for flag, value, choices in (
        ("--snmp-vendor", flags.vendor, SNMP_VENDORS),
        ("--snmp-auth-protocol", flags.auth_protocol, SNMP_AUTH_PROTOCOLS),
        ("--snmp-priv-protocol", flags.priv_protocol, SNMP_PRIV_PROTOCOLS),
    ):
        if value is not None and value not in choices:
            raise ValueError(
                _("{flag} {value}: one of {choices}").format(
                    flag=flag, value=repr(value), choices=", ".join(choices)
                )
            )
    files = {"--snmp-community-file": flags.community_file, "--snmp-auth-file": flags.auth_file}
    files |= {"--snmp-priv-file": flags.priv_file}
    for flag, path in files.items():
        if path is not None and not path.is_file():
            raise ValueError(
                _(
                    "{flag} {path}: no such file; the secret goes in a file, never on the"
                    " command line"
                ).format(flag=flag, path=path)
            )
    assert flags.vendor is not None  # asked for when not given
    access = SnmpAccess(
        flags.vendor,
        flags.community_file,
        flags.user,
        flags.auth_protocol or "sha",
        flags.auth_file,
        flags.priv_protocol or "aes",
        flags.priv_file,
    )
    return points, access


def _check_snmp_version(flags: SnmpFlags) -> None:
    """v2c's community or v3's user and keys, whole: ValueError naming what is wrong."""
    v3 = {"--snmp-user": flags.user, "--snmp-auth-file": flags.auth_file}
    v3 |= {"--snmp-priv-file": flags.priv_file}
    if flags.community_file is not None and any(v is not None for v in v3.values()):
        raise ValueError(
            _(
                "SNMP v2c (--snmp-community-file) or v3 (--snmp-user, --snmp-auth-file,"
                " --snmp-priv-file), not both"
            )
        )
    if flags.community_file is None:
        missing = [flag for flag, value in v3.items() if value is None]
        if missing:
            raise ValueError(
                _(
                    "SNMP v3 needs --snmp-user, --snmp-auth-file and --snmp-priv-file;"
                    " missing: {flags}"
                ).format(flags=", ".join(missing))
            )
    elif flags.auth_protocol is not None or flags.priv_protocol is not None:
        raise ValueError(_("--snmp-auth-protocol and --snmp-priv-protocol: only for SNMP v3"))


def _ask_snmp(flags: SnmpFlags) -> SnmpFlags:
    """The vendor and, when no credential flag is given at all, the credentials: asked
    (a terminal, or answers piped in); when the input ends first, the flags still
    missing are named."""
    credentials = (flags.community_file, flags.user, flags.auth_file, flags.priv_file)
    ask_credentials = all(value is None for value in credentials)
    try:
        if flags.vendor is None:
            vendors = ", ".join(SNMP_VENDORS)
            vendor = typer.prompt(_("access point vendor ({vendors})").format(vendors=vendors))
            flags = replace(flags, vendor=vendor)
        if ask_credentials:
            community = typer.prompt(
                _("file holding the SNMP v2c community (empty: SNMP v3)"),
                default="",
                show_default=False,
            )
            if community:
                return replace(flags, community_file=Path(community))
            flags = replace(flags, user=typer.prompt(_("SNMP v3 user")))
            auth = typer.prompt(_("file holding the SNMP v3 auth key"))
            flags = replace(flags, auth_file=Path(auth))
            priv = typer.prompt(_("file holding the SNMP v3 priv key"))
            flags = replace(flags, priv_file=Path(priv))
    except typer.Abort:
        # The input ended: what is still unknown is named; a v3 user without keys is
        # named by the checks that follow, as when given as flags.
        missing = ["--snmp-vendor"] if flags.vendor is None else []
        if ask_credentials and flags.user is None:
            missing.append("--snmp-community-file/--snmp-user")
        if missing:
            raise ValueError(
                _("missing {flags}: give them as flags, or answer the questions").format(
                    flags=", ".join(missing)
                )
            ) from None
    return flags


def _ask_sensors(serial: str | None, modbus_host: str | None) -> tuple[list[Sensor], str | None]:
    """At a terminal, for a new box given no --sensor: the profiles and adapters there
    are, then the sensors."""
    console.print(
        _("firmware profiles: {names}").format(names=", ".join(profile_names())),
        highlight=False,
    )
    if serial is None and modbus_host is None:
        adapters = serial_adapters()
        console.print(
            _("serial adapters found: {adapters}").format(
                adapters=", ".join(adapters) or _("none")
            ),
            highlight=False,
        )
        if adapters:
            serial = typer.prompt(_("the sensors' serial port"), default=adapters[0])
    texts = typer.prompt(
        _("sensors, {format}, separated by spaces (empty: the template's)").format(
            format=SENSOR_FORMAT
        ),
        default="",
        show_default=False,
    )
    return [parse_sensor(text) for text in texts.split()], serial


def profiles(csv_out: CsvOption = False, json_out: JsonOption = False) -> None:
    rows = []
    for profile_name in profile_names():
        found = load_profile(builtin_profiles_dir() / f"{profile_name}.yaml")
        line = found.serial
        serial = f"{line.baudrate} {line.parity}" if line is not None else _("set on the bus")
        points = (
            ", ".join(p.parameter for p in found.points)
            if isinstance(found, Profile)
            else ", ".join(f.parameter for f in found.fields)
        )
        rows.append((profile_name, found.manufacturer, found.model, found.protocol, serial, points))
    header = ("profile", "manufacturer", "model", "protocol", "serial", "parameters")
    out = Output.of(csv_out, json_out)
    title = _("{count} firmware profile(s)")
    labels = (
        _("profile"),
        _("manufacturer"),
        _("model"),
        _("protocol"),
        _("serial"),
        _("parameters"),
    )
    emit(title.format(count=len(rows)), header, rows, out, whole=("profile",), labels=labels)


def check(config: ConfigOption) -> None:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    lines = asyncio.run(run_checks(config))
    table = Table(_("check"), _("result"), _("detail"), title=f"edge-agent check {config}")
    passed, failed = _("pass"), _("FAIL")
    for line in lines:
        result = f"[green]{passed}[/green]" if line.ok else f"[red]{failed}[/red]"
        table.add_row(line.what, result, escape(line.detail))
    console.print(table)
    failing = [line.what for line in lines if not line.ok]
    if failing:
        summary = _("{failed} of {total} check(s) failed").format(
            failed=len(failing), total=len(lines)
        )
        console.print(f"[red]{summary}[/red]: {escape(', '.join(failing))}")
        raise typer.Exit(1)
    all_passed = _("all {count} checks passed").format(count=len(lines))
    console.print(f"[green]{all_passed}[/green]")


def _ago(at: float | None, now: float) -> str:
    if at is None:
        return _("never")
    return _("{time} ({seconds} s ago)").format(
        time=f"{datetime.fromtimestamp(at):%H:%M:%S}", seconds=f"{now - at:.0f}"
    )


def status(config: ConfigOption) -> None:
    try:
        loaded = load_agent(config)
    except ConfigError as exc:
        raise fail(exc) from None
    state_dir = loaded.config.state_dir
    current = read_status(state_dir)
    counts = outbox_counts(state_dir)
    now = time.time()
    if current is None:
        missing = _("no agent status in {state_dir}: has the agent run here?").format(
            state_dir=state_dir
        )
        console.print(f"[red]{escape(missing)}[/red]")
        raise typer.Exit(1)
    stale = now - current.written_at > 3 * STATUS_EVERY_S
    depth, dropped = counts if counts else (current.outbox_depth, current.outbox_dropped)
    console.print(
        _(
            "{device} ({kind}), agent pid {pid} up since {started}; status written {seconds} s ago"
        ).format(
            device=current.device,
            kind=current.kind,
            pid=current.pid,
            started=f"{datetime.fromtimestamp(current.started_at):%Y-%m-%d %H:%M:%S}",
            seconds=f"{now - current.written_at:.0f}",
        ),
        highlight=False,
    )
    not_connected = _("not connected")
    broker = _("connected") if current.broker_connected else f"[red]{not_connected}[/red]"
    console.print(
        _(
            "outbox: {depth} message(s) waiting, {dropped} dropped; broker {broker};"
            " last publish acknowledged {last}"
        ).format(
            depth=depth,
            dropped=dropped,
            broker=broker,
            last=_ago(current.last_publish_at, now),
        ),
        highlight=False,
    )
    table = Table(_("source"), _("type"), _("last value"), _("at"), _("errors"), _("last error"))
    for s in current.sources:
        table.add_row(
            s.name,
            s.kind,
            escape(s.last_value),
            _ago(s.last_value_at, now),
            str(s.errors),
            f"[red]{escape(s.last_error)}[/red]" if s.last_error else "",
        )
    console.print(table)
    if stale:
        old = _("the status is {seconds} s old: the agent is not running, or is stuck").format(
            seconds=f"{now - current.written_at:.0f}"
        )
        console.print(f"[red]{old}[/red]")
        raise typer.Exit(1)
