"""A reference SeaCat PKI's files, made for tests as the reference makes them: a tenant's P-256 key
(``openssl ecparam -name prime256v1 -genkey -noout``: SEC1 PEM), its self-signed CA certificate
(serial 1, CA:TRUE pathlen:0 critical, keyUsage keyCertSign and cRLSign, a subject key identifier,
made years ago) and the INI configuration naming them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REFERENCE_NOT_BEFORE = datetime(2019, 9, 22, tzinfo=UTC)


def sec1_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def reference_ca(
    key: ec.EllipticCurvePrivateKey,
    *,
    cn: str = "Devel Root CA",
    not_before: datetime = REFERENCE_NOT_BEFORE,
    lifetime: timedelta = timedelta(days=7305),
    path_length: int | None = 0,
    key_cert_sign: bool = True,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    ca: bool = True,
) -> x509.Certificate:
    """The reference's CA certificate (its text in the reference documentation), or a flawed one."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TeskaLabs"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "SeaCat"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime - timedelta(seconds=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=key_cert_sign,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
        .sign(issuer_key or key, hashes.SHA256())
    )


def ca_id(tenant: str, cert: x509.Certificate) -> str:
    return f"{tenant}:{hashlib.sha384(cert.public_bytes(serialization.Encoding.DER)).hexdigest()}"


@dataclass
class ReferenceTenant:
    tenant: str
    key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    key_file: Path
    ca_file: Path

    @property
    def ca_cert(self) -> str:
        return ca_id(self.tenant, self.ca)


def write_reference(
    directory: Path, tenants: list[str], *, approve: dict[str, str] | None = None, der: bool = False
) -> tuple[Path, dict[str, ReferenceTenant]]:
    """A reference site.conf in ``directory`` with each tenant's keyfile under ./TENANT/ (as the
    reference documentation lays it out) and its CA certificate beside it (PEM, or DER)."""
    made: dict[str, ReferenceTenant] = {}
    lines = ["[tenants]", "ids=" + ",".join(tenants), ""]
    for tenant in tenants:
        key = ec.generate_private_key(ec.SECP256R1())
        ca = reference_ca(key)
        folder = directory / tenant
        folder.mkdir(parents=True, exist_ok=True)
        key_file = folder / "seacat_private_key.pem"
        key_file.write_bytes(sec1_pem(key))
        ca_file = folder / ("seacat_ca.der" if der else "seacat_ca.pem")
        ca_file.write_bytes(ca.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM))
        made[tenant] = ReferenceTenant(tenant, key, ca, key_file, ca_file)
        lines += [
            f"[seacatpki:private_key:{tenant}_seacat_private_key]",
            f"tenants={tenant}",
            f"keyfile=./{tenant}/seacat_private_key.pem",
            "",
            f"[seacatpki:x509:ca:{tenant}]",
            f"ca_key={tenant}_seacat_private_key",
            f"ca_cert={made[tenant].ca_cert}",
            "seacat=yes",
            "",
        ]
        if approve and tenant in approve:
            lines += [f"[seacat:{tenant}]", f"approve={approve[tenant]}", ""]
    config = directory / "site.conf"
    config.write_text("\n".join(lines))
    return config, made
