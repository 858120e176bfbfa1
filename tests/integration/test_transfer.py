"""embedded/transfer.py: a make run data directory filled through the API, exported, imported into the
AWS stage on moto (and back into a fresh data directory), then checked through the API: the CA bundle,
the certificates, identities, the revocation (gateway 403, CRL), the pending request, and the CA key
still signing. Then what an import refuses: a changed or cut file, a wrong passphrase, another key. And a
tenant that rotated its CA (the old CA left trusted, or retired with force and its key released), with
clients under both CAs: its CA states, both CAs, the keys under the stage's names, the gateway's answers,
and a new enrolment under the new CA, on moto and back in a data directory."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.store.transfer import Outcome
from embedded import transfer
from scripts import datadir
from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC, ROOT, TEST_ENV, deploy_resources, reset_caches

OCTET = {"Content-Type": "application/octet-stream"}
LOCAL_OPERATOR = "sct_00000000000000b1_local-operator-token-0123456789"
AWS_OPERATOR = "sct_00000000000000b2_aws-operator-token-0123456789ab"
PASSPHRASE = "correct horse battery staple"
FAST_SCRYPT = 2**14  # the least an import accepts: the tests derive many times


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def identity_of(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.b32encode(hashlib.sha384(point).digest()).decode()[:16]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def cert_id(cert: x509.Certificate) -> str:
    return hashlib.sha384(der(cert)).hexdigest()


def enrol(client: Any, key: ec.EllipticCurvePrivateKey, tenant: str = "acme") -> Any:
    return client.http.put(f"/{tenant}/seacat/enroll", headers=OCTET, body=build_cr(key, application="transfer"))


def gateway(client: Any, cert: x509.Certificate) -> int:
    headers = {"Content-Type": "text/plain", "X-SSL-Client-Verify": "SUCCESS", "X-Forwarded-For": "192.0.2.1"}
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return int(client.http.put("/acme/seacat/nginx_authenticate", headers=headers, body=pem).status_code)


@dataclass
class Filled:
    """What the data directory was given through the API, to look for after the move."""

    ca_bundle: bytes = b""
    ca: x509.Certificate | None = None
    certs: dict[str, x509.Certificate] = field(default_factory=dict)  # identity -> its certificate
    revoked: x509.Certificate | None = None
    pending_key: ec.EllipticCurvePrivateKey | None = None
    pending_id: str = ""
    webhook_secret: bytes = b""
    tenant_token: str = ""
    other_fingerprint: str = ""


@contextlib.contextmanager
def local_service(data: Path) -> Iterator[Any]:
    """The app on make run's stack (SQLite and the local key store in ``data``), in this process."""
    from chalice.test import Client

    from app import app
    from chalicelib import context
    from chalicelib.service import tokens
    from chalicelib.store.sqlite import SqliteBackend

    env = {
        **datadir.stage_environment("local"),
        "SEACAT_BACKEND": "sqlite",
        "SEACAT_DATA_DIR": str(data),
        "SEACAT_TENANT_CACHE_SECONDS": "0",
        "SEACAT_REVOCATION_CACHE_SECONDS": "0",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("SEACAT_LOCAL_KEK", raising=False)
        reset_caches()
        datadir.ensure_private(data)
        from chalicelib.keystore.local import load_kek

        load_kek(None, data, create=True)
        backend = SqliteBackend(data / "seacat.db")
        built = context.local_context(data, backend)
        context.install(built)
        try:
            tokens.install_operator_token(LOCAL_OPERATOR)
            with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
                yield client
        finally:
            built.keystore.close()  # type: ignore[attr-defined]
            backend.close()
            reset_caches()


@contextlib.contextmanager
def aws_service() -> Iterator[Any]:
    """The app on the test stage deployed into moto (tests/conftest.py's), with its own operator token."""
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib.service import tokens

    with pytest.MonkeyPatch.context() as mp:
        for name, value in TEST_ENV.items():
            mp.setenv(name, value)
        for name in ("SEACAT_BACKEND", "SEACAT_DATA_DIR", "SEACAT_LOCAL_KEK"):
            mp.delenv(name, raising=False)
        with mock_aws():
            reset_caches()
            deploy_resources("test")
            tokens.install_operator_token(AWS_OPERATOR)
            with Client(app, stage_name="test", project_dir=str(ROOT)) as client:
                yield client
        reset_caches()


def fill(client: Any) -> Filled:
    filled = Filled()
    token = LOCAL_OPERATOR
    assert client.http.put("/tenants/acme", headers=auth(token), body="{}").status_code == 201
    r = client.http.put("/acme/x509/self-signed", headers=auth(token), body=REFERENCE_SPEC)
    assert r.status_code == 201, r.body
    filled.ca = x509.load_pem_x509_certificate(r.json_body["certificate"].encode())
    for _ in range(3):
        key = ec.generate_private_key(ec.SECP256R1())
        r = enrol(client, key)
        assert r.status_code == 200, r.body
        filled.certs[identity_of(key)] = x509.load_der_x509_certificate(r.body)
    filled.revoked = next(iter(filled.certs.values()))
    r = client.http.put(
        f"/acme/x509/cert/{cert_id(filled.revoked)}/revoke", headers=auth(token), body='{"reason": "keyCompromise"}'
    )
    assert r.status_code == 200 and r.json_body["status"] == "revoked"
    assert gateway(client, filled.revoked) == 403
    body = json.dumps({"manualApproval": True})
    assert client.http.put("/tenants/acme", headers=auth(token), body=body).status_code == 200
    filled.pending_key = ec.generate_private_key(ec.SECP256R1())
    r = enrol(client, filled.pending_key)
    assert r.status_code == 202, r.body
    filled.pending_id = r.json_body["id"]
    r = client.http.post("/acme/webhook/secret", headers=auth(token))
    assert r.status_code == 201
    filled.webhook_secret = bytes.fromhex(r.json_body["webhookSecret"][len("whsec_") :])
    r = client.http.post("/tokens", headers=auth(token), body=json.dumps({"tenant": "acme"}))
    assert r.status_code == 201
    filled.tenant_token = r.json_body["token"]
    filled.ca_bundle = client.http.get("/acme/x509/ca").body
    r = client.http.put("/tenants/other", headers=auth(token), body="{}")
    assert r.status_code == 201
    filled.other_fingerprint = r.json_body["keyFingerprint"]
    return filled


def check(client: Any, filled: Filled, token: str) -> None:
    """Everything ``fill`` made is served, and the CA key still signs."""
    assert filled.ca is not None and filled.revoked is not None and filled.pending_key is not None
    assert client.http.get("/acme/x509/ca").body == filled.ca_bundle
    for identity, cert in filled.certs.items():
        r = client.http.get(
            f"/acme/x509/cert/{cert_id(cert)}", headers={**auth(token), "Accept": "application/pkix-cert"}
        )
        assert r.status_code == 200 and r.body == der(cert)
        status = client.http.get(f"/acme/seacat/identity/{identity}", headers=auth(token))
        assert status.status_code == 200, status.body
        if cert is filled.revoked:
            continue
        assert client.http.get(f"/acme/seacat/get/{identity}").body == der(cert)
        assert gateway(client, cert) == 200
    # the revocation: the gateway refuses the certificate, the CRL (signed by the CA key) lists it
    assert gateway(client, filled.revoked) == 403
    crl = x509.load_der_x509_crl(client.http.get("/acme/x509/crl").body)
    assert crl.is_signature_valid(filled.ca.public_key())
    assert [e.serial_number for e in crl] == [filled.revoked.serial_number]
    # the pending request, decided here, and its identity enrolled under the same CA
    pending = client.http.get("/acme/seacat/cr?state=pending", headers=auth(token)).json_body["items"]
    assert [p["_id"] for p in pending] == [filled.pending_id]
    assert client.http.put(f"/acme/seacat/cr/{filled.pending_id}/approve", headers=auth(token)).status_code == 200
    r = enrol(client, filled.pending_key)
    assert r.status_code == 200, r.body
    approved = x509.load_der_x509_certificate(r.body)
    approved.verify_directly_issued_by(filled.ca)  # the CA key came along
    assert approved.serial_number not in {c.serial_number for c in filled.certs.values()}
    assert gateway(client, approved) == 200
    # the audit trail came along too
    audit = client.http.get("/audit?tenant=acme&type=certificate.issued", headers=auth(token)).json_body
    assert audit["count"] >= 3
    # tokens do not move
    assert client.http.get("/tenants/acme", headers=auth(filled.tenant_token)).status_code == 401
    assert client.http.get("/tenants/acme", headers=auth(token)).json_body["config"]["manualApproval"] is True


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Filled]:
    data = tmp_path_factory.mktemp("transfer") / "data"
    with local_service(data) as client:
        made = fill(client)
    return data, made


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transfer tool's sqlite side as make run sets it up (the local stage's names)."""
    from chalicelib.settings import get_settings

    for name, value in datadir.stage_environment("local").items():
        monkeypatch.setenv(name, value)
    for name in ("SEACAT_BACKEND", "SEACAT_DATA_DIR", "SEACAT_LOCAL_KEK"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()


def export_local(data: Path, to: Path, tenants: list[str] | None, **kw: Any) -> transfer.Exported:
    side = transfer.sqlite_side(data, create=False, keys=kw.get("include_keys", True))
    try:
        return transfer.export(
            side,
            to,
            tenants,
            include_keys=kw.get("include_keys", True),
            audit=kw.get("audit", True),
            passphrase_text=PASSPHRASE,
            scrypt_n=FAST_SCRYPT,
        )
    finally:
        side.close()


def import_into(side: transfer.Side, path: Path, phrase: str = PASSPHRASE) -> list[transfer.TenantImport]:
    return transfer.import_file(path, side, lambda: phrase)


def written(results: list[transfer.TenantImport]) -> int:
    return sum(r.outcomes[Outcome.WRITTEN] for r in results)


def test_a_data_directory_moves_to_aws_and_back(
    filled: tuple[Path, Filled], tmp_path: Path, local_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, made = filled
    exported = export_local(data, tmp_path / "acme.seacat", ["acme"])
    assert exported.path.stat().st_mode & 0o777 == 0o600
    counts = exported.counts["acme"]
    assert (counts["tenant"], counts["ca-key"], counts["webhook-secret"]) == (1, 1, 1)
    assert (counts["certificate"], counts["serial"], counts["identity"]) == (4, 3, 3)  # the CA's and 3 clients'
    assert counts["request"] == 4 and counts["audit"] > 5
    text = exported.path.read_text()
    assert "PRIVATE KEY" not in text and made.webhook_secret.hex() not in text
    assert "token_hash" not in text and hashlib.sha256(made.tenant_token.encode()).hexdigest() not in text

    with aws_service() as client:
        side = transfer.aws_side(workers=4)
        first = import_into(side, exported.path)
        assert written(first) == sum(counts.values())  # every line, keys included, written once
        again = import_into(side, exported.path)
        assert written(again) == 0 and again[0].outcomes[Outcome.DIFFERS] == 0
        assert "nothing written" in again[0].describe()
        assert side.keystore.load_secret("acme", "webhook-secret") == made.webhook_secret
        check(client, made, AWS_OPERATOR)
        # the target moved on (the pending request was approved there): an import leaves that as it is
        third = import_into(side, exported.path)
        assert written(third) == 0 and third[0].differing == {"request": 1}
        assert "left as the target has them (1 request)" in third[0].describe()
        r = client.http.get(f"/acme/seacat/cr/{made.pending_id}", headers=auth(AWS_OPERATOR))
        assert r.json_body["state"] == "approved"

        # and back, as the emulator's state moves to make run: export from the AWS side, import into SQLite
        back = transfer.export(
            side,
            tmp_path / "back.seacat",
            None,
            include_keys=True,
            audit=True,
            passphrase_text=PASSPHRASE,
            scrypt_n=FAST_SCRYPT,
        )
        assert list(back.counts) == ["acme"]
    fresh = tmp_path / "fresh"
    target = transfer.sqlite_side(fresh, create=True)
    try:
        assert written(import_into(target, back.path)) > 0
        assert written(import_into(target, back.path)) == 0
    finally:
        target.close()
    assert (fresh / "kek").stat().st_mode & 0o777 == 0o600 and (fresh / "seacat.db").stat().st_mode & 0o777 == 0o600
    with local_service(fresh) as client:
        tenant = client.http.get("/tenants/acme", headers=auth(LOCAL_OPERATOR)).json_body
        assert tenant["caCertificates"] == [f"acme:{cert_id(made.ca)}"]  # type: ignore[arg-type]
        r = client.http.get("/acme/seacat/cr?state=pending", headers=auth(LOCAL_OPERATOR)).json_body
        assert r["items"] == []  # decided on AWS before the export back
        assert gateway(client, made.revoked) == 403  # type: ignore[arg-type]
        body = json.dumps({"manualApproval": False})
        assert client.http.put("/tenants/acme", headers=auth(LOCAL_OPERATOR), body=body).status_code == 200
        r = enrol(client, ec.generate_private_key(ec.SECP256R1()))
        assert r.status_code == 200, r.body
        x509.load_der_x509_certificate(r.body).verify_directly_issued_by(made.ca)  # type: ignore[arg-type]


def test_the_command_line_and_what_an_import_refuses(
    filled: tuple[Path, Filled], tmp_path: Path, local_env: None, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    data, made = filled
    monkeypatch.setattr(transfer, "SCRYPT_N", FAST_SCRYPT)
    monkeypatch.setenv(transfer.PASSPHRASE_ENV, PASSPHRASE)
    path = tmp_path / "all.seacat"
    argv = ["export", "--all", "--include-keys", "--to", str(path), "--data-dir", str(data)]
    assert transfer.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 tenants" in out and "encrypted under the passphrase" in out
    assert transfer.main(argv) == 1 and "exists" in capsys.readouterr().err  # never over a file
    plain = tmp_path / "plain.seacat"
    assert transfer.main(["export", "--tenant", "acme", "--to", str(plain), "--data-dir", str(data)]) == 0
    assert '"type":"key"' not in plain.read_text()
    acme_only = tmp_path / "acme.seacat"
    argv = ["export", "--tenant", "acme", "--include-keys", "--audit", "--to", str(acme_only), "--data-dir", str(data)]
    assert transfer.main(argv) == 0
    assert "1 webhook secret" in capsys.readouterr().out

    lines = path.read_bytes().splitlines(keepends=True)
    changed = tmp_path / "changed.seacat"  # one certificate's revocation dropped: the MAC tells
    changed.write_bytes(b"".join(line.replace(b'"keyCompromise"', b"null") for line in lines))
    cut = tmp_path / "cut.seacat"
    cut.write_bytes(b"".join(lines[:-3]))
    with aws_service() as client:
        side = transfer.aws_side(workers=4)
        with pytest.raises(transfer.FileError, match="checksum"):
            import_into(side, changed)
        with pytest.raises(transfer.FileError, match="cut short"):
            import_into(side, cut)
        with pytest.raises(transfer.TransferError, match="passphrase does not open"):
            import_into(side, path, "not the passphrase")
        with pytest.raises(transfer.Refused, match="no CA key for tenant acme"):
            import_into(side, plain)
        # a tenant of the same name with another key: nothing of the file is imported
        assert client.http.put("/tenants/other", headers=auth(AWS_OPERATOR), body="{}").status_code == 201
        with pytest.raises(transfer.Refused, match="tenant other with another CA key.*Nothing was imported"):
            import_into(side, path)
        assert client.http.get("/tenants/acme", headers=auth(AWS_OPERATOR)).status_code == 404
        assert client.http.get("/acme/x509/ca").status_code == 404

        monkeypatch.setenv("SEACAT_STAGE", "test")
        assert transfer.main(["import", str(path)]) == 2
        assert "refused" in capsys.readouterr().err
        with monkeypatch.context() as m:  # AWS's answer to a CA key's secret without the key policy's grant
            from chalicelib.errors import Unavailable
            from chalicelib.keystore.secretsmanager import SecretsManagerKeyStore

            def denied(*_: Any, **__: Any) -> None:
                raise Unavailable("the key store is not available")

            m.setattr(SecretsManagerKeyStore, "create", denied)
            assert transfer.main(["import", str(acme_only)]) == 1
            assert "kms:GenerateDataKey" in capsys.readouterr().err
        assert client.http.get("/tenants/acme", headers=auth(AWS_OPERATOR)).status_code == 404
        assert transfer.main(["import", str(acme_only)]) == 0
        assert "1 tenant" in capsys.readouterr().out
        assert transfer.main(["import", str(acme_only)]) == 0
        assert "nothing changed" in capsys.readouterr().out
        # a file without keys imports once the target holds the key
        assert transfer.main(["import", str(plain)]) == 0
        assert "nothing changed" in capsys.readouterr().out
        assert client.http.get("/acme/x509/ca").body == made.ca_bundle


# -- a tenant that rotated its CA ----------------------------------------------------------------------


def ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def aki(cert: x509.Certificate) -> bytes | None:
    return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier


def spec(cn: str, **extra: Any) -> str:
    body = json.loads(REFERENCE_SPEC)
    body["subject"]["CN"] = cn
    body.update(extra)
    return json.dumps(body)


@dataclass
class Rotated:
    """A tenant whose first CA was followed by a rotated one, as the data directory served it."""

    old_ca: x509.Certificate
    new_ca: x509.Certificate
    new_fingerprint: str
    old_client: x509.Certificate  # enrolled under the old CA
    new_client: x509.Certificate  # enrolled under the new one
    view: dict[str, Any]  # GET /tenants/acme
    bundle: bytes


def rotate_and_enrol(client: Any, *, retire: bool) -> Rotated:
    token = LOCAL_OPERATOR
    assert client.http.put("/tenants/acme", headers=auth(token), body="{}").status_code == 201
    r = client.http.put("/acme/x509/self-signed", headers=auth(token), body=spec("Root CA"))
    assert r.status_code == 201, r.body
    old_ca = x509.load_pem_x509_certificate(r.json_body["certificate"].encode())
    r = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    assert r.status_code == 200, r.body
    old_client = x509.load_der_x509_certificate(r.body)
    revoked = x509.load_der_x509_certificate(enrol(client, ec.generate_private_key(ec.SECP256R1())).body)
    r = client.http.put(f"/acme/x509/cert/{cert_id(revoked)}/revoke", headers=auth(token), body="{}")
    assert r.status_code == 200, r.body  # the old CA's CRLs list it
    r = client.http.post("/acme/x509/ca/rotate", headers=auth(token), body=spec("Root CA 2", curve="P-384"))
    assert r.status_code == 201, r.body
    new_ca = x509.load_pem_x509_certificate(r.json_body["certificate"].encode())
    new_fingerprint = r.json_body["keyFingerprint"]
    r = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    assert r.status_code == 200, r.body
    new_client = x509.load_der_x509_certificate(r.body)
    assert aki(old_client) == ski(old_ca) and aki(new_client) == ski(new_ca)
    if retire:
        r = client.http.put(f"/acme/x509/ca/{cert_id(old_ca)}/retire", headers=auth(token), body='{"force": true}')
        assert r.status_code == 200, r.body
        assert r.json_body["keyDeletionScheduled"] is True and r.json_body["certificatesRefused"] == 1
    assert gateway(client, old_client) == (403 if retire else 200)
    view = client.http.get("/tenants/acme", headers=auth(token)).json_body
    assert [ca["state"] for ca in view["cas"]] == ["retired" if retire else "trusted", "active"]
    return Rotated(old_ca, new_ca, new_fingerprint, old_client, new_client, view, client.http.get("/acme/x509/ca").body)


def served_the_same(client: Any, made: Rotated, token: str, *, retired: bool) -> None:
    """What GET /tenants/acme, the bundle, the gateway and the CRLs answer, as the data directory did;
    a new enrolment is issued by the new (active) CA with its key."""
    view = client.http.get("/tenants/acme", headers=auth(token)).json_body
    for name in ("keyFingerprint", "activeCa", "caCertificates", "cas"):
        assert view[name] == made.view[name], name
    assert client.http.get("/acme/x509/ca").body == made.bundle
    assert x509.load_pem_x509_certificates(made.bundle) == ([made.new_ca] if retired else [made.old_ca, made.new_ca])
    assert gateway(client, made.old_client) == (403 if retired else 200)
    assert gateway(client, made.new_client) == 200
    # the old CA's CRL: its final one when it is retired (its key is gone), else signed with its key
    old_crl = x509.load_der_x509_crl(client.http.get(f"/acme/x509/crl/{cert_id(made.old_ca)}").body)
    assert old_crl.is_signature_valid(made.old_ca.public_key()) and len(list(old_crl)) == 1
    if retired:
        assert old_crl.next_update_utc == made.old_ca.not_valid_after_utc
    fresh = enrol(client, ec.generate_private_key(ec.SECP256R1()))
    assert fresh.status_code == 200, fresh.body
    issued = x509.load_der_x509_certificate(fresh.body)
    assert aki(issued) == ski(made.new_ca) and issued.issuer == made.new_ca.subject
    issued.verify_directly_issued_by(made.new_ca)  # signed with the new CA's key, which came along
    assert gateway(client, issued) == 200


@pytest.mark.parametrize("retired", [False, True], ids=["old-ca-trusted", "old-ca-retired"])
def test_a_rotated_tenant_moves_with_its_ca_states_and_keys(retired: bool, tmp_path: Path, local_env: None) -> None:
    import boto3

    data = tmp_path / "data"
    with local_service(data) as client:
        made = rotate_and_enrol(client, retire=retired)
    exported = export_local(data, tmp_path / "acme.seacat", ["acme"])
    counts = exported.counts["acme"]
    # every CA key the entries are over; the retired one's secret is scheduled for deletion: marked absent
    assert (counts["ca-key"], counts["absent-ca-key"]) == ((1, 1) if retired else (2, 0))
    lines = [json.loads(line) for line in exported.path.read_text().splitlines()]
    [tenant_line] = [line for line in lines if line.get("type") == "tenant"]
    assert [(ca["state"], ca["key_secret"]) for ca in tenant_line["cas"]] == [
        ("retired" if retired else "trusted", None),
        ("trusted", f"seacat/local/acme/ca-key-{made.new_fingerprint[:16]}"),
    ]
    final_crls = [line["final_crl"] for line in lines if line.get("type") == "certificate" and line["kind"] == "ca"]
    assert [crl is not None for crl in final_crls] == [retired, False]

    with aws_service() as client:
        side = transfer.aws_side(workers=4)
        [result] = import_into(side, exported.path)
        assert result.outcomes[Outcome.DIFFERS] == 0 and result.absent_keys == int(retired)
        assert ("1 CA key no longer in use left out of the file" in result.describe()) is retired
        # each key under the stage's name for it, and the entries name those secrets
        rotated_secret = f"seacat/test/acme/ca-key-{made.new_fingerprint[:16]}"
        names = {s["Name"] for s in boto3.client("secretsmanager").list_secrets()["SecretList"]}
        assert {n for n in names if "/ca-key" in n} == (
            {rotated_secret} if retired else {"seacat/test/acme/ca-key", rotated_secret}
        )
        tenant = side.store.tenant("acme")
        assert tenant is not None and tenant.key_secret == "seacat/test/acme/ca-key"
        assert [ca.key_secret for ca in tenant.cas] == [None, rotated_secret]
        assert [ca.state_at is not None for ca in tenant.cas] == [retired, False]
        served_the_same(client, made, AWS_OPERATOR, retired=retired)
        again = import_into(side, exported.path)
        assert written(again) == 0 and again[0].outcomes[Outcome.DIFFERS] == 0

        if not retired:  # the lifecycle goes on on the stage: retiring the old CA there releases its key
            r = client.http.put(
                f"/acme/x509/ca/{cert_id(made.old_ca)}/retire", headers=auth(AWS_OPERATOR), body='{"force": true}'
            )
            assert r.status_code == 200 and r.json_body["keyDeletionScheduled"] is True, r.body
            described = boto3.client("secretsmanager").describe_secret(SecretId="seacat/test/acme/ca-key")
            assert described.get("DeletedDate") is not None
            assert gateway(client, made.old_client) == 403
        made.view = client.http.get("/tenants/acme", headers=auth(AWS_OPERATOR)).json_body  # as the stage has it now
        made.bundle = client.http.get("/acme/x509/ca").body

        # and back into a new data directory: the released key is not read from the stage (it cannot be)
        back = transfer.export(
            side,
            tmp_path / "back.seacat",
            ["acme"],
            include_keys=True,
            audit=False,
            passphrase_text=PASSPHRASE,
            scrypt_n=FAST_SCRYPT,
        )
        assert (back.counts["acme"]["ca-key"], back.counts["acme"]["absent-ca-key"]) == (1, 1)
    fresh = tmp_path / "fresh"
    target = transfer.sqlite_side(fresh, create=True)
    try:
        assert written(import_into(target, back.path)) > 0
    finally:
        target.close()
    with local_service(fresh) as client:
        served_the_same(client, made, LOCAL_OPERATOR, retired=True)
