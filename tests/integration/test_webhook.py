"""The approve webhook's egress rules and signature, through the Chalice handlers on moto, against
real HTTP(S) servers on 127.0.0.1 (a public host name is resolved to them by a patched getaddrinfo).

- outside the local stage (SEACAT_WEBHOOK_ALLOW_PRIVATE false) an http URL, or a literal non-public
  address, is a 400 naming ``approve`` at configuration, and a stored one is never called;
- a host that resolves to a non-public address, including the IPv6 forms that embed a private or
  loopback IPv4 address, is never connected to;
- each call carries X-SeaCat-Signature, which the snippet in docs/operations.md verifies with the
  secret shown once (at the first approve URL, or by rotation), and no longer with a rotated one;
- the secret is in Secrets Manager, never in a later answer nor in a log record.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.approve_hook import Hook
from tests.conftest import REFERENCE_SPEC

ROOT = Path(__file__).resolve().parents[2]
OCTET = {"Content-Type": "application/octet-stream"}
HOST = "hook.example.com"
PUBLIC = "93.184.216.34"
# The reference's approve payload, and nothing more: the signature travels in a header.
PAYLOAD_KEYS = {
    "_c",
    "_id",
    "_m",
    "_v",
    "data",
    "family",
    "info",
    "label",
    "seacat_application",
    "seacat_identity",
    "tenant",
    "type",
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def documented_verify() -> Callable[..., bool]:
    """The receiver's check, exactly as docs/operations.md shows it."""
    text = (ROOT / "docs" / "operations.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify(" in b]
    scope: dict[str, Any] = {}
    exec(compile(block, "docs/operations.md", "exec"), scope)
    return scope["verify"]  # type: ignore[no-any-return]


