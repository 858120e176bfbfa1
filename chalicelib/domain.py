"""Values that cross layers: frozen dataclasses, never pynamodb models or dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.ca.profiles import Profile

DEFAULT_LIFETIME_DAYS = 365


class CertificateKind(StrEnum):
    CA = "ca"  # a tenant's self-signed CA certificate
    SEACAT = "seacat"  # a SeaCat client certificate
    X509 = "x509"  # a certificate issued from a PKCS#10 CSR under a profile (/x509/sign, EST)


class CaState(StrEnum):
    """Where a tenant's CA certificate stands. Stored: TRUSTED (in the public bundle and the gateway's
    trust), RETIRED or REVOKED (out of both); the one TRUSTED certificate the tenant's ``active_ca``
    names is ACTIVE (it issues), which is never stored, so there is always at most one."""

    ACTIVE = "active"
    TRUSTED = "trusted"
    RETIRED = "retired"
    REVOKED = "revoked"


class RequestKind(StrEnum):
    """What a stored request is: a SeaCat CR or a PKCS#10 CSR (signed under a profile)."""

    CR = "cr"
    CSR = "csr"


class RequestState(StrEnum):
    """A certificate request's outcome; only PENDING ones wait for a decision."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    ISSUED = "issued"
    FAILED = "failed"


@dataclass(frozen=True)
class TenantConfig:
    seacat: bool = True
    approve: str | None = None  # webhook URL
    manual_approval: bool = False
    lifetime_days: int = DEFAULT_LIFETIME_DAYS
    approve_renewals: bool = False  # send renewals through the approval step too
    webhook_timeout: float | None = None  # seconds; None: the service default
    public_base_url: str | None = None  # where CRLs are published (CRL distribution point)
    # SHA-256 (hex) of the credentials the tenant's gateways send to nginx_authenticate, newest first
    # (the previous one stays valid until the next rotation or until it is dropped); empty: none required.
    gateway_credentials: tuple[str, ...] = ()
    # Certificate profiles for PKCS#10 CSRs (chalicelib/ca/profiles.py), in the order they were made,
    # and the one EST uses when its URL names none.
    profiles: tuple[Profile, ...] = ()
    est_profile: str | None = None

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TenantConfig:
        """The stored form (validated when it was written); absent keys take the defaults."""
        timeout = raw.get("webhookTimeout")
        profiles: tuple[Profile, ...] = ()
        if raw.get("profiles"):
            from chalicelib.ca.profiles import Profile  # only when there are some: cold starts

            profiles = tuple(Profile.from_json(p) for p in raw["profiles"])
        return cls(
            seacat=bool(raw.get("seacat", True)),
            approve=raw.get("approve") or None,
            manual_approval=bool(raw.get("manualApproval", False)),
            lifetime_days=int(raw.get("lifetimeDays", DEFAULT_LIFETIME_DAYS)),
            approve_renewals=bool(raw.get("approveRenewals", False)),
            webhook_timeout=float(timeout) if timeout is not None else None,
            public_base_url=raw.get("publicBaseUrl") or None,
            gateway_credentials=tuple(str(h) for h in raw.get("gatewayCredentialSha256") or ()),
            profiles=profiles,
            est_profile=raw.get("estProfile") or None,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "seacat": self.seacat,
            "approve": self.approve,
            "manualApproval": self.manual_approval,
            "lifetimeDays": self.lifetime_days,
            "approveRenewals": self.approve_renewals,
            "webhookTimeout": self.webhook_timeout,
            "publicBaseUrl": self.public_base_url,
            "gatewayCredentialSha256": list(self.gateway_credentials),
            "profiles": [p.to_json() for p in self.profiles],
            "estProfile": self.est_profile,
        }

    def public_json(self) -> dict[str, object]:
        """The configuration as the API shows it: how many gateway credentials are valid, not their hashes."""
        shown = self.to_json()
        del shown["gatewayCredentialSha256"]
        shown["gatewayCredentials"] = len(self.gateway_credentials)
        shown["profiles"] = [p.name for p in self.profiles]  # each in full at /{tenant}/x509/profiles
        return shown


@dataclass(frozen=True)
class CaCert:
    cert_id: str
    der: bytes
    created_at: datetime
    # The secret that holds this certificate's private key; None: the tenant's first key
    # (``Tenant.key_secret``), as every entry stored before keys could be rotated.
    key_secret: str | None = None
    state: CaState = CaState.TRUSTED  # as stored: TRUSTED, RETIRED or REVOKED (see CaState)
    state_at: datetime | None = None  # when it was retired or revoked

    @property
    def in_trust(self) -> bool:
        return self.state == CaState.TRUSTED


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    config: TenantConfig
    key_secret: str
    key_fingerprint: str
    key_imported: bool
    cas: tuple[CaCert, ...]
    active_ca: str | None
    created_at: datetime
    modified_at: datetime
    version: int

    def active_ca_cert(self) -> CaCert | None:
        return next((ca for ca in self.cas if ca.cert_id == self.active_ca and ca.in_trust), None)

    def ca(self, cert_id: str) -> CaCert | None:
        return next((ca for ca in self.cas if ca.cert_id == cert_id), None)

    def state_of(self, ca: CaCert) -> CaState:
        if ca.in_trust and ca.cert_id == self.active_ca:
            return CaState.ACTIVE
        return ca.state

    def key_of(self, ca: CaCert) -> str:
        """The name of the secret holding ``ca``'s private key."""
        return ca.key_secret or self.key_secret

    def issued_urls(self, ca_id: str) -> tuple[str | None, str | None]:
        """The CRL distribution point and OCSP responder a certificate issued under CA certificate
        ``ca_id`` names, under the tenant's publicBaseUrl (none without it). The CRL is that CA
        certificate's own: it keeps covering the certificate after another CA becomes active."""
        base = self.config.public_base_url
        if not base:
            return None, None
        return f"{base}/{self.tenant_id}/x509/crl/{ca_id}", f"{base}/{self.tenant_id}/ocsp"

    def trusted_cas(self) -> tuple[CaCert, ...]:
        """The CA certificates of the public bundle and of the gateway's trust (active and trusted)."""
        return tuple(ca for ca in self.cas if ca.in_trust)


