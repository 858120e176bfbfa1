"""pynamodb models: the only place that knows DynamoDB item shapes.

Table names, region and endpoint are bound at first use from Settings (``bind``), never at import.
The key schema mirrors infra/resources.yaml; tests/integration/test_infra.py keeps the two equal.
See docs/data-model.md for why the keys look the way they do.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from chalicelib.settings import Settings


class CaEntry(MapAttribute[str, Any]):
    """A CA certificate of the tenant, kept on the tenant item so one read serves the CA bundle."""

    cert_id = UnicodeAttribute()
    der = BinaryAttribute(legacy_encoding=False)
    created_at = UTCDateTimeAttribute()
    # Absent on entries written before CA keys could be rotated: the tenant's key_secret, state trusted.
    key_secret = UnicodeAttribute(null=True)
    state = UnicodeAttribute(null=True)  # trusted | retired | revoked (the active one is the tenant's active_ca)
    state_at = UTCDateTimeAttribute(null=True)


class TenantModel(Model):
    class Meta:
        table_name = "unbound-tenants"

    tenant_id = UnicodeAttribute(hash_key=True)
    config = JSONAttribute()
    key_secret = UnicodeAttribute()
    key_fingerprint = UnicodeAttribute()
    key_imported = BooleanAttribute(default=False)
    cas = ListAttribute(of=CaEntry, default=list)
    active_ca = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    modified_at = UTCDateTimeAttribute()
    version = VersionAttribute()


class CredentialIndex(GlobalSecondaryIndex["TokenModel"]):
    """Sparse: EST enrolment credentials carry credential_key (their tenant), tenant admin tokens
    ``admin:<tenant>``: a tenant's list of each."""

    class Meta:
        index_name = "credential-index"
        projection = AllProjection()

    credential_key = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TokenModel(Model):
    """Admin tokens (token_id: 16 hex, or ``operator``) and EST enrolment credentials (token_id: the
    username, ``estc_...``; kind ``est``): both a secret's SHA-256 under an id, in one table."""

    class Meta:
        table_name = "unbound-tokens"

    token_id = UnicodeAttribute(hash_key=True)
    token_hash = UnicodeAttribute()
    tenant_id = UnicodeAttribute(null=True)  # None: an operator token
    label = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    revoked_at = UTCDateTimeAttribute(null=True)
    # EST enrolment credentials only (absent on admin tokens):
    kind = UnicodeAttribute(null=True)  # "est"
    credential_key = UnicodeAttribute(null=True)  # the tenant id (credential-index)
    profile = UnicodeAttribute(null=True)
    uses = NumberAttribute(null=True)
    uses_left = NumberAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    last_used_at = UTCDateTimeAttribute(null=True)
    by_credential = CredentialIndex()


class IdentityIndex(GlobalSecondaryIndex["CertificateModel"]):
    class Meta:
        index_name = "identity-index"
        projection = AllProjection()

    identity_key = UnicodeAttribute(hash_key=True)
    issued_at = UnicodeAttribute(range_key=True)


class RevokedIndex(GlobalSecondaryIndex["CertificateModel"]):
    """Sparse: only revoked certificates carry revoked_key, so the CRL reads just them."""

    class Meta:
        index_name = "revoked-index"
        projection = IncludeProjection(["revoked_at", "revocation_reason", "not_after", "ca_id"])

    revoked_key = UnicodeAttribute(hash_key=True)
    serial = UnicodeAttribute(range_key=True)


class CaIndex(GlobalSecondaryIndex["CertificateModel"]):
    """Client certificates by issuing CA certificate and expiry: how many a CA still covers. Projects only
    what that count filters on; ca_id is a hash of the CA's DER, so the tenant is checked as well."""

    class Meta:
        index_name = "ca-index"
        projection = IncludeProjection(["tenant_id", "revoked_at"])

    ca_id = UnicodeAttribute(hash_key=True)
    not_after = UTCDateTimeAttribute(range_key=True)


class CertificateModel(Model):
    """Certificates (pk ``{tenant}#{cert_id}``) and serial claims (pk ``{tenant}#serial#{hex}``).

    Both live in one table so one transaction can claim the serial and store the certificate.
    """

    class Meta:
        table_name = "unbound-certificates"

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # "ca" | "seacat" | "serial"
    tenant_id = UnicodeAttribute()
    cert_id = UnicodeAttribute(null=True)
    serial = UnicodeAttribute(null=True)  # lowercase hex
    der = BinaryAttribute(null=True, legacy_encoding=False)
    identity = UnicodeAttribute(null=True)
    identity_key = UnicodeAttribute(null=True)
    issued_at = UnicodeAttribute(null=True)  # ISO-8601, sorts by time
    not_before = UTCDateTimeAttribute(null=True)
    not_after = UTCDateTimeAttribute(null=True)
    ca_id = UnicodeAttribute(null=True)
    cr_id = UnicodeAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)
    revocation_reason = UnicodeAttribute(null=True)
    revoked_key = UnicodeAttribute(null=True)  # the tenant id, set only once revoked
    final_crl = BinaryAttribute(null=True, legacy_encoding=False)  # CA certificates: signed as their key went
    created_at = UTCDateTimeAttribute()
    modified_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)
    by_identity = IdentityIndex()
    by_revoked = RevokedIndex()
    by_ca = CaIndex()


