"""seacat_client: CR encoder (byte-exact vs the vectors), renewal rule, and the CLI against
a local fake PKI that decodes the CRs with the server codec."""

from __future__ import annotations

import ast
import datetime
import http.server
import json
import os
import platform
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seacat_client
from chalicelib.errors import InvalidInput
from chalicelib.seacat import codec
from seacat_client import miniasn1
from seacat_client.__main__ import main
from seacat_client.cr import build_cr, build_tbs, default_attributes, format_cr_time
from seacat_client.identity import (
    CERT_FILE,
    KEY_FILE,
    EnrollError,
    enroll,
    identity_of_public_key,
    needs_renewal,
    normalize_api_url,
    renewal_starts,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS: dict[str, Any] = json.loads((REPO_ROOT / "tests" / "vectors" / "seacat-cr-vectors.json").read_text())
CR_VECTORS: list[dict[str, Any]] = VECTORS["cr_vectors"]
SYNTHETIC = [v for v in CR_VECTORS if "test_private_key_label" in v]
SAMPLE = next(v for v in CR_VECTORS if v["name"] == "sample_cr")
UTC = datetime.UTC


def _test_key(label: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(VECTORS["test_private_keys_pem"][label].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _created_at(raw: str) -> datetime.datetime:
    return datetime.datetime.strptime(raw, "%y%m%d%H%M%SZ")


# --- the encoder ---


@pytest.mark.parametrize("vector", SYNTHETIC, ids=lambda v: v["name"])
def test_reproduces_synthetic_vector_byte_for_byte(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    der = build_cr(
        _test_key(vector["test_private_key_label"]),
        application=expected["application"],
        attributes=[(k, v) for k, v in expected["attributes"]],
        created_at=_created_at(expected["created_at_raw"]),
        deterministic=True,
    )
    assert der.hex() == vector["der_hex"]


def test_reproduces_sample_tbs() -> None:
    """The sample is real Android output with a random signature: only its TBS is reproducible."""
    expected = SAMPLE["expected"]
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), bytes.fromhex(expected["public_key_point_hex"])
    )
    tbs = build_tbs(
        public_key,
        application=expected["application"],
        attributes=[],
        created_at=_created_at(expected["created_at_raw"]),
    )
    assert tbs.hex() == SAMPLE["signed_bytes_hex"]


def test_valid_to_is_created_at_plus_five_minutes() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    request = codec.decode_cr(build_cr(key, application="x", created_at=datetime.datetime(2024, 12, 31, 23, 58, 1)))
    assert (request.created_at_raw, request.valid_to_raw) == ("241231235801Z", "250101000301Z")
    assert format_cr_time(datetime.datetime(2021, 1, 5, 10, 0, 0, tzinfo=UTC)) == "210105100000Z"


def test_default_attributes_are_the_python_clients() -> None:
    assert default_attributes() == [("OS", platform.system()), ("Client", "python")]
    key = ec.generate_private_key(ec.SECP256R1())
    assert codec.decode_cr(build_cr(key, application="x")).attributes == (
        ("OS", platform.system()),
        ("Client", "python"),
    )


@pytest.mark.parametrize(
    ("application", "attributes"),
    [
        ("SeaCat Demo Client", []),
        ("com.example.app", [("OS", "android"), ("aaa", "bbb")]),
        ("long", [("k" * 64, "v" * 1024), ("OS", "Linux")]),  # 82 xx xx lengths
        ("Žluťoučký kůň 🐴 příliš", [("OS", "Linux")]),  # non-ASCII application (UTF-8)
        ("", [("OS", "OS"), ("OS", "dup")]),  # empty application, duplicate keys
    ],
)
def test_server_decodes_client_built_crs(application: str, attributes: list[tuple[str, str]]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = build_cr(key, application=application, attributes=attributes)
    request = codec.decode_cr(der)
    assert request.application == application
    assert request.attributes == tuple(attributes)
    assert request.identity == identity_of_public_key(key.public_key())
    offset = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    assert (
        request.tbs
        == der[offset : offset + len(request.tbs)]
        == build_tbs(
            key.public_key(),
            application=application,
            attributes=attributes,
            created_at=datetime.datetime.strptime(request.created_at_raw, "%y%m%d%H%M%SZ"),
        )
    )
    if len(der) > 255:
        assert der[1] == 0x82


def test_non_ascii_attributes_become_question_marks_like_android() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    request = codec.decode_cr(build_cr(key, application="x", attributes=[("clé", "naïve")]))
    assert request.attributes == (("cl?", "na?ve"),)


_ROUND_TRIP_KEY = ec.generate_private_key(ec.SECP256R1())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # within the codec's bounds (255 bytes of application, 64/1024 of attribute), printable: the
    # codec turns control, format and line-separator characters into '?' (tested in test_seacat_codec.py)
    application=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Zl", "Zp", "Cs")), max_size=60),
    attributes=st.lists(
        st.tuples(
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=64),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=400),
        ),
        max_size=5,
    ),
)
def test_round_trip_property(application: str, attributes: list[tuple[str, str]]) -> None:
    der = build_cr(_ROUND_TRIP_KEY, application=application, attributes=attributes)
    request = codec.decode_cr(der)
    assert request.application == application
    assert request.attributes == tuple(attributes)


