"""Tenant onboarding, configuration and CA certificates."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.cache import Missing
from chalicelib.context import current
from chalicelib.domain import DEFAULT_LIFETIME_DAYS, CertificateRecord, Tenant, TenantConfig
from chalicelib.errors import Conflict, InvalidInput, NotFound, SecretAlreadyExists
from chalicelib.service import audit

TENANT_RE = re.compile(r"^[a-zA-Z0-9_-]{2,64}$")
CERT_ID_RE = re.compile(r"^[0-9a-f]{96}$")
# A tenant's CA certificates live on its one DynamoDB item (at most 400 KB): bound their number
# and size so the item can never fill up (32 x 8 KiB, with room for the rest).
MAX_CA_CERTIFICATES = 32
MAX_CA_DER = 8 * 1024
MIN_LIFETIME_DAYS = 32  # SeaCat clients renew 30 days before expiry: anything shorter loops forever
MAX_LIFETIME_DAYS = 3650

_CONFIG_KEYS = {
    "seacat",
    "approve",
    "manualApproval",
    "lifetimeDays",
    "approveRenewals",
    "webhookTimeout",
    "publicBaseUrl",
}


def validate_tenant_id(tenant_id: str) -> str:
    if not TENANT_RE.fullmatch(tenant_id or ""):
        raise InvalidInput("tenant ids are 2 to 64 characters of letters, digits, '_' and '-'", field="tenant")
    return tenant_id


def validate_cert_id(tenant_id: str, cert_id: str, field: str = "id") -> str:
    """Accept the 96-hex id, or the ``TENANT:<hex>`` form the reference configuration uses
    (also with its colon percent-encoded, as some clients send a path segment)."""
    if "%3a" in cert_id.lower():
        cert_id = cert_id.replace("%3A", ":").replace("%3a", ":")
    if ":" in cert_id:
        prefix, _, cert_id = cert_id.partition(":")
        if prefix != tenant_id:
            raise NotFound("no such certificate", field=field)
    cert_id = cert_id.lower()
    if not CERT_ID_RE.fullmatch(cert_id):
        raise InvalidInput(
            "a certificate id is the 96 hex digits of the SHA-384 of its DER, alone or as TENANT:<id>", field=field
        )
    return cert_id


def _url(value: object, field: str, *, base: bool = False) -> str | None:
    """An http(s) URL of printable ASCII (an internationalised host in its IDNA "xn--" form);
    ``base``: also no query or fragment, since paths are appended to it."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidInput("must be an http(s) URL or null", field=field)
    if not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidInput(
            "must be printable ASCII without spaces (percent-encode the path, use the IDNA form of the host)",
            field=field,
        )
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInput("must be an http(s) URL or null", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("must be an http(s) URL or null", field=field)
    if base and (parts.query or parts.fragment):
        raise InvalidInput("must have no query or fragment: paths are appended to it", field=field)
    return value


def _approve_url(value: object) -> str | None:
    """The approve webhook: outside the local stage, https on a public host (webhook.url_refusal;
    checked again at each call)."""
    from chalicelib.service import webhook

    url = _url(value, "approve")
    refusal = webhook.url_refusal(url) if url is not None else None
    if refusal == webhook.NOT_HTTPS:
        raise InvalidInput("must be an https URL: the webhook receives every CR and decides its issue", field="approve")
    if refusal is not None:
        raise InvalidInput("must not name a loopback, private, link-local or other non-public address", field="approve")
    return url


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("must be true or false", field=field)
    return value


def merge_config(current: TenantConfig, body: dict[str, Any]) -> TenantConfig:
    """Apply the configuration keys given in ``body`` to ``current``; other keys stay."""
    config = current
    if "seacat" in body:
        config = replace(config, seacat=_bool(body["seacat"], "seacat"))
    if "approve" in body:
        config = replace(config, approve=_approve_url(body["approve"]))
    if "manualApproval" in body:
        config = replace(config, manual_approval=_bool(body["manualApproval"], "manualApproval"))
    if "approveRenewals" in body:
        config = replace(config, approve_renewals=_bool(body["approveRenewals"], "approveRenewals"))
    if "lifetimeDays" in body:
        days = body["lifetimeDays"]
        if days is None:
            days = DEFAULT_LIFETIME_DAYS
        if not isinstance(days, int) or isinstance(days, bool):
            raise InvalidInput("must be a whole number of days", field="lifetimeDays")
        if days < MIN_LIFETIME_DAYS or days > MAX_LIFETIME_DAYS:
            raise InvalidInput(
                f"must be between {MIN_LIFETIME_DAYS} and {MAX_LIFETIME_DAYS} days: SeaCat clients renew "
                "30 days before expiry, so a lifetime of 31 days or less makes them re-enrol endlessly",
                field="lifetimeDays",
            )
        config = replace(config, lifetime_days=days)
    if "webhookTimeout" in body:
        timeout = body["webhookTimeout"]
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0.1 <= timeout <= 25
        ):
            raise InvalidInput("must be a number of seconds between 0.1 and 25, or null", field="webhookTimeout")
        config = replace(config, webhook_timeout=float(timeout) if timeout is not None else None)
    if "publicBaseUrl" in body:
        base = _url(body["publicBaseUrl"], "publicBaseUrl", base=True)
        config = replace(config, public_base_url=base.rstrip("/") if base else None)
    return config


