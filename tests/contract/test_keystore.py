"""KeyStore contract: a tenant's CA key is created once and read back equal; its other secrets
(put_secret/load_secret) are created once, replaced on purpose, and absent until then."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.errors import SecretAlreadyExists, Unavailable
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


def test_ocsp_responder_secrets_one_per_ca_certificate_replaced_in_place(adapter: Adapter, tenant_id: str) -> None:
    """The delegated OCSP responder of each CA certificate (chalicelib/service/ocsp.py): a replaceable
    secret per CA certificate, apart from each other and from the webhook secret; no other kind."""
    first, second = "ocsp-signer-0123456789abcdef", "ocsp-signer-fedcba9876543210"
    assert adapter.keystore.load_secret(tenant_id, first) is None
    name = adapter.keystore.put_secret(tenant_id, first, b"one", replace=True)
    adapter.keystore.put_secret(tenant_id, second, b"two", replace=True)
    assert adapter.keystore.put_secret(tenant_id, first, b"one, re-issued", replace=True) == name
    adapter.forget()
    assert adapter.keystore.load_secret(tenant_id, first) == b"one, re-issued"
    assert adapter.keystore.load_secret(tenant_id, second) == b"two"
    assert adapter.keystore.load_secret(tenant_id, KIND) is None
    for kind in ("ocsp-signer-", "ocsp-signer-0123456789ABCDEF", "ocsp-signer-0123456789abcdef0", "other"):
        with pytest.raises(ValueError):
            adapter.keystore.put_secret(tenant_id, kind, b"x", replace=True)


# -- keys made by rotations, and deletion ---------------------------------------------------------


def test_a_rotated_key_has_a_secret_of_its_own(adapter: Adapter, tenant_id: str) -> None:
    first = adapter.keystore.secret_name(tenant_id)
    fingerprint = "0123456789abcdef" + "f" * 48
    name = adapter.keystore.secret_name(tenant_id, fingerprint)
    assert name == first + "-0123456789abcdef"
    assert adapter.keystore.secret_name(tenant_id, fingerprint) == name
    assert adapter.keystore.secret_name(tenant_id + "-b", fingerprint) != name
    assert adapter.keystore.secret_name(tenant_id, "fedcba9876543210" + "0" * 48) != name
    original, rotated = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    assert adapter.keystore.create(tenant_id, original) == first
    assert adapter.keystore.create(tenant_id, rotated, name=name) == name
    with pytest.raises(SecretAlreadyExists):
        adapter.keystore.create(tenant_id, ec.generate_private_key(ec.SECP256R1()), name=name)
    adapter.forget()
    assert same_key(adapter.keystore.load(first), original)
    loaded = adapter.keystore.load(name)
    assert same_key(loaded, rotated) and isinstance(loaded.curve, ec.SECP384R1)


def test_a_key_scheduled_for_deletion_cannot_be_loaded_or_made_again(adapter: Adapter, tenant_id: str) -> None:
    first = adapter.keystore.create(tenant_id, ec.generate_private_key(ec.SECP256R1()))
    kept = adapter.keystore.create(
        tenant_id, ec.generate_private_key(ec.SECP256R1()), name=adapter.keystore.secret_name(tenant_id, "ab" * 32)
    )
    assert adapter.keystore.load(first) is not None  # in this container's cache too
    assert adapter.keystore.schedule_deletion(first, 30) is True
    assert adapter.keystore.schedule_deletion(first, 30) is False  # idempotent
    for _ in range(2):  # this container, and another
        with pytest.raises(Unavailable):
            adapter.keystore.load(first)
        adapter.forget()
    with pytest.raises(SecretAlreadyExists):  # the name stays taken while it can be restored
        adapter.keystore.create(tenant_id, ec.generate_private_key(ec.SECP256R1()))
    assert adapter.keystore.load(kept) is not None
    # a secret that never existed: nothing to do
    assert adapter.keystore.schedule_deletion(adapter.keystore.secret_name(tenant_id + "-b"), 7) is False


def test_only_ca_keys_are_scheduled_for_deletion(adapter: Adapter, tenant_id: str) -> None:
    adapter.keystore.put_secret(tenant_id, KIND, b"keep me", replace=False)
    with pytest.raises(ValueError):
        adapter.keystore.schedule_deletion(adapter.keystore.secret_name(tenant_id).replace("ca-key", KIND), 30)
    adapter.forget()
    assert adapter.keystore.load_secret(tenant_id, KIND) == b"keep me"
