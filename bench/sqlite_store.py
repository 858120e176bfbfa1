"""The SQLite adapter's hot paths on one thread: an enrolment (one identity read + one store_issued
transaction with its audit event) and nginx_authenticate's identity read.

    python -m bench.sqlite_store [directory]     # default: a temporary directory

The database goes in ``directory`` (its disk is what a commit waits for: synchronous=FULL syncs the
log at every commit). Prints operations per second, median of 3 runs.
"""

from __future__ import annotations

import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chalicelib.domain import CertificateRecord, RequestRecord, new_identity
from chalicelib.store.sqlite import SqliteBackend

TENANT = "bench"
SECONDS = 2.0


def _enrol(backend: SqliteBackend, name: str) -> None:
    """What enrolment does with the store: read the identity, store the certificate."""
    store = backend.certificates
    identity = store.get_identity(TENANT, name) or new_identity(TENANT, name, "bench-app")
    at = datetime.now(UTC)
    cert_id, cr_id = secrets.token_hex(48), secrets.token_hex(48)
    cert = CertificateRecord(
        TENANT, cert_id, "seacat", secrets.randbits(127) + 1, secrets.token_bytes(480),
        at, at + timedelta(days=365), at, at, 1, identity=name, ca_id="ca-1", cr_id=cr_id,
    )  # fmt: skip
    request = RequestRecord(
        TENANT, cr_id, name, "bench-app", secrets.token_bytes(220), "issued", at, at, 0,
        attributes=(("os", "linux"),), cert_id=cert_id,
    )  # fmt: skip
    updated = replace(
        identity,
        cert_id=cert_id,
        cert_serial=cert.serial,
        cert_der=cert.der,
        cert_not_before=cert.not_before,
        cert_not_after=cert.not_after,
        certificates=identity.certificates + 1,
        modified_at=at,
    )
    audit = [backend.audit.item(TENANT, "certificate.issued", "client", subject=cert_id, details={"identity": name})]
    store.store_issued(cert, updated, request, audit)


def _rate(work: Callable[[int], None]) -> float:
    runs = []
    for _ in range(3):
        n, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < SECONDS:
            work(n)
            n += 1
        runs.append(n / elapsed)
    return statistics.median(runs)


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="seacat-bench-"))
    path = directory / f"bench-{secrets.token_hex(4)}.db"
    with SqliteBackend(path) as backend:
        run = secrets.token_hex(3)
        new = _rate(lambda n: _enrol(backend, f"new-{run}-{n}"))
        renew = _rate(lambda n: _enrol(backend, f"new-{run}-{n % 500}"))
        read = _rate(lambda n: backend.certificates.get_identity(TENANT, f"new-{run}-{n % 500}"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    print(f"database in {directory}")
    print(f"enrolment, new identity (get_identity + store_issued): {new:8.0f}/s")
    print(f"renewal, existing identity (get_identity + store_issued): {renew:8.0f}/s")
    print(f"nginx_authenticate's get_identity:                     {read:8.0f}/s")


if __name__ == "__main__":
    main()