def put_tenant(tenant_id: str, body: dict[str, Any]) -> tuple[Tenant, bool]:
    """Create a tenant (generating or importing its CA key) or merge its configuration.

    Idempotent: the same PUT twice leaves the same state. Returns (tenant, created).
    """
    from chalicelib.ca import keys

    keystore = current().keystore
    store = current().tenants

    validate_tenant_id(tenant_id)
    unknown = sorted(set(body) - _CONFIG_KEYS - {"privateKey"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}", field=unknown[0])
    imported = keys.load_ca_private_key_pem(body["privateKey"]) if "privateKey" in body else None
    config_body = {k: v for k, v in body.items() if k != "privateKey"}

    existing = store.get(tenant_id)
    if existing is None:
        config = merge_config(TenantConfig(), config_body)
        key = imported or keys.generate_ca_key()
        try:
            secret = keystore.create(tenant_id, key)
        except SecretAlreadyExists:
            # A secret without a tenant item: an interrupted earlier create, or a concurrent one.
            secret = keystore.secret_name(tenant_id)
            stored = keystore.load(secret)
            if imported is not None and keys.public_key_fingerprint(stored.public_key()) != keys.public_key_fingerprint(
                imported.public_key()
            ):
                raise Conflict("a different CA key is already stored for this tenant", field="privateKey") from None
            key = stored
        fingerprint = keys.public_key_fingerprint(key.public_key())
        try:
            events = [
                audit.entry("tenant.created", tenant_id, tenant_id, "created", {"config": config.public_json()}),
                audit.entry(
                    "key.imported" if imported is not None else "key.generated",
                    tenant_id,
                    fingerprint,
                    "stored",
                    {"secret": secret},
                ),
            ]
            return store.create(tenant_id, config, secret, fingerprint, imported is not None, events), True
        except Conflict:
            existing = store.get(tenant_id)
            if existing is None:
                raise
    if imported is not None and keys.public_key_fingerprint(imported.public_key()) != existing.key_fingerprint:
        raise Conflict("the tenant already has a different CA key; keys are never replaced", field="privateKey")
    config = merge_config(existing.config, config_body)
    if config == existing.config:
        return existing, False
    changed = {k: v for k, v in config.public_json().items() if existing.config.public_json().get(k) != v}
    event = audit.entry("tenant.updated", tenant_id, tenant_id, "updated", {"changed": changed})
    return store.update_config(existing, config, [event]), False


def get_tenant(tenant_id: str) -> Tenant:
    store = current().tenants

    validate_tenant_id(tenant_id)
    tenant = store.get(tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}", field="tenant")
    return tenant


def cached_tenant(tenant_id: str) -> Tenant | None:
    """The tenant as hot paths (enrol, /get, the CA bundle, nginx_authenticate) read it: through the
    context's tenant caches, so configuration changes take effect within SEACAT_TENANT_CACHE_SECONDS.
    The id comes from the URL: "no such tenant" answers have a cache of their own, so a flood of
    invented ids only pushes out other invented ids, never a tenant that exists."""
    context = current()
    caches = context.caches
    if not TENANT_RE.fullmatch(tenant_id or ""):
        return None
    hit = caches.tenants.get(tenant_id)
    if not isinstance(hit, Missing):
        return hit
    if not isinstance(caches.missing_tenants.get(tenant_id), Missing):
        return None
    tenant = context.tenants.get(tenant_id, consistent=False)
    if tenant is None:
        caches.tenants.pop(tenant_id)
        caches.missing_tenants.put(tenant_id, True)
    else:
        caches.missing_tenants.pop(tenant_id)
        caches.tenants.put(tenant_id, tenant)
    return tenant


def forget_cached(tenant_id: str | None = None) -> None:
    caches = current().caches
    if tenant_id is None:
        caches.tenants.clear()
        caches.missing_tenants.clear()
    else:
        caches.tenants.pop(tenant_id)
        caches.missing_tenants.pop(tenant_id)


def tenant_json(tenant: Tenant) -> dict[str, object]:
    return {
        "tenant": tenant.tenant_id,
        "config": tenant.config.public_json(),
        "keyFingerprint": tenant.key_fingerprint,
        "keyImported": tenant.key_imported,
        "activeCa": f"{tenant.tenant_id}:{tenant.active_ca}" if tenant.active_ca else None,
        "caCertificates": [f"{tenant.tenant_id}:{ca.cert_id}" for ca in tenant.cas],
        "_c": naive_iso(tenant.created_at),
        "_m": naive_iso(tenant.modified_at),
        "_v": tenant.version,
    }


def naive_iso(dt: datetime) -> str:
    """The reference documents' timestamp form: naive UTC ISO-8601 with microseconds."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def create_self_signed(tenant_id: str, body: object) -> CertificateRecord:
    from cryptography.hazmat.primitives.serialization import Encoding

    from chalicelib.ca import builder, spec

    keystore = current().keystore
    store = current().tenants

    tenant = get_tenant(tenant_id)
    if len(tenant.cas) >= MAX_CA_CERTIFICATES:
        raise Conflict(f"a tenant keeps at most {MAX_CA_CERTIFICATES} CA certificates", field="tenant")
    now = datetime.now(UTC)
    parsed = spec.parse_certificate_spec(body, now=now)
    _check_issuing_ca(parsed, now)
    key = keystore.load(tenant.key_secret)
    try:
        cert = builder.build_self_signed(parsed, key)
    except ValueError as exc:  # what the spec parser let through but X.509 cannot encode
        raise InvalidInput(f"the certificate cannot be built: {exc}", field="extensions") from None
    der = cert.public_bytes(Encoding.DER)
    if len(der) > MAX_CA_DER:
        raise InvalidInput(f"the CA certificate would be {len(der)} bytes; at most {MAX_CA_DER}", field="body")
    record = CertificateRecord(
        tenant_id=tenant_id,
        cert_id=builder.certificate_id(der),
        kind="ca",
        serial=cert.serial_number,
        der=der,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        created_at=now,
        modified_at=now,
        version=1,
    )
    event = audit.entry(
        "ca.created",
        tenant_id,
        record.cert_id,
        "active",
        {
            "subject": cert.subject.rfc4514_string(),
            "serial": format(record.serial, "x"),
            "notAfter": str(record.not_after),
        },
    )
    store.add_ca(tenant, record, [event])
    forget_cached(tenant_id)
    return record


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


def ca_bundle(tenant_id: str) -> bytes:
    """Every CA certificate of the tenant as one PEM bundle (an NGINX ssl_client_certificate file)."""
    from chalicelib.ca.pem import der_to_pem

    tenant = cached_tenant(tenant_id)
    if tenant is None or not tenant.cas:
        raise NotFound(f"tenant {tenant_id} has no CA certificate", field="tenant")
    return b"".join(der_to_pem(ca.der) for ca in tenant.cas)


def get_certificate(tenant_id: str, cert_id: str) -> CertificateRecord:

    validate_tenant_id(tenant_id)
    cert_id = validate_cert_id(tenant_id, cert_id)
    record = current().certificates.get_certificate(tenant_id, cert_id)
    if record is None:
        raise NotFound("no such certificate", field="id")
    return record
