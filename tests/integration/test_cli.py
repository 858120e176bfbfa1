"""The `seacat` command line against a real HTTP server: app.py through embedded/wsgi.py (the adapter
`make run` serves) on 127.0.0.1, an ephemeral port, in-memory stores. Each test runs the command's
``main`` in this process and checks its exit code, its --json output and the service's state."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_cli.__main__ import main
from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC, TEST_ENV, reset_caches
from tests.reference_pki import ca_id, reference_ca, sec1_pem, write_reference

OPERATOR = "sct_00000000000000c1_cli-operator-token-0123456789abcdef"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_environ(self) -> dict[str, Any]:
        # wsgiref makes up "text/plain" for a request without a Content-Type; granian (make run) and
        # API Gateway pass none, and the routes answer a made-up type with 415.
        environ: dict[str, Any] = super().get_environ()
        if self.headers.get("Content-Type") is None:
            environ.pop("CONTENT_TYPE", None)
        return environ


@dataclass
class Service:
    url: str

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {OPERATOR}", "Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def enrol(
        self, tenant: str, key: ec.EllipticCurvePrivateKey, application: str = "com.example.app", **kw: Any
    ) -> Any:
        return self.call(
            "PUT",
            f"/{tenant}/seacat/enroll",
            build_cr(key, application=application, **kw),
            {"Content-Type": "application/octet-stream"},
        )


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    from app import app
    from chalicelib import context
    from chalicelib.service import tokens
    from embedded.wsgi import ChaliceWSGI, chalice_config

    # As make run has them: every request reads the tenant and the identity afresh.
    for name, value in {**TEST_ENV, "SEACAT_REVOCATION_CACHE_SECONDS": "0"}.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    context.use_memory()
    tokens.install_operator_token(OPERATOR)
    original = app.__class__
    server: WSGIServer = make_server("127.0.0.1", 0, ChaliceWSGI(app, chalice_config("test")), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Service(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.__class__ = original
        context.reset()
        reset_caches()


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error(self) -> Any:
        return json.loads(self.err)


def seacat(service: Service, *argv: str, token: str | None = OPERATOR, **env: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    environ = {"SEACAT_URL": service.url, **({"SEACAT_TOKEN": token} if token else {}), **env}
    code = main(list(argv), environ=environ, out=out, err=err)
    run = Run(code, out.getvalue(), err.getvalue())
    assert OPERATOR not in run.out + run.err, "the token was printed"
    return run


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(REFERENCE_SPEC)
    return path


def _tenant_with_ca(service: Service, tmp_path: Path, tenant: str, *options: str) -> str:
    assert seacat(service, "tenant", "create", tenant, *options).code == 0
    made = seacat(service, "--json", "ca", "create", tenant, "--spec", str(_spec(tmp_path)))
    assert made.code == 0, made.err
    return str(made.json["ca_cert"])


# -- tenants, exit codes, the token ---------------------------------------------------------------


def test_tenant_create_show_set_with_exit_codes_and_json(service: Service, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(sec1_pem(key))
    made = seacat(
        service, "tenant", "create", "acme", "--private-key-file", str(key_file), "--lifetime-days", "90", "--json"
    )
    assert made.code == 0, made.err
    from chalicelib.ca.keys import public_key_fingerprint

    assert made.json["keyFingerprint"] == public_key_fingerprint(key.public_key())
    assert made.json["keyImported"] is True
    assert service.get("/tenants/acme")["config"]["lifetimeDays"] == 90

    changed = seacat(service, "tenant", "set", "acme", "--manual-approval", "on", "--json")
    assert changed.code == 0 and changed.json["config"]["manualApproval"] is True
    assert service.get("/tenants/acme")["config"]["manualApproval"] is True

    people = seacat(service, "tenant", "show", "acme")
    assert people.code == 0 and re.search(r"^manualApproval:\s+yes$", people.out, re.M), people.out

    # 3: not found, and `set` does not create the tenant it did not find.
    missing = seacat(service, "tenant", "set", "nobody", "--seacat", "off", "--json")
    assert missing.code == 3 and missing.error["status"] == 404
    assert service.call("GET", "/tenants/nobody")[0] == 404
    # 1: the service refused it, naming the field.
    refused = seacat(service, "tenant", "set", "acme", "--lifetime-days", "5", "--json")
    assert refused.code == 1 and refused.error["status"] == 400 and refused.error["field"] == "lifetimeDays"
    assert service.get("/tenants/acme")["config"]["lifetimeDays"] == 90
    # 2: usage, nothing sent.
    assert seacat(service, "tenant", "set", "acme").code == 2
    assert seacat(service, "tenant", "frobnicate").code == 2


def test_the_token_comes_from_the_environment_or_a_file_never_the_command_line(
    service: Service, tmp_path: Path
) -> None:
    assert seacat(service, "tenant", "create", "acme").code == 0
    on_line = seacat(service, "tenant", "show", "acme", "--token", "sct_secret_on_argv", token=None)
    assert on_line.code == 2 and "sct_secret_on_argv" not in on_line.err
    none = seacat(service, "tenant", "show", "acme", token=None)
    assert none.code == 2 and "SEACAT_TOKEN" in none.err
    token_file = tmp_path / "token"
    token_file.write_text(OPERATOR + "\n")
    assert seacat(service, "tenant", "show", "acme", "--token-file", str(token_file), token=None).code == 0
    assert seacat(service, "tenant", "show", "acme", token=None, SEACAT_TOKEN_FILE=str(token_file)).code == 0
    both = seacat(service, "tenant", "show", "acme", "--token-file", str(token_file))
    assert both.code == 2
    wrong = seacat(service, "tenant", "show", "acme", "--json", token="sct_0000000000000000_wrong")
    assert wrong.code == 1 and wrong.error["status"] == 401


def test_a_ca_key_never_travels_over_plain_http_and_no_id_escapes_its_path_segment(
    service: Service, tmp_path: Path
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(sec1_pem(ec.generate_private_key(ec.SECP256R1())))
    plain = seacat(
        service, "tenant", "create", "acme", "--private-key-file", str(key_file), "--url", "http://pki.invalid"
    )
    assert plain.code == 2 and "plain http" in plain.err
    # nor does the admin token (it rotates CA keys, reads every request): refused before any call
    shown = seacat(service, "tenant", "show", "acme", "--url", "http://pki.invalid")
    assert shown.code == 2 and "plain http" in shown.err
    assert seacat(service, "tenant", "show", "..").code == 2
    assert seacat(service, "cert", "show", "acme", ".").code == 2


def test_a_tenant_token_sees_its_tenant_only_and_stops_at_revocation(service: Service) -> None:
    for tenant in ("acme", "beta"):
        assert seacat(service, "tenant", "create", tenant).code == 0
    made = seacat(service, "token", "create", "acme", "--label", "ci", "--json")
    assert made.code == 0 and made.json["tenant"] == "acme"
    token = made.json["token"]
    assert seacat(service, "tenant", "show", "acme", token=token).code == 0
    assert seacat(service, "tenant", "show", "beta", token=token).code == 3  # another tenant's is absent
    assert seacat(service, "token", "create", "beta", token=token).code == 1  # 403: operator only
    assert seacat(service, "token", "revoke", made.json["tokenId"]).code == 0
    assert seacat(service, "tenant", "show", "acme", "--json", token=token).code == 1
    # an expiring one, then the tenant's list: newest first, states, never a token
    timed = seacat(service, "token", "create", "acme", "--expires-in", "7d", "--json")
    assert timed.code == 0 and timed.json["expiresAt"] and timed.json["state"] == "active"
    assert seacat(service, "token", "create", "acme", "--expires-in", "forever").code == 2
    listed = seacat(service, "token", "list", "acme", "--json")
    assert listed.code == 0
    assert [(t["tokenId"], t["state"]) for t in listed.json] == [
        (timed.json["tokenId"], "active"),
        (made.json["tokenId"], "revoked"),
    ]
    assert token not in listed.out and timed.json["token"] not in listed.out
    shown = seacat(service, "token", "list", "acme")
    assert shown.code == 0 and "TOKEN ID" in shown.out and "revoked" in shown.out


def test_no_service_is_exit_4_and_an_error_answer_from_a_proxy_too(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = seacat(Service(f"http://127.0.0.1:{port}"), "tenant", "show", "acme", "--json")
    assert gone.code == 4 and gone.error["exitCode"] == 4

    def failing(environ: Any, start_response: Any) -> list[bytes]:
        start_response("502 Bad Gateway", [("Content-Type", "text/html")])
        return [b"<html>bad gateway</html>"]

    server = make_server("127.0.0.1", 0, failing, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        bad = seacat(Service(f"http://127.0.0.1:{server.server_port}"), "tenant", "show", "acme", "--json")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
    assert bad.code == 4 and bad.error["status"] == 502


# -- CA certificates, CRL, certificates ------------------------------------------------------------


def test_ca_create_list_rotate_retire_and_the_bundle(service: Service, tmp_path: Path) -> None:
    first = _tenant_with_ca(service, tmp_path, "acme")
    listed = seacat(service, "ca", "list", "acme", "--json")
    assert [(c["id"], c["state"]) for c in listed.json] == [(first, "active")]
    rotated = seacat(service, "ca", "rotate", "acme", "--spec", str(_spec(tmp_path)), "--json")
    assert rotated.code == 0 and rotated.json["keyFingerprint"]
    second = rotated.json["ca_cert"]
    bundle = seacat(service, "ca", "bundle", "acme", "--json")
    assert bundle.code == 0 and bundle.json["certificates"] == [first, second]
    out = tmp_path / "bundle.pem"
    assert seacat(service, "ca", "bundle", "acme", "--out", str(out)).code == 0
    assert len(x509.load_pem_x509_certificates(out.read_bytes())) == 2
    retired = seacat(service, "ca", "retire", "acme", first, "--force", "--json")
    assert retired.code == 0 and retired.json["ca"]["state"] == "retired"
    states = {c["id"]: c["state"] for c in service.get("/tenants/acme")["cas"]}
    assert states == {first: "retired", second: "active"}
    active = seacat(service, "ca", "retire", "acme", second, "--json")
    assert active.code == 1 and active.error["status"] == 409


def test_cert_show_download_revoke_and_the_crl_lists_it(service: Service, tmp_path: Path) -> None:
    _tenant_with_ca(service, tmp_path, "acme")
    status, der = service.enrol("acme", ec.generate_private_key(ec.SECP256R1()))
    assert status == 200
    issued = x509.load_der_x509_certificate(der)
    cert_id = ca_id("acme", issued)
    shown = seacat(service, "cert", "show", "acme", cert_id, "--json")
    assert (
        shown.code == 0
        and shown.json["status"] == "valid"
        and shown.json["serialNumber"] == format(issued.serial_number, "x")
    )
    pem_out, der_out = tmp_path / "c.pem", tmp_path / "c.der"
    assert seacat(service, "cert", "download", "acme", cert_id, "--out", str(pem_out)).code == 0
    assert seacat(service, "cert", "download", "acme", cert_id, "--der", "--out", str(der_out)).code == 0
    assert x509.load_pem_x509_certificate(pem_out.read_bytes()) == issued and der_out.read_bytes() == der
    revoked = seacat(service, "cert", "revoke", "acme", cert_id, "--reason", "keyCompromise", "--json")
    assert revoked.code == 0 and revoked.json["revoked"]["reason"] == "keyCompromise"
    assert service.get(f"/acme/x509/cert/{cert_id}")["status"] == "revoked"
    crl = seacat(service, "crl", "show", "acme", "--json")
    assert crl.code == 0
    assert [(r["serialNumber"], r["reason"]) for r in crl.json["revoked"]] == [
        (format(issued.serial_number, "x"), "key_compromise")
    ]
    crl_file = tmp_path / "crl.der"
    downloaded = seacat(service, "crl", "download", "acme", "--out", str(crl_file), "--json")
    assert downloaded.code == 0 and downloaded.json == {"out": str(crl_file), "format": "der"}
    assert x509.load_der_x509_crl(crl_file.read_bytes()).get_revoked_certificate_by_serial_number(issued.serial_number)
    assert seacat(service, "cert", "show", "acme", "0" * 96).code == 3


# -- the approval queue and identities --------------------------------------------------------------


def test_the_manual_queue_approve_reject_and_device_strings_reach_the_terminal_inert(
    service: Service, tmp_path: Path
) -> None:
    _tenant_with_ca(service, tmp_path, "acme", "--manual-approval", "on")
    good, bad = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    assert service.enrol("acme", good)[0] == 202
    hostile = "evil\x1b]0;pwned\x07\x1b[2J<script>"
    assert service.enrol("acme", bad, application=hostile)[0] == 202
    listed = seacat(service, "cr", "list", "acme", "--json")
    assert listed.code == 0 and len(listed.json) == 2
    by_app = {r["seacat_application"]: r for r in listed.json}
    people = seacat(service, "cr", "list", "acme")
    assert "\x1b" not in people.out and "\x07" not in people.out and "com.example.app" in people.out
    one = seacat(service, "cr", "show", "acme", by_app["com.example.app"]["_id"])
    assert one.code == 0 and "\x1b" not in one.out

    other = next(r["_id"] for app, r in by_app.items() if app != "com.example.app")
    approved = seacat(service, "cr", "approve", "acme", by_app["com.example.app"]["_id"], "--json")
    assert approved.code == 0 and approved.json["request"]["state"] == "approved"
    rejected = seacat(service, "cr", "reject", "acme", other, "--json")
    assert rejected.code == 0 and rejected.json["request"]["state"] == "rejected"
    assert seacat(service, "cr", "list", "acme", "--json").json == []
    assert service.get(f"/acme/seacat/cr/{other}")["state"] == "rejected"
    assert service.enrol("acme", good)[0] == 200  # approved: its next enrolment is issued
    # The opposite decision on a decided request is the service's 409: exit 1.
    assert seacat(service, "cr", "approve", "acme", other).code == 1
    assert seacat(service, "cr", "show", "acme", "0" * 96).code == 3


def test_identity_show_block_unblock_revoke(service: Service, tmp_path: Path) -> None:
    from seacat_client import identity_of_public_key

    _tenant_with_ca(service, tmp_path, "acme")
    key = ec.generate_private_key(ec.SECP256R1())
    assert service.enrol("acme", key)[0] == 200
    identity = identity_of_public_key(key.public_key())
    shown = seacat(service, "identity", "show", "acme", identity, "--certificates", "--json")
    assert shown.code == 0 and shown.json["identity"] == identity and len(shown.json["certificateList"]) == 1
    assert seacat(service, "identity", "block", "acme", identity, "--json").json["blocked"] is True
    assert service.get(f"/acme/seacat/identity/{identity}")["blocked"] is True
    assert service.enrol("acme", key)[0] == 403
    assert seacat(service, "identity", "unblock", "acme", identity).code == 0
    assert service.get(f"/acme/seacat/identity/{identity}")["blocked"] is False
    revoked = seacat(service, "identity", "revoke", "acme", identity, "--reason", "keyCompromise", "--json")
    assert revoked.code == 0 and len(revoked.json["certificates"]) == 1
    assert service.get(f"/acme/seacat/identity/{identity}")["revoked"]["reason"] == "keyCompromise"
    assert seacat(service, "identity", "show", "acme", "AAAAAAAAAAAAAAAA").code == 3


# -- paging, the audit trail --------------------------------------------------------------------------


def test_cr_list_pages_through_a_long_queue_up_to_limit_or_all(service: Service, tmp_path: Path) -> None:
    _tenant_with_ca(service, tmp_path, "acme", "--manual-approval", "on")
    for _ in range(130):
        assert service.enrol("acme", ec.generate_private_key(ec.SECP256R1()))[0] == 202
    every = seacat(service, "cr", "list", "acme", "--all", "--json")
    assert every.code == 0 and len(every.json) == 130 and len({r["_id"] for r in every.json}) == 130
    some = seacat(service, "cr", "list", "acme", "--limit", "120", "--json")
    assert [r["_id"] for r in some.json] == [r["_id"] for r in every.json[:120]]
    assert len(seacat(service, "cr", "list", "acme", "--json").json) == 50  # the default limit

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = io.StringIO(), Terminal()
    environ = {"SEACAT_URL": service.url, "SEACAT_TOKEN": OPERATOR}
    assert main(["cr", "list", "acme", "--all"], environ=environ, out=out, err=err) == 0
    assert "100 requests so far" in err.getvalue() and err.getvalue().endswith("130 requests\n")
    assert len(out.getvalue().splitlines()) == 131  # the heading and every request


def test_audit_lists_and_follow_prints_new_events_then_ctrl_c_exits_130(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seacat_cli.commands import audit

    _tenant_with_ca(service, tmp_path, "acme")
    listed = seacat(service, "audit", "acme", "--json")
    assert listed.code == 0
    assert {"tenant.created", "key.generated", "ca.created"} <= {e["type"] for e in listed.json}
    key = ec.generate_private_key(ec.SECP256R1())
    steps = iter(["enrol", "block", "quiet"])
    slept: list[float] = []

    def between_polls(seconds: float) -> None:  # what happens while the command waits
        slept.append(seconds)
        step = next(steps)
        if step == "enrol":
            assert service.enrol("acme", key)[0] == 200
        elif step == "block":
            from seacat_client import identity_of_public_key

            assert seacat(service, "identity", "block", "acme", identity_of_public_key(key.public_key())).code == 0

    monkeypatch.setattr(audit, "sleep", between_polls)
    followed = seacat(service, "audit", "acme", "--follow", "--interval", "2", "--polls", "3", "--json")
    assert followed.code == 0, followed.err
    assert slept == [2.0, 2.0, 2.0]
    events = [json.loads(line) for line in followed.out.splitlines()]
    types = [e["type"] for e in events]
    assert types[: len(listed.json)] == [e["type"] for e in reversed(listed.json)]  # the recent ones, oldest first
    new = types[len(listed.json) :]
    assert "certificate.issued" in new and new[-1] == "identity.blocked"
    assert len({e["id"] for e in events}) == len(events)  # each once

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(audit, "sleep", interrupted)
    stopped = seacat(service, "audit", "acme", "--follow")
    assert stopped.code == 130 and "Traceback" not in stopped.err
    assert seacat(service, "audit", "acme", "--follow", "--interval", "0.1").code == 2
    assert seacat(service, "audit", "acme", "--polls", "2").code == 2  # --polls goes with --follow


# -- profiles, PKCS#10 signing, EST enrolment credentials, tenants, whoami ------------------------------

ROUTERS = {
    "keyTypes": ["P-256"],
    "lifetimeDays": 30,
    "extendedKeyUsage": ["clientAuth", "serverAuth"],
    "sans": {"dns": ["*.routers.example.com"]},
    "description": "edge routers",
}


def _csr(cn: str, dns: str) -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateSigningRequest]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, csr


def _profile_file(tmp_path: Path, profile: dict[str, Any]) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    return path


def test_profile_put_list_show_delete(service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tenant_with_ca(service, tmp_path, "acme")
    made = seacat(
        service, "profile", "put", "acme", "routers", "--file", str(_profile_file(tmp_path, ROUTERS)), "--json"
    )
    assert made.code == 0, made.err
    assert made.json["name"] == "routers" and made.json["lifetimeHours"] == 30 * 24 and "created" in made.err
    stored = service.get("/acme/x509/profiles/routers")
    assert stored["extendedKeyUsage"] == ["clientAuth", "serverAuth"]
    assert stored["sans"] == {"dns": ["*.routers.example.com"]}

    # show --json, edited, put back from standard input: the shown-only keys do not stand in the way.
    shown = seacat(service, "profile", "show", "acme", "routers", "--json").json
    assert shown["tenant"] == "acme" and shown["estDefault"] is False
    # The service refuses control and bidi characters in a description; markup stays text.
    shown["description"] = "edge <b>routers</b>"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(shown).encode())))
    replaced = seacat(service, "profile", "put", "acme", "routers")
    assert (
        replaced.code == 0 and "replaced" in replaced.err and re.search(r"^description:\s+edge <b>", replaced.out, re.M)
    )
    assert service.get("/acme/x509/profiles/routers")["description"] == "edge <b>routers</b>"

    listed = seacat(service, "profile", "list", "acme", "--json")
    assert listed.code == 0 and [p["name"] for p in listed.json] == ["seacat", "routers"]
    people = seacat(service, "profile", "list", "acme")
    assert people.code == 0 and people.out.splitlines()[0].split()[:2] == ["NAME", "KEY"]
    assert "edge <b>routers</b>" in people.out

    # Refusals: the service's field (1), not JSON (2, nothing sent), the built-in one (1), no such (3).
    bad = seacat(
        service, "profile", "put", "acme", "r2", "--file", str(_profile_file(tmp_path, {"keyTypes": ["DSA"]})), "--json"
    )
    assert bad.code == 1 and bad.error["status"] == 400 and bad.error["field"].startswith("keyTypes")
    (tmp_path / "broken.json").write_text("{")
    assert seacat(service, "profile", "put", "acme", "r2", "--file", str(tmp_path / "broken.json")).code == 2
    assert service.call("GET", "/acme/x509/profiles/r2")[0] == 404
    assert (
        seacat(service, "profile", "put", "acme", "seacat", "--file", str(_profile_file(tmp_path, ROUTERS))).code == 1
    )
    assert seacat(service, "profile", "show", "acme", "nothing").code == 3

    deleted = seacat(service, "profile", "delete", "acme", "routers", "--json")
    assert deleted.code == 0 and deleted.json == {"tenant": "acme", "name": "routers", "deleted": True}
    assert service.call("GET", "/acme/x509/profiles/routers")[0] == 404
    again = seacat(service, "profile", "delete", "acme", "routers", "--json")
    assert again.code == 0 and again.json["deleted"] is False


def test_profile_list_pages_with_progress(service: Service, tmp_path: Path) -> None:
    _tenant_with_ca(service, tmp_path, "acme")
    for n in range(30):
        assert service.call("PUT", f"/acme/x509/profiles/p{n:02d}", json.dumps({}).encode())[0] == 201
    every = seacat(service, "profile", "list", "acme", "--all", "--json")
    assert every.code == 0 and [p["name"] for p in every.json] == ["seacat", *[f"p{n:02d}" for n in range(30)]]
    some = seacat(service, "profile", "list", "acme", "--limit", "7", "--json")
    assert [p["name"] for p in some.json] == [p["name"] for p in every.json[:7]]


def test_cert_sign_under_a_profile_pem_der_and_refusals(service: Service, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    ca = _tenant_with_ca(service, tmp_path, "acme")
    assert (
        seacat(service, "profile", "put", "acme", "routers", "--file", str(_profile_file(tmp_path, ROUTERS))).code == 0
    )
    key, csr = _csr("r1", "r1.routers.example.com")
    csr_file = tmp_path / "r1.csr"
    csr_file.write_bytes(csr.public_bytes(Encoding.PEM))
    out = tmp_path / "r1.der"
    signed = seacat(
        service,
        "cert",
        "sign",
        "acme",
        str(csr_file),
        "--profile",
        "routers",
        "--out",
        str(out),
        "--format",
        "der",
        "--json",
    )
    assert signed.code == 0, signed.err
    cert = x509.load_der_x509_certificate(out.read_bytes())
    assert cert.public_key() == key.public_key()
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["r1.routers.example.com"]
    assert signed.json["outcome"] == "issued" and signed.json["profile"] == "routers"
    assert x509.load_pem_x509_certificate(signed.json["certificate"].encode()) == cert
    assert service.get(f"/acme/x509/cert/{signed.json['_id']}")["issuer_ca"] == ca

    # DER CSR, certificate on stdout as PEM for people: the same request again is the same certificate.
    der_csr = tmp_path / "r1.der.csr"
    der_csr.write_bytes(csr.public_bytes(Encoding.DER))
    again = seacat(service, "cert", "sign", "acme", str(der_csr), "--profile", "routers")
    assert again.code == 0 and x509.load_pem_x509_certificate(again.out.encode()) == cert and "existing" in again.err

    # Outside the profile: the service's field (1); not a CSR: 2, nothing sent; no such profile: 3.
    _, evil = _csr("r2", "evil.example.org")
    evil_file = tmp_path / "evil.csr"
    evil_file.write_bytes(evil.public_bytes(Encoding.PEM))
    refused = seacat(service, "cert", "sign", "acme", str(evil_file), "--profile", "routers", "--json")
    assert refused.code == 1 and refused.error["status"] == 400 and refused.error["field"] == "subjectAltName[0]"
    assert seacat(service, "cert", "sign", "acme", str(_spec(tmp_path)), "--profile", "routers").code == 2
    assert seacat(service, "cert", "sign", "acme", str(csr_file), "--profile", "nothing").code == 3
    assert seacat(service, "cert", "sign", "acme", str(csr_file)).code == 2  # --profile is required


def test_cert_sign_pending_is_exit_5_with_the_request_id_then_collects_after_approval(
    service: Service, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    _tenant_with_ca(service, tmp_path, "acme", "--manual-approval", "on")
    assert (
        seacat(service, "profile", "put", "acme", "routers", "--file", str(_profile_file(tmp_path, ROUTERS))).code == 0
    )
    _, csr = _csr("r1", "r1.routers.example.com")
    csr_file = tmp_path / "r1.csr"
    csr_file.write_bytes(csr.public_bytes(Encoding.PEM))
    out = tmp_path / "r1.pem"
    pending = seacat(
        service, "cert", "sign", "acme", str(csr_file), "--profile", "routers", "--out", str(out), "--json"
    )
    assert pending.code == 5 and pending.json["result"] == "PENDING" and not out.exists()
    request_id = pending.json["id"]
    assert service.get(f"/acme/seacat/cr/{request_id}")["state"] == "pending"
    people = seacat(service, "cert", "sign", "acme", str(csr_file), "--profile", "routers")
    assert people.code == 5 and request_id in people.out and "pending" in people.out
    assert seacat(service, "cr", "approve", "acme", request_id).code == 0
    done = seacat(service, "cert", "sign", "acme", str(csr_file), "--profile", "routers", "--out", str(out))
    assert done.code == 0, done.err
    assert x509.load_pem_x509_certificate(out.read_bytes()).public_key() == csr.public_key()


def test_est_credential_password_is_shown_at_creation_only(service: Service, tmp_path: Path) -> None:
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    _tenant_with_ca(service, tmp_path, "acme")
    assert (
        seacat(service, "profile", "put", "acme", "routers", "--file", str(_profile_file(tmp_path, ROUTERS))).code == 0
    )
    made = seacat(
        service,
        "est",
        "credential",
        "create",
        "acme",
        "--profile",
        "routers",
        "--uses",
        "1",
        "--expires-in",
        "1h",
        "--label",
        "r1\x1b[2J",
        "--json",
    )
    assert made.code == 0, made.err
    username, password = made.json["username"], made.json["password"]
    assert username.startswith("estc_") and len(password) >= 32 and made.json["usesLeft"] == 1
    people = seacat(service, "est", "credential", "create", "acme", "--profile", "routers", "--expires-in", "30m")
    assert people.code == 0 and re.search(r"^password \(shown once, keep it now\): \S{32,}$", people.out, re.M)

    # The password works (HTTP Basic on /x509/sign), and takes the one use.
    _, csr = _csr("r1", "r1.routers.example.com")
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    status, _ = service.call(
        "POST",
        "/acme/x509/sign?profile=routers",
        csr.public_bytes(Encoding.DER),
        {"Authorization": f"Basic {basic}", "Content-Type": "application/pkcs10"},
    )
    assert status == 200

    shown = seacat(service, "est", "credential", "show", "acme", username, "--json")
    assert shown.code == 0 and shown.json["state"] == "used" and shown.json["usesLeft"] == 0
    listed = seacat(service, "est", "credential", "list", "acme", "--json")
    assert listed.code == 0 and [c["username"] for c in listed.json][-1] == username and len(listed.json) == 2
    revoked = seacat(service, "est", "credential", "revoke", "acme", username, "--json")
    assert revoked.code == 0 and revoked.json["state"] == "revoked"
    assert service.get(f"/acme/est/credentials/{username}")["revokedAt"] is not None
    later = [
        shown,
        listed,
        revoked,
        seacat(service, "est", "credential", "list", "acme"),
        seacat(service, "est", "credential", "show", "acme", username),
        seacat(service, "est", "credential", "revoke", "acme", username),
    ]
    for run in later:
        assert run.code == 0 and password not in run.out + run.err and "password" not in run.out
    assert "\x1b" not in later[3].out and "r1" in later[3].out

    # Refusals: the built-in profile (1, field profile), a profile it lacks (3), a bad duration (2).
    builtin = seacat(
        service, "est", "credential", "create", "acme", "--profile", "seacat", "--expires-in", "1h", "--json"
    )
    assert builtin.code == 1 and builtin.error["field"] == "profile"
    assert seacat(service, "est", "credential", "create", "acme", "--profile", "nope", "--expires-in", "1h").code == 3
    assert (
        seacat(service, "est", "credential", "create", "acme", "--profile", "routers", "--expires-in", "soon").code == 2
    )
    assert seacat(service, "est", "credential", "show", "acme", "estc_" + "0" * 20).code == 3


def test_est_credential_list_pages_past_100_with_progress_on_a_terminal(service: Service, tmp_path: Path) -> None:
    _tenant_with_ca(service, tmp_path, "acme")
    assert service.call("PUT", "/acme/x509/profiles/routers", json.dumps(ROUTERS).encode())[0] == 201
    body = json.dumps({"profile": "routers", "expiresIn": "1h"}).encode()
    made = [json.loads(service.call("POST", "/acme/est/credentials", body)[1])["username"] for _ in range(105)]
    every = seacat(service, "est", "credential", "list", "acme", "--all", "--json")
    assert every.code == 0 and sorted(c["username"] for c in every.json) == sorted(made)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = io.StringIO(), Terminal()
    environ = {"SEACAT_URL": service.url, "SEACAT_TOKEN": OPERATOR}
    assert main(["est", "credential", "list", "acme", "--all"], environ=environ, out=out, err=err) == 0
    assert "100 credentials so far" in err.getvalue() and err.getvalue().endswith("105 credentials\n")
    assert len(out.getvalue().splitlines()) == 106  # the heading and every credential


def test_tenant_list_is_for_the_operator_and_whoami_names_the_token(service: Service) -> None:
    for tenant in ("beta", "acme"):
        assert seacat(service, "tenant", "create", tenant).code == 0
    listed = seacat(service, "tenant", "list", "--json")
    assert listed.code == 0 and listed.json == [{"tenant": "acme"}, {"tenant": "beta"}]
    assert seacat(service, "tenant", "list").out.split() == ["TENANT", "acme", "beta"]
    me = seacat(service, "whoami", "--json")
    assert me.code == 0 and me.json["operator"] is True and me.json["tenant"] is None

    made = seacat(service, "token", "create", "acme", "--json")
    token = made.json["token"]
    scoped = seacat(service, "--json", "whoami", token=token)
    assert scoped.code == 0 and scoped.json == {"tokenId": made.json["tokenId"], "tenant": "acme", "operator": False}
    people = seacat(service, "whoami", token=token)
    assert re.search(r"^tenant:\s+acme$", people.out, re.M) and token not in people.out + people.err
    refused = seacat(service, "tenant", "list", "--json", token=token)
    assert refused.code == 1 and refused.error["status"] == 403 and "beta" not in refused.out + refused.err


# -- gateway, completion ------------------------------------------------------------------------------


def test_gateway_render_writes_nginx_conf_for_the_tenant(service: Service, tmp_path: Path) -> None:
    _tenant_with_ca(service, tmp_path, "acme")
    out = tmp_path / "gw"
    rendered = seacat(
        service,
        "gateway",
        "render",
        "--tenant",
        "acme",
        "--out",
        str(out),
        "--self-signed-server-cert",
        "--listen",
        "8443",
        "--json",
    )
    assert rendered.code == 0, rendered.err
    conf = Path(rendered.json["conf"]).read_text()
    assert "proxy_pass http://seacat_pki_auth/acme/seacat/nginx_authenticate;" in conf  # through the upstream
    assert f"server {service.url.removeprefix('http://')};" in conf
    assert x509.load_pem_x509_certificates((out / "seacat_ca.pem").read_bytes())
    made = seacat(service, "gateway", "credential", "acme", "--json")
    assert made.code == 0 and made.json["credential"].startswith("sgc_")
    assert service.get("/tenants/acme")["config"]["gatewayCredentials"] == 1
    assert seacat(service, "gateway", "drop-credential", "acme", "--json").json["valid"] == 0
    bad = seacat(service, "gateway", "render", "--tenant", "acme", "--out", str(out), "--json")
    assert bad.code == 2  # neither a server certificate nor --self-signed-server-cert


def test_bash_completion_completes_commands_subcommands_options_and_choices(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["completion", "bash"], environ={}, out=out, err=io.StringIO()) == 0
    script = tmp_path / "seacat.bash"
    script.write_text(out.getvalue())

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        program = (
            f"source {script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)})\nCOMP_CWORD={len(words) - 1}\n"
            '_seacat_complete\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30, check=True)
        return sorted(done.stdout.split())

    assert complete("seacat i") == ["identity", "import-reference"]
    assert complete("seacat ca r") == ["retire", "revoke", "rotate"]
    assert complete("seacat ca revoke acme X --reason c") == ["cACompromise", "certificateHold", "cessationOfOperation"]
    assert "--follow" in complete("seacat audit acme --f")
    assert complete("seacat --json cr a") == ["approve"]
    assert complete("seacat p") == ["profile"]
    assert complete("seacat profile ") == ["delete", "list", "put", "show"]
    assert complete("seacat est ") == ["credential"]
    assert complete("seacat est credential ") == ["create", "list", "revoke", "show"]
    assert "--expires-in" in complete("seacat est credential create acme --e")
    assert complete("seacat cert sign acme x.csr --format ") == ["der", "pem"]
    assert complete("seacat tenant l") == ["list"]
    assert complete("seacat w") == ["whoami"]
    (tmp_path / "site.conf").write_text("")
    assert complete(f"seacat import-reference {tmp_path}/si") == [f"{tmp_path}/site.conf"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (.ci/run installs it)")
def test_zsh_completion_offers_the_same(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["completion", "zsh"], environ={}, out=out, err=io.StringIO()) == 0
    script = tmp_path / "_seacat"
    script.write_text(out.getvalue())

    def complete(*words: str) -> list[str]:
        # compadd and _files stand in for zsh's completion system: what the function offers is printed.
        program = (
            'compdef() { :; }; compadd() { shift; print -l -- "$@"; }; _files() { print FILES; }\n'
            f"source {script}\nwords=({' '.join(repr(w) for w in words)}); CURRENT={len(words)}; _seacat\n"
        )
        done = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, timeout=30, check=True)
        return sorted(done.stdout.split())

    assert complete("seacat", "ca", "r") == sorted(["list", "create", "rotate", "import", "retire", "revoke", "bundle"])
    assert "keyCompromise" in complete("seacat", "cert", "revoke", "acme", "X", "--reason", "k")
    assert complete("seacat", "--url", "http://x", "cr", "a") == ["approve", "list", "reject", "show"]
    assert complete("seacat", "import-reference", "si") == ["FILES"]
    assert "--follow" in complete("seacat", "audit", "acme", "--f")
    assert complete("seacat", "est", "credential", "c") == ["create", "list", "revoke", "show"]
    assert complete("seacat", "profile", "") == ["delete", "list", "put", "show"]


# -- migration from the reference -------------------------------------------------------------------


def _authenticate(service: Service, tenant: str, cert: x509.Certificate) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{service.url}/{tenant}/seacat/nginx_authenticate",
        data=cert.public_bytes(serialization.Encoding.PEM),
        method="PUT",
        headers={"X-SSL-Client-Verify": "SUCCESS"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers.get("X-SeaCat-Identity", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_import_reference_dry_run_then_import_keeps_the_ca_id_and_devices_pass(
    service: Service, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from chalicelib.ca.builder import build_client_certificate
    from chalicelib.ca.keys import public_key_fingerprint
    from seacat_client import identity_of_public_key

    config, ref = write_reference(tmp_path, ["acme", "beta"], approve={"acme": "http://127.0.0.1:9/validate_cr"})
    (tmp_path / "beta" / "seacat_ca.der").write_bytes(ref["beta"].ca.public_bytes(serialization.Encoding.DER))
    args = ["import-reference", str(config), "--ca-cert", f"acme={ref['acme'].ca_file}"]
    args += ["--ca-cert", f"beta={tmp_path / 'beta' / 'seacat_ca.der'}"]

    dry = seacat(service, *args, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert dry.json["dryRun"] is True
    planned = {t["tenant"]: t for t in dry.json["tenants"]}
    assert planned["acme"]["caCert"] == planned["acme"]["configuredCaCert"] == ref["acme"].ca_cert
    assert planned["acme"]["key"]["fingerprint"] == public_key_fingerprint(ref["acme"].key.public_key())
    assert planned["acme"]["approve"] == "http://127.0.0.1:9/validate_cr" and planned["acme"]["seacat"] is True
    assert "would create" in seacat(service, *args, "--dry-run").out
    for tenant in ("acme", "beta"):
        assert service.call("GET", f"/tenants/{tenant}")[0] == 404  # a dry run wrote nothing

    done = seacat(service, *args, "--json")
    assert done.code == 0, done.err
    results = {t["tenant"]: t for t in done.json["tenants"]}
    assert results["acme"]["tenantCreated"] and results["acme"]["caImported"]
    assert results["acme"]["webhookSecret"].startswith("whsec_")  # shown once, here
    for tenant in ("acme", "beta"):
        shown = service.get(f"/tenants/{tenant}")
        assert shown["activeCa"] == ref[tenant].ca_cert  # the id the reference configuration names
        assert shown["keyFingerprint"] == public_key_fingerprint(ref[tenant].key.public_key())
        assert shown["config"]["seacat"] is True
        status, bundle = service.call("GET", f"/{tenant}/x509/ca")
        assert x509.load_pem_x509_certificates(bundle) == [ref[tenant].ca]
    assert service.get("/tenants/acme")["config"]["approve"] == "http://127.0.0.1:9/validate_cr"

    # A device whose key the reference certified: its reference certificate is not one this service
    # issued (nginx_authenticate knows the identities it enrolled), but it chains to the same CA, and the
    # device's next enrolment (G3 clients enrol at start, with the key they keep) passes.
    device = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    from_reference = build_client_certificate(
        public_key=device.public_key(),
        identity=identity_of_public_key(device.public_key()),
        issuer=ref["beta"].ca,
        issuer_key=ref["beta"].key,
        serial=12345,
        not_before=now - timedelta(days=10),
        not_after=now + timedelta(days=300),
    )
    assert _authenticate(service, "beta", from_reference)[0] == 403
    status, der = service.enrol("beta", device)
    assert status == 200
    issued = x509.load_der_x509_certificate(der)
    issued.verify_directly_issued_by(ref["beta"].ca)
    assert _authenticate(service, "beta", issued) == (200, identity_of_public_key(device.public_key()))

    # Idempotent: again, nothing changes and nothing fails.
    before = service.get("/tenants/acme")
    again = seacat(service, *args, "--json")
    assert again.code == 0, again.err
    assert [t["tenantCreated"] for t in again.json["tenants"]] == [False, False]
    assert [t["caImported"] for t in again.json["tenants"]] == [False, False]
    after = service.get("/tenants/acme")
    assert after["cas"] == before["cas"] and after["activeCa"] == before["activeCa"]


def test_import_reference_refuses_what_does_not_match_before_sending_anything(service: Service, tmp_path: Path) -> None:
    config, ref = write_reference(tmp_path, ["acme"])
    other_ca = tmp_path / "other.pem"
    # The same key, another certificate: not the one the configuration names.
    other_ca.write_bytes(reference_ca(ref["acme"].key, cn="Another").public_bytes(serialization.Encoding.PEM))
    wrong = seacat(service, "import-reference", str(config), "--ca-cert", f"acme={other_ca}", "--json")
    assert wrong.code == 2 and ref["acme"].ca_cert in wrong.error["message"]
    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(reference_ca(ec.generate_private_key(ec.SECP256R1())).public_bytes(serialization.Encoding.PEM))
    config.write_text(config.read_text().replace(f"ca_cert={ref['acme'].ca_cert}\n", ""))
    not_its_key = seacat(service, "import-reference", str(config), "--ca-cert", f"acme={foreign}", "--json")
    assert not_its_key.code == 2 and "not the tenant's CA key" in not_its_key.error["message"]
    unknown = seacat(service, "import-reference", str(config), "--ca-cert", f"zeta={foreign}")
    assert unknown.code == 2
    (tmp_path / "acme" / "seacat_private_key.pem").unlink()
    no_key = seacat(service, "import-reference", str(config))
    assert no_key.code == 2 and "seacat_private_key.pem" in no_key.err
    (tmp_path / "empty.conf").write_text("[seacat:acme]\napprove=https://example.com/x\n")
    assert seacat(service, "import-reference", str(tmp_path / "empty.conf")).code == 2
    assert service.call("GET", "/tenants/acme")[0] == 404  # nothing was sent


def test_import_reference_stops_at_a_tenant_that_exists_with_another_key(service: Service, tmp_path: Path) -> None:
    config, ref = write_reference(tmp_path, ["acme"])
    assert seacat(service, "tenant", "create", "acme").code == 0  # a generated key, not the reference's
    before = service.get("/tenants/acme")
    clash = seacat(service, "import-reference", str(config), "--ca-cert", f"acme={ref['acme'].ca_file}", "--json")
    assert clash.code == 1 and clash.error["status"] == 409 and clash.error["field"] == "privateKey"
    assert service.get("/tenants/acme") == before
