"""Tenant isolation on every admin route, authentication, and the secret scan plugin itself.

Every route of ``app.routes`` that is not public is an admin route. For each one:

- tenant alpha's token on tenant beta's resources answers 404 (403 on the operator-only token
  routes: the token is valid, its scope is not enough) and changes nothing: every table but the audit trail, and every secret, is compared
  before and after, item by item;
- no token, a revoked token, a malformed or a forged one answer 401;
- a route added to the app without a case here fails ``test_every_admin_route_is_covered``.

NGINX authentication of one tenant refuses another tenant's certificates, even where both tenants'
CAs carry the same name. The last tests show that tests/secret_scan.py does catch a leak.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import PUBLIC_ROUTES, REFERENCE_SPEC, ROOT, moto_client
from tests.reference_pki import reference_ca

OPERATOR = "sct_00000000000000f3_isolation-operator-token-012345"
OCTET = {"Content-Type": "application/octet-stream"}
PUBLIC = PUBLIC_ROUTES
OPERATOR_ONLY = {("POST", "/tokens"), ("GET", "/tokens"), ("DELETE", "/tokens/{token_id}"), ("GET", "/tenants")}
# Routes about the calling token itself: they name no tenant, so there is no other tenant's to reach.
TOKEN_ITSELF = {("GET", "/whoami")}
# A CSR the "routers" profile of each tenant admits (text: a PEM body).
_CSR_KEY = ec.generate_private_key(ec.SECP256R1())
CSR_PEM = (
    x509.CertificateSigningRequestBuilder()
    .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "iso")]))
    .sign(_CSR_KEY, hashes.SHA256())
    .public_bytes(serialization.Encoding.PEM)
    .decode()
)
# Routes that take another body than JSON.
CONTENT_TYPES = {("POST", "/{tenant}/x509/sign"): "application/pkcs10"}
# the last hour of the audit trail: the events these tests wrote
RECENT = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def auth(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def identity_of(key: ec.EllipticCurvePrivateKey) -> str:
    import base64

    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.b32encode(hashlib.sha384(point).digest()).decode()[:16]


@dataclass
class World:
    client: Any
    alpha_token: str
    beta_token: str
    beta_token_id: str
    revoked_token: str
    ids: dict[str, dict[str, str]]  # tenant -> {"identity", "cert_id", "cr_id", "pending_cr_id", "token_id"}
    certs: dict[str, bytes]  # tenant -> an issued certificate (DER)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with moto_client(OPERATOR, SEACAT_REVOCATION_CACHE_SECONDS="0") as client:
        ids: dict[str, dict[str, str]] = {}
        certs: dict[str, bytes] = {}
        issued: dict[str, str] = {}
        for name in ("alpha", "beta"):
            # the same CA name in both tenants: only the keys tell them apart
            assert (
                client.http.put(f"/tenants/{name}", headers=auth(OPERATOR), body='{"manualApproval": true}').status_code
                == 201
            )
            made = client.http.put(f"/{name}/x509/self-signed", headers=auth(OPERATOR), body=REFERENCE_SPEC)
            assert made.status_code == 201
            # a second CA certificate, over a key of its own: the first can then be retired; the key is
            # the test's, so a CA certificate made elsewhere over it could be imported (the import case)
            ca_key = ec.generate_private_key(ec.SECP256R1())
            ca_key_pem = ca_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
            rotated = client.http.post(
                f"/{name}/x509/ca/rotate",
                headers=auth(OPERATOR),
                body=json.dumps({**json.loads(REFERENCE_SPEC), "privateKey": ca_key_pem}),
            )
            assert rotated.status_code == 201
            importable = reference_ca(ca_key, cn=f"{name} imported").public_bytes(serialization.Encoding.PEM)
            key = ec.generate_private_key(ec.SECP256R1())
            cr_id = client.http.put(
                f"/{name}/seacat/enroll", headers=OCTET, body=build_cr(key, application="iso")
            ).json_body["id"]
            assert client.http.put(f"/{name}/seacat/cr/{cr_id}/approve", headers=auth(OPERATOR)).status_code == 200
            r = client.http.put(f"/{name}/seacat/enroll", headers=OCTET, body=build_cr(key, application="iso"))
            assert r.status_code == 200
            certs[name] = r.body
            pending = client.http.put(
                f"/{name}/seacat/enroll",
                headers=OCTET,
                body=build_cr(ec.generate_private_key(ec.SECP256R1()), application="iso"),
            )
            assert pending.status_code == 202
            first_ca = made.json_body["_id"]
            profile = client.http.put(f"/{name}/x509/profiles/routers", headers=auth(OPERATOR), body="{}")
            assert profile.status_code == 201
            if name == "beta":  # a profile alpha has not: alpha's paths never reach it
                only = client.http.put("/beta/x509/profiles/beta-only", headers=auth(OPERATOR), body="{}")
                assert only.status_code == 201
            credential = client.http.post(
                f"/{name}/est/credentials",
                headers=auth(OPERATOR),
                body='{"profile": "routers", "uses": 1, "expiresIn": "1h"}',
            )
            assert credential.status_code == 201
            made = client.http.post("/tokens", headers=auth(OPERATOR), body=json.dumps({"tenant": name}))
            assert made.status_code == 201
            issued[name] = made.json_body["token"]
            ids[name] = {
                "tenant": name,
                "identity": identity_of(key),
                "cert_id": hashlib.sha384(r.body).hexdigest(),
                "cr_id": cr_id,
                "pending_cr_id": pending.json_body["id"],
                "token_id": made.json_body["tokenId"],
                "ca_id": first_ca,
                "import_body": json.dumps({"certificate": importable.decode()}),
                "username": credential.json_body["username"],
            }
        revoked = client.http.post("/tokens", headers=auth(OPERATOR), body=json.dumps({"tenant": "alpha"})).json_body
        assert client.http.delete(f"/tokens/{revoked['tokenId']}", headers=auth(OPERATOR)).status_code == 200
        yield World(client, issued["alpha"], issued["beta"], ids["beta"]["token_id"], revoked["token"], ids, certs)


# -- every admin route, with a concrete path and a body that would change something -------------------

CASES: dict[tuple[str, str], tuple[str, str | None]] = {
    ("GET", "/whoami"): ("/whoami", None),
    ("GET", "/tenants"): ("/tenants", None),
    ("POST", "/tokens"): ("/tokens", '{"tenant": "{tenant}"}'),
    ("GET", "/tokens"): ("/tokens?tenant={tenant}", None),
    ("DELETE", "/tokens/{token_id}"): ("/tokens/{token_id}", None),
    ("GET", "/audit"): ("/audit?tenant={tenant}&from=" + RECENT, None),
    ("PUT", "/tenants/{tenant}"): ("/tenants/{tenant}", '{"seacat": false, "approve": "http://127.0.0.1:9/x"}'),
    ("GET", "/tenants/{tenant}"): ("/tenants/{tenant}", None),
    ("PUT", "/{tenant}/x509/self-signed"): ("/{tenant}/x509/self-signed", REFERENCE_SPEC),
    ("POST", "/{tenant}/x509/ca/rotate"): ("/{tenant}/x509/ca/rotate", REFERENCE_SPEC),
    ("PUT", "/{tenant}/x509/ca/import"): ("/{tenant}/x509/ca/import", "{import_body}"),
    ("PUT", "/{tenant}/x509/ca/{ca_id}/retire"): ("/{tenant}/x509/ca/{ca_id}/retire", '{"force": true}'),
    ("PUT", "/{tenant}/x509/ca/{ca_id}/revoke"): ("/{tenant}/x509/ca/{ca_id}/revoke", '{"reason": "cACompromise"}'),
    ("POST", "/{tenant}/webhook/secret"): ("/{tenant}/webhook/secret", None),
    ("POST", "/{tenant}/gateway/credential"): ("/{tenant}/gateway/credential", None),
    ("DELETE", "/{tenant}/gateway/credential"): ("/{tenant}/gateway/credential", None),
    ("GET", "/{tenant}/x509/cert/{cert_id}"): ("/{tenant}/x509/cert/{cert_id}", None),
    ("PUT", "/{tenant}/x509/cert/{cert_id}/revoke"): (
        "/{tenant}/x509/cert/{cert_id}/revoke",
        '{"reason": "keyCompromise"}',
    ),
    ("GET", "/{tenant}/seacat/cr"): ("/{tenant}/seacat/cr?state=pending", None),
    ("GET", "/{tenant}/seacat/cr/{cr_id}"): ("/{tenant}/seacat/cr/{pending_cr_id}", None),
    ("PUT", "/{tenant}/seacat/cr/{cr_id}/approve"): ("/{tenant}/seacat/cr/{pending_cr_id}/approve", None),
    ("PUT", "/{tenant}/seacat/cr/{cr_id}/reject"): ("/{tenant}/seacat/cr/{pending_cr_id}/reject", None),
    ("GET", "/{tenant}/seacat/identity/{identity}"): ("/{tenant}/seacat/identity/{identity}", None),
    ("GET", "/{tenant}/seacat/identity/{identity}/certificates"): (
        "/{tenant}/seacat/identity/{identity}/certificates",
        None,
    ),
    ("PUT", "/{tenant}/seacat/identity/{identity}/block"): ("/{tenant}/seacat/identity/{identity}/block", None),
    ("PUT", "/{tenant}/seacat/identity/{identity}/unblock"): ("/{tenant}/seacat/identity/{identity}/unblock", None),
    ("PUT", "/{tenant}/seacat/identity/{identity}/revoke"): (
        "/{tenant}/seacat/identity/{identity}/revoke",
        '{"reason": "keyCompromise"}',
    ),
    ("POST", "/{tenant}/x509/sign"): ("/{tenant}/x509/sign?profile=routers", CSR_PEM),
    ("POST", "/{tenant}/est/credentials"): (
        "/{tenant}/est/credentials",
        '{"profile": "routers", "uses": 5, "expiresIn": "1h"}',
    ),
    ("GET", "/{tenant}/est/credentials"): ("/{tenant}/est/credentials", None),
    ("GET", "/{tenant}/est/credentials/{username}"): ("/{tenant}/est/credentials/{username}", None),
    ("PUT", "/{tenant}/est/credentials/{username}/revoke"): ("/{tenant}/est/credentials/{username}/revoke", None),
    ("GET", "/{tenant}/x509/profiles"): ("/{tenant}/x509/profiles", None),
    ("GET", "/{tenant}/x509/profiles/{name}"): ("/{tenant}/x509/profiles/routers", None),
    ("PUT", "/{tenant}/x509/profiles/{name}"): ("/{tenant}/x509/profiles/routers", '{"approval": "auto"}'),
    ("DELETE", "/{tenant}/x509/profiles/{name}"): ("/{tenant}/x509/profiles/routers", None),
}


def headers_for(case: tuple[str, str], token: str | None) -> dict[str, str]:
    return {**auth(token), **({"Content-Type": CONTENT_TYPES[case]} if case in CONTENT_TYPES else {})}


def admin_routes() -> set[tuple[str, str]]:
    from app import app

    return {(m.upper(), path) for path, methods in app.routes.items() for m in methods} - PUBLIC


def concrete(case: tuple[str, str], values: dict[str, str]) -> tuple[str, str, bytes]:
    template, body = CASES[case]
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
        body = body.replace("{" + name + "}", value) if body else body
    return case[0], path, (body or "").encode()


def snapshot() -> dict[str, Any]:
    """Every item of every table but the audit trail, and every secret's value."""
    import boto3

    ddb = boto3.client("dynamodb")
    tables: dict[str, Any] = {}
    for table in sorted(ddb.list_tables()["TableNames"]):
        if not table.startswith("seacat-test-") or table.endswith("-audit"):
            continue
        items: list[Any] = []
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        for _ in range(1000):
            page = ddb.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        tables[table] = sorted(json.dumps(i, sort_keys=True, default=str) for i in items)
    sm = boto3.client("secretsmanager")
    secrets = {
        s["Name"]: sm.get_secret_value(SecretId=s["Name"])["SecretString"] for s in sm.list_secrets()["SecretList"]
    }
    return {"tables": tables, "secrets": secrets}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changes = []
    for table in sorted(set(before["tables"]) | set(after["tables"])):
        old, new = set(before["tables"].get(table, [])), set(after["tables"].get(table, []))
        changes += [f"{table}: removed {item[:160]}" for item in sorted(old - new)]
        changes += [f"{table}: added {item[:160]}" for item in sorted(new - old)]
    if before["secrets"] != after["secrets"]:
        changes.append("secrets changed")
    return changes


