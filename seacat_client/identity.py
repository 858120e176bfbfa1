"""Device identity: key and certificate state, the renewal rule, and the PKI calls.

State lives in one directory, as with the Python G3 client: ``seacat_key.pem`` (P-256,
unencrypted PKCS#8, mode 0600) and ``seacat_cert.der`` (the issued certificate, DER).
HTTP uses only the standard library (``urllib``); proxies from the environment apply.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import os
import re
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .cr import build_cr

__all__ = [
    "CERT_FILE",
    "CERT_PEM_FILE",
    "DEFAULT_APPLICATION",
    "DEFAULT_TIMEOUT",
    "IDENTITY_PATTERN",
    "KEY_FILE",
    "EnrollError",
    "EnrollResult",
    "SeaCatClientError",
    "enroll",
    "get_certificate",
    "identity_of_public_key",
    "load_certificate",
    "load_key",
    "load_or_create_key",
    "needs_renewal",
    "normalize_api_url",
    "renewal_starts",
    "write_pem",
]

KEY_FILE = "seacat_key.pem"
CERT_FILE = "seacat_cert.der"
CERT_PEM_FILE = "seacat_cert.pem"
DEFAULT_APPLICATION = "SeaCat Python Client"
DEFAULT_TIMEOUT = 30.0
IDENTITY_PATTERN = re.compile(r"^[A-Z2-7]{16}\Z")  # \Z: "$" would allow a trailing newline
MAX_RESPONSE = 1024 * 1024
USER_AGENT = "seacat-client-python/1"
RENEWAL_MARGIN = datetime.timedelta(days=30)


class SeaCatClientError(Exception):
    """A client-side failure with a message fit for the command line."""


class EnrollError(SeaCatClientError):
    """The PKI did not hand out a usable certificate."""

    def __init__(self, message: str, *, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class EnrollResult:
    identity: str
    certificate: x509.Certificate
    requested: bool  # False: the stored certificate was still outside the renewal window
    cert_path: Path


# --- identity and renewal ---


def identity_of_public_key(public_key: ec.EllipticCurvePublicKey) -> str:
    """Base32(SHA-384(04 || X || Y))[:16], computed like the G3 clients (from the key numbers)."""
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise SeaCatClientError("SeaCat identities need a P-256 key")
    numbers = public_key.public_numbers()
    x963 = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    return base64.b32encode(hashlib.sha384(x963).digest()).decode("ascii")[:16]


def renewal_starts(certificate: x509.Certificate) -> datetime.datetime:
    """The instant after which the clients renew: notAfter - max(L/2, 30 days)."""
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    lifetime = not_after - not_before
    return min(not_after - lifetime / 2, not_after - RENEWAL_MARGIN)


def needs_renewal(cert: x509.Certificate, now: datetime.datetime) -> bool:
    """G3 rule: L = notAfter - notBefore; renew when now > notAfter - L/2 or now > notAfter - 30 d.

    A naive ``now`` is taken as UTC.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    not_after = cert.not_valid_after_utc
    lifetime = not_after - cert.not_valid_before_utc
    return now > not_after - lifetime / 2 or now > not_after - RENEWAL_MARGIN


# --- local state ---


def normalize_api_url(api_url: str) -> str:
    """``http(s)://host/<tenant>/seacat`` with trailing ``/`` stripped (as the apps do)."""
    url = api_url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SeaCatClientError(f"api URL must be http(s)://host/<tenant>/seacat, got {api_url!r}")
    if parts.query or parts.fragment:
        raise SeaCatClientError("api URL must not have a query or fragment")
    return url


