"""Render the SeaCat gateway (NGINX) configuration for one tenant.

    .venv/bin/python -m scripts.gateway render --tenant T --pki-url URL --out DIR [options]

Fetches the tenant's CA bundle (public ``GET <pki-url>/<tenant>/x509/ca``) into DIR/seacat_ca.pem,
fills infra/nginx/seacat-gateway.conf.template into DIR/nginx.conf (every path in it absolute and,
unless told otherwise, under DIR) and prints how to start NGINX. With --self-signed-server-cert it
also makes an EC P-256 server certificate in DIR, for local use only.

With a gateway credential (``POST /<tenant>/gateway/credential``), read from --gateway-credential-file
or the environment variable SEACAT_GATEWAY_CREDENTIAL, never from the command line (``ps`` shows
that), the authentication subrequest sends it in X-SeaCat-Gateway-Credential and nginx.conf is
written owner-only (0600): it then holds a secret.

Standard library and ``cryptography`` only.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import re
import string
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "nginx" / "seacat-gateway.conf.template"
CA_FILE = "seacat_ca.pem"
CONF_FILE = "nginx.conf"
SELF_SIGNED_CERT = "gateway_cert.pem"
SELF_SIGNED_KEY = "gateway_key.pem"
DEFAULT_PKI_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's system trust store
DEFAULT_USER = "nobody"
# The upstream block of the authentication subrequest (the PKI, its idle connections kept).
AUTH_UPSTREAM = "seacat_pki_auth"
# How long NGINX keeps a 200 of nginx_authenticate: the revocation delay of the auth_request check
# (the reference's 360 s left a revoked device six minutes of access).
DEFAULT_AUTH_CACHE = "5s"
OCSP_CACHE = "shared:seacat_ocsp:10m"  # ~ 40,000 certificates' statuses, each until its nextUpdate
DEBIAN_NOBODY_GROUP = "nogroup"  # Debian and Ubuntu have no group nobody
CREDENTIAL_ENV = "SEACAT_GATEWAY_CREDENTIAL"
CREDENTIAL_HEADER = "X-SeaCat-Gateway-Credential"
# What POST /<tenant>/gateway/credential makes: "sgc_" + secrets.token_urlsafe(32). Nothing else
# reaches the (quoted) header value in nginx.conf, so no credential can end or open a directive.
CREDENTIAL_RE = re.compile(r"sgc_[A-Za-z0-9_-]{43}")
SECRET_MODE = 0o600

TENANT_RE = re.compile(r"[a-zA-Z0-9_-]{2,64}")  # as the service accepts tenant names
DURATION_RE = re.compile(r"[0-9]+(ms|s|m|h|d)?")
# Values land in NGINX directives unquoted: nothing that could end or open a directive.
UNSAFE_RE = re.compile(r"[\s;{}'\"#\\$]")


class GatewayError(Exception):
    """A usage or rendering problem, reported on stderr with exit status 1."""


class NginxTemplate(string.Template):
    """Only ``${UPPER_CASE}`` is a placeholder: ``$name`` and ``${name}`` are NGINX variables."""

    flags = re.RegexFlag(0)  # string.Template ignores case by default: ${lower} must stay NGINX's
    pattern = r"""
    \$(?:
      (?P<escaped>(?!))              |
      (?P<named>(?!))                |
      \{(?P<braced>[A-Z][A-Z0-9_]*)\} |
      (?P<invalid>(?!))
    )
    """  # type: ignore[assignment]


PLACEHOLDER_RE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Fill every placeholder; refuse placeholders without a value and values without a placeholder."""
    wanted = set(PLACEHOLDER_RE.findall(text))
    missing = sorted(wanted - set(values))
    if missing:
        raise GatewayError("the template has placeholders with no value: " + ", ".join(missing))
    unused = sorted(set(values) - wanted)
    if unused:
        raise GatewayError("values for placeholders the template does not have: " + ", ".join(unused))
    rendered = NginxTemplate(text).substitute(values)
    left = sorted(set(PLACEHOLDER_RE.findall(rendered)))
    if left:
        raise GatewayError("placeholders left over after rendering: " + ", ".join(left))
    return rendered


def _safe(name: str, value: str) -> str:
    if not value or UNSAFE_RE.search(value):
        raise GatewayError(
            f"{name} must be non-empty, without spaces, quotes, ';', '{{', '}}', '#', '\\' or '$': {value!r}"
        )
    return value