def test_every_admin_route_is_covered() -> None:
    """A new admin route must get a case here (and in docs/openapi.yaml) before it can ship."""
    routes = admin_routes()
    assert routes, "no admin routes found"
    assert set(CASES) == routes, (
        f"admin routes without an isolation case: {sorted(routes - set(CASES))}; "
        f"cases for routes that do not exist: {sorted(set(CASES) - routes)}"
    )


def test_another_tenants_token_answers_404_and_changes_nothing(world: World) -> None:
    before = snapshot()
    answers = {}
    for case in sorted(CASES):
        method, path, body = concrete(case, world.ids["beta"])
        r = world.client.http.request(method, path, headers=headers_for(case, world.alpha_token), body=body)
        answers[case] = r.status_code
        expected = 403 if case in OPERATOR_ONLY else 200 if case in TOKEN_ITSELF else 404
        assert r.status_code == expected, (case, r.status_code, r.body[:200])
        if case in TOKEN_ITSELF:  # alpha's token learns about itself only
            assert r.json_body["tenant"] == "alpha" and "beta" not in r.body.decode()
            continue
        assert r.json_body["error"] in ("NotFound", "Forbidden") and "beta" not in json.dumps(
            {k: v for k, v in r.json_body.items() if k != "message"}
        )
    assert len(answers) == len(CASES)
    assert diff(before, snapshot()) == []


