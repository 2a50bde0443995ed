"""`collector devices`, `broker-config` and `command`: the operations center's side of
the fleet of boxes: their state, their registration and revocation, the device CA, the
broker that admits them, and commands to them."""

import asyncio
import difflib
import json
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import aiomqtt
import typer
from rich.markup import escape

from collector.cli.common import ConfigOption, ask, labels_of, settings_of, when_text
from collector.config import CollectorConfig
from collector.fleet.broker_config import (
    BrokerLayout,
    BrokerReloadError,
    BrokerTls,
    reload_broker,
    write_broker_config,
)
from collector.fleet.commands import NoAnswerError, send_command
from collector.fleet.config_push import (
    NO_ANSWER,
    PRIVATE_KEY,
    PUBLIC_KEY,
    PUSHED,
    PushLog,
    config_push,
    load_signing_key,
    make_signing_key,
)
from collector.fleet.registry import RegisteredDevice, Registry
from collector.i18n import _
from collector.query import DeviceRow
from collector.rows import DeviceOut, columns
from collector.stores import open_store
from iotruntime.certificates import create_ca, load_ca, revocation_list
from iotruntime.configfile import ConfigError
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail
from iotruntime.private_files import write_whole
from iotwire.config_push import (
    MAX_ROLLBACK_S,
    MIN_ROLLBACK_S,
    PushOutcome,
    outcome_of,
    signed_args,
)
from iotwire.messages import CommandAck

NEVER_SEEN = "never seen"
devices_app = typer.Typer(
    invoke_without_command=True,
    help=_("Devices: their state and accounting (no subcommand), and the registry of boxes."),
)
DeviceArgument = Annotated[str, typer.Argument(help=_("the device id"))]


