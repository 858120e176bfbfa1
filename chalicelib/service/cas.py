"""A tenant's CA certificates and their lifecycle: creating one from the JSON spec over the active key
(re-certification) or over a new key (rotation), retiring and revoking them, the public bundle, the
view GET /tenants/{tenant} shows, and the expiry metric.

Each CA certificate of a tenant knows the secret holding its key (``CaCert.key_secret``). A key is
in use while an active or trusted CA certificate is over it; once none is (retired or revoked), its
secret is scheduled for deletion (with Secrets Manager's recovery window), after the final CRLs of
its retired certificates were signed and stored: the CRL route serves those until they expire.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.cache import Missing
from chalicelib.context import current
from chalicelib.domain import CaCert, CaState, CertificateKind, CertificateRecord, Tenant
from chalicelib.errors import Conflict, InvalidInput, NotFound, SecretAlreadyExists
from chalicelib.service import audit
from chalicelib.service.ids import naive_iso, validate_cert_id, validate_tenant_id
from chalicelib.service.tenants import cached_tenant, forget_cached, get_tenant, tenant_json

# A tenant's CA certificates live on its one DynamoDB item (at most 400 KB): bound their number
# and size so the item can never fill up. At most 32 in use (active or trusted: the bundle), each at
# most 8 KiB; retired and revoked ones stay on the item (their CRLs, the view) and count only towards
# the item's byte budget.
MAX_CA_CERTIFICATES = 32
MAX_CA_DER = 8 * 1024
MAX_CA_BYTES = 300 * 1024
# A final CRL is stored on its CA certificate's item, beside the certificate: beyond this size the key
# is kept instead (and the CRL signed on demand), see docs/api.md.
MAX_FINAL_CRL = 350 * 1024


def _ca_cert(ca: CaCert) -> Any:
    from chalicelib.service.issuing import ca_certificate

    return ca_certificate(ca.cert_id, ca.der)


def _fingerprint(ca: CaCert) -> str:
    from chalicelib.ca.keys import public_key_fingerprint

    return public_key_fingerprint(_ca_cert(ca).public_key())


# -- creating a CA certificate ---------------------------------------------------------------------


def create_self_signed(tenant_id: str, body: object) -> CertificateRecord:
    """Re-certify the tenant's active key (its first key before any CA exists): a new self-signed CA
    certificate over the same key, made active. Clients keep passing: their certificates chain to
    any CA certificate with their issuer's name and key."""
    keystore = current().keystore

    tenant = get_tenant(tenant_id)
    active = tenant.active_ca_cert()
    secret = _active_key_secret(tenant, active)
    now = datetime.now(UTC)
    parsed = _parse_spec(tenant, body, now)
    record = _build(tenant, parsed, keystore.load(secret), now)
    details = _created_details(record, secret)
    if active is not None:
        details["previous"] = active.cert_id
    event = audit.entry("ca.created", tenant_id, record.cert_id, "active", details)
    current().tenants.add_ca(tenant, record, [event], key_secret=None if secret == tenant.key_secret else secret)
    _forget(tenant_id)
    return record


