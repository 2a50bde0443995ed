"""Certificates for the broker's TLS: the site CA and the broker's own certificate, the
device CA and a client certificate per device, and the device CA's revocation list.

Two CAs, because their keys travel differently. The site CA signs the broker's
certificate, which every client checks; its key stays at the operations center. The device
CA signs only field boxes' client certificates, and its key goes out with technicians for
`edge-agent provision`; the broker's certificate listener trusts it alone and admits nobody
but field boxes there, so a lost laptop can mint a box, never the collector. A device whose
box is lost is revoked: its certificate's serial goes into the device CA's CRL, which the
listener reads.

Made with the `cryptography` package, on the technician's laptop (device certificates) or
at the operations center (the CAs, the broker's certificate, the CRL). Keys are ECDSA
P-256: small, fast on a Raspberry Pi, and accepted by Mosquitto's OpenSSL.
"""

import datetime
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from iotruntime.broker_access import RESERVED_USERNAMES
from iotruntime.i18n import _


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes


def certificate_sha256(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def common_name(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def subject_is_only_common_name(cert_pem: bytes) -> bool:
    """Whether the subject is a lone CN, as `issue_client` makes it: the broker takes the
    whole subject as the username, so any other attribute would name another user."""
    subject = x509.load_pem_x509_certificate(cert_pem).subject
    attributes = list(subject)
    return len(attributes) == 1 and attributes[0].oid == NameOID.COMMON_NAME


def serial_number(cert_pem: bytes) -> int:
    return x509.load_pem_x509_certificate(cert_pem).serial_number


def issued_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """Whether the CA at `ca_pem` signed this certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def same_certificate(a_pem: bytes, b_pem: bytes) -> bool:
    """Whether two files hold one certificate (whatever their PEM layout)."""
    a, b = x509.load_pem_x509_certificate(a_pem), x509.load_pem_x509_certificate(b_pem)
    return a.public_bytes(serialization.Encoding.DER) == b.public_bytes(serialization.Encoding.DER)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca_key(ca: Issued) -> ec.EllipticCurvePrivateKey:
    """The CA's key, once it is known to belong to the CA's certificate: a key from another
    CA would sign certificates that name this one as issuer and verify nowhere."""
    key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(_("the CA key must be an EC key"))
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    if cert.public_key() != key.public_key():
        raise ValueError(_("the CA key does not belong to the CA certificate"))
    return key


def load_ca(cert_pem: bytes, key_pem: bytes) -> Issued:
    """A CA read from its two files, checked before anything is signed or changed with it:
    ValueError when the key is not the certificate's."""
    ca = Issued(cert_pem, key_pem)
    _ca_key(ca)
    return ca


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def create_ca(name: str, days: int = 3650) -> Issued:
    """A CA: the site CA or the device CA, told apart by their use, not their form."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        _builder(name, subject, key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _issue(
    ca: Issued,
    name: str,
    days: int,
    usage: x509.ObjectIdentifier,
    san: list[x509.GeneralName],
) -> Issued:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = _ca_key(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(name, ca_cert.subject, key, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_client(ca: Issued, username: str, days: int = 825) -> Issued:
    """A device's certificate, from the device CA: the broker takes its subject as the
    username. A name the operations center uses on the broker is refused, though the
    certificate listener would give it no rights: a certificate should not even claim it."""
    if username in RESERVED_USERNAMES:
        raise ValueError(
            _("{username} is reserved for the operations center, not a device").format(
                username=repr(username)
            )
        )
    return _issue(ca, username, days, ExtendedKeyUsageOID.CLIENT_AUTH, [])


def issue_server(ca: Issued, host: str, days: int = 825) -> Issued:
    """The broker's certificate, valid for `host` (a name or an IP address)."""
    try:
        san: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(host))]
    except ValueError:
        san = [x509.DNSName(host)]
    return _issue(ca, host, days, ExtendedKeyUsageOID.SERVER_AUTH, san)


def revocation_list(
    ca: Issued, revoked: Iterable[tuple[int, datetime.datetime]], number: int
) -> bytes:
    """The device CA's CRL (PEM) listing each (serial, revoked at). It is valid until the CA
    itself expires: OpenSSL refuses every certificate once the CRL it checks against is
    out of date, and a broker that stops admitting the whole fleet because nobody renewed a
    list is a worse failure than a list that names what it names for years."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(minutes=5))
        .next_update(ca_cert.not_valid_after_utc)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    crl = builder.sign(_ca_key(ca), hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def revoked_serials(crl_pem: bytes, ca_pem: bytes) -> set[int] | None:
    """The serials a CRL revokes, or None when the CA at `ca_pem` did not sign it (the
    broker would refuse every certificate against such a list)."""
    crl = x509.load_pem_x509_crl(crl_pem)
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    public_key = ca_cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return None
    if crl.issuer != ca_cert.subject or not crl.is_signature_valid(public_key):
        return None
    return {entry.serial_number for entry in crl}
