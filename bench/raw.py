"""The raw limits with `cryptography` on this machine, one core: what the service cannot beat.

- a SeaCat CR parsed and its signature verified by the real codec (``decode_cr``), and a bare
  ECDSA P-256 verify of the same bytes for reference;
- a leaf certificate built and signed with CertificateBuilder, with our client profile's
  extensions (basicConstraints, keyUsage, extendedKeyUsage, SKI, AKI), DER out;
- a PEM certificate parsed and its signature verified against its CA.

Also, for the diagnosis of a missed budget: the project's own builder and the x509.verification
path validation the gateway runs, next to the raw figures they should approach.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench.common import cycle, measure, measure_paired

COUNT = 3000
SECONDS = 1.5
POOL = 64


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench"), x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA")]
    )
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=False)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


_KU = x509.KeyUsage(True, False, False, False, False, False, False, False, False)


def build_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    cn: str,
    serial: int,
) -> bytes:
    """Our client profile with nothing but cryptography: the raw cost of issuing one certificate."""
    now = datetime.now(UTC).replace(microsecond=0)
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_KU, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(aki, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


class Reference:
    """The raw operations, on a CA of their own: the limits the handlers are compared with."""

    def __init__(self) -> None:
        from seacat_client.cr import build_cr

        self.ca_key, self.ca = _ca()
        self.keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(POOL)]
        self.publics = [k.public_key() for k in self.keys]
        self.crs = [build_cr(k, application="bench") for k in self.keys]
        self._serials = iter(range(1 << 127, (1 << 127) + 100_000_000))
        self.pems = [
            x509.load_der_x509_certificate(self.sign(pub)).public_bytes(serialization.Encoding.PEM)
            for pub in self.publics
        ]

    def sign(self, public_key: ec.EllipticCurvePublicKey) -> bytes:
        return build_leaf(self.ca_key, self.ca, public_key, "AAAAAAAAAAAAAAAA", next(self._serials))

    def enroll(self, cr: bytes) -> bytes:
        """CR parse + verify, then the leaf built and signed: the crypto of one enrolment."""
        from chalicelib.seacat.codec import decode_cr

        request = decode_cr(cr)
        return build_leaf(self.ca_key, self.ca, request.public_key, request.identity, next(self._serials))

    def verify(self, pem: bytes) -> None:
        """PEM parse + signature verify: the crypto of one gateway authentication."""
        x509.load_pem_x509_certificate(pem).verify_directly_issued_by(self.ca)


def run() -> dict[str, Any]:
    from chalicelib.seacat.codec import decode_cr

    ref = Reference()
    crs = ref.crs
    decoded = [decode_cr(cr) for cr in crs]
    ecdsa = [(d.public_key, d.signature, d.tbs) for d in decoded]
    signature = ec.ECDSA(hashes.SHA256())
    results: dict[str, Any] = {}

    # CR parse + verify through the service's codec; bare ECDSA verify of the same bytes.
    results["cr_verify"] = measure(decode_cr, cycle(crs), count=COUNT, seconds=SECONDS)
    results["ecdsa_verify"] = measure(
        lambda item: item[0].verify(item[1], item[2], signature), cycle(ecdsa), count=COUNT, seconds=SECONDS
    )
    # Leaf certificate build + sign, our profile's extensions, DER out.
    results["cert_sign"] = measure(ref.sign, cycle(ref.publics), count=COUNT, seconds=SECONDS)
    # PEM parse + signature verify against the CA.
    results["cert_verify"] = measure(ref.verify, cycle(ref.pems), count=COUNT, seconds=SECONDS)
    # Both halves of an enrolment in one loop (what 1/(1/verify + 1/sign) estimates).
    results["enroll_crypto"] = measure(ref.enroll, cycle(crs), count=COUNT, seconds=SECONDS, runs=1)

    # For the diagnosis, each paired with the raw operation it stands for: the project's builder
    # (vs the raw sign) and x509.verification path validation as the gateway runs it (vs the raw verify).
    from chalicelib.ca import builder
    from chalicelib.ca.verify import trust_store, verify_client

    ca, ca_key = ref.ca, ref.ca_key
    now = datetime.now(UTC)
    ca_not_after = ca.not_valid_after_utc

    def project_build(pub: ec.EllipticCurvePublicKey) -> None:
        not_before, not_after = builder.client_validity(now, 365, ca_not_after=ca_not_after)
        cert = builder.build_client_certificate(
            public_key=pub,
            identity="AAAAAAAAAAAAAAAA",
            issuer=ca,
            issuer_key=ca_key,
            serial=builder.random_serial(),
            not_before=not_before,
            not_after=not_after,
        )
        cert.public_bytes(serialization.Encoding.DER)

    results["project_cert_sign"] = measure_paired(
        project_build, cycle(ref.publics), ref.sign, cycle(ref.publics), count=COUNT, seconds=SECONDS / 2
    )
    store = trust_store([ca])

    def path_validate(pem: bytes) -> None:
        verify_client(x509.load_pem_x509_certificate(pem), store, now)

    results["path_validation"] = measure_paired(
        path_validate, cycle(ref.pems), ref.verify, cycle(ref.pems), count=COUNT, seconds=SECONDS / 2
    )
    results["pem_parse_only"] = measure(
        x509.load_pem_x509_certificate, cycle(ref.pems), count=COUNT, seconds=SECONDS, runs=1
    )
    return results
