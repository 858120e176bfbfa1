"""KeyStore contract: a tenant's CA key is created once and read back equal; its other secrets
(put_secret/load_secret) are created once, replaced on purpose, and absent until then."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.errors import SecretAlreadyExists
from tests.contract.conftest import Adapter

KIND = "webhook-secret"


def same_key(a: ec.EllipticCurvePrivateKey, b: ec.EllipticCurvePrivateKey) -> bool:
    return a.private_numbers() == b.private_numbers()


def test_create_then_load_returns_an_equal_key(adapter: Adapter, tenant_id: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = adapter.keystore.create(tenant_id, key)
    assert name == adapter.keystore.secret_name(tenant_id)
    assert same_key(adapter.keystore.load(name), key)
    adapter.forget()  # as another container reads it
    loaded = adapter.keystore.load(name)
    assert same_key(loaded, key) and isinstance(loaded.curve, ec.SECP256R1)


def test_create_twice_for_one_tenant_raises_and_keeps_the_first(adapter: Adapter, tenant_id: str) -> None:
    first = ec.generate_private_key(ec.SECP256R1())
    name = adapter.keystore.create(tenant_id, first)
    with pytest.raises(SecretAlreadyExists):
        adapter.keystore.create(tenant_id, ec.generate_private_key(ec.SECP256R1()))
    adapter.forget()
    assert same_key(adapter.keystore.load(name), first)


def test_secret_name_is_stable_and_per_tenant(adapter: Adapter, tenant_id: str) -> None:
    name = adapter.keystore.secret_name(tenant_id)
    assert adapter.keystore.secret_name(tenant_id) == name
    assert adapter.keystore.secret_name(tenant_id + "-b") != name
    assert tenant_id in name
    adapter.keystore.create(tenant_id, ec.generate_private_key(ec.SECP256R1()))
    assert adapter.keystore.secret_name(tenant_id) == name


def test_put_secret_then_load_secret(adapter: Adapter, tenant_id: str) -> None:
    assert adapter.keystore.load_secret(tenant_id, KIND) is None
    name = adapter.keystore.put_secret(tenant_id, KIND, b"\x00\x01secret\xff", replace=False)
    assert name != adapter.keystore.secret_name(tenant_id)
    assert adapter.keystore.load_secret(tenant_id, KIND) == b"\x00\x01secret\xff"
    adapter.forget()
    assert adapter.keystore.load_secret(tenant_id, KIND) == b"\x00\x01secret\xff"
    assert adapter.keystore.load_secret(tenant_id + "-b", KIND) is None


def test_put_secret_again_raises_unless_replacing(adapter: Adapter, tenant_id: str) -> None:
    name = adapter.keystore.put_secret(tenant_id, KIND, b"first", replace=False)
    with pytest.raises(SecretAlreadyExists):
        adapter.keystore.put_secret(tenant_id, KIND, b"second", replace=False)
    adapter.forget()
    assert adapter.keystore.load_secret(tenant_id, KIND) == b"first"
    assert adapter.keystore.put_secret(tenant_id, KIND, b"third", replace=True) == name
    assert adapter.keystore.load_secret(tenant_id, KIND) == b"third"
    adapter.forget()
    assert adapter.keystore.load_secret(tenant_id, KIND) == b"third"


def test_replace_creates_a_missing_secret(adapter: Adapter, tenant_id: str) -> None:
    adapter.keystore.put_secret(tenant_id, KIND, b"new", replace=True)
    adapter.forget()
    assert adapter.keystore.load_secret(tenant_id, KIND) == b"new"


def test_a_ca_key_is_never_put_as_a_secret(adapter: Adapter, tenant_id: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = adapter.keystore.create(tenant_id, key)
    with pytest.raises(ValueError):
        adapter.keystore.put_secret(tenant_id, "ca-key", b"x", replace=True)
    adapter.forget()
    assert same_key(adapter.keystore.load(name), key)
