"""The hourly upkeep job (chalicelib/jobs/upkeep.py) on the in-memory stores: its metrics, its failures, its wiring."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509

from tests.conftest import REFERENCE_SPEC, memory_client

TOKEN = "sct_00000000000000cc_upkeep-operator-token-0123456789"


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with memory_client(monkeypatch, TOKEN) as (client, _):
        yield client


def _tenant_with_ca(client: Any, name: str) -> x509.Certificate:
    admin = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert client.http.put(f"/tenants/{name}", headers=admin, body="{}").status_code == 201
    made = client.http.put(f"/{name}/x509/self-signed", headers=admin, body=REFERENCE_SPEC)
    assert made.status_code == 201, made.body
    from chalicelib.context import current

    tenant = current().tenants.get(name)
    active = tenant.active_ca_cert() if tenant else None
    assert active is not None
    return x509.load_der_x509_certificate(active.der)


def _metrics(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def test_emits_each_tenants_ca_days_left_and_counts_no_failures(
    memory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib.jobs import upkeep

    ca = _tenant_with_ca(memory, "acme")
    admin = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert memory.http.put("/tenants/noca", headers=admin, body="{}").status_code == 201
    now = ca.not_valid_after_utc - timedelta(days=59, hours=1)
    capsys.readouterr()

    report = upkeep.run(["acme", "noca", "gone"], now=now)

    assert report.tenants == 2  # "gone" is not a tenant (deleted since the listing): skipped
    assert report.failures == {"ca_expiry": 0, "crl": 0, "ocsp_signers": 0}
    # the OCSP responder of acme's CA, issued by this run: 7 days from this (whole-second) now
    assert report.days_left == {"ca_expiry": 59, "ocsp_signers": 7}
    metrics = _metrics(capsys.readouterr().out)
    days = [(m["Tenant"], m["ActiveCaDaysLeft"]) for m in metrics if "ActiveCaDaysLeft" in m]
    assert days == [("acme", 59)]  # the tenant without a CA has nothing to expire
    (directive,) = next(m for m in metrics if "ActiveCaDaysLeft" in m)["_aws"]["CloudWatchMetrics"]
    assert directive == {
        "Namespace": "SeaCatPKI",
        "Dimensions": [["Stage", "Tenant"]],
        "Metrics": [{"Name": "ActiveCaDaysLeft", "Unit": "None"}],
    }
    # one value per task for the alarms, whatever the number of tenants; a zero failure count every run
    assert [(m["Task"], m["DaysLeft"]) for m in metrics if "DaysLeft" in m] == [("ca_expiry", 59), ("ocsp_signers", 7)]
    assert [m["UpkeepFailures"] for m in metrics if "UpkeepFailures" in m] == [0]
    (failures,) = [m["_aws"]["CloudWatchMetrics"] for m in metrics if "UpkeepFailures" in m]
    assert failures[0]["Dimensions"] == [["Stage"]]


def test_days_left_is_the_fewest_of_every_tenant(
    memory: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.jobs import upkeep

    for name in ("acme", "beta", "gamma"):
        _tenant_with_ca(memory, name)
    left = {"acme": 10.0, "beta": 3.0, "gamma": None}  # a task a tenant has nothing for returns None
    monkeypatch.setitem(upkeep.TENANT_TASKS, "signers", lambda tenant, now: left[tenant.tenant_id])
    capsys.readouterr()
    report = upkeep.run(["acme", "beta", "gamma"], now=datetime.now(UTC))
    assert report.days_left["signers"] == 3.0 and report.failures["signers"] == 0
    metrics = _metrics(capsys.readouterr().out)
    assert {m["Task"]: m["DaysLeft"] for m in metrics if "DaysLeft" in m}["signers"] == 3.0


def test_a_failing_task_is_counted_and_the_other_tenants_still_get_theirs(
    memory: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from chalicelib.context import current
    from chalicelib.jobs import upkeep

    _tenant_with_ca(memory, "acme")
    _tenant_with_ca(memory, "beta")
    broken = current().tenants.get("acme")
    assert broken is not None
    real_load = current().keystore.load

    def load(name: str) -> Any:  # acme's CA key can no longer be read: its CRL cannot be signed
        if name == broken.key_secret:
            raise RuntimeError("AccessDenied")
        return real_load(name)

    monkeypatch.setattr(current().keystore, "load", load)
    capsys.readouterr()
    report = upkeep.run(["acme", "beta"], now=datetime.now(UTC))
    # acme's OCSP responder cannot be issued either (the CA key again)
    assert report.tenants == 2 and report.failures == {"ca_expiry": 0, "crl": 1, "ocsp_signers": 1}
    metrics = _metrics(capsys.readouterr().out)
    assert sorted(m["Tenant"] for m in metrics if "ActiveCaDaysLeft" in m) == ["acme", "beta"]
    assert [m["UpkeepFailures"] for m in metrics if "UpkeepFailures" in m] == [2]
    failed = [r for r in caplog.records if r.name == "seacat.upkeep" and r.getMessage() == "upkeep task failed"]
    assert [(r.task, r.tenant, r.error) for r in failed] == [
        ("crl", "acme", "RuntimeError"),
        ("ocsp_signers", "acme", "RuntimeError"),
    ]  # type: ignore[attr-defined]


def test_the_scheduled_function_is_registered_hourly() -> None:
    from app import app

    (event,) = [e for e in app.event_sources if e.name == "upkeep"]
    assert event.schedule_expression.to_string() == "rate(1 hour)"
    assert event.handler_string == "chalicelib.jobs.upkeep.upkeep"


def test_an_ocsp_module_is_wired_into_the_upkeep() -> None:
    """Once an OCSP module exists (chalicelib/**/ocsp*.py), its delegated signers must be re-issued here:
    register its function as ``TENANT_TASKS["ocsp_signers"]`` in chalicelib/jobs/upkeep.py."""
    import chalicelib
    from chalicelib.jobs import upkeep

    modules = [
        m.name for m in pkgutil.walk_packages(chalicelib.__path__, "chalicelib.") if "ocsp" in m.name.rsplit(".", 1)[-1]
    ]
    if not modules:
        assert "ocsp_signers" not in upkeep.TENANT_TASKS  # nothing to run: the job does not claim it
        return
    assert "ocsp_signers" in upkeep.TENANT_TASKS, f"{modules}: wire the OCSP signer re-issue into the upkeep"
    task = upkeep.TENANT_TASKS["ocsp_signers"]
    assert importlib.import_module(task.__module__).__name__ in modules