def rotate(tenant_id: str, body: dict[str, Any]) -> tuple[CertificateRecord, str]:
    """A new CA key (generated on ``curve``, P-256 by default, or imported from ``privateKey``) and its
    self-signed certificate, made active; the previous CA certificates stay in the bundle. Returns the
    certificate and the new key's fingerprint."""
    from chalicelib.ca import keys

    keystore = current().keystore

    tenant = get_tenant(tenant_id)
    if not tenant.cas:
        raise Conflict(
            f"tenant {tenant_id} has no CA certificate yet: make its first with PUT /{tenant_id}/x509/self-signed",
            field="tenant",
        )
    curve = body.get("curve")
    if curve is not None and curve not in keys.ROTATION_CURVES:
        raise InvalidInput("must be one of " + ", ".join(keys.ROTATION_CURVES), field="curve")
    imported = "privateKey" in body
    if imported:
        key = keys.load_ca_private_key_pem(body["privateKey"], curves=keys.ROTATION_CURVES)
        if curve is not None and keys.curve_name(key) != curve:
            raise InvalidInput(f"the imported key is on {keys.curve_name(key)}, not {curve}", field="curve")
    else:
        key = keys.generate_ca_key(curve or "P-256")
    fingerprint = keys.public_key_fingerprint(key.public_key())
    over = [ca for ca in tenant.cas if _fingerprint(ca) == fingerprint]
    if any(ca.state == CaState.REVOKED for ca in over):
        raise Conflict("this key's CA certificate was revoked: a revoked key is never used again", field="privateKey")
    if any(ca.in_trust for ca in over):
        raise Conflict(
            "this key is already one of the tenant's CA keys: re-certify it with PUT "
            f"/{tenant_id}/x509/self-signed, or rotate to a new key",
            field="privateKey",
        )
    if over:
        raise Conflict("this key's CA certificates were retired: a rotation needs a new key", field="privateKey")
    if fingerprint == tenant.key_fingerprint:
        raise Conflict("this is the tenant's first CA key: a rotation needs a new key", field="privateKey")
    now = datetime.now(UTC)
    spec_body = {k: v for k, v in body.items() if k not in ("privateKey", "curve")}
    parsed = _parse_spec(tenant, spec_body, now)
    record = _build(tenant, parsed, key, now)  # everything checked before the secret is written

    name = keystore.secret_name(tenant_id, fingerprint)
    made = True
    try:
        secret = keystore.create(tenant_id, key, name=name)
    except SecretAlreadyExists:
        # An interrupted rotation with this very key (imported again): adopt its secret.
        made = False
        try:
            stored = keystore.load(name)
        except Exception:
            stored = None
        if stored is None or keys.public_key_fingerprint(stored.public_key()) != fingerprint:
            raise Conflict(
                "a secret for a key with this fingerprint's prefix exists already", field="privateKey"
            ) from None
        secret = name
    active = tenant.active_ca_cert()
    details = _created_details(record, secret)
    details["rotation"] = True
    details["previous"] = active.cert_id if active is not None else None
    events = [
        audit.entry(
            "key.imported" if imported else "key.generated",
            tenant_id,
            fingerprint,
            "stored",
            {"secret": secret, "curve": keys.curve_name(key)},
        ),
        audit.entry("ca.created", tenant_id, record.cert_id, "active", details),
    ]
    try:
        current().tenants.add_ca(tenant, record, events, key_secret=secret)
    except Conflict:
        if made and not imported:
            # Nobody else can hold this generated key: its secret is not left behind. (An imported
            # key's stays: a retry, or a concurrent call importing it too, adopts it.)
            try:
                keystore.schedule_deletion(secret, 7)
            except Exception:  # best effort: an unused secret is harmless, the conflict is the answer
                pass
        raise
    _forget(tenant_id)
    return record, fingerprint


