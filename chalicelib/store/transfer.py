"""Bulk access to a whole tenant, for moving tenants between deployments (embedded/transfer.py).

Not a storage port: the service never reads a tenant whole nor writes a record as it is. Two
adapters implement ``TransferStore``: SQLite (``chalicelib.store.sqlite.transfer``) and DynamoDB
(``chalicelib.store.dynamodb_transfer``). Importing this module imports no AWS library.

A tenant's records are its tenant item, certificates (CA and client, with their revocation),
serial claims, identities (with their revoked serials), certificate requests and, if asked for,
its audit events. ``put`` writes records as they are, versions and times included, each only where
its key is free: a record already there is compared, never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from chalicelib.domain import AuditEvent, CertificateRecord, IdentityRecord, RequestRecord, Tenant


@dataclass(frozen=True)
class SerialClaim:
    """A serial number the tenant used, and the certificate it went to: a serial is never issued twice
    in a tenant (the service claims it in the issuing transaction)."""

    tenant_id: str
    serial: int
    cert_id: str


Record = Tenant | CertificateRecord | SerialClaim | IdentityRecord | RequestRecord | AuditEvent


class Outcome(StrEnum):
    WRITTEN = "written"  # the key was free: the record is there now
    SAME = "same"  # the key was taken by an equal record: nothing written
    DIFFERS = "differs"  # the key was taken by another record: nothing written, the stored one stays


class TransferStore(Protocol):
    def tenant_ids(self) -> list[str]:
        """Every tenant, sorted."""
        ...

    def records(self, tenant_id: str, *, audit: bool) -> Iterator[Record]:
        """The tenant item first (nothing if there is no such tenant), then certificates, serial claims
        (each after its certificate), identities, requests, and with ``audit`` the tenant's audit
        events that have not expired."""
        ...

    def tenant(self, tenant_id: str) -> Tenant | None: ...

    def put(self, records: Sequence[Record]) -> list[Outcome]:
        """Write each record where its key is free; what happened to each, in order."""
        ...