def test_deterministic_signing_is_stable_and_random_is_not() -> None:
    key = _test_key("seacat-test-python")
    moment = datetime.datetime(2021, 1, 5, 10, 0, 0)
    one = build_cr(key, application="a", created_at=moment, deterministic=True)
    assert one == build_cr(key, application="a", created_at=moment, deterministic=True)
    assert build_cr(key, application="a", created_at=moment) != build_cr(key, application="a", created_at=moment)


def test_rejects_non_p256_keys() -> None:
    with pytest.raises(ValueError):
        build_cr(ec.generate_private_key(ec.SECP384R1()), application="x")


# --- MiniASN1 writer ---


def test_lengths_are_minimal() -> None:
    assert miniasn1.encode_length(0) == b"\x00"
    assert miniasn1.encode_length(127) == b"\x7f"
    assert miniasn1.encode_length(128) == b"\x81\x80"
    assert miniasn1.encode_length(255) == b"\x81\xff"
    assert miniasn1.encode_length(256) == b"\x82\x01\x00"
    assert miniasn1.encode_length(65535) == b"\x82\xff\xff"
    assert miniasn1.encode_length(65536) == b"\x83\x01\x00\x00"


@pytest.mark.parametrize(
    ("value", "hex_"),
    [
        (0, "020100"),
        (127, "02017f"),
        (128, "02020080"),
        (255, "020200ff"),
        (256, "02020100"),
        (6402, "02021902"),
        (-1, "0201ff"),
        (-128, "020180"),
        (-129, "0202ff7f"),
    ],
)
def test_integer(value: int, hex_: str) -> None:
    assert miniasn1.integer(value).hex() == hex_


def test_oids_and_retagging() -> None:
    assert miniasn1.object_identifier("1.2.840.10045.2.1").hex() == "06072a8648ce3d0201"
    assert miniasn1.object_identifier("1.2.840.10045.3.1.7").hex() == "06082a8648ce3d030107"
    assert miniasn1.object_identifier("1.2.840.10045.4.3.2").hex() == "06082a8648ce3d040302"
    assert miniasn1.object_identifier("2.999.3").hex() == "0603883703"
    # children are retagged [n]: primitive -> 80+n, SEQUENCE/SET/A0 -> A0+n
    seq = miniasn1.sequence([miniasn1.integer(1), miniasn1.sequence([]), b"\xa0\x00", b"\x31\x00", None, b"\x04\x00"])
    assert seq.hex() == "300b" + "800101" + "a100" + "a200" + "a300" + "8500"
    # SEQUENCE OF keeps tags
    assert miniasn1.sequence_of([miniasn1.sequence([]), miniasn1.integer(2)]).hex() == "30053000020102"
    # the signature algorithm exactly as the clients send it
    assert miniasn1.sequence([miniasn1.object_identifier("1.2.840.10045.4.3.2")]).hex() == "300a80082a8648ce3d040302"