def import_certificate(tenant_id: str, body: dict[str, Any]) -> tuple[CertificateRecord, bool]:
    """Take an existing CA certificate (``{"certificate": "<PEM>"}``, e.g. the reference SeaCat PKI's)
    over the key a new CA certificate would be made over (the active CA's; the tenant's first key
    before any CA) as the active issuing CA, byte for byte: its id stays the one gateways and the
    reference configuration know. Returns the record and whether it was added now (False: it was
    already one of the tenant's CA certificates in trust, an idempotent repeat)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from chalicelib.ca import builder, imported

    _only(body, ("certificate",))
    if "certificate" not in body:
        raise InvalidInput("the CA certificate in PEM is required", field="certificate")
    cert = imported.load_certificate_pem(body["certificate"])
    der = cert.public_bytes(Encoding.DER)
    if len(der) > MAX_CA_DER:
        raise InvalidInput(f"the CA certificate is {len(der)} bytes; at most {MAX_CA_DER}", field="certificate")
    cert_id = builder.certificate_id(der)
    tenant = get_tenant(tenant_id)
    existing = _existing(tenant, cert_id)
    if existing is not None:
        return existing, False
    active = tenant.active_ca_cert()
    secret = _active_key_secret(tenant, active)
    if len(tenant.trusted_cas()) >= MAX_CA_CERTIFICATES:
        raise Conflict(
            f"a tenant keeps at most {MAX_CA_CERTIFICATES} CA certificates in use (active or trusted); "
            "retire one first",
            field="tenant",
        )
    now = datetime.now(UTC)
    imported.check_imported_ca(cert, current().keystore.load(secret), now)
    held = sum(len(ca.der) for ca in tenant.cas)
    if held + len(der) > MAX_CA_BYTES:
        raise Conflict(
            f"the tenant's CA certificates take {held} bytes of its item, at most {MAX_CA_BYTES} with this one",
            field="tenant",
        )
    record = _ca_record(tenant_id, cert, der, now)
    details = _created_details(record, secret)
    details["imported"] = True
    if active is not None:
        details["previous"] = active.cert_id
    event = audit.entry("ca.created", tenant_id, record.cert_id, "active", details)
    try:
        current().tenants.add_ca(tenant, record, [event], key_secret=None if secret == tenant.key_secret else secret)
    except Conflict:
        # A concurrent import of this very certificate won the write: answer it as a repeat.
        forget_cached(tenant_id)
        existing = _existing(get_tenant(tenant_id), cert_id)
        if existing is None:
            raise
        return existing, False
    _forget(tenant_id)
    return record, True


def _existing(tenant: Tenant, cert_id: str) -> CertificateRecord | None:
    """The tenant's CA certificate ``cert_id`` when it is in trust (an import repeated); a retired or
    revoked one is a 409: an import never brings one back."""
    ca = tenant.ca(cert_id)
    if ca is None:
        return None
    if not ca.in_trust:
        raise Conflict(
            f"this CA certificate was {tenant.state_of(ca)}: it cannot be imported again", field="certificate"
        )
    record = current().certificates.get_certificate(tenant.tenant_id, cert_id)
    if record is None:
        raise NotFound("no such CA certificate", field="certificate")
    return record


def _active_key_secret(tenant: Tenant, active: CaCert | None) -> str:
    """The secret of the key the tenant signs with: its ``active`` CA certificate's, or its first
    key's before any CA certificate exists; Conflict when its last CA certificate was revoked."""
    if active is not None:
        return tenant.key_of(active)
    if not tenant.cas:
        return tenant.key_secret
    raise Conflict(
        f"tenant {tenant.tenant_id} has no active CA certificate (its last one was revoked): make a new key "
        f"with POST /{tenant.tenant_id}/x509/ca/rotate",
        field="tenant",
    )


def _parse_spec(tenant: Tenant, body: object, now: datetime) -> Any:
    from chalicelib.ca import spec

    in_use = len(tenant.trusted_cas())
    if in_use >= MAX_CA_CERTIFICATES:
        raise Conflict(
            f"a tenant keeps at most {MAX_CA_CERTIFICATES} CA certificates in use (active or trusted); "
            "retire one first",
            field="tenant",
        )
    parsed = spec.parse_certificate_spec(body, now=now)
    _check_issuing_ca(parsed, now)
    return parsed


def _build(tenant: Tenant, parsed: Any, key: Any, now: datetime) -> CertificateRecord:
    from cryptography.hazmat.primitives.serialization import Encoding

    from chalicelib.ca import builder

    try:
        cert = builder.build_self_signed(parsed, key)
    except ValueError as exc:  # what the spec parser let through but X.509 cannot encode
        raise InvalidInput(f"the certificate cannot be built: {exc}", field="extensions") from None
    der = cert.public_bytes(Encoding.DER)
    if len(der) > MAX_CA_DER:
        raise InvalidInput(f"the CA certificate would be {len(der)} bytes; at most {MAX_CA_DER}", field="body")
    held = sum(len(ca.der) for ca in tenant.cas)
    if held + len(der) > MAX_CA_BYTES:
        raise Conflict(
            f"the tenant's CA certificates take {held} bytes of its item, at most {MAX_CA_BYTES} with this one: "
            "smaller CA certificates, or fewer (retired and revoked ones count here too)",
            field="tenant",
        )
    return _ca_record(tenant.tenant_id, cert, der, now)


def _ca_record(tenant_id: str, cert: Any, der: bytes, now: datetime) -> CertificateRecord:
    """The stored record of a CA certificate (``der`` its encoding), made or imported ``now``."""
    from chalicelib.ca import builder

    return CertificateRecord(
        tenant_id=tenant_id,
        cert_id=builder.certificate_id(der),
        kind=CertificateKind.CA,
        serial=cert.serial_number,
        der=der,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        created_at=now,
        modified_at=now,
        version=1,
    )


def _created_details(record: CertificateRecord, secret: str) -> dict[str, Any]:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(record.der)
    return {
        "subject": cert.subject.rfc4514_string(),
        "serial": format(record.serial, "x"),
        "notAfter": str(record.not_after),
        "secret": secret,
    }