def test_own_paths_with_another_tenants_ids_answer_404_and_change_nothing(world: World) -> None:
    """Alpha's own routes, addressed with beta's certificate, request and identity ids."""
    beta = world.ids["beta"]
    before = snapshot()
    for method, path, body in [
        ("GET", f"/alpha/x509/cert/{beta['cert_id']}", b""),
        ("GET", f"/alpha/x509/cert/beta:{beta['cert_id']}", b""),
        ("GET", f"/alpha/x509/cert/alpha:{beta['cert_id']}", b""),
        ("PUT", f"/alpha/x509/cert/{beta['cert_id']}/revoke", b'{"reason": "keyCompromise"}'),
        ("PUT", f"/alpha/x509/cert/beta:{beta['cert_id']}/revoke", b"{}"),
        ("GET", f"/alpha/seacat/cr/{beta['pending_cr_id']}", b""),
        ("PUT", f"/alpha/seacat/cr/{beta['pending_cr_id']}/approve", b""),
        ("PUT", f"/alpha/seacat/cr/{beta['pending_cr_id']}/reject", b""),
        ("GET", f"/alpha/seacat/identity/{beta['identity']}", b""),
        ("GET", f"/alpha/seacat/identity/{beta['identity']}/certificates", b""),
        ("PUT", f"/alpha/seacat/identity/{beta['identity']}/revoke", b"{}"),
        ("PUT", f"/alpha/x509/ca/{beta['ca_id']}/retire", b'{"force": true}'),
        ("PUT", f"/alpha/x509/ca/beta:{beta['ca_id']}/revoke", b"{}"),
        ("PUT", f"/alpha/x509/ca/alpha:{beta['ca_id']}/revoke", b"{}"),
        ("GET", f"/alpha/x509/crl/{beta['ca_id']}", b""),
        ("GET", "/alpha/x509/profiles/beta-only", b""),
        ("POST", "/alpha/x509/sign?profile=beta-only", CSR_PEM.encode()),
    ]:
        for token in (world.alpha_token, OPERATOR):
            headers = {**auth(token), **({"Content-Type": "application/pkcs10"} if "/sign" in path else {})}
            r = world.client.http.request(method, path, headers=headers, body=body)
            assert r.status_code == 404, (method, path, r.status_code, r.body[:200])
    assert diff(before, snapshot()) == []


