"""A reference SeaCat PKI configuration (its INI file) read into what each tenant becomes here.

The sections the reference documentation uses (docs/cli.md#import-reference):

    [tenants]
    ids=TENANT[,OTHER...]
    [seacatpki:private_key:TENANT_seacat_private_key]
    tenants=TENANT
    keyfile=./TENANT/seacat_private_key.pem
    [seacatpki:x509:ca:TENANT]
    ca_key=TENANT_seacat_private_key
    ca_cert=TENANT:<sha384 of the CA certificate's DER>
    seacat=yes
    [seacat:TENANT]
    approve=https://example.com/validate_cr

Everything is read and checked here, before anything is sent: the keys load, each CA certificate
given with ``--ca-cert`` is the one the configuration names (its id), self-signed by the tenant's
key and a CA this service takes (chalicelib.ca.imported, the service's own check). Relative key
files are found from the configuration file's folder, or ``base_dir``.
"""

from __future__ import annotations

import configparser
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from seacat_cli.core import usage

TENANT_RE = re.compile(r"[a-zA-Z0-9_-]{2,64}")  # as the service accepts tenant ids
CA_CERT_RE = re.compile(r"(?P<tenant>[^:]+):(?P<id>[0-9a-fA-F]{96})")
TRUE = frozenset({"yes", "true", "on", "1"})
FALSE = frozenset({"no", "false", "off", "0"})


@dataclass
class TenantPlan:
    tenant: str
    seacat: bool
    approve: str | None = None
    key_name: str | None = None
    key_file: Path | None = None
    key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)
    key_pem: str | None = field(default=None, repr=False)
    ca_cert: str | None = None  # what the configuration names: TENANT:<sha384>
    ca_file: Path | None = None
    ca_pem: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def key_fingerprint(self) -> str | None:
        if self.key is None:
            return None
        from chalicelib.ca.keys import public_key_fingerprint

        return public_key_fingerprint(self.key.public_key())

    @property
    def ca_id(self) -> str | None:
        if self.ca_pem is None:
            return None
        der = x509.load_pem_x509_certificate(self.ca_pem.encode("ascii")).public_bytes(Encoding.DER)
        return f"{self.tenant}:{hashlib.sha384(der).hexdigest()}"

    def tenant_body(self) -> dict[str, Any]:
        """The PUT /tenants/{tenant} body: the key (on creation; the same key again is idempotent),
        the SeaCat switch and, when the reference has one, the approve URL."""
        body: dict[str, Any] = {"seacat": self.seacat}
        if self.key_pem is not None:
            body["privateKey"] = self.key_pem
        if self.approve is not None:
            body["approve"] = self.approve
        return body

    def describe(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "key": (
                {"name": self.key_name, "file": str(self.key_file), "fingerprint": self.key_fingerprint}
                if self.key is not None
                else None
            ),
            "seacat": self.seacat,
            "approve": self.approve,
            "caCert": self.ca_id,
            "caFile": str(self.ca_file) if self.ca_file else None,
            "configuredCaCert": self.ca_cert,
            "warnings": self.warnings,
        }


def _bool(value: str, where: str) -> bool:
    word = value.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise usage(f"{where}: {value!r} is neither yes nor no")


def _certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise usage(f"--ca-cert: cannot read {path}: {error.strerror or error}") from None
    try:
        found = (
            x509.load_pem_x509_certificates(data)
            if data.lstrip().startswith(b"-----")
            else [x509.load_der_x509_certificate(data)]
        )
    except ValueError:
        raise usage(f"--ca-cert: {path} is not a certificate (PEM or DER)") from None
    if len(found) != 1:
        raise usage(f"--ca-cert: {path} holds {len(found)} certificates: give the CA certificate alone")
    return found[0]


