"""TenantStore contract: create, read, update guarded by the version read, add a CA."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from chalicelib.domain import CaCert, CaState, CertificateRecord, Tenant, TenantConfig
from chalicelib.errors import Conflict
from tests.contract.conftest import Adapter, audit_events, cert_record, now

CONFIG = TenantConfig(
    seacat=True,
    approve="https://approve.example/hook",
    manual_approval=True,
    lifetime_days=30,
    approve_renewals=True,
    webhook_timeout=2.5,
    public_base_url="https://pki.example",
    gateway_credentials=("ab" * 32, "cd" * 32),
)


def stored(a: Adapter, tenant_id: str) -> Tenant:
    found = a.tenants.get(tenant_id)
    assert found is not None
    return found


def test_create_then_get(adapter: Adapter, tenant_id: str) -> None:
    before = now()
    created = adapter.tenants.create(tenant_id, CONFIG, f"secret/{tenant_id}", "fp-1", True)
    assert (created.tenant_id, created.config, created.key_secret, created.key_fingerprint) == (
        tenant_id,
        CONFIG,
        f"secret/{tenant_id}",
        "fp-1",
    )
    assert created.key_imported is True
    assert (created.cas, created.active_ca, created.version) == ((), None, 1)
    assert before <= created.created_at == created.modified_at <= now()
    assert adapter.tenants.get(tenant_id) == created
    # An eventually consistent read may lag on DynamoDB (never on moto); it returns the same tenant.
    assert adapter.tenants.get(tenant_id, consistent=False) == created


def test_get_unknown_is_none(adapter: Adapter, tenant_id: str) -> None:
    assert adapter.tenants.get(tenant_id) is None
    assert adapter.tenants.get(tenant_id, consistent=False) is None


def test_create_writes_its_audit_entries(adapter: Adapter, tenant_id: str) -> None:
    entry = adapter.audit.item(tenant_id, "tenant.created", "op", subject=tenant_id, outcome="created")
    adapter.tenants.create(tenant_id, CONFIG, "s", "fp", False, [entry])
    assert [(e.event, e.subject) for e in audit_events(adapter, tenant_id)] == [("tenant.created", tenant_id)]


def test_create_of_an_existing_id_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    first = adapter.tenants.create(tenant_id, CONFIG, "first-secret", "fp-1", False)
    entry = adapter.audit.item(tenant_id, "tenant.created", "op", subject=tenant_id)
    with pytest.raises(Conflict):
        adapter.tenants.create(tenant_id, TenantConfig(), "second-secret", "fp-2", True, [entry])
    assert adapter.tenants.get(tenant_id) == first
    assert audit_events(adapter, tenant_id) == []


def test_update_config_replaces_it_and_moves_the_version(adapter: Adapter, tenant_id: str) -> None:
    created = adapter.tenants.create(tenant_id, CONFIG, "s", "fp", False)
    new = TenantConfig(seacat=False, lifetime_days=7)
    entry = adapter.audit.item(tenant_id, "tenant.updated", "op", details={"changed": {"lifetimeDays": 7}})
    updated = adapter.tenants.update_config(created, new, [entry])
    assert updated.config == new
    assert updated.version == created.version + 1
    assert updated.created_at == created.created_at and updated.modified_at >= created.modified_at
    assert replace(updated, config=CONFIG, version=1, modified_at=created.modified_at) == created
    assert adapter.tenants.get(tenant_id) == updated
    [event] = audit_events(adapter, tenant_id)
    assert (event.event, event.details) == ("tenant.updated", {"changed": {"lifetimeDays": 7}})


def test_profiles_and_the_est_profile_are_kept_with_the_configuration(adapter: Adapter, tenant_id: str) -> None:
    from chalicelib.ca.profiles import parse_profile

    created = adapter.tenants.create(tenant_id, CONFIG, "s", "fp", False)
    routers = parse_profile(
        "routers",
        {
            "keyTypes": ["P-256", "RSA"],
            "lifetimeHours": 48,
            "sans": {"dns": ["*.dev.example.com"], "uri": ["spiffe://example.org/**"]},
            "subject": {"mode": "template", "template": [{"O": "Acme"}, {"CN": "{csr.CN}"}]},
            "approval": "manual",
        },
    )
    config = replace(CONFIG, profiles=(routers, parse_profile("plain", {})), est_profile="routers")
    updated = adapter.tenants.update_config(created, config)
    adapter.forget()
    stored_config = adapter.tenants.get(tenant_id)
    assert stored_config is not None and stored_config.config == config == updated.config
    assert stored_config.config.profile("routers") == routers


def test_update_config_of_a_stale_tenant_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    read = adapter.tenants.create(tenant_id, CONFIG, "s", "fp", False)
    winner = adapter.tenants.update_config(read, TenantConfig(lifetime_days=10))
    entry = adapter.audit.item(tenant_id, "tenant.updated", "op")
    with pytest.raises(Conflict):
        adapter.tenants.update_config(read, TenantConfig(lifetime_days=20), [entry])  # read before the winner wrote
    assert adapter.tenants.get(tenant_id) == winner
    assert audit_events(adapter, tenant_id) == []


def test_update_config_of_an_unknown_tenant_is_a_conflict(adapter: Adapter, tenant_id: str) -> None:
    other = adapter.tenants.create(tenant_id, CONFIG, "s", "fp", False)
    ghost = replace(other, tenant_id=tenant_id + "-x")
    with pytest.raises(Conflict):
        adapter.tenants.update_config(ghost, TenantConfig())
    assert adapter.tenants.get(ghost.tenant_id) is None


def test_add_ca_appends_and_makes_it_active(adapter: Adapter, tenant_id: str) -> None:
    tenant = adapter.tenants.create(tenant_id, CONFIG, "s", "fp", False)
    first = cert_record(tenant_id, kind="ca", at=now() - timedelta(seconds=5))
    adapter.tenants.add_ca(tenant, first, [adapter.audit.item(tenant_id, "ca.created", "op", subject=first.cert_id)])
    tenant = stored(adapter, tenant_id)
    assert tenant.cas == (CaCert(first.cert_id, first.der, first.created_at),)
    assert tenant.active_ca == first.cert_id and tenant.version == 2
    assert tenant.active_ca_cert() == tenant.cas[0]

    second = cert_record(tenant_id, kind="ca")
    adapter.tenants.add_ca(tenant, second)
    tenant = stored(adapter, tenant_id)
    assert [c.cert_id for c in tenant.cas] == [first.cert_id, second.cert_id]
    assert tenant.active_ca == second.cert_id and tenant.version == 3
    assert tenant.modified_at == second.created_at
    # The CA certificate itself is stored whole.
    assert adapter.certificates.get_certificate(tenant_id, first.cert_id) == first
    assert adapter.certificates.get_certificate(tenant_id, second.cert_id) == second
    assert [(e.event, e.subject) for e in audit_events(adapter, tenant_id)] == [("ca.created", first.cert_id)]


def test_add_ca_to_a_stale_tenant_is_a_conflict_and_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    read = adapter.tenants.create(tenant_id, CONFIG, "s", "fp", False)
    winner = adapter.tenants.update_config(read, TenantConfig(lifetime_days=10))
    ca = cert_record(tenant_id, kind="ca")
    with pytest.raises(Conflict):
        adapter.tenants.add_ca(read, ca, [adapter.audit.item(tenant_id, "ca.created", "op")])
    assert adapter.tenants.get(tenant_id) == winner
    assert adapter.certificates.get_certificate(tenant_id, ca.cert_id) is None
    assert audit_events(adapter, tenant_id) == []


def test_add_ca_with_a_certificate_id_in_use_is_a_conflict(adapter: Adapter, tenant_id: str) -> None:
    tenant = adapter.tenants.create(tenant_id, CONFIG, "s", "fp", False)
    ca = cert_record(tenant_id, kind="ca")
    adapter.tenants.add_ca(tenant, ca)
    tenant = stored(adapter, tenant_id)
    again = replace(cert_record(tenant_id, kind="ca"), cert_id=ca.cert_id)
    with pytest.raises(Conflict):
        adapter.tenants.add_ca(tenant, again)
    assert adapter.tenants.get(tenant_id) == tenant
    assert adapter.certificates.get_certificate(tenant_id, ca.cert_id) == ca


def test_tenants_are_apart(adapter: Adapter, tenant_id: str) -> None:
    tenant = adapter.tenants.create(tenant_id, CONFIG, "s", "fp", False)
    adapter.tenants.add_ca(tenant, cert_record(tenant_id, kind="ca"))
    assert adapter.tenants.get(tenant_id + "-b") is None
    other = adapter.tenants.create(tenant_id + "-b", TenantConfig(), "s2", "fp2", False)
    assert (other.cas, other.active_ca, other.config) == ((), None, TenantConfig())


# -- CA lifecycle: each CA certificate's key and state ---------------------------------------------


def test_add_ca_records_the_key_of_each_ca_certificate(adapter: Adapter, tenant_id: str) -> None:
    tenant = adapter.tenants.create(tenant_id, CONFIG, "first-secret", "fp", False)
    first = cert_record(tenant_id, kind="ca", at=now() - timedelta(seconds=5))
    adapter.tenants.add_ca(tenant, first)  # over the tenant's first key
    rotated = cert_record(tenant_id, kind="ca")
    adapter.tenants.add_ca(stored(adapter, tenant_id), rotated, key_secret="rotated-secret")
    tenant = stored(adapter, tenant_id)
    assert tenant.cas == (
        CaCert(first.cert_id, first.der, first.created_at, None, CaState.TRUSTED, None),
        CaCert(rotated.cert_id, rotated.der, rotated.created_at, "rotated-secret", CaState.TRUSTED, None),
    )
    assert [tenant.key_of(ca) for ca in tenant.cas] == ["first-secret", "rotated-secret"]
    assert [tenant.state_of(ca) for ca in tenant.cas] == [CaState.TRUSTED, CaState.ACTIVE]
    assert tenant.active_ca_cert() == tenant.cas[1] and tenant.trusted_cas() == tenant.cas


def _two_cas(a: Adapter, tenant_id: str) -> tuple[Tenant, CertificateRecord, CertificateRecord]:
    tenant = a.tenants.create(tenant_id, CONFIG, "first-secret", "fp", False)
    old = cert_record(tenant_id, kind="ca", at=now() - timedelta(seconds=5))
    a.tenants.add_ca(tenant, old)
    new = cert_record(tenant_id, kind="ca")
    a.tenants.add_ca(stored(a, tenant_id), new, key_secret="rotated-secret")
    return stored(a, tenant_id), old, new


def test_set_ca_states_retires_with_its_final_crl_and_audit(adapter: Adapter, tenant_id: str) -> None:
    tenant, old, new = _two_cas(adapter, tenant_id)
    before = now()
    entry = adapter.audit.item(tenant_id, "ca.retired", "op", subject=old.cert_id, outcome="retired")
    fresh = adapter.tenants.set_ca_states(
        tenant, {old.cert_id: CaState.RETIRED}, [entry], final_crls={old.cert_id: b"final crl"}
    )
    assert fresh == stored(adapter, tenant_id)
    assert fresh.version == tenant.version + 1 and fresh.modified_at >= tenant.modified_at
    retired, active = fresh.cas
    assert (retired.cert_id, retired.state, retired.key_secret) == (old.cert_id, CaState.RETIRED, None)
    assert retired.state_at is not None and before - timedelta(seconds=1) <= retired.state_at <= now()
    assert active == tenant.cas[1] and fresh.active_ca == new.cert_id
    assert fresh.trusted_cas() == (active,) and fresh.state_of(retired) == CaState.RETIRED
    with_crl = adapter.certificates.get_certificate(tenant_id, old.cert_id)
    assert with_crl is not None and with_crl.modified_at >= old.modified_at
    assert replace(with_crl, modified_at=old.modified_at) == replace(old, final_crl=b"final crl")
    assert adapter.certificates.get_certificate(tenant_id, new.cert_id) == new
    assert [(e.event, e.subject) for e in audit_events(adapter, tenant_id, event="ca.retired")] == [
        ("ca.retired", old.cert_id)
    ]


def test_set_ca_states_revoking_the_active_one_leaves_none(adapter: Adapter, tenant_id: str) -> None:
    tenant, old, new = _two_cas(adapter, tenant_id)
    fresh = adapter.tenants.set_ca_states(tenant, {new.cert_id: CaState.REVOKED, old.cert_id: CaState.REVOKED})
    assert fresh.active_ca is None and fresh.active_ca_cert() is None and fresh.trusted_cas() == ()
    assert [ca.state for ca in fresh.cas] == [CaState.REVOKED, CaState.REVOKED]
    assert [ca.key_secret for ca in fresh.cas] == [None, "rotated-secret"]
    assert fresh == stored(adapter, tenant_id)


def test_set_ca_states_of_a_stale_tenant_or_an_unknown_ca_writes_nothing(adapter: Adapter, tenant_id: str) -> None:
    tenant, old, _ = _two_cas(adapter, tenant_id)
    winner = adapter.tenants.update_config(tenant, TenantConfig(lifetime_days=40))
    entry = adapter.audit.item(tenant_id, "ca.retired", "op", subject=old.cert_id)
    with pytest.raises(Conflict):  # read before the winner wrote
        adapter.tenants.set_ca_states(tenant, {old.cert_id: CaState.RETIRED}, [entry], final_crls={old.cert_id: b"x"})
    with pytest.raises(Conflict):  # no such CA certificate
        adapter.tenants.set_ca_states(winner, {"f" * 96: CaState.RETIRED}, [entry])
    assert adapter.tenants.get(tenant_id) == winner
    assert adapter.certificates.get_certificate(tenant_id, old.cert_id) == old
    assert audit_events(adapter, tenant_id, event="ca.retired") == []


def test_ids_lists_every_tenant_sorted(adapter: Adapter, tenant_id: str) -> None:
    second, first = f"{tenant_id}-b", f"{tenant_id}-a"
    assert not {second, first, tenant_id} & set(adapter.tenants.ids())
    for name in (second, tenant_id, first):
        adapter.tenants.create(name, CONFIG, f"secret/{name}", "fp", False)
    listed = adapter.tenants.ids()
    assert listed == sorted(listed)
    assert [t for t in listed if t.startswith(tenant_id)] == [tenant_id, first, second]