def test_another_tenants_ca_certificate_is_not_imported_into_ones_own(world: World) -> None:
    """A CA certificate over beta's key, imported into alpha (by alpha's token or the operator's): 400,
    its key is not alpha's, and nothing changes."""
    before = snapshot()
    for token in (world.alpha_token, OPERATOR):
        r = world.client.http.put("/alpha/x509/ca/import", headers=auth(token), body=world.ids["beta"]["import_body"])
        assert r.status_code == 400 and r.json_body["field"] == "certificate", r.body[:200]
        assert "not the tenant's CA key" in r.json_body["message"]
    assert diff(before, snapshot()) == []


def test_page_tokens_do_not_cross_tenants(world: World) -> None:
    client = world.client
    for name in ("alpha", "beta"):  # a second pending request each, so the first page has a next
        client.http.put(
            f"/{name}/seacat/enroll",
            headers=OCTET,
            body=build_cr(ec.generate_private_key(ec.SECP256R1()), application="p"),
        )
    page = client.http.get("/beta/seacat/cr?state=pending&limit=1", headers=auth(world.beta_token)).json_body
    assert page["next"]
    r = client.http.get(f"/alpha/seacat/cr?state=pending&limit=1&next={page['next']}", headers=auth(world.alpha_token))
    assert r.status_code == 400 and r.json_body["field"] == "next"
    listed = client.http.get(
        f"/beta/seacat/identity/{world.ids['beta']['identity']}/certificates?limit=1", headers=auth(world.beta_token)
    )
    assert listed.status_code == 200