def test_client_is_independent_of_the_server_decoder() -> None:
    """A client and server sharing one codec would prove nothing: no chalicelib, no hazmat.asn1."""
    package = REPO_ROOT / "seacat_client"
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                assert not name.startswith("chalicelib"), (path.name, name)
                assert "hazmat.asn1" not in name and name != "cryptography.hazmat", (path.name, name)
    probe = "import sys, seacat_client.__main__; print(sorted(m for m in sys.modules if m.startswith(('chalicelib', 'cryptography.hazmat.asn1'))))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- identity and renewal ---


@pytest.mark.parametrize("vector", VECTORS["identity_vectors"], ids=lambda v: v["key"])
def test_identity_matches_vectors(vector: dict[str, Any]) -> None:
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(vector["point_hex"]))
    assert identity_of_public_key(public_key) == vector["identity"]


def test_identity_agrees_with_server() -> None:
    for _ in range(20):
        public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        assert identity_of_public_key(public_key) == codec.identity_of_public_key(public_key)


def _certificate(
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    *,
    subject_key: ec.EllipticCurvePublicKey | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
) -> x509.Certificate:
    issuer_key = issuer_key or _CA_KEY
    subject_key = subject_key or issuer_key.public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity_of_public_key(subject_key))])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(subject_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


_CA_KEY = ec.generate_private_key(ec.SECP256R1())
T0 = datetime.datetime(2025, 1, 1, tzinfo=UTC)
SECOND = datetime.timedelta(seconds=1)


def test_renewal_at_half_lifetime_for_long_certificates() -> None:
    cert = _certificate(T0, T0 + datetime.timedelta(days=366))  # L/2 = 183 d > 30 d
    half = T0 + datetime.timedelta(days=183)
    assert renewal_starts(cert) == half
    assert not needs_renewal(cert, T0)
    assert not needs_renewal(cert, half)
    assert needs_renewal(cert, half + SECOND)
    assert needs_renewal(cert, T0 + datetime.timedelta(days=400))  # expired


def test_renewal_thirty_days_before_expiry_for_short_certificates() -> None:
    cert = _certificate(T0, T0 + datetime.timedelta(days=40))  # L/2 = 20 d < 30 d
    threshold = T0 + datetime.timedelta(days=10)
    assert renewal_starts(cert) == threshold
    assert not needs_renewal(cert, threshold)
    assert needs_renewal(cert, threshold + SECOND)


def test_renewal_immediately_for_lifetimes_of_30_days_or_less() -> None:
    cert = _certificate(T0, T0 + datetime.timedelta(days=30))
    assert not needs_renewal(cert, T0)  # strictly greater
    assert needs_renewal(cert, T0 + SECOND)


def test_renewal_naive_now_is_utc() -> None:
    cert = _certificate(T0, T0 + datetime.timedelta(days=366))
    half = datetime.datetime(2025, 7, 3)
    assert not needs_renewal(cert, half)
    assert needs_renewal(cert, half + SECOND)


def test_api_url_normalisation() -> None:
    assert normalize_api_url("https://pki.seacat.io/seacat-demo/seacat/") == "https://pki.seacat.io/seacat-demo/seacat"
    assert normalize_api_url("http://127.0.0.1:8080/t/seacat") == "http://127.0.0.1:8080/t/seacat"
    for bad in ("ftp://x/t/seacat", "pki.seacat.io/t/seacat", "https:///t/seacat", "https://h/t/seacat?x=1"):
        with pytest.raises(seacat_client.SeaCatClientError):
            normalize_api_url(bad)


# --- a fake PKI on 127.0.0.1 ---


@dataclass
class FakePki:
    base_url: str
    mode: str = "ok"
    lifetime: datetime.timedelta = datetime.timedelta(days=365)
    enrolls: list[codec.SeaCatRequest] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    issued: dict[str, bytes] = field(default_factory=dict)

    def api_url(self, tenant: str = "acme") -> str:
        return f"{self.base_url}/{tenant}/seacat"


def _make_handler(pki: FakePki) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            pki.requests.append(("PUT", self.path, dict(self.headers.items())))
            if self.path != "/acme/seacat/enroll":
                self._reply(404, b'{"result":"NOT-FOUND"}', "application/json")
                return
            try:
                request = codec.decode_cr(body)
            except InvalidInput as error:
                self._reply(
                    400, json.dumps({"result": "INVALID", "reason": error.message}).encode(), "application/json"
                )
                return
            pki.enrolls.append(request)
            if pki.mode == "403":
                self._reply(403, b'{"result":"REJECTED"}', "application/json")
                return
            subject_key = request.public_key
            if pki.mode == "other-key":
                subject_key = ec.generate_private_key(ec.SECP256R1()).public_key()
            now = datetime.datetime.now(UTC).replace(microsecond=0)
            not_before = now - datetime.timedelta(hours=1)
            cert = _certificate(not_before, not_before + pki.lifetime, subject_key=subject_key)
            der = cert.public_bytes(serialization.Encoding.DER)
            if pki.mode == "pem":
                self._reply(200, cert.public_bytes(serialization.Encoding.PEM), "application/x-pem-file")
                return
            if pki.mode == "base64":
                import base64

                self._reply(200, base64.b64encode(der), "application/pkix-cert")
                return
            if pki.mode == "202":
                self._reply(202, b'{"result":"PENDING"}', "application/json")
                return
            pki.issued[request.identity] = der
            self._reply(200, der, "application/pkix-cert")

        def do_GET(self) -> None:
            pki.requests.append(("GET", self.path, dict(self.headers.items())))
            prefix = "/acme/seacat/get/"
            identity = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
            if identity in pki.issued:
                self._reply(200, pki.issued[identity], "application/pkix-cert")
            else:
                self._reply(404, b'{"result":"NOT-FOUND"}', "application/json")

    return Handler


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pki(no_proxy: None) -> Iterator[FakePki]:
    state = FakePki(base_url="")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _enroll_cli(pki: FakePki, state_dir: Path, *extra: str) -> int:
    return main(["enroll", "--api-url", pki.api_url() + "/", "--dir", str(state_dir), "--timeout", "5", *extra])


def test_cli_enroll_then_skip_then_force(pki: FakePki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state_dir = tmp_path / "device"
    assert _enroll_cli(pki, state_dir) == 0
    out = capsys.readouterr().out

    key_path, cert_path = state_dir / KEY_FILE, state_dir / CERT_FILE
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    identity = identity_of_public_key(key.public_key())
    cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    assert cert.public_key() == key.public_key()
    assert f"identity: {identity}" in out
    assert f"serial: {cert.serial_number:x}" in out
    assert cert.not_valid_after_utc.isoformat() in out

    # what the server saw: the G3 request shape
    assert len(pki.requests) == 1
    method, path, headers = pki.requests[0]
    assert (method, path) == ("PUT", "/acme/seacat/enroll")  # trailing "/" of the apiURL stripped
    assert headers["Content-Type"] == "application/octet-stream"
    request = pki.enrolls[0]
    assert request.identity == identity
    assert request.application == seacat_client.DEFAULT_APPLICATION
    assert request.attributes == (("OS", platform.system()), ("Client", "python"))

    # second run: certificate is outside the renewal window -> no request
    assert _enroll_cli(pki, state_dir) == 0
    assert "no request made" in capsys.readouterr().out
    assert len(pki.requests) == 1

    # --force: same key, same identity, new certificate
    assert _enroll_cli(pki, state_dir, "--force", "--application", "demo", "--attribute", "aaa=bbb") == 0
    assert len(pki.requests) == 2
    assert pki.enrolls[1].identity == identity
    assert pki.enrolls[1].application == "demo"
    assert pki.enrolls[1].attributes == (("OS", platform.system()), ("Client", "python"), ("aaa", "bbb"))
    assert x509.load_der_x509_certificate(cert_path.read_bytes()).serial_number != cert.serial_number
    assert "status: enrolled" in capsys.readouterr().out

    # identity and pem sub-commands
    assert main(["identity", "--dir", str(state_dir)]) == 0
    assert capsys.readouterr().out.strip() == identity
    assert main(["pem", "--dir", str(state_dir)]) == 0
    pem = capsys.readouterr().out
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert (state_dir / "seacat_cert.pem").read_text() == pem
    assert x509.load_pem_x509_certificate(pem.encode()).public_key() == key.public_key()


def test_cli_renews_inside_the_window_with_the_same_key(pki: FakePki, tmp_path: Path) -> None:
    pki.lifetime = datetime.timedelta(days=20)  # < 30 days: always inside the window
    assert _enroll_cli(pki, tmp_path) == 0
    assert _enroll_cli(pki, tmp_path) == 0
    assert len(pki.enrolls) == 2
    assert pki.enrolls[0].identity == pki.enrolls[1].identity
    assert pki.enrolls[0].der != pki.enrolls[1].der


def test_cli_rejection_exits_1(pki: FakePki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki.mode = "403"
    assert _enroll_cli(pki, tmp_path) == 1
    err = capsys.readouterr().err
    assert "HTTP 403" in err and "REJECTED" in err
    assert not (tmp_path / CERT_FILE).exists()
    assert (tmp_path / KEY_FILE).exists()  # the key is kept: the next attempt has the same identity


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("other-key", "certificate for another key"),
        ("pem", "not a DER certificate"),
        ("base64", "looks like Base64"),
        ("202", "waits for an administrator's approval"),
    ],
)
def test_cli_rejects_unusable_answers(
    pki: FakePki, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, message: str
) -> None:
    pki.mode = mode
    assert _enroll_cli(pki, tmp_path) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / CERT_FILE).exists()