verify = documented_verify()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate for HOST, for a webhook that speaks https."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    base = tmp_path_factory.mktemp("webhook-tls")
    files = {"ca": base / "ca.pem", "cert": base / "cert.pem", "key": base / "key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    # A throwaway TLS key of the test's own server, not a CA key of the service.
    files["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@pytest.fixture
def tls_hook(tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    """An https webhook for HOST; the service trusts the test CA (its context verifies as ever)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files["cert"], tls_files["key"])
    server = Hook(tls=context)
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: real(cafile=str(tls_files["ca"])))
    yield server
    server.close()


@pytest.fixture
def tenant(client: Any, operator_token: str) -> str:
    assert client.http.put("/tenants/acme", headers=auth(operator_token), body="{}").status_code == 201
    assert (
        client.http.put("/acme/x509/self-signed", headers=auth(operator_token), body=REFERENCE_SPEC).status_code == 201
    )
    return "acme"


@pytest.fixture
def aws_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules of the AWS stages: no private addresses, https only."""
    from chalicelib.settings import get_settings

    monkeypatch.setenv("SEACAT_WEBHOOK_ALLOW_PRIVATE", "false")
    get_settings.cache_clear()


class Network:
    """getaddrinfo answers ``addresses`` for HOST; connections are recorded, then made to 127.0.0.1."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.addresses: list[str] = []
        self.connected: list[tuple[str, int]] = []
        self.looked_up: list[str] = []
        real_connect, real_resolve = socket.create_connection, socket.getaddrinfo

        def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
            if host != HOST:
                return real_resolve(host, port, *args, **kwargs)
            self.looked_up.append(host)
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port, 0, 0) if ":" in a else (a, port),
                )
                for a in self.addresses
            ]

        def connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            self.connected.append(address)  # stands in for that host: the test's webhook answers
            return real_connect(("127.0.0.1", address[1]), *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        monkeypatch.setattr(socket, "create_connection", connect)


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Network:
    return Network(monkeypatch)


def configure(client: Any, token: str, **config: Any) -> Any:
    r = client.http.put("/tenants/acme", headers=auth(token), body=json.dumps(config))
    assert r.status_code == 200, r.body
    return r.json_body


def enroll(client: Any) -> tuple[Any, bytes]:
    cr = build_cr(ec.generate_private_key(ec.SECP256R1()), application="hook")
    return client.http.put("/acme/seacat/enroll", headers=OCTET, body=cr), cr


def recorded(client: Any, token: str, cr: bytes) -> dict[str, Any]:
    r = client.http.get(f"/acme/seacat/cr/{hashlib.sha384(cr).hexdigest()}", headers=auth(token))
    assert r.status_code == 200, r.body
    return r.json_body  # type: ignore[no-any-return]


# -- https only, outside the local stage -----------------------------------------------------------


def test_outside_the_local_stage_an_http_or_non_public_url_is_a_400_naming_approve(
    client: Any, tenant: str, operator_token: str, aws_stage: None
) -> None:
    for url in (
        "http://hook.example.com/validate_cr",
        "http://93.184.216.34/validate_cr",
        "https://127.0.0.1/validate_cr",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest",
        "https://[::1]:9/x",
        "https://0.0.0.0:9/x",
        "https://[64:ff9b::7f00:1]/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://[2002:c0a8:101::1]/x",
    ):
        r = client.http.put("/tenants/acme", headers=auth(operator_token), body=json.dumps({"approve": url}))
        assert r.status_code == 400 and r.json_body["field"] == "approve", (url, r.body)
        assert r.json_body["error"] == "InvalidInput" and r.json_body["message"]
    assert client.http.get("/tenants/acme", headers=auth(operator_token)).json_body["config"]["approve"] is None
    answer = configure(client, operator_token, approve="https://hook.example.com/validate_cr")
    assert answer["config"]["approve"] == "https://hook.example.com/validate_cr"


def test_a_stored_http_url_is_not_called_outside_the_local_stage(
    client: Any, tenant: str, operator_token: str, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL stored before the rule (or while the stage allowed it) fails closed at the call."""
    from chalicelib.settings import get_settings

    configure(client, operator_token, approve=hook.url)  # allowed: the tests' stage is like local
    monkeypatch.setenv("SEACAT_WEBHOOK_ALLOW_PRIVATE", "false")
    get_settings.cache_clear()
    r, cr = enroll(client)
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert hook.received == []
    outcome = recorded(client, operator_token, cr)
    assert outcome["state"] == "failed" and outcome["reason"] == "webhook URL is not https"


# -- public addresses only ---------------------------------------------------------------------------

NOT_PUBLIC = [
    "127.0.0.1",
    "10.0.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "::1",
    "fd00::1",
    "fe80::1",
    "64:ff9b::10.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b:1::a00:1",
    "2002:c0a8:0101::1",
    "::ffff:127.0.0.1",
    "::127.0.0.1",
    "2001:0000:4136:e378:8000:63bf:3fff:fdd2",
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_a_host_that_resolves_to_no_public_address_is_not_connected_to(
    client: Any, tenant: str, operator_token: str, aws_stage: None, network: Network, address: str
) -> None:
    network.addresses = [address]
    configure(client, operator_token, approve=f"https://{HOST}/validate_cr")
    r, cr = enroll(client)
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert network.connected == []
    outcome = recorded(client, operator_token, cr)
    assert outcome["state"] == "failed" and outcome["reason"] == "webhook host has no public address"


@pytest.mark.parametrize("public", [PUBLIC, "64:ff9b::5db8:d822"], ids=["ipv4", "nat64-of-a-public-ipv4"])
def test_a_public_webhook_host_is_called_at_the_address_that_was_checked(
    client: Any, tenant: str, operator_token: str, aws_stage: None, network: Network, tls_hook: Hook, public: str
) -> None:
    """No second DNS lookup between the check and the connection: the checked address is used, over
    TLS verified for the host name. The non-public address listed first is skipped."""
    network.addresses = ["10.0.0.1", public]
    answer = configure(client, operator_token, approve=f"https://{HOST}:{tls_hook.port}/validate_cr")
    r, _ = enroll(client)
    assert r.status_code == 200, r.body
    assert [a for a, _ in network.connected] == [public] and len(tls_hook.received) == 1
    assert network.looked_up == [HOST]
    headers, body = tls_hook.received[0]
    assert verify(answer["webhookSecret"], headers["X-SeaCat-Signature"], body)


# -- the signature -------------------------------------------------------------------------------------


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage() + json.dumps(vars(record), default=str))


@pytest.fixture
def logs() -> Iterator[LogRecords]:
    """Every record of the service's loggers (which do not propagate) and the root's."""
    handler = LogRecords()
    loggers = [logging.getLogger(name) for name in ("", "seacat")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in zip(loggers, levels, strict=False):
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_each_call_is_signed_with_the_secret_shown_once(
    client: Any, tenant: str, operator_token: str, hook: Hook, logs: LogRecords
) -> None:
    import boto3

    first = configure(client, operator_token, approve=hook.url)
    secret = first["webhookSecret"]
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", secret)
    key_hex = secret.removeprefix("whsec_")
    # shown once: not by a GET, nor by the next PUT of the same URL or of another one
    for r in (
        client.http.get("/tenants/acme", headers=auth(operator_token)),
        client.http.put("/tenants/acme", headers=auth(operator_token), body=json.dumps({"approve": hook.url})),
        client.http.put("/tenants/acme", headers=auth(operator_token), body=json.dumps({"approve": hook.url + "?v=2"})),
        client.http.put("/tenants/acme", headers=auth(operator_token), body=json.dumps({"webhookTimeout": 2})),
    ):
        assert r.status_code == 200 and "webhookSecret" not in r.json_body
        assert key_hex not in r.body.decode() and "whsec_" not in r.body.decode()

    r, cr = enroll(client)
    assert r.status_code == 200, r.body
    ((headers, body),) = hook.received
    assert verify(secret, headers["X-SeaCat-Signature"], body)
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", headers["X-SeaCat-Signature"])
    payload = json.loads(body)
    assert set(payload) == PAYLOAD_KEYS and payload["data"] == cr.hex()
    # the signature binds the exact bytes and the time
    assert not verify(secret, headers["X-SeaCat-Signature"], body + b" ")
    assert not verify(secret, headers["X-SeaCat-Signature"], body.replace(b'"acme"', b'"acmf"'))
    t = int(headers["X-SeaCat-Signature"].split(",")[0][2:])
    forged = headers["X-SeaCat-Signature"].replace(f"t={t}", f"t={t + 1}")
    assert not verify(secret, forged, body)
    assert not verify("whsec_" + "00" * 32, headers["X-SeaCat-Signature"], body)

    # where it is kept: Secrets Manager, under the stage's prefix, with the stage's KMS key
    sm = boto3.client("secretsmanager")
    described = sm.describe_secret(SecretId="seacat/test/acme/webhook-secret")
    assert described["KmsKeyId"] == "alias/seacat-test"
    assert {"Key": "seacat:tenant", "Value": "acme"} in described["Tags"]
    assert sm.get_secret_value(SecretId="seacat/test/acme/webhook-secret")["SecretString"] == key_hex
    assert logs.texts and not any(key_hex in text.lower() for text in logs.texts)


def test_rotation_changes_the_key_and_shows_the_new_one_once(
    client: Any, tenant: str, operator_token: str, hook: Hook, logs: LogRecords
) -> None:
    old = configure(client, operator_token, approve=hook.url)["webhookSecret"]
    made = client.http.post("/tokens", headers=auth(operator_token), body=json.dumps({"tenant": "acme"}))
    tenant_token = made.json_body["token"]
    rotated = client.http.post("/acme/webhook/secret", headers=auth(tenant_token))
    assert rotated.status_code == 201 and rotated.headers["Cache-Control"] == "no-store"
    assert set(rotated.json_body) == {"tenant", "webhookSecret"} and rotated.json_body["tenant"] == "acme"
    new = rotated.json_body["webhookSecret"]
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", new) and new != old

    enroll(client)
    headers, body = hook.received[-1]
    assert verify(new, headers["X-SeaCat-Signature"], body)
    assert not verify(old, headers["X-SeaCat-Signature"], body)

    again = client.http.post("/acme/webhook/secret", headers=auth(operator_token))
    assert again.status_code == 201 and again.json_body["webhookSecret"] not in (old, new)
    get = client.http.get("/tenants/acme", headers=auth(operator_token)).body.decode()
    assert "whsec_" not in get and again.json_body["webhookSecret"][6:] not in get
    for key in (old, new, again.json_body["webhookSecret"]):
        assert not any(key[6:] in text.lower() for text in logs.texts)
    events = client.http.get("/audit?tenant=acme&type=tenant.updated", headers=auth(operator_token)).json_body["items"]
    rotations = [e for e in events if e["details"].get("changed") == {"webhookSecret": "rotated"}]
    assert len(rotations) == 2 and "whsec_" not in json.dumps(events)


def test_the_rotation_route_needs_the_tenants_token_and_an_existing_tenant(
    client: Any, tenant: str, operator_token: str
) -> None:
    assert client.http.post("/acme/webhook/secret", headers={"Content-Type": "application/json"}).status_code == 401
    missing = client.http.post("/nobody/webhook/secret", headers=auth(operator_token))
    assert missing.status_code == 404 and missing.json_body["field"] == "tenant"
    bad = client.http.post("/a/webhook/secret", headers=auth(operator_token))
    assert bad.status_code == 400 and bad.json_body["field"] == "tenant"
    # a secret before any approve URL: the first URL then shows none (it was shown already)
    assert client.http.post("/acme/webhook/secret", headers=auth(operator_token)).status_code == 201
    assert "webhookSecret" not in configure(client, operator_token, approve="http://127.0.0.1:9/x")


def test_a_tenant_without_a_secret_still_signs_with_one_made_at_the_call(
    client: Any, tenant: str, operator_token: str, hook: Hook
) -> None:
    """A URL set before calls were signed: the first call makes the secret; rotating shows one."""
    import boto3

    from chalicelib import context

    configure(client, operator_token, approve=hook.url)
    sm = boto3.client("secretsmanager")
    sm.delete_secret(SecretId="seacat/test/acme/webhook-secret", ForceDeleteWithoutRecovery=True)
    context.current().caches.clear()
    r, _ = enroll(client)
    assert r.status_code == 200, r.body
    headers, body = hook.received[-1]
    stored = "whsec_" + sm.get_secret_value(SecretId="seacat/test/acme/webhook-secret")["SecretString"]
    assert verify(stored, headers["X-SeaCat-Signature"], body)
    shown = client.http.post("/acme/webhook/secret", headers=auth(operator_token)).json_body["webhookSecret"]
    enroll(client)
    assert verify(shown, hook.received[-1][0]["X-SeaCat-Signature"], hook.received[-1][1])


def test_no_call_is_made_when_the_secret_cannot_be_read(
    client: Any, tenant: str, operator_token: str, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import context
    from chalicelib.errors import Unavailable

    configure(client, operator_token, approve=hook.url)

    def unavailable(*args: Any, **kwargs: Any) -> bytes:
        raise Unavailable("the key store is not available")

    monkeypatch.setattr(context.current().keystore, "load_secret", unavailable)
    r, cr = enroll(client)
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert hook.received == []
    outcome = recorded(client, operator_token, cr)
    assert outcome["state"] == "failed" and outcome["reason"] == "webhook signing secret is not available"


def test_the_secret_scan_knows_webhook_secrets() -> None:
    """tests/secret_scan.py flags a signing secret anywhere but in the answers that show it."""
    import base64

    from tests.secret_scan import Scanner, scan_response

    scanner = Scanner()
    key = bytes(range(32))
    scanner.add_webhook_secret(key)
    shown = "whsec_" + key.hex()
    assert scanner.find(f"secret={shown}")
    assert scanner.find(f"key {key.hex().upper()}")
    assert scanner.find(base64.b64encode(key).decode()) and scanner.find(
        base64.urlsafe_b64encode(key).decode().rstrip("=")
    )
    assert scanner.find("whsec_" + "ab" * 32)  # one it did not see made
    assert not scanner.find(json.dumps({"webhookSecret": shown}), allowed=frozenset({shown}))
    body = json.dumps({"tenant": "acme", "webhookSecret": shown}).encode()
    scan_response(scanner, "here", "POST", "/acme/webhook/secret", 201, {}, body)
    scan_response(scanner, "here", "PUT", "/tenants/acme", 200, {}, body)
    assert scanner.leaks == []
    scan_response(scanner, "here", "GET", "/tenants/acme", 200, {}, body)
    assert len(scanner.leaks) == 2 and all("GET /tenants/acme" in leak for leak in scanner.leaks)
    assert key.hex() not in " ".join(scanner.leaks)