def _load_key(path: Path, where: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    from chalicelib.ca.keys import load_ca_private_key_pem
    from chalicelib.errors import InvalidInput

    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise usage(f"{where}: cannot read the key file {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        key = load_ca_private_key_pem(text)
    except InvalidInput as error:
        raise usage(f"{where}: {path}: {error}") from None
    return key, text


def read(
    config_path: Path, ca_certs: dict[str, Path], *, base_dir: Path | None = None, now: datetime | None = None
) -> list[TenantPlan]:
    """Each tenant of the configuration, checked; a usage error (exit 2) for anything wrong."""
    from chalicelib.ca.imported import check_imported_ca
    from chalicelib.errors import InvalidInput

    parser = configparser.ConfigParser(interpolation=None)
    try:
        with config_path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        raise usage(f"cannot read {config_path}: {error.strerror or error}") from None
    except (configparser.Error, UnicodeDecodeError) as error:
        raise usage(f"{config_path} is not an INI configuration: {str(error).splitlines()[0]}") from None
    base = base_dir or config_path.resolve().parent
    if not parser.has_option("tenants", "ids"):
        raise usage(f"{config_path}: no [tenants] ids= (the tenants to import)")
    ids = [t for t in re.split(r"[\s,]+", parser.get("tenants", "ids")) if t]
    if not ids:
        raise usage(f"{config_path}: [tenants] ids= names no tenant")
    for tenant in ids:
        if not TENANT_RE.fullmatch(tenant):
            raise usage(f"{config_path}: tenant id {tenant!r} is not 2-64 of A-Z a-z 0-9 _ -")
    if len(set(ids)) != len(ids):
        raise usage(f"{config_path}: [tenants] ids= names a tenant twice")
    unknown = sorted(set(ca_certs) - set(ids))
    if unknown:
        raise usage(f"--ca-cert {unknown[0]}=...: {unknown[0]} is not in the configuration's [tenants] ids=")

    plans = []
    for tenant in ids:
        ca_section = f"seacatpki:x509:ca:{tenant}"
        seacat_section = f"seacat:{tenant}"

        def option(name: str, ca_section: str = ca_section, seacat_section: str = seacat_section) -> str | None:
            for section in (ca_section, seacat_section):
                if parser.has_option(section, name):
                    return parser.get(section, name).strip() or None
            return None

        seacat_value = option("seacat")
        plan = TenantPlan(
            tenant=tenant,
            seacat=_bool(seacat_value, f"[{ca_section}] seacat=") if seacat_value is not None else False,
            approve=option("approve"),
        )
        if seacat_value is None:
            plan.warnings.append("no seacat=yes: the SeaCat client routes stay off, as in the reference")
        key_name = option("ca_key")
        if key_name is None:
            plan.warnings.append("no ca_key: the service generates the tenant's CA key")
        else:
            key_section = f"seacatpki:private_key:{key_name}"
            if not parser.has_option(key_section, "keyfile"):
                raise usage(f"{config_path}: [{ca_section}] ca_key={key_name} but no [{key_section}] keyfile=")
            allowed = [t for t in re.split(r"[\s,]+", parser.get(key_section, "tenants", fallback="")) if t]
            if allowed and tenant not in allowed:
                raise usage(f"{config_path}: [{key_section}] tenants= does not name {tenant}")
            key_file = Path(parser.get(key_section, "keyfile").strip())
            if not key_file.is_absolute():
                key_file = base / key_file
            plan.key_name, plan.key_file = key_name, key_file
            plan.key, plan.key_pem = _load_key(key_file, f"[{key_section}]")
        configured = option("ca_cert")
        if configured is not None:
            match = CA_CERT_RE.fullmatch(configured)
            if match is None or match.group("tenant") != tenant:
                raise usage(f"{config_path}: [{ca_section}] ca_cert= is not {tenant}:<96 hex digits>: {configured!r}")
            plan.ca_cert = f"{tenant}:{match.group('id').lower()}"
        if tenant in ca_certs:
            path = ca_certs[tenant]
            cert = _certificate(path)
            der = cert.public_bytes(Encoding.DER)
            found = f"{tenant}:{hashlib.sha384(der).hexdigest()}"
            if plan.ca_cert is not None and found != plan.ca_cert:
                raise usage(
                    f"--ca-cert {tenant}={path}: this is {found}, not the CA certificate the configuration "
                    f"names ({plan.ca_cert})"
                )
            if plan.key is None:
                raise usage(f"--ca-cert {tenant}={path}: the configuration gives {tenant} no ca_key to check it with")
            try:
                check_imported_ca(cert, plan.key, now or datetime.now(UTC))
            except InvalidInput as error:
                raise usage(f"--ca-cert {tenant}={path}: {error.field}: {error}") from None
            plan.ca_file, plan.ca_pem = path, cert.public_bytes(Encoding.PEM).decode("ascii")
        elif plan.ca_cert is not None:
            plan.warnings.append(
                f"its CA certificate {plan.ca_cert} is not imported (no --ca-cert {tenant}=FILE): devices enrolled "
                "under it will not pass until the tenant has it; `seacat ca import` can add it later"
            )
        plans.append(plan)
    return plans
