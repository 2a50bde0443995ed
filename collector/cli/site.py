"""`collector site-ca`: the site CA and the broker's certificate, made once at the center.

The site CA signs the broker's certificate; boxes and consoles trust it (`edge-agent
provision --ca`). Its key never leaves the center and is never replaced here: a new site
CA means every box provisioned again. The broker's key is given to the broker's group
(`--group mosquitto`) so the broker, which drops root, can read it and nobody else can.
"""

import grp
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from collector.i18n import _
from iotruntime.certificates import create_ca, issue_server, load_ca
from iotruntime.console import console, fail
from iotruntime.private_files import write_whole

SITE_CA_DAYS = 3650
BROKER_DAYS = 825  # what browsers and most TLS stacks accept for a server certificate
SITE_CA_HELP = _(
    "Make the site CA (once) and a broker certificate for each host name; run again with a"
    " new --broker-host to add one, the CA kept."
)


def site_ca(
    out: Annotated[Path, typer.Option(help=_("folder for site-ca.*, broker.crt and broker.key"))],
    broker_host: Annotated[
        list[str],
        typer.Option(help=_("the name or address boxes dial (repeatable: one cert each)")),
    ],
    name: Annotated[str, typer.Option(help=_("the site CA's common name"))] = "Phu Quoc site CA",
    group: Annotated[
        str | None, typer.Option(help=_("the broker's group, given read access to its key"))
    ] = None,
) -> None:
    gid = None
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            problem = _("--group: no group {group} on this host").format(group=repr(group))
            raise fail(ValueError(problem)) from None
    ca_cert, ca_key = out / "site-ca.crt", out / "site-ca.key"
    if ca_cert.exists() != ca_key.exists():
        problem = _("{folder} holds half a site CA; restore the other file").format(folder=out)
        raise fail(ValueError(problem))
    out.mkdir(parents=True, exist_ok=True)
    if ca_cert.exists():
        try:
            ca = load_ca(ca_cert.read_bytes(), ca_key.read_bytes())
        except ValueError as exc:
            raise fail(ValueError(f"{ca_key}: {exc}")) from None
        console.print(_("site CA kept: {path}").format(path=escape(str(ca_cert))))
    else:
        ca = create_ca(name, SITE_CA_DAYS)
        write_whole(ca_key, ca.key_pem, 0o600)
        write_whole(ca_cert, ca.cert_pem, 0o644)
        made = _("site CA made: {path} (its key 0600, keep it here)")
        console.print(made.format(path=escape(str(ca_cert))))
    for i, host in enumerate(broker_host):
        stem = "broker" if i == 0 else f"broker-{host}"
        issued = issue_server(ca, host, BROKER_DAYS)
        write_whole(out / f"{stem}.key", issued.key_pem, 0o640 if gid is not None else 0o600, gid)
        write_whole(out / f"{stem}.crt", issued.cert_pem, 0o644)
        console.print(
            _("broker certificate for {host}: {path}").format(
                host=escape(host), path=escape(str(out / f"{stem}.crt"))
            )
        )