@dataclass(frozen=True)
class CertificateRecord:
    tenant_id: str
    cert_id: str
    kind: CertificateKind
    serial: int
    der: bytes
    not_before: datetime
    not_after: datetime
    created_at: datetime
    modified_at: datetime
    version: int
    identity: str | None = None
    ca_id: str | None = None
    cr_id: str | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    # CA certificates only: the final CRL signed when the CA's key was scheduled for deletion after its
    # retirement (served until it expires, since the key can sign no other).
    final_crl: bytes | None = None


@dataclass(frozen=True)
class IdentityRecord:
    tenant_id: str
    identity: str
    created_at: datetime
    modified_at: datetime
    version: int
    application: str | None = None
    approved: bool = False
    blocked: bool = False
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    # Revocation binds to serial numbers, never to a hash of a certificate's bytes: ECDSA signatures
    # are malleable, so one certificate (one TBS, one serial) has more than one valid DER encoding.
    revoked_serials: frozenset[int] = frozenset()
    cert_id: str | None = None
    cert_serial: int | None = None
    cert_der: bytes | None = None
    cert_not_before: datetime | None = None
    cert_not_after: datetime | None = None
    certificates: int = 0

    def refusal(self, serial: int | None = None) -> str | None:
        """Why this identity may not use certificate ``serial`` (its current one by default), or None."""
        if self.blocked:
            return "identity is blocked"
        if self.revoked_at is not None:
            return "identity is revoked"
        serial = self.cert_serial if serial is None else serial
        if serial is not None and serial in self.revoked_serials:
            return "certificate is revoked"
        return None


@dataclass(frozen=True)
class RequestRecord:
    tenant_id: str
    cr_id: str
    identity: str
    application: str
    der: bytes
    state: RequestState
    created_at: datetime
    modified_at: datetime
    version: int
    attributes: tuple[tuple[str, str], ...] = ()
    created_raw: str | None = None
    valid_to_raw: str | None = None
    reason: str | None = None
    cert_id: str | None = None
    decided_by: str | None = None
    # A CSR: kind CSR, the profile it was asked under; its identity is csr_identity() of its key and
    # its application the profile's name (both shown as such).
    kind: RequestKind = RequestKind.CR
    profile: str | None = None


def new_identity(tenant_id: str, identity: str, application: str | None) -> IdentityRecord:
    now = datetime.now(UTC)
    return IdentityRecord(
        tenant_id=tenant_id, identity=identity, application=application, created_at=now, modified_at=now, version=0
    )


@dataclass(frozen=True)
class StoredToken:
    token_id: str
    token_hash: str
    tenant_id: str | None
    created_at: datetime
    revoked_at: datetime | None = None
    label: str | None = None
    expires_at: datetime | None = None  # None: until revoked

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at is not None and now >= self.expires_at else "active"


@dataclass(frozen=True)
class EnrolmentCredential:
    """An EST enrolment credential (HTTP Basic): a username and the SHA-256 of its password, good for
    ``uses`` enrolments under ``profile`` of ``tenant_id`` until ``expires_at`` or revocation."""

    tenant_id: str
    username: str
    secret_hash: str
    profile: str
    uses: int
    uses_left: int
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None = None
    label: str | None = None
    last_used_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.uses_left > 0 and now < self.expires_at


@dataclass(frozen=True)
class AuditEvent:
    tenant: str | None
    at: datetime
    event: str
    actor: str
    subject: str | None
    outcome: str | None
    details: dict[str, Any] | None
    event_id: str


@dataclass(frozen=True)
class Principal:
    token_id: str
    tenant_id: str | None  # None: operator, reaches every tenant

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None


@dataclass(frozen=True)
class Page:
    items: list[object] = field(default_factory=list)
    next_token: str | None = None