# A CA certificate's notBefore may lead the clock by this much (a spec's "now" is resolved here).
CA_CLOCK_SKEW = timedelta(minutes=5)


def _check_issuing_ca(parsed: Any, now: datetime) -> None:
    """The new certificate becomes the tenant's issuing CA at once: it must be able to be one."""
    from cryptography import x509

    from chalicelib.ca import spec

    if not parsed.is_ca:
        raise InvalidInput(
            "the tenant's CA certificate needs basicConstraints with CA true", field="extensions.basicConstraints"
        )
    for ext in parsed.extensions:
        if isinstance(ext.value, x509.KeyUsage) and not (ext.value.key_cert_sign and ext.value.crl_sign):
            raise InvalidInput(
                "the tenant's CA signs certificates and CRLs: keyUsage needs keyCertSign and cRLSign",
                field="extensions.keyUsage",
            )
    if parsed.not_before > now + CA_CLOCK_SKEW:
        raise InvalidInput(
            "must not be in the future: the CA is used as soon as it is made", field="validity.notBefore"
        )
    if parsed.not_after <= now:
        raise InvalidInput("must be in the future", field="validity.notAfter")
    # Served in the public bundle and trusted for client authentication: nothing more than that.
    spec.check_client_ca(parsed, now=now)


# -- retiring and revoking -------------------------------------------------------------------------


@dataclass(frozen=True)
class CaChange:
    """What a retirement or a revocation did."""

    tenant: Tenant
    ca: CaCert
    changed: tuple[str, ...]  # the CA certificates this call retired or revoked (none: done before)
    certificates: int  # the unexpired, unrevoked client certificates refused from now on
    key_deletion_scheduled: bool  # the CA's key secret is scheduled for deletion (now or before)


def _find(tenant: Tenant, ca_id: str) -> CaCert:
    cert_id = validate_cert_id(tenant.tenant_id, ca_id, field="ca_id")
    ca = tenant.ca(cert_id)
    if ca is None:
        raise NotFound("no such CA certificate", field="ca_id")
    return ca


def _only(body: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])


def retire(tenant_id: str, ca_id: str, body: dict[str, Any]) -> CaChange:
    """Take a trusted (not the active) CA certificate out of the bundle and the gateway's trust.

    Refused while client certificates would lose their trust (unexpired, unrevoked ones it or a CA
    certificate of its name and key issued, none of the same name and key staying in trust) unless
    ``force``. Idempotent: retiring a retired one completes what an interrupted call left (the key's
    deletion) and answers its state."""
    _only(body, ("force",))
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise InvalidInput("must be true or false", field="force")
    tenant = get_tenant(tenant_id)
    ca = _find(tenant, ca_id)
    state = tenant.state_of(ca)
    if state == CaState.REVOKED:
        raise Conflict("this CA certificate is revoked: it is out of the bundle already", field="ca_id")
    if state == CaState.ACTIVE:
        raise Conflict(
            "the active CA certificate issues the tenant's certificates and cannot be retired: rotate to a new "
            f"key (POST /{tenant_id}/x509/ca/rotate) or re-certify (PUT /{tenant_id}/x509/self-signed) first",
            field="ca_id",
        )
    key = tenant.key_of(ca)
    changed: tuple[str, ...] = ()
    stranded = 0
    if state == CaState.TRUSTED:
        now = datetime.now(UTC)
        stranded = _stranded(tenant, ca, now)
        if stranded and not force:
            raise Conflict(
                f"CA certificate {tenant_id}:{ca.cert_id} still covers {stranded} unexpired, unrevoked client "
                f"certificate{'s' if stranded != 1 else ''}: retired, it leaves them refused at the gateway. Let "
                'them renew onto the active CA first, or send {"force": true}',
                field="force",
            )
        crls: dict[str, bytes] = {}
        if not any(c.in_trust and c.cert_id != ca.cert_id and tenant.key_of(c) == key for c in tenant.cas):
            # The key's last certificate in trust: its secret goes next, so sign the final CRLs of the
            # key's retired certificates while it can.
            retiring = [c for c in tenant.cas if tenant.key_of(c) == key and (c is ca or c.state == CaState.RETIRED)]
            crls = _final_crls(tenant, retiring, now)
        event = audit.entry(
            "ca.retired",
            tenant_id,
            ca.cert_id,
            "retired",
            {"certificates": stranded, "forced": bool(force and stranded), "finalCrls": sorted(crls)},
        )
        tenant = current().tenants.set_ca_states(tenant, {ca.cert_id: CaState.RETIRED}, [event], final_crls=crls)
        _forget(tenant_id)
        changed = (ca.cert_id,)
    scheduled = _release(tenant, key)
    retired = tenant.ca(ca.cert_id)
    assert retired is not None
    return CaChange(tenant, retired, changed, stranded, scheduled)