def test_enroll_function_raises_with_status(pki: FakePki, tmp_path: Path) -> None:
    pki.mode = "403"
    with pytest.raises(EnrollError) as caught:
        enroll(pki.api_url(), tmp_path, timeout=5)
    assert caught.value.status == 403 and caught.value.body == b'{"result":"REJECTED"}'
    pki.mode = "ok"
    result = enroll(pki.api_url(), tmp_path, attributes=[("k", "v")], timeout=5)
    assert result.requested and result.cert_path == tmp_path / CERT_FILE
    assert pki.enrolls[-1].attributes == (("k", "v"),)
    again = enroll(pki.api_url(), tmp_path, timeout=5)
    assert not again.requested and again.identity == result.identity


def test_stale_certificate_of_another_key_triggers_enrolment(pki: FakePki, tmp_path: Path) -> None:
    assert _enroll_cli(pki, tmp_path) == 0
    foreign = _certificate(
        T0, T0 + datetime.timedelta(days=3650), subject_key=ec.generate_private_key(ec.SECP256R1()).public_key()
    )
    (tmp_path / CERT_FILE).write_bytes(foreign.public_bytes(serialization.Encoding.DER))
    assert _enroll_cli(pki, tmp_path) == 0
    assert len(pki.enrolls) == 2