class IdentityModel(Model):
    """One item per SeaCat identity: its status and its current certificate (pk ``{tenant}#{identity}``).

    Holding the current certificate here lets enrol, renewal and /get decide with one read.
    """

    class Meta:
        table_name = "unbound-identities"

    pk = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute()
    identity = UnicodeAttribute()
    application = UnicodeAttribute(null=True)
    approved = BooleanAttribute(default=False)
    blocked = BooleanAttribute(default=False)
    revoked_at = UTCDateTimeAttribute(null=True)
    revocation_reason = UnicodeAttribute(null=True)
    revoked_serials = UnicodeSetAttribute(null=True)  # hex serials of this identity's revoked certificates
    revoked_certs = UnicodeSetAttribute(null=True)  # before revoked_serials: certificate ids (read only)
    cert_id = UnicodeAttribute(null=True)
    cert_serial = UnicodeAttribute(null=True)  # hex serial of the current certificate
    cert_der = BinaryAttribute(null=True, legacy_encoding=False)
    cert_not_before = UTCDateTimeAttribute(null=True)
    cert_not_after = UTCDateTimeAttribute(null=True)
    certificates = NumberAttribute(default=0)
    created_at = UTCDateTimeAttribute()
    modified_at = UTCDateTimeAttribute()
    version = VersionAttribute()


class PendingIndex(GlobalSecondaryIndex["RequestModel"]):
    class Meta:
        index_name = "pending-index"
        projection = AllProjection()

    pending_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RequestModel(Model):
    """SeaCat CRs and PKCS#10 CSRs (pk ``{tenant}#{request id}``), with the outcome of each."""

    class Meta:
        table_name = "unbound-requests"

    pk = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute()
    cr_id = UnicodeAttribute()
    identity = UnicodeAttribute()
    application = UnicodeAttribute()
    attributes = JSONAttribute(default=list)
    created_raw = UnicodeAttribute(null=True)
    valid_to_raw = UnicodeAttribute(null=True)
    der = BinaryAttribute(legacy_encoding=False)
    state = UnicodeAttribute()  # pending | approved | rejected | issued | failed
    reason = UnicodeAttribute(null=True)
    cert_id = UnicodeAttribute(null=True)
    pending_key = UnicodeAttribute(null=True)  # set only while pending (sparse index)
    created_at = UnicodeAttribute()
    modified_at = UnicodeAttribute()
    decided_by = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)  # "csr" for a PKCS#10 CSR; absent: a SeaCat CR
    profile = UnicodeAttribute(null=True)  # a CSR's profile
    version = NumberAttribute(default=1)  # guarded by explicit state conditions, not optimistic locking
    by_pending = PendingIndex()


class AuditModel(Model):
    """Security-relevant events (pk ``{tenant}#{shard}``, sk ``{ISO time}#{event id}``).

    Eight shards per tenant keep a busy tenant's events off one hot partition key; a read of a
    time range queries each shard once (a range condition on sk) and merges them.
    """

    class Meta:
        table_name = "unbound-audit"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tenant_id = UnicodeAttribute(null=True)  # None: an operator-level event (token created, ...)
    event = UnicodeAttribute()
    actor = UnicodeAttribute()  # token id, "client" (SeaCat enrolment) or "gateway"
    subject = UnicodeAttribute(null=True)  # identity, certificate id, CR id or token id
    outcome = UnicodeAttribute(null=True)
    details = JSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)


MODELS: dict[str, type[Model]] = {
    "tenants": TenantModel,
    "tokens": TokenModel,
    "certificates": CertificateModel,
    "identities": IdentityModel,
    "requests": RequestModel,
    "audit": AuditModel,
}

AWS_CONNECT_TIMEOUT = 2
AWS_READ_TIMEOUT = 5
AWS_ATTEMPTS = 2
# pynamodb shares one botocore client between threads. A Lambda container serves one request at a
# time, but `chalice local` serves each on a thread of its own: with botocore's default pool of 10,
# connections beyond it were dropped after each call (and logged as "Connection pool is full").
AWS_POOL_CONNECTIONS = 32

_bound: Settings | None = None


def bind(settings: Settings) -> None:
    """Point every model at its stage's table; cheap and idempotent."""
    global _bound
    if _bound == settings:
        return
    for name, model in MODELS.items():
        meta: Any = model.Meta
        meta.table_name = settings.table(name)
        meta.region = settings.region
        meta.host = settings.aws_endpoint_url
        # Bounded so a hung call ends well inside API Gateway's 29 s (pynamodb's default: 15 s + 30 s, 3 tries).
        meta.connect_timeout_seconds = AWS_CONNECT_TIMEOUT
        meta.read_timeout_seconds = AWS_READ_TIMEOUT
        meta.max_retry_attempts = AWS_ATTEMPTS
        meta.max_pool_connections = AWS_POOL_CONNECTIONS
        # A connection is cached per model class; drop it so the new binding takes effect.
        model._connection = None
    _bound = settings


def unbind() -> None:
    """Forget the binding and the models' connections (the next ``bind`` sets them up anew)."""
    global _bound
    for model in MODELS.values():
        model._connection = None
    _bound = None
