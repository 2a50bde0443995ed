"""Who may do what on the broker: usernames, Mosquitto password entries and ACL lines.

Both sides need them: `edge-agent provision` makes a device's entry on site, and
`collector broker-config` writes the broker's files for every registered device. The ACL
confines a device to its own subtree (`{prefix}/v1/{site}/{device}/...`): it publishes its
channels and reads only its own commands and commit confirmations, so a stolen box
cannot speak for another pole. Only a camera pole may publish plate reads: they raise
police alerts, and a box that has no camera has no business putting a plate on the wire.
Commands and confirmations (`committed`) are written by the collectors alone: a
confirmation makes a box forget messages, so one written by anyone else could make it
drop what the store never got.

A device's broker username is its device id, and the broker takes it as the client id
too: a credential names one device, and one session. Names the operations center uses on
the broker (`RESERVED_USERNAMES`, and the collectors and consoles `collector broker-config`
makes) are never a device's.

Password entries use Mosquitto 2's own format (`$7$`, PBKDF2-SHA512, 101 iterations,
12-byte salt), which `mosquitto_passwd` writes and the broker reads. The iteration count
is the broker's default: every device connection pays it, and the passwords provisioning
makes are 32 random bytes, which no count of iterations would protect better.
"""

import base64
import hashlib
import hmac
import secrets

from iotwire.topics import WIRE_LEVEL, Channel

ITERATIONS = 101
SALT_BYTES = 12

RESERVED_USERNAMES = frozenset({"collector"})
"""The collector's default broker username and client id: no device may be called so."""

DEVICE_WRITES = (Channel.TELEMETRY, Channel.HEALTH, Channel.BATCH, Channel.STATUS)

# The ports `collector broker-config` gives field boxes: a password over TLS, or a client
# certificate from the device CA. A box provisioned for one must not default to the other.
PASSWORD_PORT = 8883
CERTIFICATE_PORT = 8884


def new_password() -> str:
    return secrets.token_urlsafe(32)


def password_entry(username: str, password: str) -> str:
    """One line of a Mosquitto password file."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"{username}:$7${ITERATIONS}${encoded[0]}${encoded[1]}"


def entry_matches(entry: str, password: str) -> bool:
    """Whether a password-file line accepts `password`: how provisioning tells a box's
    password still matches what the broker was given, without keeping it anywhere else."""
    _, _, hashed = entry.partition(":")
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt, expected = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(digest, expected)


def certificate_username(device: str) -> str:
    """The username (and client id) the broker gives a device's certificate: its whole
    subject, as Mosquitto's `use_subject_as_username` writes it. Never a bare name, so no
    certificate, whoever signed it, can claim the client id of a collector or of a device
    that signs in with a password."""
    return f"CN={device}"


def device_acl(
    prefix: str, site: str, device: str, *, plates: bool, username: str | None = None
) -> list[str]:
    """ACL lines for one device: its own channels to write (`plate` only if it is a
    camera pole), its own commands and the collectors' confirmations of its messages to
    read. It may read its own acknowledgements too: `edge-agent check` proves the ACL by
    receiving back what it wrote."""
    base = f"{prefix}/{WIRE_LEVEL}/{site}/{device}"
    writes = (*DEVICE_WRITES, Channel.PLATE) if plates else DEVICE_WRITES
    return [
        f"user {username or device}",
        *(f"topic write {base}/{channel}" for channel in writes),
        f"topic readwrite {base}/{Channel.CMD_ACK}",
        f"topic read {base}/{Channel.CMD}/+",
        f"topic read {base}/{Channel.COMMITTED}",
    ]


def collector_acl(prefix: str, username: str) -> list[str]:
    """ACL lines for a collector: it reads every device, sends commands, confirmations
    of what it committed, alerts, dispatches to police units, and alarms."""
    root = f"{prefix}/{WIRE_LEVEL}"
    return [
        f"user {username}",
        f"topic read {root}/+/+/#",
        f"topic write {root}/+/+/{Channel.CMD}/+",
        f"topic write {root}/+/+/{Channel.COMMITTED}",
        f"topic readwrite {root}/alerts/#",
        f"topic readwrite {root}/dispatch/#",
        f"topic readwrite {root}/alarms/#",
    ]


def console_acl(prefix: str, username: str) -> list[str]:
    """ACL lines for a police or operations console: alerts, dispatches and alarms only
    (alarms carry no personal data)."""
    root = f"{prefix}/{WIRE_LEVEL}"
    return [
        f"user {username}",
        f"topic read {root}/alerts/#",
        f"topic read {root}/dispatch/#",
        f"topic read {root}/alarms/#",
    ]