@pytest.mark.parametrize("who", ["none", "revoked", "malformed", "forged", "basic", "empty"])
def test_admin_routes_without_a_valid_token_answer_401(world: World, who: str) -> None:
    forged = world.alpha_token[:-1] + ("A" if world.alpha_token[-1] != "A" else "B")
    headers: dict[str, str] = {
        "none": auth(None),
        "revoked": auth(world.revoked_token),
        "malformed": auth("sct_zz_not-a-token"),
        "forged": auth(forged),
        "basic": {"Authorization": f"Basic {world.alpha_token}", "Content-Type": "application/json"},
        "empty": {"Authorization": "Bearer ", "Content-Type": "application/json"},
    }[who]
    before = snapshot()
    for tenant in ("alpha", "beta"):
        for case in sorted(CASES):
            method, path, body = concrete(case, world.ids[tenant])
            own = {**headers, **({"Content-Type": CONTENT_TYPES[case]} if case in CONTENT_TYPES else {})}
            r = world.client.http.request(method, path, headers=own, body=body)
            assert r.status_code == 401, (who, case, r.status_code, r.body[:200])
            assert r.json_body["error"] == "Unauthenticated"
    assert diff(before, snapshot()) == []


def test_own_token_still_works_on_every_admin_route(world: World) -> None:
    """The cases above are not 404/401 for want of a valid request: beta's token reaches each one."""
    for case in sorted(CASES):
        if (
            case in OPERATOR_ONLY
            or case[1].endswith(("/revoke", "/block", "/approve", "/reject", "/self-signed"))
            or case[0] in ("PUT", "POST")
            or case == ("DELETE", "/{tenant}/x509/profiles/{name}")
        ):
            continue  # read-only check here; the writes are exercised elsewhere
        method, path, body = concrete(case, world.ids["beta"])
        r = world.client.http.request(method, path, headers=headers_for(case, world.beta_token), body=body)
        assert r.status_code == 200, (case, r.status_code, r.body[:200])