def _base_url(name: str, value: str) -> str:
    url = value.rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise GatewayError(f"{name} must be an http(s) URL without query or fragment: {value!r}")
    return _safe(name, url)


def _listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536 or (sep and not host):
        raise GatewayError(f"--listen must be PORT or ADDRESS:PORT: {value!r}")
    return _safe("--listen", value)


def _group_of(user: str) -> str | None:
    """The group to name beside ``user`` in NGINX's ``user`` directive, or None for none.

    NGINX takes a missing group to be the group named like the user and, started as root, refuses to
    run where there is none: Debian has no group ``nobody`` (its ``nobody``'s group is ``nogroup``).
    So when this machine has no group of the user's name, the user's primary group is named, or
    ``nogroup`` for ``nobody``. Looked up on the machine that renders, which is meant to be the one
    that runs NGINX (the rendered paths are absolute)."""
    try:
        import grp
        import pwd
    except ImportError:  # not a Unix system: leave NGINX's rule alone
        return None
    try:
        grp.getgrnam(user)
        return None  # NGINX's own default works here
    except KeyError:
        pass
    try:
        name: str | None = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except (KeyError, OverflowError):
        name = None
    if name is None and user == DEFAULT_USER:
        try:
            name = grp.getgrnam(DEBIAN_NOBODY_GROUP).gr_name
        except KeyError:
            pass
    if not name or UNSAFE_RE.search(name):
        return None
    return name


def worker_user(user: str, group: str | None = None) -> str:
    """The value of NGINX's ``user`` directive: ``USER`` or ``USER GROUP`` (``--group``, or the
    group ``_group_of`` finds when this machine has no group named like the user)."""
    user = _safe("--user", user)
    if group is not None:
        return f"{user} {_safe('--group', group)}"
    found = _group_of(user)
    return f"{user} {found}" if found else user


def fetch_ca_bundle(pki_url: str, tenant: str, timeout: float = 30.0) -> bytes:
    """The tenant's CA certificates (PEM), as the PKI publishes them; checked to parse."""
    url = f"{pki_url}/{urllib.parse.quote(tenant)}/x509/ca"
    request = urllib.request.Request(url, headers={"Accept": "application/x-pem-file"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as error:
        raise GatewayError(f"GET {url}: HTTP {error.code} {error.read()[:200]!r}") from None
    except OSError as error:
        raise GatewayError(f"GET {url}: {error}") from None
    try:
        certificates = x509.load_pem_x509_certificates(body)
    except ValueError:
        raise GatewayError(f"GET {url}: the answer is not a PEM certificate bundle: {body[:200]!r}") from None
    if not certificates:
        raise GatewayError(f"GET {url}: no certificate in the bundle")
    return body


def make_self_signed_server_cert(cert_path: Path, key_path: Path, names: Sequence[str], days: int = 30) -> None:
    """An EC P-256 self-signed server certificate: FOR LOCAL USE ONLY (tests, a laptop)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SeaCat gateway (self-signed, local use only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]
    )
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def read_credential(path: str | None, environ: Mapping[str, str]) -> str | None:
    """The gateway credential from the file ``path`` ("-": standard input) or the environment
    variable SEACAT_GATEWAY_CREDENTIAL; None for neither. Its form is checked strictly; no error
    message repeats what was read (it may be the credential with a typo)."""
    from_env = environ.get(CREDENTIAL_ENV)
    if path is not None and from_env is not None:
        raise GatewayError(
            f"give the gateway credential either in --gateway-credential-file or in {CREDENTIAL_ENV}, not both"
        )
    if path is None and from_env is None:
        return None
    if path is None:
        source, text = CREDENTIAL_ENV, str(from_env)
    elif path == "-":
        source, text = "standard input", sys.stdin.read()
    else:
        source = path
        try:
            raw = Path(path).read_bytes()
        except OSError as error:
            raise GatewayError(f"--gateway-credential-file: cannot read {path}: {error.strerror or error}") from None
        text = raw.decode("ascii", "replace")  # anything not ASCII fails the check below
    credential = text.strip()
    if not CREDENTIAL_RE.fullmatch(credential):
        raise GatewayError(
            f"the gateway credential in {source} is not one: expected sgc_ and 43 URL-safe base64 characters, "
            "the 'credential' of POST /<tenant>/gateway/credential's answer, alone (a final newline is fine)"
        )
    return credential


def credential_lines(credential: str | None) -> str:
    """The auth subrequest's credential header, or nothing when there is no credential."""
    if credential is None:
        return ""
    if not CREDENTIAL_RE.fullmatch(credential):  # read_credential checked it: belt and braces
        raise GatewayError("the gateway credential is not of the form sgc_ + 43 URL-safe base64 characters")
    return " " * 12 + f'proxy_set_header {CREDENTIAL_HEADER} "{credential}";'


def write_conf(path: Path, text: str, *, secret: bool) -> None:
    """Write nginx.conf. Holding a secret, it is written owner-only (0600) to a new file that then
    replaces the old one, so no reader ever sees the credential in a file others may read."""
    if not secret:
        path.write_text(text)
        return
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600, O_EXCL
    temp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), SECRET_MODE)  # whatever the umask
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def ocsp_responder_url(pki_url: str, tenant: str, responder: str | None) -> str:
    """The URL NGINX's ssl_ocsp asks: the tenant's responder on the PKI, or ``responder`` (--ocsp-responder).
    NGINX speaks OCSP over plain HTTP only (OCSP answers are signed; RFC 5019 uses http): an https PKI
    needs --ocsp-responder naming an http address that reaches the same route (a CDN, a proxy)."""
    url = _base_url("--ocsp-responder", responder) if responder else f"{pki_url}/{tenant}/ocsp"
    if not url.startswith("http://"):
        raise GatewayError(
            "NGINX asks OCSP responders over http only, and the PKI URL is https: give --ocsp-responder "
            f"http://HOST[:PORT]/{tenant}/ocsp (an http address of the same service, e.g. a CDN or a proxy)"
        )
    return url


