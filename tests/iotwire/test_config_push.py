"""The signed push: what verifies, what does not, and how an answer is read back."""

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from iotwire.codec import decode, encode
from iotwire.config_push import (
    DOCUMENT_ARG,
    SIGNATURE_ARG,
    ConfigPush,
    PushError,
    PushOutcome,
    outcome_detail,
    outcome_of,
    public_key,
    signed_args,
    verified_push,
)
from iotwire.messages import Command, CommandAck

KEY = Ed25519PrivateKey.generate()
PUSH = ConfigPush(
    device="air-dd-01",
    issued=datetime(2026, 11, 30, 8, 15, tzinfo=UTC),
    nonce="0" * 32,
    by="ops-lan",
    config="device:\n  id: air-dd-01\n",
)


def test_a_signed_push_verifies_and_crosses_the_wire_in_a_command():
    args = signed_args(PUSH, KEY)
    command = Command(
        device="air-dd-01", seq=1, id=PUSH.nonce, name="push_config", args=args, ts=PUSH.issued
    )
    received = decode(encode(command), Command)
    assert verified_push(received.args, KEY.public_key()) == PUSH


def test_an_unsigned_tampered_or_foreign_push_is_refused():
    args = signed_args(PUSH, KEY)
    with pytest.raises(PushError, match="unsigned"):
        verified_push({DOCUMENT_ARG: args[DOCUMENT_ARG]}, KEY.public_key())
    tampered = {**args, DOCUMENT_ARG: str(args[DOCUMENT_ARG]).replace("air-dd-01\\n", "x\\n")}
    with pytest.raises(PushError, match="does not verify"):
        verified_push(tampered, KEY.public_key())
    with pytest.raises(PushError, match="does not verify"):
        verified_push(args, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(PushError, match="does not verify"):
        verified_push({**args, SIGNATURE_ARG: "not base64!"}, KEY.public_key())


def test_the_public_key_must_be_ed25519():
    pem = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    assert public_key(pem) == KEY.public_key()
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        public_key(other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))


def test_an_answer_says_its_outcome_first():
    def ack(detail: str) -> CommandAck:
        return CommandAck(
            device="air-dd-01", seq=1, id="x", ok=False, ts=PUSH.issued, detail=detail
        )

    for outcome in PushOutcome:
        assert outcome_of(ack(outcome_detail(outcome, "why: because"))) is outcome
    assert outcome_of(ack("failed: RuntimeError()")) is None
    assert outcome_of(ack("no colon")) is None
