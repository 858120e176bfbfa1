"""The hourly upkeep: per tenant, what no request is sure to do in time.

A Chalice scheduled function (app.py registers ``bp``; `make package` gives it a function of its own,
``seacat-pki-<stage>-upkeep``, run by an EventBridge rule every hour). For each tenant it runs every
task of ``TENANT_TASKS``; a task returns the whole days left on what it looks after for that tenant (the
fewest), or None. The run emits CloudWatch embedded metrics (namespace ``SeaCatPKI``) that the stack's
alarms read (infra/monitoring.yaml, docs/deploy.md):

- ``DaysLeft`` (dimensions Stage, Task): per task, the fewest days any tenant has left. One value per
  task and run, whatever the number of tenants, so each expiry alarm watches one metric.
- ``UpkeepFailures`` (dimension Stage): how many (tenant, task) runs failed, 0 included, so that an
  upkeep that stopped running shows as missing data. Each failure is logged with its task and tenant.

The tasks:

- ``ca_expiry``: the days until the tenant's active CA certificate's notAfter; also emitted per tenant as
  ``ActiveCaDaysLeft`` (dimensions Stage, Tenant), as the hot paths do, for the dashboard to name the tenant.
- ``crl``: signs the active CA certificate's CRL as ``GET /{tenant}/x509/crl`` would (the CA key read
  from its secret, the revoked index queried). CRLs are built on request and valid a day, so none is
  stored to expire; what can go wrong is that one can no longer be signed, and that is what this finds
  before a relying party's copy runs out. No pre-built CRLs exist to refresh.

- ``ocsp_signers``: re-issues the delegated OCSP responder certificate of each CA certificate that has
  fewer than 4 days of its 7 left (chalicelib/service/ocsp.py: ``upkeep_task``), ahead of the 2 days at
  which a request would; returns the fewest days left on a responder of a CA certificate in trust (0 when
  one has none), which the stack's OcspSignerExpiry alarm reads as ``DaysLeft``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalice.app import Blueprint, Rate

from chalicelib.domain import Tenant
from chalicelib.service import ocsp

log = logging.getLogger("seacat.upkeep")

bp = Blueprint(__name__)

# (tenant, now) -> the whole days left on what the task looks after for that tenant (the fewest), or None
TenantTask = Callable[[Tenant, datetime], float | None]


def ca_expiry(tenant: Tenant, now: datetime) -> float | None:
    from chalicelib import observability
    from chalicelib.service.issuing import ca_certificate

    active = tenant.active_ca_cert()
    if active is None:
        return None
    left = ca_certificate(active.cert_id, active.der).not_valid_after_utc - now
    days = math.floor(left.total_seconds() / 86400)
    observability.metric("ActiveCaDaysLeft", days, unit="None", Tenant=tenant.tenant_id)
    return days


def crl(tenant: Tenant, now: datetime) -> float | None:
    from chalicelib.service.revocation import sign_crl

    active = tenant.active_ca_cert()
    if active is not None:
        sign_crl(tenant, active, now.replace(microsecond=0))
    return None


# The tasks run for every tenant, in this order.
TENANT_TASKS: dict[str, TenantTask] = {"ca_expiry": ca_expiry, "crl": crl, "ocsp_signers": ocsp.upkeep_task}


@dataclass
class Report:
    tenants: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # task -> tenants it failed for
    days_left: dict[str, float] = field(default_factory=dict)  # task -> the fewest days any tenant has left


def run(tenant_ids: Iterable[str], now: datetime | None = None) -> Report:
    """Run every task for every tenant of ``tenant_ids``; a failing task is counted, never fatal to the rest."""
    from chalicelib import observability
    from chalicelib.context import current

    report = Report(failures={name: 0 for name in TENANT_TASKS})
    started = time.monotonic()
    for tenant_id in tenant_ids:
        tenant = current().tenants.get(tenant_id, consistent=False)
        if tenant is None:  # deleted between the listing and now
            continue
        report.tenants += 1
        at = now or datetime.now(UTC)
        for name, task in TENANT_TASKS.items():
            try:
                days = task(tenant, at)
            except Exception as exc:  # one tenant's broken key must not hide every other tenant's expiry
                report.failures[name] += 1
                log.error("upkeep task failed", extra={"task": name, "tenant": tenant_id, "error": type(exc).__name__})
                continue
            if days is not None:
                report.days_left[name] = min(days, report.days_left.get(name, days))
    for name, days in report.days_left.items():
        observability.metric("DaysLeft", days, unit="None", Task=name)
    observability.metric("UpkeepFailures", sum(report.failures.values()))
    log.info(
        "upkeep done",
        extra={
            "tenants": report.tenants,
            "tasks": list(TENANT_TASKS),
            "failures": report.failures,
            "days_left": report.days_left,
            "duration_ms": round((time.monotonic() - started) * 1000),
        },
    )
    return report


@bp.schedule(
    Rate(1, unit=Rate.HOURS), name="upkeep", description="SeaCat PKI: CA expiry metrics, CRL check, OCSP responders"
)
def upkeep(event: Any) -> None:
    from chalicelib import observability
    from chalicelib.settings import get_settings
    from chalicelib.store import tenants

    settings = get_settings()
    observability.setup_logging(settings.log_level, settings.stage)
    run(tenants.ids())
