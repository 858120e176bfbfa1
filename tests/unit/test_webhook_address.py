"""The approve webhook's egress rules, as pure functions: which addresses are public, which URLs a
stage calls, and the signature a receiver checks."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest

from chalicelib.service import webhook

# (address, public?, why)
ADDRESSES = [
    # public: a webhook may be there
    ("8.8.8.8", True, "public IPv4"),
    ("93.184.216.34", True, "public IPv4"),
    ("2606:4700::1111", True, "public IPv6"),
    ("2001:4860:4860::8888", True, "public IPv6 in 2001::/16, outside the special 2001::/23"),
    ("64:ff9b::8.8.8.8", True, "NAT64 of a public IPv4 address: the translator reaches 8.8.8.8"),
    ("::ffff:8.8.8.8", True, "IPv4-mapped public address: the socket connects to 8.8.8.8"),
    ("2002:808:808::1", True, "6to4 of the public 8.8.8.8"),
    # IPv4 that is not public
    ("127.0.0.1", False, "loopback"),
    ("10.0.0.1", False, "private"),
    ("172.16.0.1", False, "private"),
    ("192.168.1.1", False, "private"),
    ("169.254.169.254", False, "link-local: the instance metadata service"),
    ("100.64.0.1", False, "shared address space (carrier-grade NAT)"),
    ("0.0.0.0", False, "unspecified"),
    ("192.0.2.1", False, "documentation"),
    ("224.0.0.1", False, "multicast (is_global passes it on 3.11)"),
    ("255.255.255.255", False, "broadcast"),
    ("240.0.0.1", False, "reserved"),
    # IPv6 that is not public
    ("::1", False, "loopback"),
    ("::", False, "unspecified"),
    ("fd00::1", False, "unique-local"),
    ("fe80::1", False, "link-local"),
    ("fec0::1", False, "site-local (is_global passes it on 3.11)"),
    ("ff0e::1", False, "multicast (is_global passes it on 3.11)"),
    ("2001:db8::1", False, "documentation"),
    ("3fff::1", False, "documentation (RFC 9637)"),
    ("100::1", False, "discard-only"),
    # IPv6 that embeds a non-public IPv4 address
    ("64:ff9b::10.0.0.1", False, "NAT64 of a private address (is_global passes it)"),
    ("64:ff9b::7f00:1", False, "NAT64 of 127.0.0.1 (is_global passes it)"),
    ("64:ff9b::a9fe:a9fe", False, "NAT64 of 169.254.169.254"),
    ("64:ff9b:1::8.8.8.8", False, "local-use NAT64 prefix: the operator's own translator"),
    ("64:ff9b:1::a00:1", False, "local-use NAT64 prefix"),
    ("2002:c0a8:0101::1", False, "6to4 of 192.168.1.1 (is_global passes it)"),
    ("2002:7f00:1::1", False, "6to4 of 127.0.0.1"),
    ("::ffff:127.0.0.1", False, "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", False, "IPv4-mapped private"),
    ("::ffff:169.254.169.254", False, "IPv4-mapped link-local"),
    ("::127.0.0.1", False, "IPv4-compatible (deprecated) loopback (is_global passes it)"),
    ("::8.8.8.8", False, "IPv4-compatible: deprecated, never a webhook"),
    ("2001:0000:4136:e378:8000:63bf:3fff:fdd2", False, "Teredo"),
    ("2001:0:5ef5:79fd:0:59d:a0e5:ba1", False, "Teredo"),
]


@pytest.mark.parametrize("text, public, why", ADDRESSES, ids=[a for a, _, _ in ADDRESSES])
def test_is_public_address(text: str, public: bool, why: str) -> None:
    assert webhook.is_public_address(ipaddress.ip_address(text)) is public, why


@pytest.mark.parametrize(
    "url, allow_private, refusal",
    [
        ("https://hook.example.com/validate", False, None),
        ("https://93.184.216.34/validate", False, None),
        ("https://[2606:4700::1111]:8443/v", False, None),
        ("http://hook.example.com/validate", False, webhook.NOT_HTTPS),
        ("HTTP://hook.example.com/validate", False, webhook.NOT_HTTPS),
        ("https://127.0.0.1/validate", False, webhook.NOT_PUBLIC),
        ("https://[64:ff9b::7f00:1]/validate", False, webhook.NOT_PUBLIC),
        ("https://[::ffff:10.0.0.1]/validate", False, webhook.NOT_PUBLIC),
        ("https://169.254.169.254/latest", False, webhook.NOT_PUBLIC),
        # where private addresses are allowed (the local stage, the tests), so is plain http
        ("http://127.0.0.1:9/validate", True, None),
        ("http://hook.example.com/validate", True, None),
    ],
)
def test_url_refusal(monkeypatch: pytest.MonkeyPatch, url: str, allow_private: bool, refusal: str | None) -> None:
    from chalicelib.settings import get_settings

    monkeypatch.setenv("SEACAT_WEBHOOK_ALLOW_PRIVATE", "true" if allow_private else "false")
    get_settings.cache_clear()
    try:
        assert webhook.url_refusal(url) == refusal
    finally:
        get_settings.cache_clear()


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_exact_body() -> None:
    key = bytes(range(32))
    body = b'{"_id": "x", "data": "30"}'
    header = webhook.signature(key, body, 1700000000)
    t, v1 = header.split(",")
    assert t == "t=1700000000"
    assert v1 == "v1=" + hmac.new(key, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhook.signature(key, body + b" ", 1700000000) != header
    assert webhook.signature(key, body, 1700000001) != header
    assert webhook.signature(bytes(32), body, 1700000000) != header


def test_a_secret_is_shown_as_whsec_and_its_32_bytes_are_the_key() -> None:
    key = webhook.new_secret()
    shown = webhook.shown_secret(key)
    assert len(key) == 32 and webhook.new_secret() != key
    assert shown.startswith("whsec_") and bytes.fromhex(shown.removeprefix("whsec_")) == key


def test_the_memory_key_store_keeps_tenant_secrets_apart_from_ca_keys() -> None:
    from chalicelib.errors import SecretAlreadyExists
    from chalicelib.store.memory import MemoryBackend

    store = MemoryBackend().keystore
    assert store.load_secret("acme", webhook.SECRET_KIND) is None
    store.put_secret("acme", webhook.SECRET_KIND, b"1" * 32, replace=False)
    with pytest.raises(SecretAlreadyExists):
        store.put_secret("acme", webhook.SECRET_KIND, b"2" * 32, replace=False)
    assert store.load_secret("acme", webhook.SECRET_KIND) == b"1" * 32
    store.put_secret("acme", webhook.SECRET_KIND, b"3" * 32, replace=True)
    assert store.load_secret("acme", webhook.SECRET_KIND) == b"3" * 32
    assert store.load_secret("other", webhook.SECRET_KIND) is None
    with pytest.raises(ValueError):
        store.put_secret("acme", "ca-key", b"4" * 32, replace=True)