def test_tenant_tokens_cannot_reach_operator_scope(world: World) -> None:
    client = world.client
    assert client.http.get("/audit?tenant=_", headers=auth(world.alpha_token)).status_code == 403
    assert client.http.post("/tokens", headers=auth(world.alpha_token), body=b'{"tenant": "alpha"}').status_code == 403
    assert client.http.delete(f"/tokens/{world.beta_token_id}", headers=auth(world.alpha_token)).status_code == 403
    # not even its own tenant's tokens: listing them is the operator's
    for tenant in ("alpha", "beta"):
        assert client.http.get(f"/tokens?tenant={tenant}", headers=auth(world.alpha_token)).status_code == 403
    assert (
        client.http.get("/tenants/beta", headers=auth(world.beta_token)).status_code == 200
    )  # beta's token still valid


def test_nginx_authenticate_refuses_another_tenants_certificate(world: World) -> None:
    client = world.client
    for tenant, other in (("alpha", "beta"), ("beta", "alpha")):
        pem = x509.load_der_x509_certificate(world.certs[other]).public_bytes(serialization.Encoding.PEM)
        own = x509.load_der_x509_certificate(world.certs[tenant]).public_bytes(serialization.Encoding.PEM)
        headers = {"Content-Type": "text/plain", "X-SSL-Client-Verify": "SUCCESS"}
        r = client.http.put(f"/{tenant}/seacat/nginx_authenticate", headers=headers, body=pem)
        assert r.status_code == 403 and "X-SeaCat-Identity" not in r.headers, (tenant, r.body)
        assert client.http.put(f"/{tenant}/seacat/nginx_authenticate", headers=headers, body=own).status_code == 200
        # without NGINX's verdict nothing passes, whichever tenant's certificate it is
        for body in (pem, own):
            r = client.http.put(
                f"/{tenant}/seacat/nginx_authenticate", headers={"Content-Type": "text/plain"}, body=body
            )
            assert r.status_code == 401 and "X-SeaCat-Identity" not in r.headers, (tenant, r.body)
        # the same identity looked up in the wrong tenant: absent
        assert client.http.get(f"/{tenant}/seacat/get/{world.ids[other]['identity']}").status_code == 404
    # both CAs carry one name: the issuer name alone would have let the certificate through
    names = {x509.load_der_x509_certificate(d).issuer for d in world.certs.values()}
    assert len(names) == 1


def test_a_key_enrolled_in_two_tenants_is_two_independent_identities(world: World) -> None:
    client = world.client
    key = ec.generate_private_key(ec.SECP256R1())
    identity = identity_of(key)
    assert (
        client.http.put(f"/alpha/seacat/identity/{identity}/block", headers=auth(world.alpha_token)).status_code == 200
    )
    pending = client.http.put("/beta/seacat/enroll", headers=OCTET, body=build_cr(key, application="two"))
    assert pending.status_code == 202  # beta decides by hand; alpha's block does not reach it
    assert (
        client.http.put(
            f"/beta/seacat/cr/{pending.json_body['id']}/approve", headers=auth(world.beta_token)
        ).status_code
        == 200
    )
    issued = client.http.put("/beta/seacat/enroll", headers=OCTET, body=build_cr(key, application="two"))
    assert issued.status_code == 200
    assert (
        client.http.put("/alpha/seacat/enroll", headers=OCTET, body=build_cr(key, application="two")).status_code == 403
    )
    pem = x509.load_der_x509_certificate(issued.body).public_bytes(serialization.Encoding.PEM)
    headers = {"X-SSL-Client-Verify": "SUCCESS"}
    assert client.http.put("/beta/seacat/nginx_authenticate", headers=headers, body=pem).status_code == 200
    assert client.http.put("/alpha/seacat/nginx_authenticate", headers=headers, body=pem).status_code == 403


# -- the secret scan plugin catches what it is for ------------------------------------------------------