def revoke(tenant_id: str, ca_id: str, body: dict[str, Any]) -> CaChange:
    """A compromised CA key: every CA certificate over it (this one, and its re-certifications) is
    revoked at once, out of the bundle and the gateway's trust, with all it issued; the key is never
    used again (its secret is scheduled for deletion, no CRL is signed with it, no rotation imports
    it). Idempotent."""
    from chalicelib.ca.crl import parse_reason

    _only(body, ("reason",))
    reason = parse_reason(body.get("reason") or "cACompromise")
    tenant = get_tenant(tenant_id)
    ca = _find(tenant, ca_id)
    key = tenant.key_of(ca)
    affected = [c for c in tenant.cas if tenant.key_of(c) == key and c.state != CaState.REVOKED]
    refused = 0
    if affected:
        now = datetime.now(UTC)
        fingerprint = _fingerprint(ca)
        events = []
        for c in affected:
            covered = current().certificates.count_by_ca(tenant_id, c.cert_id, now)
            refused += covered
            events.append(
                audit.entry(
                    "ca.revoked",
                    tenant_id,
                    c.cert_id,
                    "revoked",
                    {"reason": reason, "was": str(tenant.state_of(c)), "key": fingerprint, "certificates": covered},
                )
            )
        tenant = current().tenants.set_ca_states(tenant, {c.cert_id: CaState.REVOKED for c in affected}, events)
        _forget(tenant_id)
    scheduled = _release(tenant, key)
    revoked = tenant.ca(ca.cert_id)
    assert revoked is not None
    return CaChange(tenant, revoked, tuple(c.cert_id for c in affected), refused, scheduled)


def _stranded(tenant: Tenant, ca: CaCert, now: datetime) -> int:
    """How many client certificates retiring ``ca`` leaves without a CA in trust: a certificate chains to
    any CA certificate with its issuer's name and key, so none while another of ``ca``'s name and key
    stays; else every unexpired, unrevoked one a CA certificate of that name and key issued."""
    subject = _ca_cert(ca).subject
    key = tenant.key_of(ca)
    group = [c for c in tenant.cas if tenant.key_of(c) == key and _ca_cert(c).subject == subject]
    if any(c.in_trust and c.cert_id != ca.cert_id for c in group):
        return 0
    store = current().certificates
    return sum(store.count_by_ca(tenant.tenant_id, c.cert_id, now) for c in group)


def _final_crls(tenant: Tenant, cas: list[CaCert], now: datetime) -> dict[str, bytes]:
    """The last CRL of each CA certificate, signed with its key before the key goes: what it lists now,
    with nextUpdate the CA certificate's own notAfter (no certificate it issued outlives it). One too
    large to store beside its certificate is left out, and the key is then kept (see _release)."""
    from chalicelib.service.revocation import CRL_VALIDITY, sign_crl

    crls: dict[str, bytes] = {}
    for ca in cas:
        until = max(_ca_cert(ca).not_valid_after_utc, now + CRL_VALIDITY)
        der = sign_crl(tenant, ca, now.replace(microsecond=0), next_update=until)
        if len(der) <= MAX_FINAL_CRL:
            crls[ca.cert_id] = der
    return crls


def _release(tenant: Tenant, key: str) -> bool:
    """Schedule the deletion of CA key secret ``key`` once no active or trusted CA certificate is over it
    and each retired one over it has its final CRL stored. Whether it is scheduled (now or before)."""
    from chalicelib.settings import get_settings

    context = current()
    over = [c for c in tenant.cas if tenant.key_of(c) == key]
    if not over or any(c.in_trust for c in over):
        return False
    for c in over:
        if c.state == CaState.RETIRED:
            record = context.certificates.get_certificate(tenant.tenant_id, c.cert_id)
            if record is None or record.final_crl is None:
                return False  # its CRL is signed on demand: the key stays
    days = get_settings().key_recovery_days
    if context.keystore.schedule_deletion(key, days):
        audit.record(
            "key.deletion_scheduled",
            tenant.tenant_id,
            _fingerprint(over[0]),
            "scheduled",
            {"secret": key, "recoveryWindowDays": days},
        )
    return True


