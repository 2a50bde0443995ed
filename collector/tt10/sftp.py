"""SFTP for the station data files (`protocol: sftp`), over paramiko, the `tt10` extra.

The server is known only by the host key in `known_hosts`. A key missing from that file,
or different from it, ends the attempt before the password is sent: accepting it would
hand the files, and the password, to whoever sits on the path. Nothing is learnt or
written back; the operator adds the key after checking it with the authority.

SFTP version 3, which every server speaks, has a rename that will not replace a file.
OpenSSH's `posix-rename@openssh.com` replaces it at once, so a resend never leaves the name
absent; a server without it has the old file removed just before the rename, and a stop
between the two leaves the name absent with the ledger not yet told, so the file goes again.
"""

import io
from pathlib import Path
from typing import Self

import paramiko

from collector.config import Tt10UploadSettings
from collector.i18n import services

_ = services.gettext

KNOWN_HOSTS_KEY = "tt10.upload.known_hosts"


class HostKeyError(paramiko.SSHException):
    """The server is not the one `known_hosts` names; the attempt ends before the login."""


ERRORS: tuple[type[Exception], ...] = (paramiko.SSHException, OSError, EOFError)
"""What an attempt can fail with: SSH and its login (host keys included), the network,
and the SFTP server's answers, which paramiko raises as OSError."""


def _fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class _RefuseUnknownHosts(paramiko.MissingHostKeyPolicy):
    """Refuse, saying which key the server showed and where it should have been."""

    def __init__(self, known_hosts: Path) -> None:
        self._known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise HostKeyError(
            _(
                "{host} showed host key {key}, which is not in {setting} ({file});"
                " add it once the authority confirms it"
            ).format(
                host=hostname,
                key=_fingerprint(key),
                setting=KNOWN_HOSTS_KEY,
                file=self._known_hosts,
            )
        )


class SftpSession:
    """One SSH connection and its SFTP channel, in the remote folder."""

    def __init__(self, client: paramiko.SSHClient, sftp: paramiko.SFTPClient) -> None:
        self._client = client
        self._sftp = sftp
        self._posix_rename = True

    @classmethod
    def connect(cls, settings: Tt10UploadSettings, password: str) -> Self:
        """Log in with the password once the host key matched; no agent and no key of the
        collector's user is offered, so the login is the one the settings give."""
        if settings.known_hosts is None:  # the settings refuse sftp without it
            raise HostKeyError(_("{setting} is not set").format(setting=KNOWN_HOSTS_KEY))
        client = paramiko.SSHClient()
        try:
            try:
                client.load_system_host_keys(str(settings.known_hosts))
            except OSError as exc:
                raise HostKeyError(
                    _("{setting}: cannot read {file}: {why}").format(
                        setting=KNOWN_HOSTS_KEY, file=settings.known_hosts, why=exc.strerror or exc
                    )
                ) from None
            client.set_missing_host_key_policy(_RefuseUnknownHosts(settings.known_hosts))
            try:
                client.connect(
                    settings.host,
                    settings.port,
                    username=settings.username,
                    password=password,
                    timeout=settings.timeout_s,
                    banner_timeout=settings.timeout_s,
                    auth_timeout=settings.timeout_s,
                    allow_agent=False,
                    look_for_keys=False,
                )
            except paramiko.BadHostKeyException as exc:
                raise HostKeyError(
                    _(
                        "{host} showed host key {key}, not the {expected} of {setting} ({file}):"
                        " someone may be in the way, or the server changed its key; ask the"
                        " authority before changing the file"
                    ).format(
                        host=exc.hostname,
                        key=_fingerprint(exc.key),
                        expected=_fingerprint(exc.expected_key),
                        setting=KNOWN_HOSTS_KEY,
                        file=settings.known_hosts,
                    )
                ) from None
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(settings.timeout_s)
            if settings.remote_dir:
                sftp.chdir(settings.remote_dir)
        except BaseException:
            client.close()  # its transport is a thread: retries must not pile them up
            raise
        return cls(client, sftp)

    def size(self, name: str) -> int | None:
        try:
            return self._sftp.stat(name).st_size
        except FileNotFoundError:
            return None

    def store(self, name: str, data: bytes) -> None:
        """Written, then its size asked back: a cut transfer is an error, not a file."""
        self._sftp.putfo(io.BytesIO(data), name, file_size=len(data), confirm=True)

    def replace(self, source: str, target: str) -> None:
        if self._posix_rename:
            try:
                self._sftp.posix_rename(source, target)
            except FileNotFoundError:
                raise
            except OSError:
                # Unsupported, or refused by the server's policy: plain rename from now on.
                self._posix_rename = False
            else:
                return
        try:
            self._sftp.rename(source, target)
        except OSError:
            if self.size(target) is None:
                raise
            self._sftp.remove(target)
            self._sftp.rename(source, target)

    def quit(self) -> None:
        self._sftp.close()

    def close(self) -> None:
        self._client.close()
