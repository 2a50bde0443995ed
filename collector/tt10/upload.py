"""Sending the station data files to the authority's FTP, FTPS or SFTP server.

Each file goes up under a temporary name (`name.part`) and is renamed once whole, so the
authority's import never reads half a file. The ledger (`ledger.py`) decides what goes:
a file is sent once, and again only when `collector tt10 resend` asks. Before a first
send the server is asked whether it already holds the file at its size: a collector that
stopped between the rename and the ledger's commit does not send it twice.

A failed attempt (server down, refused login, a transfer cut, an unknown host key) is
retried with exponential backoff and full jitter for as long as the collector runs; files
written meanwhile wait in the ledger and go out oldest interval first once the server is
back. Transfers are blocking ftplib or paramiko (`sftp.py`) calls, made in a worker thread
with a timeout on each. The two libraries meet in `Session`, so the guarantees above are
written once, here, for every protocol.
"""

import asyncio
import ftplib
import io
import logging
import random
import socket
import sqlite3
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, Self

from collector.config import Tt10Settings, Tt10UploadSettings
from collector.i18n import services
from collector.tt10.ledger import Ledger, UploadStatus, sha256_of
from iotruntime.connection import backoff_delay
from iotruntime.stopping import sleep_unless_stopped

_ = services.gettext

log = logging.getLogger(__name__)
PART_SUFFIX = ".part"


class Session(Protocol):
    """One logged-in connection to the authority's server, in the remote folder. Its
    library's own errors (the `Errors` that go with it) mean the attempt failed."""

    def size(self, name: str) -> int | None:
        """The size of `name` on the server, None when it has no such file."""
        ...

    def store(self, name: str, data: bytes) -> None:
        """Write `data` under `name`, replacing what is there."""
        ...

    def replace(self, source: str, target: str) -> None:
        """Rename `source` to `target`, over the file `target` if there is one."""
        ...

    def quit(self) -> None:
        """End politely, after a session that went well."""
        ...

    def close(self) -> None:
        """Let go of the connection, whatever state it is in."""
        ...


Errors = tuple[type[Exception], ...]
Connect = Callable[[Tt10UploadSettings, str], Session]


class _SessionReusingFtpTls(ftplib.FTP_TLS):
    """Explicit FTPS whose data connections resume the control connection's TLS session.
    vsftpd (`require_ssl_reuse`, on by default) refuses a data connection that does not,
    and ftplib alone does not."""

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 - then TLS
        session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
        wrapped = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return wrapped, size


class UploadError(Exception):
    """One attempt failed; the uploader waits `wait_s` and tries again."""

    def __init__(self, error: str, wait_s: float) -> None:
        super().__init__(error)
        self.error = error
        self.wait_s = wait_s


class FtpSession:
    """FTP or explicit FTPS over ftplib, in binary mode, the data channel protected under
    ftps."""

    def __init__(self, ftp: ftplib.FTP) -> None:
        self._ftp = ftp

    @classmethod
    def connect(cls, settings: Tt10UploadSettings, password: str) -> Self:
        ftp: ftplib.FTP
        if settings.protocol == "ftps":
            context = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file else None
            )
            tls = _SessionReusingFtpTls(context=context, timeout=settings.timeout_s)
            tls.connect(settings.host, settings.port)
            tls.login(settings.username, password)
            tls.prot_p()
            ftp = tls
        else:
            ftp = ftplib.FTP(timeout=settings.timeout_s)  # noqa: S321 - protocol: ftp, chosen
            ftp.connect(settings.host, settings.port)
            ftp.login(settings.username, password)
        ftp.voidcmd("TYPE I")
        if settings.remote_dir:
            ftp.cwd(settings.remote_dir)
        return cls(ftp)

    def size(self, name: str) -> int | None:
        try:
            return self._ftp.size(name)
        except ftplib.error_perm:
            return None

    def store(self, name: str, data: bytes) -> None:
        self._ftp.storbinary(f"STOR {name}", io.BytesIO(data))

    def replace(self, source: str, target: str) -> None:
        """A server that will not rename onto an existing file (a resend) has that file
        deleted first."""
        try:
            self._ftp.rename(source, target)
        except ftplib.error_perm:
            self._ftp.delete(target)
            self._ftp.rename(source, target)

    def quit(self) -> None:
        self._ftp.quit()

    def close(self) -> None:
        self._ftp.close()


