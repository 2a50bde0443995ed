"""A unit's system-call filter, applied as systemd applies it, where systemd cannot start
the unit (this container's PID 1 is not systemd).

`allowed_calls(unit)` reads the unit's `SystemCallFilter=` lines and expands their groups
with `systemd-analyze syscall-filter`, so the list is the one this systemd would load. Run
as a script, this module installs that list with libseccomp (the library systemd uses) and
runs a command under it; every other call fails with EPERM, as `SystemCallErrorNumber=EPERM`
has it, in the command and in everything it starts:

    python tests/system/syscall_filter.py ALLOWED_FILE -- COMMAND...

The script imports the standard library only: it runs before the command's interpreter,
whichever that is.
"""

import ctypes
import errno
import os
import subprocess
import sys
from pathlib import Path

ALWAYS_ALLOWED = (
    "execve",
    "exit",
    "exit_group",
    "getrlimit",
    "rt_sigreturn",
    "sigreturn",
    "clock_gettime",
    "gettimeofday",
    "time",
    "nanosleep",
    "clock_nanosleep",
)
"""What systemd allows whatever the filter says (systemd.exec(5), SystemCallFilter=)."""

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO = 0x00050000


def expand(group: str) -> set[str]:
    """The calls a `@group` stands for, nested groups expanded."""
    listing = subprocess.run(
        ["systemd-analyze", "syscall-filter", group], capture_output=True, text=True, check=True
    ).stdout
    calls: set[str] = set()
    for line in listing.splitlines()[1:]:
        name = line.split("#", 1)[0].strip()
        if name.startswith("@"):
            calls |= expand(name)
        elif name:
            calls.add(name)
    return calls


def allowed_calls(unit: Path) -> set[str]:
    """The calls the unit's filter lets through: its first `SystemCallFilter=` line is an
    allow-list, later ones add to it or, after `~`, take from it."""
    lines = [
        line.split("=", 1)[1].strip()
        for line in unit.read_text().splitlines()
        if line.startswith("SystemCallFilter=")
    ]
    if not lines or lines[0].startswith("~"):
        raise ValueError(f"{unit}: no allow-list in SystemCallFilter=")
    allowed = set(ALWAYS_ALLOWED)
    for line in lines:
        removing = line.startswith("~")
        names = line.removeprefix("~").split()
        calls = set().union(*(expand(n) if n.startswith("@") else {n} for n in names))
        allowed = allowed - calls if removing else allowed | calls
    return allowed


def install(allowed: set[str]) -> None:
    """Load the filter into this process: what it runs next inherits it."""
    seccomp = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    context = seccomp.seccomp_init(SCMP_ACT_ERRNO | errno.EPERM)
    for name in sorted(allowed):
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if number >= 0:  # names of other architectures resolve to nothing here
            seccomp.seccomp_rule_add(context, SCMP_ACT_ALLOW, number, 0)
    if seccomp.seccomp_load(context) != 0:
        raise OSError("seccomp_load failed")


def main(argv: list[str]) -> None:
    allowed_file, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit(__doc__)
    install(set(Path(allowed_file).read_text().split()))
    os.execvp(command[0], command)  # noqa: S606 - the test's own command, under the filter


if __name__ == "__main__":
    main(sys.argv[1:])