def test_the_scanner_finds_keys_tokens_and_known_secrets() -> None:
    from tests.secret_scan import Scanner

    scanner = Scanner()
    key = ec.generate_private_key(ec.SECP256R1())
    scanner.add_private_key(key)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    body = "".join(pem.splitlines()[1:-1])  # armour stripped, lines joined
    scalar = format(key.private_numbers().private_value, "064x")
    token = "sct_0123456789abcdef_" + "s" * 43
    assert scanner.find(pem)
    assert scanner.find(json.dumps({"key": pem}))  # inside JSON, newlines escaped
    assert scanner.find("prefix " + body + " suffix")
    assert scanner.find(f"scalar={scalar.upper()}")
    assert scanner.find(f"Authorization: Bearer {token}")
    assert not scanner.find(f"Authorization: Bearer {token}", allowed=frozenset({token}))
    scanner.add_token("any-operator-string-0123456789")
    assert scanner.find("echo any-operator-string-0123456789")
    # certificates, CRLs, ids and hashes are not secrets
    cert_hex = hashlib.sha384(b"x").hexdigest() * 3
    assert not scanner.find(f'{{"data": "{cert_hex}", "token": "sct_0123456789abcdef"}}')


def run_pytest(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_leaky.py"
    test.write_text(textwrap.dedent(source))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.secret_scan",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "--basetemp",
            str(tmp_path / "inner"),
            *args,
            str(test),
        ],
        cwd=ROOT,
        # the plugin under test and no other: the installed ones (schemathesis, hypothesis, xdist) cost ~2 s a run
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_leak_in_a_log_fails_the_run(tmp_path: Path) -> None:
    leaky = run_pytest(
        tmp_path,
        """
        import logging
        from cryptography.hazmat.primitives.asymmetric import ec
        from chalicelib.ca import keys

        def test_logs_a_key():
            pem = keys.private_key_to_pem(ec.generate_private_key(ec.SECP256R1())).decode()
            logging.getLogger("seacat.test").warning("key is %s", pem.splitlines()[1])
        """,
    )
    assert leaky.returncode == 1, leaky.stdout[-2000:]
    assert "1 passed" in leaky.stdout and "secret scan failed" in leaky.stdout
    assert "the body of a CA private key in log record" in leaky.stdout
    clean = run_pytest(tmp_path, "def test_nothing():\n    pass\n")
    assert clean.returncode == 0 and "secret scan" not in clean.stdout


def test_a_leak_in_a_pytest_xdist_worker_fails_the_run(tmp_path: Path) -> None:
    """make test runs the suite in pytest-xdist workers: what a worker saw fails the run all the same."""
    leaky = run_pytest(
        tmp_path,
        """
        import logging
        from cryptography.hazmat.primitives.asymmetric import ec
        from chalicelib.ca import keys

        def test_logs_a_key():
            pem = keys.private_key_to_pem(ec.generate_private_key(ec.SECP256R1())).decode()
            logging.getLogger("seacat.test").warning("key is %s", pem.splitlines()[1])
        """,
        *("-p", "xdist.plugin", "-n", "1"),
    )
    assert leaky.returncode == 1, leaky.stdout[-2000:]
    assert "1 passed" in leaky.stdout and "secret scan failed" in leaky.stdout
    assert "the body of a CA private key in log record" in leaky.stdout and "[gw0]" in leaky.stdout


def test_a_leak_in_a_response_fails_the_run(tmp_path: Path) -> None:
    leaky = run_pytest(
        tmp_path,
        """
        from chalice import Chalice, Response
        from chalice.test import Client

        app = Chalice(app_name="leaky")

        @app.route("/echo")
        def echo():
            return Response(body=app.current_request.headers["authorization"], status_code=200)

        def test_echoes_the_token():
            with Client(app) as client:
                assert client.http.get("/echo", headers={"Authorization": "Bearer operator-secret-0123456789"}).status_code == 200
        """,
    )
    assert leaky.returncode == 1, leaky.stdout[-2000:]
    assert "a bearer token operat... that a test sent" in leaky.stdout
    assert "operator-secret-0123456789" not in leaky.stdout  # the report redacts what it found