def session_of(settings: Tt10UploadSettings) -> tuple[Connect, Errors]:
    """How to open a session for the settings' protocol, and the errors that mean an
    attempt failed. SFTP needs paramiko, the `tt10` extra: without it this raises a
    ValueError saying what to install, when the uploader is made rather than at each try."""
    if settings.protocol != "sftp":
        return FtpSession.connect, ftplib.all_errors
    try:
        from collector.tt10 import sftp
    except ImportError as exc:
        raise ValueError(
            _("protocol sftp needs the tt10 extra: pip install {package} ({why})").format(
                package="'phuquoc-telemetry[tt10]'", why=exc
            )
        ) from None
    return sftp.SftpSession.connect, sftp.ERRORS


class Tt10Uploader:
    def __init__(self, settings: Tt10Settings, ledger: Ledger, password: str) -> None:
        if settings.upload is None:
            raise ValueError(_("the uploader needs a tt10.upload section"))
        self._directory = settings.directory
        self._upload = settings.upload
        self._connect, self._errors = session_of(settings.upload)
        self.ledger = ledger
        self._password = password
        self._rng = random.Random()  # noqa: S311 - jitter, not security

    def send_pending(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Look at the directory, then send what the ledger holds pending, in one
        session, until done or `stopping()`: a backlog of days does not hold up a stop.
        Returns how many files went; raises UploadError, after recording it, when the
        server could not be reached or a transfer failed."""
        self.ledger.scan(self._directory)
        pending = self.ledger.pending()
        if not pending:
            return 0
        current: str | None = None
        sent = 0
        try:
            session = self._connect(self._upload, self._password)
            try:
                for item in pending:
                    if stopping():
                        break
                    current = item.name
                    data = self._read(item.name)
                    if data is None:
                        continue
                    already = not item.resend and session.size(item.name) == len(data)
                    if not already:
                        part = item.name + PART_SUFFIX
                        session.store(part, data)
                        session.replace(part, item.name)
                    self.ledger.sent(item.name, sha256_of(data))
                    sent += 1
                current = None
                session.quit()
            finally:
                session.close()
        except self._errors as exc:
            error = f"{type(exc).__name__}: {exc}".strip()
            wait = backoff_delay(self.ledger.failures(), self._rng, self._upload.backoff_max_s)
            self.ledger.failed(current, error, datetime.now(UTC) + timedelta(seconds=wait))
            raise UploadError(error, wait) from exc
        return sent

    def _read(self, name: str) -> bytes | None:
        """The file's bytes; a file deleted from the directory is forgotten by the ledger."""
        try:
            return (self._directory / name).read_bytes()
        except FileNotFoundError:
            log.warning("station data file %s vanished before it was sent", name)
            self.ledger.forget(name)
            return None

    def status(self) -> UploadStatus:
        return self.ledger.status()

    def close(self) -> None:
        self.ledger.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Send, then look again every `scan_every_s`; after a failure, wait the backoff.
        A local failure (the directory or the ledger unreadable, a full disk) is logged
        and tried again, and does not stop the collector's other tasks."""
        self._directory.mkdir(parents=True, exist_ok=True)
        while not stop.is_set():
            try:
                sent = await asyncio.to_thread(self.send_pending, stop.is_set)
            except (OSError, sqlite3.Error) as exc:
                log.error("station data files cannot be sent, local error: %s", exc)
                await sleep_unless_stopped(stop, self._upload.scan_every_s)
                continue
            except UploadError as exc:
                log.warning(
                    "station data files wait, upload failed (retry in %.1f s): %s",
                    exc.wait_s,
                    exc.error,
                )
                await sleep_unless_stopped(stop, exc.wait_s)
                continue
            if sent:
                log.info("station data files: %d sent to %s", sent, self._upload.host)
            await sleep_unless_stopped(stop, self._upload.scan_every_s)


def password_of(settings: Tt10UploadSettings) -> str:
    """The server's password, or a ValueError saying what is wrong with its file."""
    path = settings.password_file
    try:
        password = settings.password()
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    if not password:
        raise ValueError(_("{path} is empty").format(path=path))
    return password
