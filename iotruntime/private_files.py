"""Files holding secrets or personal data (the police database, API token hashes, the
outbox with its plate crops, the status with the last plate read): 0600, or 0640 where a
group reads them, whatever the umask.

A process's umask decides the mode of what it creates. Under systemd it is the unit's
`UMask=`, but a command run from a shell (`collector users add`, `edge-agent run` by hand,
an install script) has the shell's, often 022, and SQLite's 0644 default then leaves the
file readable by every local account. Here the mode is set on the open descriptor
(`fchmod`, which no umask touches) before a byte is written.

An existing file open to every local account got its mode from a umask, not from a
person: it is brought down to the mode it would be created with, and a warning names it. A
file closed to others keeps its mode, group access included: someone chose that (a
backup job's group, say).
"""

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE = 0o600
GROUP_READABLE = 0o640
_OTHERS = 0o007
_NEW = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def file_mode(group_read: bool) -> int:
    return GROUP_READABLE if group_read else PRIVATE


def make_private_dirs(path: Path, *, group_read: bool = False) -> None:
    """Create `path` and its missing parents 0700 (0750 with `group_read`, so the group can
    reach its files), whatever the umask; existing directories stay as they are. A
    directory left to a umask of 0 would be writable by all, who could then replace the
    files in it."""
    mode = 0o750 if group_read else 0o700
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            continue  # made meanwhile by another process, with its own mode
        os.chmod(directory, mode)


def create_private_file(path: Path, *, group_read: bool = False) -> None:
    """Make sure `path` exists and is closed to others: created empty at 0600 (0640 with
    `group_read`), or, when it exists open to every local account, brought down to that."""
    mode = file_mode(group_read)
    try:
        fd = os.open(path, _NEW | os.O_EXCL, mode)
    except FileExistsError:
        withdraw_world_access(path, group_read=group_read)
        return
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def write_whole(path: Path, data: bytes, mode: int, gid: int | None = None) -> Path:
    """Replace `path` whole with `data`: readers see the old file or the new one, never
    half of one. Its mode (and group) are set on the descriptor before a byte is written,
    whatever the umask, so a secret is never readable by others, not even for a moment; a
    link planted in place of the part file is not followed."""
    part = path.with_name(f".{path.name}.part")
    try:
        with os.fdopen(os.open(part, _NEW | os.O_TRUNC, mode), "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            if gid is not None:
                os.fchown(handle.fileno(), -1, gid)
            handle.write(data)
        os.replace(part, path)
    except OSError:
        # A full disk must not keep half a file on it, taking room from what matters.
        part.unlink(missing_ok=True)
        raise
    return path


def write_private_file(path: Path, data: bytes, *, group_read: bool = False) -> None:
    """Replace `path` whole with `data`, 0600 (0640 with `group_read`)."""
    write_whole(path, data, file_mode(group_read))


def withdraw_world_access(path: Path, *, group_read: bool = False) -> None:
    """Bring an existing file open to every local account (a database an older version or
    a shell with umask 022 made 0644) down to 0600, or 0640 with `group_read`; leave a file
    closed to others as it is."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not current & _OTHERS:
        return
    wanted = current & file_mode(group_read)
    try:
        path.chmod(wanted)
    except PermissionError:
        log.warning(
            "%s is open to every local account (mode %04o) and only its owner can change"
            " that: chmod %04o %s",
            path,
            current,
            wanted,
            path,
        )
        return
    log.warning("%s was open to every local account (mode %04o); now %04o", path, current, wanted)
