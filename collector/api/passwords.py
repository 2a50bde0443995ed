"""Passwords for people at a browser, who cannot paste a 43-character token into a login
form: scrypt from the standard library, salted, its cost parameters kept with the hash
so they can be raised later without locking anyone out."""

import hashlib
import hmac
import secrets

from collector.i18n import web

MIN_LENGTH = 10
_N, _R, _P = 2**14, 8, 1  # about 50 ms on the collector's cores: cheap per login, dear per guess
_DUMMY = "scrypt$16384$8$1$00$00"


class PasswordError(ValueError):
    """A password the policy refuses, said as the CLI prints it."""


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024)


def hashed(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise PasswordError(
            web.gettext("a password has at least {count} characters").format(count=MIN_LENGTH)
        )
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def matches(password: str, stored: str | None) -> bool:
    """Whether the password is the one hashed; a user without a password costs the same
    time as one with, so a wrong name cannot be told from a wrong password."""
    _, n, r, p, salt, digest = (stored or _DUMMY).split("$")
    found = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p))
    return stored is not None and hmac.compare_digest(found, bytes.fromhex(digest))