def ocsp_lines(url: str, cache: bool, resolver: str | None) -> str:
    """ssl_ocsp lines; a responder named by host name needs NGINX's resolver (it resolves at run time)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if not literal and host != "localhost" and resolver is None:
        raise GatewayError(
            f"the OCSP responder {host} is a host name: NGINX resolves it at run time and needs --resolver "
            "(the DNS servers' addresses, e.g. 127.0.0.53 or 10.0.0.2)"
        )
    indent = " " * 8
    lines = ["ssl_ocsp on;", f"ssl_ocsp_responder {url};", f"ssl_ocsp_cache {OCSP_CACHE if cache else 'off'};"]
    if resolver is not None:
        lines += [f"resolver {_safe('--resolver', resolver)} valid=300s;", "resolver_timeout 5s;"]
    return "\n".join(indent + line for line in lines)


def keep_or_make_server_cert(cert_path: Path, key_path: Path, names: Sequence[str], replace: bool) -> bool:
    """Keep the self-signed certificate and key of an earlier render (clients were told to trust that
    one) unless ``replace``, or it is unreadable, expired or for other names; else make one. Whether a
    new one was made."""
    if not replace and cert_path.is_file() and key_path.is_file():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            has = {str(n.value) for n in san}
            fresh = cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
            ours = key.public_key() == cert.public_key()
            if fresh and ours and set(names) <= has:
                return False
        except (ValueError, x509.ExtensionNotFound):
            pass
    make_self_signed_server_cert(cert_path, key_path, names)
    return True


def pki_tls_lines(pki_url: str, pki_ca_file: str) -> str:
    """proxy_ssl_* settings for an https PKI: send SNI, verify its certificate."""
    if not pki_url.startswith("https://"):
        return ""
    indent = " " * 12
    lines = [
        "proxy_ssl_server_name on;",
        "proxy_ssl_verify on;",
        "proxy_ssl_verify_depth 4;",
        f"proxy_ssl_trusted_certificate {pki_ca_file};",
        "proxy_ssl_protocols TLSv1.2 TLSv1.3;",
    ]
    return "\n".join(indent + line for line in lines)


def auth_upstream_values(pki_url: str) -> dict[str, str]:
    """The authentication subrequest's placeholders: the PKI as an upstream with kept-alive
    connections (its host and port), the URL through it (the PKI's path kept), the Host header the
    PKI's URL would have sent, and for https the name to send in SNI and check its certificate for
    (by default NGINX would use the upstream's name)."""
    parts = urllib.parse.urlsplit(pki_url)
    if parts.username is not None or parts.hostname is None:
        raise GatewayError(f"--pki-url must name a host, without user or password: {pki_url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    tls_name = " " * 12 + f"proxy_ssl_name {host.strip('[]')};" if parts.scheme == "https" else ""
    return {
        "PKI_AUTH_SERVER": _safe("--pki-url", f"{host}:{port}"),
        "PKI_AUTH_URL": _safe("--pki-url", f"{parts.scheme}://{AUTH_UPSTREAM}{parts.path.rstrip('/')}"),
        "PKI_AUTH_HOST": _safe("--pki-url", parts.netloc),
        "PKI_AUTH_TLS_NAME": tls_name,
    }


# ---- EST (RFC 7030) block of the template ------------------------------------------------------


def est_values(pki_url: str, credential: str | None) -> dict[str, str]:
    """The EST block's placeholders: the PKI's origin and path apart (a regex location's proxy_pass
    takes no path), and the gateway credential sent with a forwarded client certificate, or an empty
    header (NGINX then sends none, and a client's own header of that name is dropped)."""
    parts = urllib.parse.urlsplit(pki_url)
    line = credential_lines(credential) or " " * 12 + f'proxy_set_header {CREDENTIAL_HEADER} "";'
    return {
        "EST_PKI_ORIGIN": _safe("--pki-url", f"{parts.scheme}://{parts.netloc}"),
        "EST_PKI_PATH": parts.path.rstrip("/"),
        "EST_GATEWAY_CREDENTIAL": line,
    }


# ---- end of EST ---------------------------------------------------------------------------------


@dataclass
class Rendered:
    conf: Path
    client_ca: Path
    server_cert: Path
    server_key: Path
    self_signed: bool
    credential: bool = False
    new_server_cert: bool = False
    ocsp_responder: str | None = None
    auth_cache_valid: str = DEFAULT_AUTH_CACHE


def render(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Rendered:
    if getattr(args, "credential_on_command_line", None) is not None:
        raise GatewayError(
            "the gateway credential is not taken on the command line (ps shows it to everyone): "
            f'put it in a file for --gateway-credential-file ("-": standard input) or in {CREDENTIAL_ENV}'
        )
    tenant: str = args.tenant
    credential = read_credential(args.gateway_credential_file, os.environ if environ is None else environ)
    if not TENANT_RE.fullmatch(tenant):
        raise GatewayError(f"--tenant must match {TENANT_RE.pattern}: {tenant!r}")
    pki_url = _base_url("--pki-url", args.pki_url)
    upstream = _base_url("--upstream", args.upstream)
    listen = _listen(str(args.listen))
    server_name = _safe("--server-name", args.server_name)
    cache_valid = args.auth_cache_valid
    if not DURATION_RE.fullmatch(cache_valid):
        raise GatewayError(f"--auth-cache-valid must be an NGINX time such as 360s or 5m: {cache_valid!r}")
    workers = worker_user(args.user, args.group)
    ocsp_url = ocsp_responder_url(pki_url, tenant, args.ocsp_responder) if args.ocsp else None
    if not args.ocsp and (args.ocsp_responder or args.no_ocsp_cache or args.resolver):
        raise GatewayError("--ocsp-responder, --no-ocsp-cache and --resolver go with --ocsp")
    ocsp = ocsp_lines(ocsp_url, not args.no_ocsp_cache, args.resolver) if ocsp_url else ""

    out: Path = args.out.resolve()
    if args.self_signed_server_cert == bool(args.server_cert or args.server_key):
        raise GatewayError("give either --server-cert and --server-key, or --self-signed-server-cert")
    if not args.self_signed_server_cert and not (args.server_cert and args.server_key):
        raise GatewayError("--server-cert and --server-key go together")
    log_dir: Path = (args.log_dir or out / "logs").resolve()
    cache_dir: Path = (args.cache_dir or out / "cache" / "seacat_auth").resolve()
    temp_dir = out / "tmp"
    pid_file: Path = (args.pid_file or out / "nginx.pid").resolve()

    bundle = fetch_ca_bundle(pki_url, tenant)
    out.mkdir(parents=True, exist_ok=True)
    for directory in (log_dir, cache_dir.parent, temp_dir):
        directory.mkdir(parents=True, exist_ok=True)
    client_ca = out / CA_FILE
    client_ca.write_bytes(bundle)

    new_cert = False
    if args.replace_server_cert and not args.self_signed_server_cert:
        raise GatewayError("--replace-server-cert goes with --self-signed-server-cert")
    if args.self_signed_server_cert:
        server_cert, server_key = out / SELF_SIGNED_CERT, out / SELF_SIGNED_KEY
        names = [server_name] if server_name != "_" else []
        new_cert = keep_or_make_server_cert(
            server_cert, server_key, [*names, "localhost", "127.0.0.1"], args.replace_server_cert
        )
    else:
        server_cert, server_key = Path(args.server_cert).resolve(), Path(args.server_key).resolve()
        for path in (server_cert, server_key):
            if not path.is_file():
                raise GatewayError(f"no such file: {path}")

    values = {
        "WORKER_USER": workers,
        "PID_FILE": _safe("--pid-file", str(pid_file)),
        "LOG_DIR": _safe("--log-dir", str(log_dir)),
        "TEMP_DIR": _safe("--out", str(temp_dir)),
        "CACHE_DIR": _safe("--cache-dir", str(cache_dir)),
        "LISTEN": listen,
        "SERVER_NAME": server_name,
        "SERVER_CERT": _safe("--server-cert", str(server_cert)),
        "SERVER_KEY": _safe("--server-key", str(server_key)),
        "CLIENT_CA": _safe("--out", str(client_ca)),
        "PKI_URL": pki_url,
        "PKI_TLS": pki_tls_lines(pki_url, _safe("--pki-ca-file", args.pki_ca_file)),
        "TENANT": tenant,
        "UPSTREAM": upstream,
        "AUTH_CACHE_VALID": cache_valid,
        "GATEWAY_CREDENTIAL": credential_lines(credential),
        **auth_upstream_values(pki_url),
        **est_values(pki_url, credential),
        "OCSP": ocsp,
    }
    conf = out / CONF_FILE
    write_conf(conf, render_template(TEMPLATE.read_text(), values), secret=credential is not None)
    return Rendered(
        conf,
        client_ca,
        server_cert,
        server_key,
        bool(args.self_signed_server_cert),
        credential is not None,
        new_cert,
        ocsp_url,
        cache_valid,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=".venv/bin/python -m scripts.gateway", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    # allow_abbrev off: "--gateway-credential VALUE" must not pass for --gateway-credential-file
    p = commands.add_parser("render", help="fetch the tenant's CA bundle and write nginx.conf", allow_abbrev=False)
    add_render_options(p)
    return parser


def add_render_options(p: argparse.ArgumentParser, *, pki_url_required: bool = True) -> None:
    """The options of ``render`` (this script's and ``seacat gateway render``'s)."""
    p.add_argument("--tenant", required=True)
    p.add_argument(
        "--pki-url",
        required=pki_url_required,
        help="the SeaCat PKI service, e.g. https://pki.example.com"
        + ("" if pki_url_required else " (default: the service URL, --url or $SEACAT_URL)"),
    )
    p.add_argument("--out", required=True, type=Path, help="directory for nginx.conf, the CA bundle and state")
    p.add_argument("--listen", default="443", help="PORT or ADDRESS:PORT of the TLS listener (default 443)")
    p.add_argument("--server-name", default="_", help='server_name (default "_": any)')
    p.add_argument("--server-cert", help="the gateway's certificate chain, PEM (EC key)")
    p.add_argument("--server-key", help="its private key, PEM")
    p.add_argument(
        "--self-signed-server-cert",
        action="store_true",
        help="make a self-signed EC P-256 server certificate in --out: for local use only",
    )
    p.add_argument("--upstream", default="http://127.0.0.1:8000", help="where authenticated requests go")
    p.add_argument(
        "--replace-server-cert",
        action="store_true",
        help="with --self-signed-server-cert: make a new one even if --out holds a valid one (default: keep it)",
    )
    p.add_argument(
        "--auth-cache-valid",
        default=DEFAULT_AUTH_CACHE,
        help=f"how long NGINX caches a successful authentication: a revoked device keeps access that long "
        f"(default {DEFAULT_AUTH_CACHE}; the reference's 360s is six minutes)",
    )
    p.add_argument(
        "--ocsp",
        action="store_true",
        help="also check client certificates by OCSP (ssl_ocsp) before any request is read: "
        "a revoked certificate is refused with 400 and never reaches nginx_authenticate or the upstream",
    )
    p.add_argument(
        "--ocsp-responder", metavar="URL", help="http URL of the tenant's responder (default PKI/TENANT/ocsp)"
    )
    p.add_argument(
        "--no-ocsp-cache",
        action="store_true",
        help="ask the responder at every full handshake (default: keep each answer until its nextUpdate)",
    )
    p.add_argument("--resolver", help="DNS server(s) NGINX resolves a host-named OCSP responder with")
    p.add_argument(
        "--user",
        default=DEFAULT_USER,
        help=f"user of the worker processes when started as root (default {DEFAULT_USER})",
    )
    p.add_argument(
        "--group",
        help="their group (default: the group named like --user, or, where this machine has none, "
        f"the user's primary group: {DEBIAN_NOBODY_GROUP} for Debian's {DEFAULT_USER})",
    )
    p.add_argument("--log-dir", type=Path, help="default: OUT/logs")
    p.add_argument("--cache-dir", type=Path, help="default: OUT/cache/seacat_auth")
    p.add_argument("--pid-file", type=Path, help="default: OUT/nginx.pid")
    p.add_argument(
        "--pki-ca-file",
        default=DEFAULT_PKI_CA_FILE,
        help=f"CA certificates that verify an https PKI (default {DEFAULT_PKI_CA_FILE})",
    )
    p.add_argument(
        "--gateway-credential-file",
        metavar="PATH",
        help='a file ("-": standard input) holding the tenant\'s gateway credential (POST /<tenant>/gateway/credential), '
        f"sent to nginx_authenticate in {CREDENTIAL_HEADER}; or set {CREDENTIAL_ENV}. nginx.conf is then "
        "written owner-only (0600). Default: none, for a tenant that requires no credential",
    )
    # Refused with its own message (which never repeats the value): a secret on the command line
    # is in every `ps` listing and in the shell's history.
    p.add_argument("--gateway-credential", dest="credential_on_command_line", help=argparse.SUPPRESS)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rendered = render(args)
    except GatewayError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 1
    report(rendered)
    return 0


def report(rendered: Rendered, file: TextIO | None = None) -> None:
    """What was written and how to start NGINX with it, for people."""

    def say(text: str) -> None:
        (file or sys.stdout).write(text + "\n")

    out = rendered.conf.parent
    say(f"wrote {rendered.conf}")
    say(f"wrote {rendered.client_ca} (the tenant's CA bundle: ssl_client_certificate)")
    if rendered.self_signed and rendered.new_server_cert:
        say(
            f"wrote {rendered.server_cert} and {rendered.server_key}: a SELF-SIGNED EC P-256 server certificate,\n"
            "  for local use only. Clients must be told to trust it; use a real certificate in production\n"
            "  (acme.sh --keylength ec-256, see docs/gateway.md)."
        )
    elif rendered.self_signed:
        say(
            f"kept {rendered.server_cert} and {rendered.server_key}: the SELF-SIGNED server certificate of an\n"
            "  earlier render (for local use only); --replace-server-cert makes a new one."
        )
    say("\nRevocation delay (from the revoke call returning to the first refused request):")
    say(f"  auth_request: up to {rendered.auth_cache_valid} (--auth-cache-valid) + the PKI's revocation cache")
    say("  (SEACAT_REVOCATION_CACHE_SECONDS: 0 with make run, 5 s on Lambda)")
    if rendered.ocsp_responder:
        say(
            f"  OCSP ({rendered.ocsp_responder}): at the next full handshake, or up to the answer's\n"
            "  nextUpdate (SEACAT_OCSP_VALIDITY_SECONDS, 60 s by default) while it is cached"
        )
    if rendered.credential:
        say(
            f"{rendered.conf} holds the tenant's gateway credential ({CREDENTIAL_HEADER}, sent to the PKI only):\n"
            "  it is written owner-only (0600). Keep it so: run NGINX's master as this file's owner (or root),\n"
            "  do not copy it anywhere readable, and mind that `nginx -T` prints it."
        )
    say(
        "\nCheck and start NGINX (1.22+) with:\n"
        f"  nginx -t -p {out} -c {rendered.conf}\n"
        f"  nginx -p {out} -c {rendered.conf}                         # as a daemon\n"
        f"  nginx -p {out} -c {rendered.conf} -g 'daemon off;'        # in the foreground\n"
        "Reload after the tenant's CA bundle changes (render again, then nginx -s reload)."
    )
    if rendered.credential:
        say(
            "After a credential rotation (POST /<tenant>/gateway/credential again), render every gateway with\n"
            "the new credential and reload it, then drop the previous one:\n"
            "DELETE /<tenant>/gateway/credential?previous=true (see docs/gateway.md)."
        )


if __name__ == "__main__":
    sys.exit(main())