def test_cli_get(pki: FakePki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _enroll_cli(pki, tmp_path / "a") == 0
    identity = pki.enrolls[0].identity
    capsys.readouterr()
    out_file = tmp_path / "peer.der"
    assert main(["get", "--api-url", pki.api_url(), identity, "--out", str(out_file), "--timeout", "5"]) == 0
    assert f"{identity}: serial" in capsys.readouterr().out
    assert out_file.read_bytes() == (tmp_path / "a" / CERT_FILE).read_bytes()
    assert pki.requests[-1][:2] == ("GET", f"/acme/seacat/get/{identity}")
    assert main(["get", "--api-url", pki.api_url(), identity]) == 0
    assert capsys.readouterr().out.startswith("-----BEGIN CERTIFICATE-----")
    # unknown identity -> 404 -> exit 1; malformed identity -> exit 1 without a request
    assert main(["get", "--api-url", pki.api_url(), "AAAAAAAAAAAAAAAA"]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    count = len(pki.requests)
    assert main(["get", "--api-url", pki.api_url(), "not-an-identity"]) == 1
    assert len(pki.requests) == count


def test_cli_unreachable_server(no_proxy: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on the port any more
    assert (
        main(["enroll", "--api-url", f"http://127.0.0.1:{port}/t/seacat", "--dir", str(tmp_path), "--timeout", "2"])
        == 1
    )
    assert "failed" in capsys.readouterr().err


def test_cli_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["enroll", "--api-url", "http://x/t/seacat", "--dir", str(tmp_path), "--attribute", "novalue"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit):
        main(["enroll", "--api-url", "https://x/t/seacat", "--dir", str(tmp_path), "--cafile", "a.pem", "--insecure"])
    assert main(["identity", "--dir", str(tmp_path / "missing")]) == 1
    assert main(["pem", "--dir", str(tmp_path / "missing")]) == 1


def test_python_dash_m_entry_point(pki: FakePki, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "seacat_client", "enroll", "--api-url", pki.api_url(), "--dir", str(tmp_path)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"identity: {pki.enrolls[0].identity}" in done.stdout
    pki.mode = "403"
    done = subprocess.run([*command, "--force"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "HTTP 403" in done.stderr


def test_load_or_create_key_creates_once(tmp_path: Path) -> None:
    state_dir = tmp_path / "new" / "dir"
    key, created = seacat_client.load_or_create_key(state_dir)
    again, created_again = seacat_client.load_or_create_key(state_dir)
    assert created and not created_again
    assert again.private_numbers() == key.private_numbers()
    assert stat.S_IMODE((state_dir / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert [p.name for p in state_dir.iterdir()] == [KEY_FILE]  # no temporary files left


def test_foreign_key_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rsa_like = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / KEY_FILE).write_bytes(rsa_like)
    assert main(["identity", "--dir", str(tmp_path)]) == 1
    assert "not a P-256 EC key" in capsys.readouterr().err


# --- TLS: --cafile and --insecure ---


@pytest.fixture
def tls_pki(no_proxy: None, tmp_path: Path) -> Iterator[tuple[FakePki, Path]]:
    import ipaddress
    import ssl

    now = datetime.datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local test TLS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    (tls_dir / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tls_dir / "server.pem").write_bytes(
        server_cert.public_bytes(serialization.Encoding.PEM)
        + server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_dir / "server.pem")
    tls_state = FakePki(base_url="")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(tls_state))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    tls_state.base_url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield tls_state, tls_dir / "ca.pem"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_https_with_cafile_and_insecure(
    tls_pki: tuple[FakePki, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki, ca_file = tls_pki
    state_dir = tmp_path / "device"
    # the test CA is not in the system store: verification fails
    assert _enroll_cli(pki, state_dir) == 1
    assert "failed" in capsys.readouterr().err
    assert _enroll_cli(pki, state_dir, "--cafile", str(ca_file)) == 0
    assert _enroll_cli(pki, state_dir, "--force", "--insecure") == 0
    assert len(pki.enrolls) == 2
    assert _enroll_cli(pki, state_dir, "--force", "--cafile", str(tmp_path / "missing.pem")) == 1
    assert "cannot load CA file" in capsys.readouterr().err
