"""`collector releases`: software updates for the boxes, offered in waves from the center
(collector/fleet/releases.py; the box's side is edge_agent/software_update.py)."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from collector.cli.common import ConfigOption, settings_of, when_text
from collector.config import CollectorConfig
from collector.fleet.config_push import PRIVATE_KEY, load_signing_key
from collector.fleet.registry import Registry
from collector.fleet.releases import (
    BadBundleError,
    Outcome,
    ReleaseShelf,
    Rollout,
    roll_out,
)
from collector.i18n import _
from iotruntime.console import CsvOption, JsonOption, Output, console, emit, fail
from iotwire.software_update import MAX_HEALTH_S, MIN_HEALTH_S

releases_app = typer.Typer(
    no_args_is_help=True,
    help=_("Software releases for the boxes: add a bundle, roll it out in waves, audit it."),
)
ByOption = Annotated[str, typer.Option("--by", help=_("who does it (for the audit trail)"))]


def _shelf(settings: CollectorConfig, config: Path) -> ReleaseShelf:
    if settings.registry is None:
        raise fail(
            ValueError(
                _("{config}: registry: releases and their trail live in the registry").format(
                    config=config
                )
            )
        )
    return ReleaseShelf(settings.registry.path)


@releases_app.command("add", help=_("Put a release bundle (make edge-bundle) on offer."))
def releases_add(
    config: ConfigOption,
    bundle: Annotated[Path, typer.Argument(help=_("the bundle (.tar.gz)"))],
    by: ByOption,
) -> None:
    """Checked whole before it is kept, as a box will check it: a damaged bundle is
    refused at the center rather than on 130 boxes."""
    shelf = _shelf(settings_of(config), config)
    try:
        release = shelf.add(bundle, by)
    except (BadBundleError, OSError) as exc:
        raise fail(exc) from None
    finally:
        shelf.close()
    console.print(
        _("{name}: version {version}, sha256 {digest}").format(
            name=release.name, version=release.version, digest=release.sha256
        ),
        highlight=False,
    )


@releases_app.command("list", help=_("The releases on offer, oldest first."))
def releases_list(
    config: ConfigOption, csv_out: CsvOption = False, json_out: JsonOption = False
) -> None:
    out = Output.of(csv_out, json_out)
    shelf = _shelf(settings_of(config), config)
    try:
        releases = shelf.all()
    finally:
        shelf.close()
    rows = [
        (r.name, r.version, r.sha256, str(r.bytes), when_text(r.added, out.machine), r.added_by)
        for r in releases
    ]
    emit(
        _("{count} release(s)").format(count=len(rows)),
        ("name", "version", "sha256", "bytes", "added", "by"),
        rows,
        out,
        labels=(_("name"), _("version"), "sha256", _("bytes"), _("added"), _("by")),
    )


def _targets(
    settings: CollectorConfig, devices: list[str], kind: str | None, everyone: bool
) -> list[tuple[str, str]]:
    """The boxes to offer the release to, in the order given (or by id), with their sites;
    revoked boxes never."""
    assert settings.registry is not None
    registry = Registry(settings.registry.path)
    try:
        registered = {d.device: d for d in registry.all() if d.revoked is None}
    finally:
        registry.close()
    if sum((bool(devices), kind is not None, everyone)) != 1:
        raise typer.BadParameter(_("name the boxes: --device (repeated), --kind or --all"))
    if devices:
        unknown = [d for d in devices if d not in registered]
        if unknown:
            raise fail(
                ValueError(
                    _("not registered, or revoked: {devices}").format(devices=", ".join(unknown))
                )
            )
        chosen = devices
    else:
        chosen = sorted(d for d, r in registered.items() if everyone or r.kind.value == kind)
    if not chosen:
        raise fail(ValueError(_("no registered box of kind {kind}").format(kind=kind)))
    return [(d, registered[d].site) for d in chosen]


def _wave_done(number: int, outcomes: list[Outcome]) -> None:
    for o in outcomes:
        colour = "green" if o.applied else "red"
        console.print(
            _("wave {number}: {device}: {detail}").format(
                number=number, device=o.device, detail=o.detail or o.action
            ),
            style=colour,
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@releases_app.command(
    "rollout",
    help=_(
        "Offer a release to boxes wave by wave. Each box fetches it, checks its digest,"
        " installs it beside the running one, tries it, and keeps it only if it reaches the"
        " broker on it; a wave in which any box does not apply it ends the rollout there."
        " Exits 1 unless every box applied it; every offer and answer is audited"
        " (`releases log`)."
    ),
)
def releases_rollout(
    config: ConfigOption,
    name: Annotated[str, typer.Argument(help=_("the release (its bundle's name)"))],
    key: Annotated[Path, typer.Option(help=_("the signing key ({file})").format(file=PRIVATE_KEY))],
    by: ByOption,
    url_base: Annotated[
        str,
        typer.Option(
            help=_("where the boxes fetch releases from: the collector's /releases/ or a mirror")
        ),
    ],
    device: Annotated[
        list[str] | None, typer.Option("--device", help=_("a box, in wave order (repeat)"))
    ] = None,
    kind: Annotated[str | None, typer.Option(help=_("every registered box of this kind"))] = None,
    everyone: Annotated[bool, typer.Option("--all", help=_("every registered box"))] = False,
    wave_size: Annotated[int, typer.Option(min=1, help=_("boxes offered at once"))] = 5,
    health_s: Annotated[
        float,
        typer.Option(
            min=MIN_HEALTH_S,
            max=MAX_HEALTH_S,
            help=_("how long a box may take to reach the broker on the release"),
        ),
    ] = 60.0,
    soak_s: Annotated[
        float, typer.Option(min=0, help=_("the wait between one good wave and the next"))
    ] = 60.0,
    timeout_s: Annotated[
        float, typer.Option(min=10, help=_("how long one box may take to answer"))
    ] = 1800.0,
) -> None:
    settings = settings_of(config)
    shelf = _shelf(settings, config)
    try:
        release = shelf.get(name)
        if release is None:
            raise fail(
                ValueError(_("no release {name}: see `collector releases list`").format(name=name))
            )
        try:
            signing_key = load_signing_key(key)
        except (OSError, ValueError) as exc:
            raise fail(exc) from None
        plan = Rollout(
            release=release,
            url=url_base.rstrip("/") + "/" + release.name,
            devices=_targets(settings, device or [], kind, everyone),
            wave_size=wave_size,
            health_s=health_s,
            soak_s=soak_s,
            timeout_s=timeout_s,
            by=by,
        )
        console.print(
            _("offering {version} to {count} box(es), {size} at a time").format(
                version=release.version, count=len(plan.devices), size=wave_size
            ),
            highlight=False,
        )
        done = asyncio.run(roll_out(plan, shelf, settings.broker, signing_key, _wave_done))
    finally:
        shelf.close()
    applied = sum(o.applied for o in done)
    console.print(
        _("{applied} of {count} box(es) run {version}").format(
            applied=applied, count=len(plan.devices), version=release.version
        ),
        highlight=False,
    )
    if applied < len(plan.devices):
        raise typer.Exit(1)


@releases_app.command("log", help=_("The trail of offers and answers, oldest first."))
def releases_log(
    config: ConfigOption,
    device: Annotated[str | None, typer.Argument(help=_("only this box"))] = None,
    csv_out: CsvOption = False,
    json_out: JsonOption = False,
) -> None:
    out = Output.of(csv_out, json_out)
    shelf = _shelf(settings_of(config), config)
    try:
        events = shelf.events(device)
    finally:
        shelf.close()
    rows = [
        (when_text(e.at, out.machine), e.actor, e.device, e.version, e.offer, e.action, e.detail)
        for e in events
    ]
    emit(
        _("{count} update record(s)").format(count=len(rows)),
        ("at", "by", "device", "version", "offer", "action", "detail"),
        rows,
        out,
        labels=(
            _("at"),
            _("by"),
            _("device"),
            _("version"),
            _("offer"),
            _("action"),
            _("detail"),
        ),
    )
