"""scripts/gateway.py render, without a PKI or NGINX: the workers' user and group (the `user`
directive) and the optional gateway credential.

NGINX takes `user nobody;` to mean the group nobody too, and as root refuses to start where there is
no such group (Debian: getgrnam("nobody") failed). The lookups of the rendering machine are faked
here, for a Debian-like and a Red Hat-like system; tests/e2e/test_gateway.py runs `nginx -t` on the
real one.

The gateway credential is read from a file, standard input or SEACAT_GATEWAY_CREDENTIAL, never from
the command line; only its exact form reaches nginx.conf, which is then owner-only (0600); only the
authentication subrequest sends it. tests/e2e/test_gateway.py runs it through a real NGINX.
"""

from __future__ import annotations

import datetime
import grp
import io
import os
import pwd
import secrets
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts import gateway

DEBIAN = {
    "users": {"nobody": 65534, "www-data": 33, "root": 0},
    "groups": {"nogroup": 65534, "www-data": 33, "root": 0},
}
RED_HAT = {
    "users": {"nobody": 65534, "nginx": 990, "root": 0},
    "groups": {"nobody": 65534, "nginx": 990, "root": 0},
}


@pytest.fixture(autouse=True)
def no_credential_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The renderer reads SEACAT_GATEWAY_CREDENTIAL: the tests' own environment must not set one."""
    monkeypatch.delenv(gateway.CREDENTIAL_ENV, raising=False)


def fake_system(monkeypatch: pytest.MonkeyPatch, system: dict[str, dict[str, int]]) -> None:
    users, groups = system["users"], system["groups"]
    by_gid = {gid: name for name, gid in groups.items()}

    def getpwnam(name: str) -> pwd.struct_passwd:
        if name not in users:
            raise KeyError(name)
        return pwd.struct_passwd((name, "x", users[name], users[name], name, "/nonexistent", "/usr/sbin/nologin"))

    def getgrnam(name: str) -> grp.struct_group:
        if name not in groups:
            raise KeyError(name)
        return grp.struct_group((name, "x", groups[name], []))

    def getgrgid(gid: int) -> grp.struct_group:
        if gid not in by_gid:
            raise KeyError(gid)
        return grp.struct_group((by_gid[gid], "x", gid, []))

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(grp, "getgrnam", getgrnam)
    monkeypatch.setattr(grp, "getgrgid", getgrgid)


@pytest.mark.parametrize(
    "system, user, group, expected",
    [
        # Debian: no group nobody, nobody's own group is nogroup
        (DEBIAN, "nobody", None, "nobody nogroup"),
        (DEBIAN, "www-data", None, "www-data"),
        (DEBIAN, "root", None, "root"),
        # a group of the user's name: NGINX's own default, the directive as before
        (RED_HAT, "nobody", None, "nobody"),
        (RED_HAT, "nginx", None, "nginx"),
        # --group wins, whatever the machine has
        (DEBIAN, "nobody", "nogroup", "nobody nogroup"),
        (RED_HAT, "nobody", "nogroup", "nobody nogroup"),
        (DEBIAN, "www-data", "root", "www-data root"),
        # a user this machine does not know: as given (NGINX's rule)
        (DEBIAN, "gateway", None, "gateway"),
        # nobody unknown too, but the group nogroup exists
        ({"users": {}, "groups": {"nogroup": 65534}}, "nobody", None, "nobody nogroup"),
        ({"users": {}, "groups": {}}, "nobody", None, "nobody"),
        # nobody's primary group has no name here: nogroup if there is one
        ({"users": {"nobody": 65534}, "groups": {"nogroup": 65533}}, "nobody", None, "nobody nogroup"),
    ],
)
def test_worker_user(
    monkeypatch: pytest.MonkeyPatch, system: dict[str, dict[str, int]], user: str, group: str | None, expected: str
) -> None:
    fake_system(monkeypatch, system)
    assert gateway.worker_user(user, group) == expected


@pytest.mark.parametrize(
    "user, group", [("no body", None), ("nobody;", None), ("nobody", "no;group"), ("nobody", ""), ("", None)]
)
def test_worker_user_refuses_what_could_break_the_directive(user: str, group: str | None) -> None:
    with pytest.raises(gateway.GatewayError):
        gateway.worker_user(user, group)