def _forget(tenant_id: str) -> None:
    """This container's copies of the tenant and its CRLs (other containers: within their TTLs)."""
    forget_cached(tenant_id)
    current().caches.crls.discard(lambda key: key[0] == tenant_id)


# -- reading ---------------------------------------------------------------------------------------


def ca_bundle(tenant_id: str) -> bytes:
    """The tenant's CA certificates in trust (active and trusted) as one PEM bundle (an NGINX
    ssl_client_certificate file); retired and revoked ones are left out."""
    from chalicelib.ca.pem import der_to_pem

    tenant = cached_tenant(tenant_id)
    trusted = tenant.trusted_cas() if tenant is not None else ()
    if not trusted:
        raise NotFound(f"tenant {tenant_id} has no CA certificate", field="tenant")
    return b"".join(der_to_pem(ca.der) for ca in trusted)


def issuers_of(tenant: Tenant, cert_der: bytes) -> tuple[CaCert, ...]:
    """The tenant's CA certificates a certificate it issued chains to: those with its issuer's name and
    key identifier (several when one key was re-certified under one name)."""
    from chalicelib.ca.issued import issuer_of, subject_of

    issuer = issuer_of(cert_der)
    return tuple(ca for ca in tenant.cas if subject_of(_ca_cert(ca)) == issuer)


def ca_view(tenant: Tenant, ca: CaCert, now: datetime, certificates: int | None) -> dict[str, object]:
    from chalicelib.ca.keys import curve_name

    cert = _ca_cert(ca)
    left = cert.not_valid_after_utc - now
    return {
        "id": f"{tenant.tenant_id}:{ca.cert_id}",
        "state": str(tenant.state_of(ca)),
        "subject": cert.subject.rfc4514_string(),
        "keyFingerprint": _fingerprint(ca),
        "curve": curve_name(cert.public_key()),
        "notBefore": naive_iso(cert.not_valid_before_utc),
        "notAfter": naive_iso(cert.not_valid_after_utc),
        "daysToExpiry": math.floor(left.total_seconds() / 86400),
        "certificates": certificates,
        "stateChangedAt": naive_iso(ca.state_at) if ca.state_at else None,
    }


def tenant_details(tenant: Tenant) -> dict[str, object]:
    """GET /tenants/{tenant}: the configuration and each CA certificate with its state, days to expiry
    and the unexpired, unrevoked client certificates it issued (one index query per CA certificate)."""
    store = current().certificates
    now = datetime.now(UTC)
    shown = tenant_json(tenant)
    shown["cas"] = [ca_view(tenant, ca, now, store.count_by_ca(tenant.tenant_id, ca.cert_id, now)) for ca in tenant.cas]
    return shown


def note_ca_expiry(tenant: Tenant) -> None:
    """The ActiveCaDaysLeft metric of the tenant, at most once per container per hour: emitted from the
    hot paths (enrolment, /get, nginx_authenticate), which run all day for a tenant whose clients
    depend on its CA, so an alarm on it always has data while it matters (docs/operations.md)."""
    from chalicelib import observability

    noted = current().caches.ca_expiry_noted
    if not isinstance(noted.get(tenant.tenant_id), Missing):
        return
    noted.put(tenant.tenant_id, True)
    active = tenant.active_ca_cert()
    if active is None:
        return
    left = _ca_cert(active).not_valid_after_utc - datetime.now(UTC)
    observability.metric(
        "ActiveCaDaysLeft", math.floor(left.total_seconds() / 86400), unit="None", Tenant=tenant.tenant_id
    )


def get_certificate(tenant_id: str, cert_id: str) -> CertificateRecord:
    validate_tenant_id(tenant_id)
    cert_id = validate_cert_id(tenant_id, cert_id)
    record = current().certificates.get_certificate(tenant_id, cert_id)
    if record is None:
        raise NotFound("no such certificate", field="id")
    return record