@devices_app.callback()
def devices(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help=_("collector config (YAML)"))
    ] = None,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    """Every box: the registered ones whether they ever connected or not, and any other
    that sent something, with state, last seen and the message accounting that proves
    delivery (`collector devices list` is the same)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        raise fail(ValueError(_("collector devices needs --config")))
    _show_devices(config, csv_out, json_out)


@devices_app.command(
    "list", help=_("Every box, registered or seen: state, last seen, the message accounting.")
)
def devices_list(
    config: ConfigOption, csv_out: CsvOption = False, json_out: JsonOption = False
) -> None:
    _show_devices(config, csv_out, json_out)


def _show_devices(config: Path, csv_out: bool, json_out: bool) -> None:
    out = Output.of(csv_out, json_out)
    settings = settings_of(config)
    rows = ask(open_store(settings), lambda store: store.devices())
    registered = []
    if settings.registry is not None:
        registry = Registry(settings.registry.path)
        registered = registry.all()
        registry.close()
    revoked = "{name} (revoked)" if out.machine else _("{name} (revoked)")
    names = {d.device: revoked.format(name=d.name) if d.revoked else d.name for d in registered}
    seen = {d.device for d in rows}
    rows += [
        DeviceRow(d.device, d.site, NEVER_SEEN, "", None, 0, 0, 0, 0)
        for d in registered
        if d.device not in seen
    ]
    rows.sort(key=lambda d: d.device)
    now, silent_after = datetime.now(UTC), timedelta(seconds=settings.ingest.silent_after_s)
    listed = [
        DeviceOut.model_validate({**d.__dict__, "state": d.state_at(now, silent_after)})
        for d in rows
    ]
    if out.json:
        shown = [{"name": names.get(d.device, ""), **d.model_dump(mode="json")} for d in listed]
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    device, *rest = columns(DeviceOut)
    table_rows = [
        (
            d.device,
            names.get(d.device, ""),
            d.site,
            d.state,
            d.version,
            _seen(d.last_seen, out.csv),
            str(d.messages),
            str(d.duplicates),
            str(d.gaps),
            str(d.resets),
        )
        for d in listed
    ]
    header = (device, "name", *rest)
    title = _("{count} device(s)").format(count=len(listed))
    emit(title, header, table_rows, out, labels=labels_of(header))


def _seen(at: datetime | None, csv_out: bool) -> str:
    if at is None:
        return "" if csv_out else _("never")
    return when_text(at, csv_out)


@devices_app.command(
    "import",
    help=_(
        "Register provisioned boxes; a bad bundle is reported and the others imported. A"
        " bundle that would change how a registered box signs in, or what it is, is refused"
        " unless --replace: a bundle is a file passed by hand."
    ),
)
def devices_import(
    config: ConfigOption,
    bundles: Annotated[
        list[Path], typer.Argument(help=_("registration bundles from edge-agent provision"))
    ],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help=_(
                "let a bundle give a registered box another credential or kind (re-provisioned)"
            ),
        ),
    ] = False,
) -> None:
    registry = _registry(config)
    failed = 0
    try:
        for path in bundles:
            try:
                entry, new = registry.import_file(path, replace)
            except ConfigError as exc:
                rejected = _("rejected:")
                console.print(f"[red]{rejected}[/red] {escape(str(exc))}", highlight=False)
                failed += 1
                continue
            console.print(_imported(new, entry))
    finally:
        registry.close()
    if failed:
        raise typer.Exit(1)


def _imported(new: bool, entry: RegisteredDevice) -> str:
    """The line for a bundle taken: the box, its name and kind, and where it stands."""
    named = {"device": entry.device, "name": escape(entry.name), "kind": entry.kind}
    if entry.location is None:
        done = (
            _("registered {device} ({name}, {kind})")
            if new
            else _("updated {device} ({name}, {kind})")
        )
        return done.format(**named)
    if new:
        done = _("registered {device} ({name}, {kind}) at {lat}, {lon}")
    else:
        done = _("updated {device} ({name}, {kind}) at {lat}, {lon}")
    return done.format(**named, lat=entry.location.lat, lon=entry.location.lon)


def _registry(config: Path) -> Registry:
    settings = settings_of(config)
    if settings.registry is None:
        problem = _("the config has no registry section")
        raise fail(ValueError(f"{config}: registry: {problem}"))
    return Registry(settings.registry.path)


@devices_app.command(
    "revoke",
    help=_(
        "Take a lost or stolen box off the broker: it is marked revoked, its credential can"
        " never be imported again, and, for a certificate, the device CA's revocation list is"
        " written again with every revoked certificate. Then run broker-config and restart the"
        " broker (a reload drops a password, but Mosquitto reads the CRL only when it starts)."
    ),
)
def devices_revoke(
    config: ConfigOption,
    device: DeviceArgument,
    device_ca: Annotated[
        Path | None, typer.Option(help=_("the device CA certificate (for a certificate's CRL)"))
    ] = None,
    device_ca_key: Annotated[Path | None, typer.Option(help=_("the device CA key"))] = None,
    crl: Annotated[
        Path | None, typer.Option(help=_("the revocation list to write, for broker-config --crl"))
    ] = None,
) -> None:
    ca = None
    if device_ca is not None and device_ca_key is not None and crl is not None:
        try:
            ca = load_ca(device_ca.read_bytes(), device_ca_key.read_bytes())
        except (OSError, ValueError) as exc:
            raise fail(exc) from None
    elif (device_ca, device_ca_key, crl) != (None, None, None):
        raise fail(ValueError(_("--device-ca, --device-ca-key and --crl go together")))
    registry = _registry(config)
    try:
        found = registry.get(device)
        if found is None:
            raise fail(ValueError(_("{device} is not registered").format(device=device)))
        certificate = found.credential is not None and found.credential.certificate is not None
        if certificate and ca is None:
            problem = _(
                "{device} has a certificate: give --device-ca, --device-ca-key and --crl,"
                " so that the broker refuses it"
            )
            raise fail(ValueError(problem.format(device=device)))
        revocation = registry.revoke(device)
        serials = registry.revoked_certificates()
    finally:
        registry.close()
    console.print(
        _("revoked {device} ({name})").format(device=device, name=escape(found.name)),
        highlight=False,
    )
    if ca is not None and crl is not None:
        number = int(datetime.now(UTC).timestamp())  # grows with each list written
        try:
            write_whole(crl, revocation_list(ca, serials, number), 0o644)
        except (OSError, ValueError) as exc:
            raise fail(exc) from None
        written = _("{path}: {count} revoked certificate(s)")
        console.print(written.format(path=escape(str(crl)), count=len(serials)))
    if revocation.serial is not None:
        serial = f"{revocation.serial:x}"
        console.print(_("its certificate, serial {serial}, is in the list").format(serial=serial))
    console.print(
        _(
            "now run collector broker-config (with --crl for certificates) and restart the"
            " broker: Mosquitto reads the CRL only when it starts"
        )
    )


@devices_app.command(
    "ca",
    help=_(
        "Make the device CA: it signs field boxes' client certificates (edge-agent provision"
        " --device-ca-key) and nothing else. Keep it apart from the site CA, which signs the"
        " broker's certificate and whose key stays here."
    ),
)
def devices_ca(
    out: Annotated[Path, typer.Option(help=_("folder for device-ca.crt and device-ca.key"))],
    name: Annotated[str, typer.Option(help=_("the CA's common name"))] = "Phu Quoc device CA",
) -> None:
    cert, key = out / "device-ca.crt", out / "device-ca.key"
    if cert.exists() or key.exists():
        problem = _("{folder} holds a device CA already; it is never replaced here")
        raise fail(ValueError(problem.format(folder=out)))
    ca = create_ca(name)
    out.mkdir(parents=True, exist_ok=True)
    write_whole(key, ca.key_pem, 0o600)
    write_whole(cert, ca.cert_pem, 0o644)
    console.print(
        _("written {cert} and {key} (0600)").format(cert=escape(str(cert)), key=escape(str(key)))
    )


BROKER_CONFIG_HELP = _(
    "Write the broker's configuration from the device registry: a TLS listener for boxes"
    " with passwords and consoles, one for boxes with device-CA certificates, one for the"
    " collectors, each with its own passwords and ACL; persistence, the wire's size limit."
    " Revoked boxes are left out. With --reload, the running broker (found by its pid file)"
    " reads the passwords and ACLs again, its clients staying connected, as `systemctl reload"
    " mosquitto` does under systemd; a change of listeners needs a restart instead."
)


def broker_config(
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help=_("folder for mosquitto.conf, passwords and ACLs"))],
    ca: Annotated[Path, typer.Option(help=_("site CA certificate, as on the broker's host"))],
    cert: Annotated[Path, typer.Option(help=_("the broker's certificate, from the site CA"))],
    key: Annotated[Path, typer.Option(help=_("the broker's key"))],
    device_ca: Annotated[
        Path | None,
        typer.Option(help=_("the device CA: the only CA the certificate listener trusts")),
    ] = None,
    crl: Annotated[
        Path | None, typer.Option(help=_("the device CA's revocation list (devices revoke)"))
    ] = None,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help=_("TLS port: boxes with passwords, consoles"))
    ] = 8883,
    cert_port: Annotated[
        int, typer.Option(min=1, max=65535, help=_("TLS port: boxes with certificates"))
    ] = 8884,
    center_port: Annotated[
        int, typer.Option(min=1, max=65535, help=_("TLS port: the collectors only"))
    ] = 8885,
    persistence: Annotated[Path, typer.Option(help=_("the broker's data folder"))] = Path(
        "/var/lib/mosquitto"
    ),
    collector_user: Annotated[
        list[str] | None,
        typer.Option(help=_("a collector's broker user (repeatable; default: collector)")),
    ] = None,
    console_user: Annotated[
        list[str] | None, typer.Option(help=_("a console that reads alerts (repeatable)"))
    ] = None,
    group: Annotated[
        str | None, typer.Option(help=_("the broker's group, given the files it reads"))
    ] = None,
    pid_file: Annotated[
        Path | None,
        typer.Option(
            help=_("where the broker writes its pid (default: mosquitto.pid in --persistence)")
        ),
    ] = None,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload", help=_("then signal the running broker (SIGHUP) to read the files again")
        ),
    ] = False,
) -> None:
    settings = settings_of(config)
    collectors = tuple(collector_user or ("collector",))
    consoles = tuple(console_user or ())
    layout = BrokerLayout(
        settings.broker.topic_prefix,
        port,
        cert_port,
        center_port,
        persistence,
        collectors,
        consoles,
        (settings.ingest.client_id,),
        group,
        pid_file.resolve() if pid_file else None,
    )
    registry = _registry(config)
    try:
        tls = BrokerTls(
            ca.resolve(),
            cert.resolve(),
            key.resolve(),
            device_ca.resolve() if device_ca else None,
            crl.resolve() if crl else None,
        )
        written = write_broker_config(
            registry.all(),
            tls,
            layout,
            out.resolve(),
            [serial for serial, _ in registry.revoked_certificates()],
        )
        registry.reserve(
            dict.fromkeys((*collectors, settings.ingest.client_id), "collector")
            | dict.fromkeys(consoles, "console")
        )
    except (OSError, ValueError, KeyError) as exc:
        raise fail(exc) from None
    finally:
        registry.close()
    summary = _(
        "{devices} device(s): {password} with a password, {certificate} with a certificate;"
        " {revoked} revoked, left out. Written:"
    )
    console.print(
        summary.format(
            devices=written.devices,
            password=written.password_devices,
            certificate=written.certificate_devices,
            revoked=written.revoked,
        )
    )
    for path in written.files:
        console.print(f"  {escape(str(path))}")
    for name in collectors:
        told = _(
            "collector {name}: port {port}, password in {path} (its config's broker.port,"
            " broker.username {name}, broker.password_file; ingest.client_id {name})"
        )
        secret = escape(str(out / (name + ".password")))
        console.print(told.format(name=name, port=center_port, path=secret), highlight=False)
    for name in consoles:
        told = _("console {name}: port {port}, password in {path}")
        secret = escape(str(out / (name + ".password")))
        console.print(told.format(name=name, port=port, path=secret), highlight=False)
    if group is None:
        console.print(
            _(
                "the broker reads the passwords and ACLs (0640) as its own user:"
                " give --group, or chgrp them to the broker's group"
            )
        )
    if not reload:
        console.print(
            _("the listeners changed: restart the broker, a reload cannot open or close one")
            if written.listeners_changed
            else _("a running broker reads them when reloaded: add --reload")
        )
        return
    try:
        if written.listeners_changed:
            raise BrokerReloadError(
                _("the listeners changed, which a reload cannot do: restart the broker")
            )
        pid = reload_broker(out.resolve() / "mosquitto.conf", layout.pid_path)
    except (OSError, BrokerReloadError) as exc:
        raise fail(exc) from None
    sent = _(
        "sent SIGHUP to mosquitto (pid {pid}, from {path}): it reads the passwords and ACLs"
        " again, its clients stay connected"
    )
    console.print(sent.format(pid=pid, path=escape(str(layout.pid_path))))


class CommandChoice(StrEnum):
    REPORT_STATUS = "report_status"
    READ_SENSOR = "read_sensor"
    RELOAD_CONFIG = "reload_config"


def _site_of(settings: CollectorConfig, device: str) -> str | None:
    """Where the device is: the registry knows, or the store has heard from it."""
    if settings.registry is not None:
        registry = Registry(settings.registry.path)
        found = registry.get(device)
        registry.close()
        if found is not None:
            return found.site
    known = ask(open_store(settings), lambda store: store.devices())
    return next((d.site for d in known if d.device == device), None)


COMMAND_HELP = _(
    "Send a command to a field box and print its acknowledgement: report_status,"
    " read_sensor --source NAME, or reload_config (the agent restarts with its config"
    " re-read, if it loads)."
)
SiteOption = Annotated[
    str | None, typer.Option(help=_("the box's site (default: from the registry or the store)"))
]
TimeoutOption = Annotated[
    float, typer.Option(min=1, max=600, help=_("seconds to wait for the box's answer"))
]


def command(
    config: ConfigOption,
    device: DeviceArgument,
    name: Annotated[CommandChoice, typer.Argument(help=_("what the box should do"))],
    source: Annotated[str | None, typer.Option(help=_("read_sensor: the source to read"))] = None,
    site: SiteOption = None,
    timeout_s: TimeoutOption = 15.0,
) -> None:
    settings = settings_of(config)
    site = _device_site(settings, device, site)
    args: dict[str, str | int | float | bool] = {"source": source} if source else {}
    try:
        ack = asyncio.run(send_command(settings.broker, site, device, name.value, args, timeout_s))
    except (NoAnswerError, aiomqtt.MqttError, OSError) as exc:
        raise fail(exc) from None
    colour, verdict = ("green", _("ok")) if ack.ok else ("red", _("refused"))
    console.print(f"{device} [{colour}]{verdict}[/{colour}]: {name}")
    console.print(ack.detail, highlight=False, markup=False, soft_wrap=True)
    if not ack.ok:
        raise typer.Exit(1)


def _device_site(settings: CollectorConfig, device: str, site: str | None) -> str:
    found = site or _site_of(settings, device)
    if found is None:
        problem = _("{device} is neither registered nor known to the store: give --site")
        raise fail(ValueError(problem.format(device=device)))
    return found


config_app = typer.Typer(
    no_args_is_help=True,
    help=_("Remote configuration: push a signed config to a box, see the one it runs."),
)
devices_app.add_typer(config_app, name="config")
RESEND_EVERY_S = 5.0


@config_app.command(
    "key",
    help=_(
        "Make the key that signs pushed configs, once. The private key stays here; the public"
        " one goes onto every box, named by `collector_key` in its config, and a box takes"
        " only configs it signed."
    ),
)
def config_key(
    out: Annotated[
        Path,
        typer.Option(
            help=_("folder for {private} and {public}").format(
                private=PRIVATE_KEY, public=PUBLIC_KEY
            )
        ),
    ],
) -> None:
    try:
        private, public = make_signing_key(out)
    except (OSError, ValueError) as exc:
        raise fail(exc) from None
    written = _(
        "written {private} (0600, for config push --key) and {public} (for the boxes'"
        " collector_key)"
    )
    console.print(
        written.format(private=escape(str(private)), public=escape(str(public))),
        highlight=False,
    )


@config_app.command(
    "push",
    help=_(
        "Push a config to a box, signed: the box validates it, checks the sources it adds or"
        " changes, restarts on it, and goes back to its previous config if it does not reach"
        " the broker within --rollback-after-s. Prints the box's answer (applied, refused or"
        " rolled_back, with why); exits 1 unless applied. Every push and its outcome are"
        " audited (`collector devices config log`)."
    ),
)
def config_push_command(
    config: ConfigOption,
    device: DeviceArgument,
    file: Annotated[Path, typer.Argument(help=_("the agent config to run (YAML)"))],
    key: Annotated[Path, typer.Option(help=_("the signing key ({file})").format(file=PRIVATE_KEY))],
    by: Annotated[str, typer.Option("--by", help=_("who pushes (for the audit trail)"))],
    site: SiteOption = None,
    rollback_after_s: Annotated[
        float,
        typer.Option(
            min=MIN_ROLLBACK_S,
            max=MAX_ROLLBACK_S,
            help=_("how long the box may take to reach the broker on it before going back"),
        ),
    ] = 60.0,
    timeout_s: Annotated[
        float | None,
        typer.Option(min=1, help=_("how long to wait for the answer (default: rollback + 120 s)")),
    ] = None,
) -> None:
    settings = settings_of(config)
    if settings.registry is None:
        problem = _("pushes are audited in the registry")
        raise fail(ValueError(f"{config}: registry: {problem}"))
    try:
        signing_key = load_signing_key(key)
        push = config_push(device, file.read_text(encoding="utf-8"), by, rollback_after_s)
    except (OSError, ValueError) as exc:
        raise fail(exc) from None
    site = _device_site(settings, device, site)
    trail = PushLog(settings.registry.path)
    try:
        trail.record(by, push, PUSHED, str(file))
        wait = timeout_s if timeout_s is not None else rollback_after_s + 120
        try:
            ack = asyncio.run(
                send_command(
                    settings.broker,
                    site,
                    device,
                    "push_config",
                    signed_args(push, signing_key),
                    wait,
                    command_id=push.nonce,
                    resend_every_s=RESEND_EVERY_S,
                )
            )
        except (NoAnswerError, aiomqtt.MqttError, OSError) as exc:
            trail.record(by, push, NO_ANSWER, str(exc))
            raise fail(exc) from None
        outcome = outcome_of(ack)
        trail.record(by, push, outcome.value if outcome else NO_ANSWER, ack.detail)
    finally:
        trail.close()
    console.print(
        _("{device}, push {push}:").format(device=device, push=push.nonce), highlight=False
    )
    colour = "green" if outcome is PushOutcome.APPLIED else "red"
    console.print(ack.detail, style=colour, highlight=False, markup=False, soft_wrap=True)
    if outcome is not PushOutcome.APPLIED:
        raise typer.Exit(1)


def _running_config(config: Path, device: str, site: str | None, timeout_s: float) -> CommandAck:
    settings = settings_of(config)
    site = _device_site(settings, device, site)
    try:
        ack = asyncio.run(
            send_command(settings.broker, site, device, "report_config", {}, timeout_s)
        )
    except (NoAnswerError, aiomqtt.MqttError, OSError) as exc:
        raise fail(exc) from None
    if not ack.ok or ack.config is None:
        raise fail(ValueError(f"{device}: {ack.detail}"))
    return ack


@config_app.command(
    "show",
    help=_(
        "The config the box runs, as its agent read it when it started, on stdout (its"
        " path, digest and last push on stderr), so it can be saved, edited and pushed back."
    ),
)
def config_show(
    config: ConfigOption,
    device: DeviceArgument,
    site: SiteOption = None,
    timeout_s: TimeoutOption = 15.0,
) -> None:
    ack = _running_config(config, device, site, timeout_s)
    typer.echo(ack.detail, err=True)
    sys.stdout.write(ack.config or "")


@config_app.command(
    "diff",
    help=_(
        "A unified diff from the config the box runs to FILE: what a push of FILE would"
        " change. Exits 0 when they are the same, 1 when they differ, as diff does."
    ),
)
def config_diff(
    config: ConfigOption,
    device: DeviceArgument,
    file: Annotated[Path, typer.Argument(help=_("an agent config (YAML)"))],
    site: SiteOption = None,
    timeout_s: TimeoutOption = 15.0,
) -> None:
    try:
        wanted = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(exc) from None
    running = _running_config(config, device, site, timeout_s).config or ""
    lines = list(
        difflib.unified_diff(
            running.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            f"{device} (running)",
            str(file),
        )
    )
    if not lines:
        typer.echo(_("{device} runs {file} as it is").format(device=device, file=file), err=True)
        return
    sys.stdout.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
    raise typer.Exit(1)


@config_app.command(
    "log",
    help=_(
        "The audit trail of pushes, oldest first: each push (who, which box, the config's"
        " sha256), then how it ended as the box answered, or that no answer came."
    ),
)
def config_log(
    config: ConfigOption,
    device: Annotated[str | None, typer.Argument(help=_("only this device"))] = None,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    out = Output.of(csv_out, json_out)
    settings = settings_of(config)
    if settings.registry is None:
        problem = _("the config has no registry section")
        raise fail(ValueError(f"{config}: registry: {problem}"))
    trail = PushLog(settings.registry.path)
    try:
        events = trail.events(device)
    finally:
        trail.close()
    rows = [
        (
            when_text(e.at, out.machine),
            e.actor,
            e.device,
            e.push,
            e.action,
            e.sha256[:16] if not out.machine else e.sha256,
            e.detail,
        )
        for e in events
    ]
    emit(
        _("{count} push record(s)").format(count=len(rows)),
        ("at", "by", "device", "push", "action", "sha256", "detail"),
        rows,
        out,
        whole=("at", "by", "device", "push", "action", "sha256"),
        labels=(
            _("at"),
            _("by"),
            _("device"),
            _("push"),
            _("action"),
            _("sha256"),
            _("detail"),
        ),
    )