def ca_bundle() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Root CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def render(monkeypatch: pytest.MonkeyPatch, out: Path, *extra: str) -> str:
    bundle = ca_bundle()
    monkeypatch.setattr(gateway, "fetch_ca_bundle", lambda pki_url, tenant: bundle)
    argv = [
        "render",
        "--tenant",
        "acme",
        "--pki-url",
        "http://127.0.0.1:9",
        "--out",
        str(out),
        "--listen",
        "127.0.0.1:8443",
        "--self-signed-server-cert",
        *extra,
    ]
    assert gateway.main(argv) == 0
    return (out / "nginx.conf").read_text()


def user_lines(conf: str) -> list[str]:
    return [line for line in conf.splitlines() if line.startswith("user ")]


def test_render_default_user_on_debian(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_system(monkeypatch, DEBIAN)
    assert user_lines(render(monkeypatch, tmp_path / "default")) == ["user nobody nogroup;"]
    assert user_lines(render(monkeypatch, tmp_path / "www", "--user", "www-data")) == ["user www-data;"]
    assert user_lines(render(monkeypatch, tmp_path / "both", "--user", "www-data", "--group", "nogroup")) == [
        "user www-data nogroup;"
    ]


def test_render_default_user_with_a_group_nobody(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_system(monkeypatch, RED_HAT)
    assert user_lines(render(monkeypatch, tmp_path / "default")) == ["user nobody;"]
    assert user_lines(render(monkeypatch, tmp_path / "nginx", "--user", "nginx")) == ["user nginx;"]


def test_render_default_user_names_a_group_this_machine_has(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On the machine that runs the tests, as NGINX would look it up (when nobody exists here)."""
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody on this machine")
    (line,) = user_lines(render(monkeypatch, tmp_path))
    words = line.rstrip(";").split()
    assert words[:2] == ["user", "nobody"]
    grp.getgrnam(words[2] if len(words) == 3 else "nobody")  # raises KeyError where NGINX would fail


# --- the gateway credential ----------------------------------------------------------------------

HEADER = "X-SeaCat-Gateway-Credential"


def new_credential() -> str:
    """One of the form POST /<tenant>/gateway/credential makes (made here: no secret in the source)."""
    return "sgc_" + secrets.token_urlsafe(32)


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    out: Path,
    *extra: str,
    stdin: str | None = None,
) -> tuple[int, str, str]:
    """main(render ...) with a stand-in CA bundle: (exit status, stdout, stderr)."""
    bundle = ca_bundle()
    monkeypatch.setattr(gateway, "fetch_ca_bundle", lambda pki_url, tenant: bundle)
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    argv = [
        "render",
        "--tenant",
        "acme",
        "--pki-url",
        "http://127.0.0.1:9",
        "--out",
        str(out),
        "--listen",
        "127.0.0.1:8443",
        "--self-signed-server-cert",
        "--user",
        "root",
        *extra,
    ]
    status = gateway.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def location(conf: str, name: str) -> str:
    """The text of one `location <name> {...}` block (braces matched)."""
    start = conf.index(f"location {name} {{")
    depth = 0
    for end in range(conf.index("{", start), len(conf)):
        depth += {"{": 1, "}": -1}.get(conf[end], 0)
        if depth == 0:
            return conf[start : end + 1]
    raise AssertionError(f"location {name} is not closed")


def header_lines(block: str) -> list[str]:
    """The directives of a block that set X-SeaCat-Gateway-Credential (comments left out)."""
    lines = (line.split("#", 1)[0].strip() for line in block.splitlines())
    return [line for line in lines if line.startswith(f"proxy_set_header {HEADER} ")]


def assert_client_header_cleared(conf: str) -> None:
    """The locations that pass the client's headers on (to the PKI's /seacat/ routes, to the
    upstream) drop a client-sent credential: an empty value sends no header."""
    for name in ("/seacat/", "/"):
        assert header_lines(location(conf, name)) == [f'proxy_set_header {HEADER} "";'], name


def test_render_without_credential_adds_no_credential(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, stdout, stderr = run(monkeypatch, capsys, tmp_path)
    assert status == 0, stderr
    conf = (tmp_path / "nginx.conf").read_text()
    assert "sgc_" not in conf.replace('"sgc_..."', "")  # only the template's own comment mentions one
    # the auth subrequest sends none (and passes no client header: proxy_pass_request_headers off)
    auth = location(conf, "= /_seacat_pki_auth")
    assert header_lines(auth) == []
    assert "proxy_pass_request_headers off;" in auth
    assert_client_header_cleared(conf)
    assert "0600" not in stdout and "gateway credential" not in stdout


def test_render_with_credential_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    credential = new_credential()
    secret = tmp_path / "credential"
    secret.write_text(credential + "\n")  # as `jq -r .credential > file` writes it
    status, stdout, stderr = run(monkeypatch, capsys, tmp_path / "out", "--gateway-credential-file", str(secret))
    assert status == 0, stderr
    conf = (tmp_path / "out" / "nginx.conf").read_text()
    auth = location(conf, "= /_seacat_pki_auth")
    assert header_lines(auth) == [f'proxy_set_header {HEADER} "{credential}";']
    # there and beside a forwarded client certificate in the two EST locations (the PKI trusts the
    # certificate only with it); the enrolment location and the upstream's never carry it
    assert conf.count(credential) == 3
    assert location(conf, "/.well-known/est/").count(credential) == 1
    assert credential not in location(conf, "/seacat/") and credential not in location(conf, "/")
    assert_client_header_cleared(conf)
    # the next steps say the file holds a secret, and never show it
    assert "0600" in stdout and "DELETE /<tenant>/gateway/credential?previous=true" in stdout
    assert credential not in stdout + stderr
    # everything else is as without a credential
    status, _, stderr = run(monkeypatch, capsys, tmp_path / "plain")
    assert status == 0, stderr
    plain = (tmp_path / "plain" / "nginx.conf").read_text()
    # without one, the EST locations send an empty credential header (none) where this one sends it
    auth = conf.index("location = /_seacat_pki_auth {")
    without = conf[:auth] + conf[auth:].replace(f'proxy_set_header {HEADER} "{credential}";', "", 1)
    others = [
        line.replace("/out/", "/plain/").replace(f'"{credential}"', '""')
        for line in without.splitlines()
        if line.strip()
    ]
    assert others == [line for line in plain.splitlines() if line.strip()]


def test_rendered_conf_with_credential_is_owner_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old = out / "nginx.conf"
    old.write_text("# an earlier render, world-readable\n")
    old.chmod(0o644)
    secret = tmp_path / "credential"
    secret.write_text(new_credential())
    previous = os.umask(0)  # even with a umask that lets everyone read
    try:
        status, _, stderr = run(monkeypatch, capsys, out, "--gateway-credential-file", str(secret))
    finally:
        os.umask(previous)
    assert status == 0, stderr
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert "an earlier render" not in old.read_text()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary file left


@pytest.mark.parametrize("how", ["environment", "stdin"])
def test_render_with_credential_from_environment_or_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, how: str
) -> None:
    credential = new_credential()
    if how == "environment":
        monkeypatch.setenv(gateway.CREDENTIAL_ENV, credential)
        status, stdout, stderr = run(monkeypatch, capsys, tmp_path)
    else:
        status, stdout, stderr = run(
            monkeypatch, capsys, tmp_path, "--gateway-credential-file", "-", stdin=credential + "\n"
        )
    assert status == 0, stderr
    conf = tmp_path / "nginx.conf"
    assert header_lines(location(conf.read_text(), "= /_seacat_pki_auth")) == [
        f'proxy_set_header {HEADER} "{credential}";'
    ]
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert credential not in stdout + stderr


GOOD = "sgc_" + "A" * 43


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        GOOD[:-1],  # 42 characters
        GOOD + "A",  # 44
        "sgc-" + "A" * 43,
        "SGC_" + "A" * 43,
        "sct_0123456789abcdef_" + "A" * 32,  # an API token is not a gateway credential
        GOOD[:-1] + '"',  # would end the quoted value ...
        GOOD[:-2] + '";',  # ... and the directive
        GOOD[:-1] + "}",
        GOOD[:-1] + ";",
        GOOD[:-1] + "$",  # an NGINX variable
        GOOD[:-1] + "\\",
        GOOD[:-1] + "=",  # padding: token_urlsafe has none
        GOOD[:-1] + "+",  # standard, not URL-safe, base64
        GOOD[:20] + " " + GOOD[21:],
        GOOD + "\nproxy_set_header X-SSL-Client-Verify SUCCESS;",
        GOOD[:20] + "\n" + GOOD[21:],
        GOOD[:-1] + "\u00e9",  # not ASCII
        '{"credential": "' + GOOD + '"}',  # the whole answer instead of its credential
        GOOD + "\n" + GOOD,  # two of them
    ],
)
@pytest.mark.parametrize("how", ["file", "environment"])
def test_a_malformed_credential_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, how: str
) -> None:
    extra: tuple[str, ...] = ()
    if how == "file":
        (tmp_path / "credential").write_bytes(text.encode("utf-8"))
        extra = ("--gateway-credential-file", str(tmp_path / "credential"))
    else:
        monkeypatch.setenv(gateway.CREDENTIAL_ENV, text)
    status, stdout, stderr = run(monkeypatch, capsys, tmp_path / "out", *extra)
    assert status == 1
    assert "sgc_ and 43 URL-safe base64 characters" in stderr
    if text.strip():
        assert text.strip() not in stdout + stderr  # what was read is never repeated
    assert not (tmp_path / "out").exists()  # refused before anything is fetched or written


def test_credential_lines_refuse_anything_but_a_credential() -> None:
    credential = new_credential()
    assert gateway.credential_lines(None) == ""
    assert gateway.credential_lines(credential).strip() == f'proxy_set_header {HEADER} "{credential}";'
    for bad in (credential + '"; proxy_pass http://evil', credential[:-1] + "'", "sgc_" + "A" * 42 + "\n"):
        with pytest.raises(gateway.GatewayError):
            gateway.credential_lines(bad)


def test_credential_pattern_is_the_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the renderer accepts is what POST /<tenant>/gateway/credential makes, in its header."""
    from chalicelib.service import gateway_credentials

    assert gateway.CREDENTIAL_HEADER == gateway_credentials.HEADER
    monkeypatch.setattr(gateway_credentials, "_update", lambda *args: None)  # no store: only the making
    for _ in range(200):
        credential, _ = gateway_credentials.create("acme")
        assert gateway.CREDENTIAL_RE.fullmatch(credential)


def test_no_credential_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    credential = new_credential()
    status, stdout, stderr = run(monkeypatch, capsys, tmp_path / "out", "--gateway-credential", credential)
    assert status == 1
    assert "not taken on the command line" in stderr
    assert credential not in stdout + stderr
    # no abbreviation of --gateway-credential-file takes a value for a path either
    with pytest.raises(SystemExit):
        run(monkeypatch, capsys, tmp_path / "out", "--gateway-cred", credential)
    assert not (tmp_path / "out").exists()


def test_credential_file_and_environment_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret = tmp_path / "credential"
    secret.write_text(new_credential())
    monkeypatch.setenv(gateway.CREDENTIAL_ENV, new_credential())
    status, _, stderr = run(monkeypatch, capsys, tmp_path / "out", "--gateway-credential-file", str(secret))
    assert status == 1 and "not both" in stderr
    monkeypatch.delenv(gateway.CREDENTIAL_ENV)
    status, _, stderr = run(
        monkeypatch, capsys, tmp_path / "out2", "--gateway-credential-file", str(tmp_path / "missing")
    )
    assert status == 1 and "cannot read" in stderr


def regex_location(conf: str, pattern: str) -> str:
    """The text of `location <pattern> {...}` whose quoted regex holds braces of its own."""
    start = conf.index(f"location {pattern} {{")
    opening = start + len(f"location {pattern} ")
    depth = 0
    for end in range(opening, len(conf)):
        depth += {"{": 1, "}": -1}.get(conf[end], 0)
        if depth == 0:
            return conf[start : end + 1]
    raise AssertionError(f"location {pattern} is not closed")


EST_REGEX = '~ "^/(?<est_profile>[a-z0-9][a-z0-9_-]{0,62})/\\.well-known/est/(?<est_op>cacerts|csrattrs|simpleenroll|simplereenroll)$"'


def test_est_locations_map_to_the_tenants_est_routes_and_replace_the_client_certificate_headers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # a PKI behind a path (an API Gateway stage): the regex location rewrites to it, proxy_pass takes the origin
    status, _, stderr = run(monkeypatch, capsys, tmp_path, "--pki-url", "https://api.example.com/prod/")
    assert status == 0, stderr
    conf = (tmp_path / "nginx.conf").read_text()
    plain = location(conf, "/.well-known/est/")
    assert "proxy_pass https://api.example.com/prod/.well-known/est/acme/;" in plain
    regex = regex_location(conf, EST_REGEX)
    assert "rewrite ^ /prod/.well-known/est/acme/$est_profile/$est_op break;" in regex
    assert "proxy_pass https://api.example.com;" in regex
    for block in (plain, regex):
        lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
        # NGINX's own values, never what the client sent under those names
        assert "proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;" in lines
        assert "proxy_set_header X-SSL-Client-Verify $ssl_client_verify;" in lines
        assert header_lines(block) == [f'proxy_set_header {HEADER} "";']  # no credential: none sent
        assert "proxy_ssl_verify on;" in lines  # an https PKI is verified here too
    assert "auth_request" not in plain + regex  # public, as /seacat/


def test_est_locations_send_the_gateway_credential(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    credential = new_credential()
    secret = tmp_path / "credential"
    secret.write_text(credential)
    status, _, stderr = run(monkeypatch, capsys, tmp_path / "out", "--gateway-credential-file", str(secret))
    assert status == 0, stderr
    conf = (tmp_path / "out" / "nginx.conf").read_text()
    for block in (location(conf, "/.well-known/est/"), regex_location(conf, EST_REGEX)):
        assert header_lines(block) == [f'proxy_set_header {HEADER} "{credential}";']


# --- the defaults a new user meets, OCSP, the self-signed certificate kept across renders ---------


def directives(conf: str, name: str) -> list[str]:
    return [line.strip() for line in conf.splitlines() if line.strip().startswith(name + " ")]


def test_default_auth_cache_is_short_and_no_ocsp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = render(monkeypatch, tmp_path / "out")
    assert directives(conf, "proxy_cache_valid") == ["proxy_cache_valid 200 5s;"]
    assert not [line for line in conf.splitlines() if line.strip().startswith("ssl_ocsp")]


def test_ocsp_renders_the_tenants_responder_with_a_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = render(monkeypatch, tmp_path / "out", "--ocsp")
    assert directives(conf, "ssl_ocsp") == ["ssl_ocsp on;"]
    assert directives(conf, "ssl_ocsp_responder") == ["ssl_ocsp_responder http://127.0.0.1:9/acme/ocsp;"]
    assert directives(conf, "ssl_ocsp_cache") == [f"ssl_ocsp_cache {gateway.OCSP_CACHE};"]
    assert not directives(conf, "resolver")
    printed = capsys.readouterr().out
    assert "Revocation delay" in printed and "up to 5s" in printed and "nextUpdate" in printed
    conf = render(monkeypatch, tmp_path / "nocache", "--ocsp", "--no-ocsp-cache")
    assert directives(conf, "ssl_ocsp_cache") == ["ssl_ocsp_cache off;"]


def test_ocsp_needs_an_http_responder_and_a_resolver_for_a_host_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(gateway, "fetch_ca_bundle", lambda pki_url, tenant: ca_bundle())
    base = ["render", "--tenant", "acme", "--out", str(tmp_path / "o"), "--self-signed-server-cert", "--ocsp"]
    assert gateway.main([*base, "--pki-url", "https://pki.example.com"]) == 1
    assert "over http only" in capsys.readouterr().err
    responder = ["--pki-url", "https://pki.example.com", "--ocsp-responder", "http://ocsp.example.com/acme/ocsp"]
    assert gateway.main([*base, *responder]) == 1
    assert "--resolver" in capsys.readouterr().err
    assert gateway.main([*base, *responder, "--resolver", "127.0.0.53"]) == 0
    conf = (tmp_path / "o" / "nginx.conf").read_text()
    assert directives(conf, "ssl_ocsp_responder") == ["ssl_ocsp_responder http://ocsp.example.com/acme/ocsp;"]
    assert directives(conf, "resolver") == ["resolver 127.0.0.53 valid=300s;"]
    assert gateway.main([*base[:-1], "--pki-url", "http://127.0.0.1:9", "--resolver", "127.0.0.53"]) == 1
    assert "go with --ocsp" in capsys.readouterr().err


def test_the_self_signed_server_certificate_is_kept_unless_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    render(monkeypatch, out)
    first = (out / gateway.SELF_SIGNED_CERT).read_bytes(), (out / gateway.SELF_SIGNED_KEY).read_bytes()
    assert "wrote" in capsys.readouterr().out
    render(monkeypatch, out)
    assert ((out / gateway.SELF_SIGNED_CERT).read_bytes(), (out / gateway.SELF_SIGNED_KEY).read_bytes()) == first
    assert "kept" in capsys.readouterr().out
    render(monkeypatch, out, "--server-name", "gw.example.com")  # a name it lacks: a new one
    assert (out / gateway.SELF_SIGNED_CERT).read_bytes() != first[0]
    second = (out / gateway.SELF_SIGNED_CERT).read_bytes()
    render(monkeypatch, out, "--server-name", "gw.example.com", "--replace-server-cert")
    assert (out / gateway.SELF_SIGNED_CERT).read_bytes() not in (first[0], second)
    (out / gateway.SELF_SIGNED_KEY).write_bytes(b"damaged")
    render(monkeypatch, out, "--server-name", "gw.example.com")  # unreadable: made again
    key = serialization.load_pem_private_key((out / gateway.SELF_SIGNED_KEY).read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((out / gateway.SELF_SIGNED_CERT).read_bytes())
    assert key.public_key() == cert.public_key()


@pytest.mark.parametrize(
    ("pki_url", "server", "url", "host", "tls_name"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1:8080", "http://seacat_pki_auth", "127.0.0.1:8080", None),
        (
            "https://api.example.com/prod/",
            "api.example.com:443",
            "https://seacat_pki_auth/prod",
            "api.example.com",
            "api.example.com",
        ),
        ("http://[::1]:8080", "[::1]:8080", "http://seacat_pki_auth", "[::1]:8080", None),
    ],
)
def test_the_authentication_subrequest_keeps_its_connections_to_the_pki(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    pki_url: str,
    server: str,
    url: str,
    host: str,
    tls_name: str | None,
) -> None:
    status, _, stderr = run(monkeypatch, capsys, tmp_path, "--pki-url", pki_url)
    assert status == 0, stderr
    conf = (tmp_path / "nginx.conf").read_text()
    assert f"upstream seacat_pki_auth {{\n        server {server};\n        keepalive 16;\n    }}" in conf
    auth = location(conf, "= /_seacat_pki_auth")
    lines = [line.split("#", 1)[0].strip() for line in auth.splitlines()]
    assert f"proxy_pass {url}/acme/seacat/nginx_authenticate;" in lines
    assert "proxy_http_version 1.1;" in lines and 'proxy_set_header Connection "";' in lines
    assert f"proxy_set_header Host {host};" in lines
    if tls_name is None:
        assert not [line for line in lines if line.startswith("proxy_ssl")]
    else:  # SNI and the certificate check name the PKI, not the upstream block
        assert f"proxy_ssl_name {tls_name};" in lines and "proxy_ssl_verify on;" in lines


def test_a_pki_url_with_a_user_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _, stderr = run(monkeypatch, capsys, tmp_path, "--pki-url", "http://user:pw@127.0.0.1:8080")
    assert status != 0 and "without user or password" in stderr