def _write_atomically(path: Path, data: bytes, mode: int, *, overwrite: bool = True) -> bool:
    """Write via a temporary file in the same directory, then rename (or link) into place.

    With ``overwrite=False`` an existing file is left alone and ``False`` is returned.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        if overwrite:
            os.replace(tmp_name, path)
            return True
        try:
            os.link(tmp_name, path)  # atomic create-if-absent
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp_name)
        return True
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def load_key(state_dir: str | os.PathLike[str]) -> ec.EllipticCurvePrivateKey | None:
    path = Path(state_dir) / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SeaCatClientError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SeaCatClientError(f"{path}: not a P-256 EC key")
    return key


def load_or_create_key(state_dir: str | os.PathLike[str]) -> tuple[ec.EllipticCurvePrivateKey, bool]:
    """Load ``seacat_key.pem`` or create a new P-256 key (mode 0600). Returns (key, created)."""
    directory = Path(state_dir)
    existing = load_key(directory)
    if existing is not None:
        return existing, False
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if not _write_atomically(directory / KEY_FILE, pem, 0o600, overwrite=False):
        # another process created the key meanwhile: use that one
        raced = load_key(directory)
        if raced is None:
            raise SeaCatClientError(f"{directory / KEY_FILE} vanished while being created")
        return raced, False
    return key, True


def load_certificate(state_dir: str | os.PathLike[str]) -> x509.Certificate | None:
    """The stored certificate, or ``None`` if absent or unreadable."""
    try:
        data = (Path(state_dir) / CERT_FILE).read_bytes()
        return x509.load_der_x509_certificate(data)
    except (FileNotFoundError, ValueError):
        return None


def _same_key(certificate: x509.Certificate, private_key: ec.EllipticCurvePrivateKey) -> bool:
    cert_key = certificate.public_key()
    if not isinstance(cert_key, ec.EllipticCurvePublicKey):
        return False
    if not isinstance(cert_key.curve, ec.SECP256R1):
        return False
    return cert_key.public_numbers() == private_key.public_key().public_numbers()


def write_pem(state_dir: str | os.PathLike[str]) -> str:
    """Write ``seacat_cert.pem`` next to the DER certificate and return the PEM text."""
    directory = Path(state_dir)
    certificate = load_certificate(directory)
    if certificate is None:
        raise SeaCatClientError(f"no readable {CERT_FILE} in {directory} (run enroll first)")
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    _write_atomically(directory / CERT_PEM_FILE, pem, 0o644)
    return pem.decode("ascii")


# --- HTTP ---


def _ssl_context(cafile: str | None, insecure: bool) -> ssl.SSLContext:
    if insecure:
        if cafile:
            raise SeaCatClientError("--cafile and --insecure are mutually exclusive")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as error:
        raise SeaCatClientError(f"cannot load CA file {cafile!r}: {error}") from None


def _request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
    cafile: str | None,
    insecure: bool,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("User-Agent", USER_AGENT)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    context = _ssl_context(cafile, insecure) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status = int(response.status)
            data = response.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as error:
        status = error.code
        try:
            data = error.read(MAX_RESPONSE + 1)
        except OSError:
            data = b""
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise SeaCatClientError(f"{method} {url} failed: {reason}") from None
    if len(data) > MAX_RESPONSE:
        raise SeaCatClientError(f"{method} {url}: response larger than {MAX_RESPONSE} bytes")
    return status, data


def _parse_certificate(data: bytes, *, allow_pem: bool) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        pass
    if allow_pem:
        try:
            return x509.load_pem_x509_certificate(data)
        except ValueError:
            pass
    return None


def _looks_like_base64_der(data: bytes) -> bool:
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        return False
    return decoded[:1] == b"\x30"


def enroll(
    api_url: str,
    state_dir: str | os.PathLike[str],
    *,
    application: str = DEFAULT_APPLICATION,
    attributes: Sequence[tuple[str, str]] | None = None,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    cafile: str | None = None,
    insecure: bool = False,
    now: datetime.datetime | None = None,
) -> EnrollResult:
    """Enrol (or renew) like a G3 client: ``PUT <apiURL>/enroll`` with a CR, expect 200 + DER.

    Skips the request when the stored certificate matches the key and is outside the
    renewal window, unless ``force``. Raises :class:`EnrollError` / :class:`SeaCatClientError`.
    """
    base = normalize_api_url(api_url)
    directory = Path(state_dir)
    cert_path = directory / CERT_FILE
    if now is None:
        now = datetime.datetime.now(datetime.UTC)

    key, created = load_or_create_key(directory)
    identity = identity_of_public_key(key.public_key())
    if created:
        cert_path.unlink(missing_ok=True)  # belongs to a previous key
    elif not force:
        current = load_certificate(directory)
        if current is not None and _same_key(current, key) and not needs_renewal(current, now):
            return EnrollResult(identity, current, requested=False, cert_path=cert_path)

    cr = build_cr(key, application=application, attributes=attributes)
    url = base + "/enroll"
    status, body = _request(
        "PUT",
        url,
        body=cr,
        headers={"Content-Type": "application/octet-stream"},
        timeout=timeout,
        cafile=cafile,
        insecure=insecure,
    )
    if status == 202:
        # Not a G3 answer (the apps only take 200): this service's manual approval mode.
        raise EnrollError(
            f"PUT {url} answered HTTP 202: the request waits for an administrator's approval; "
            "run enroll again (with the same key) once it is approved",
            status=status,
            body=body,
        )
    if status != 200:
        raise EnrollError(f"PUT {url} answered HTTP {status}", status=status, body=body)

    certificate = _parse_certificate(body, allow_pem=False)  # iOS and Python need DER
    if certificate is None:
        hint = (
            " (it looks like Base64: check the API Gateway binary media types)" if _looks_like_base64_der(body) else ""
        )
        raise EnrollError(
            f"PUT {url} answered 200 but the body is not a DER certificate{hint}",
            status=status,
            body=body,
        )
    if not _same_key(certificate, key):
        raise EnrollError(
            f"PUT {url} returned a certificate for another key (ours is {identity})",
            status=status,
            body=body,
        )
    _write_atomically(cert_path, body, 0o644)
    return EnrollResult(identity, certificate, requested=True, cert_path=cert_path)


def get_certificate(
    api_url: str,
    identity: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    cafile: str | None = None,
    insecure: bool = False,
) -> tuple[x509.Certificate, bytes]:
    """``GET <apiURL>/get/<identity>`` (a peer's certificate). Returns (certificate, DER)."""
    if not IDENTITY_PATTERN.match(identity):
        raise SeaCatClientError(f"not a SeaCat identity: {identity!r}")
    url = normalize_api_url(api_url) + "/get/" + identity
    status, body = _request("GET", url, timeout=timeout, cafile=cafile, insecure=insecure)
    if status != 200:
        raise EnrollError(f"GET {url} answered HTTP {status}", status=status, body=body)
    certificate = _parse_certificate(body, allow_pem=True)  # Android accepts DER or PEM
    if certificate is None:
        raise EnrollError(f"GET {url} answered 200 but the body is not a certificate", status=status, body=body)
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or identity_of_public_key(public_key) != identity:
        raise EnrollError(f"GET {url} returned a certificate for another identity", status=status, body=body)
    return certificate, certificate.public_bytes(serialization.Encoding.DER)
