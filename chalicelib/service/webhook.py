"""The tenant's approve webhook: POST the CR document, approve only on JSON {"result": "OK"}.

Fail closed: anything but that answer refuses (a 2xx with another body) or fails (no answer, a
non-2xx status, a redirect, something that is not HTTP, a timeout). The timeout bounds the whole
call, not each socket read: a webhook that drips its answer is cut off at the deadline.

Unless SEACAT_WEBHOOK_ALLOW_PRIVATE is set (the local and test stages), the URL must be https and
its host must resolve to a public address (``is_public_address``): a tenant's admin sets the URL, and
loopback, private, link-local or otherwise reserved addresses would let it reach the service's own
network; plain http would show each CR and the verdict to anyone on the path. Both are checked when
the URL is configured and again at each call (a stored URL may predate the rule). The connection goes
to the address that was checked (no second lookup a DNS answer could change in between).

Each call is signed: ``X-SeaCat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>``
with the tenant's own key, kept in the key store (Secrets Manager). It is made when an approve URL is
first set (that PUT's answer shows it once, as ``whsec_<64 hex>``: the key is those 32 bytes) or by
``POST /{tenant}/webhook/secret`` (a new one, shown once); a tenant without one gets one at its first
call, which an admin sees only by rotating.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chalicelib.errors import SecretAlreadyExists, Unavailable

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("seacat.webhook")

MAX_ANSWER = 64 * 1024
SIGNATURE_HEADER = "X-SeaCat-Signature"
SECRET_KIND = "webhook-secret"  # the key store's name for it: <secret prefix><tenant>/webhook-secret
SECRET_PREFIX = "whsec_"
NOT_HTTPS = "webhook URL is not https"
NOT_PUBLIC = "webhook host has no public address"

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits are IPv4
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NOT_GLOBAL_V6 = (ipaddress.IPv6Network("3fff::/20"),)  # documentation (RFC 9637), not in 3.11's table


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the service may connect to ``address``: public unicast, and for the IPv6 forms that carry
    an IPv4 address the connection in effect reaches (mapped, NAT64, 6to4), that IPv4 address public too.

    Python 3.11's ``is_global`` alone passes 64:ff9b::10.0.0.1, 2002:c0a8:101::1 (6to4 of
    192.168.1.1), ::127.0.0.1 and multicast. A NAT64 address of a public IPv4 address passes: the
    translator reaches what a direct connection would."""
    if isinstance(address, ipaddress.IPv4Address):
        return address.is_global and not address.is_multicast
    if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d: the socket connects to a.b.c.d
        return is_public_address(address.ipv4_mapped)
    if address in _NAT64:
        return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address not in _GLOBAL_UNICAST:
        # IPv4-compatible ::/96, loopback, the local-use NAT64 prefix 64:ff9b:1::/48 (its translator
        # is the operator's own), unique-local, link- and site-local, multicast, reserved
        return False
    if address.sixtofour is not None:  # 2002::/16
        return is_public_address(address.sixtofour)
    if address.teredo is not None:  # 2001::/32: a tunnel to an obfuscated client address
        return False
    return address.is_global and not any(address in net for net in _NOT_GLOBAL_V6)


def url_refusal(url: str) -> str | None:
    """Why this stage will not call ``url`` (NOT_HTTPS, NOT_PUBLIC for a literal address), or None;
    a host name's addresses are checked when it is resolved, at the call."""
    from chalicelib.settings import get_settings

    if get_settings().webhook_allow_private:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https":
        return NOT_HTTPS
    try:
        address = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return None
    return None if is_public_address(address) else NOT_PUBLIC


def signature(key: bytes, body: bytes, timestamp: int) -> str:
    """The X-SeaCat-Signature value: the HMAC binds the exact body bytes to the time they were sent."""
    mac = hmac.new(key, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def new_secret() -> bytes:
    """A new signing key (one function, so the tests' secret scan learns every key made)."""
    return secrets.token_bytes(32)


def shown_secret(key: bytes) -> str:
    return SECRET_PREFIX + key.hex()


def rotate_secret(tenant_id: str) -> str:
    """Create or replace the tenant's signing key; returns it in its shown form (the only time it is)."""
    from chalicelib.context import current
    from chalicelib.service import audit

    key = new_secret()
    current().keystore.put_secret(tenant_id, SECRET_KIND, key, replace=True)
    # After the write: an answer of 201 always has its event; a failed one is retried (a new key).
    audit.record("tenant.updated", tenant_id, tenant_id, "updated", {"changed": {"webhookSecret": "rotated"}})
    return shown_secret(key)


def create_secret_if_missing(tenant_id: str) -> str | None:
    """Make the tenant's signing key if it has none; returns it shown, or None when one exists (it
    was shown when it was made; rotating makes a new one)."""
    from chalicelib.context import current
    from chalicelib.service import audit

    keystore = current().keystore
    if keystore.load_secret(tenant_id, SECRET_KIND) is not None:
        return None
    key = new_secret()
    try:
        keystore.put_secret(tenant_id, SECRET_KIND, key, replace=False)
    except SecretAlreadyExists:
        return None  # made meanwhile: by a concurrent PUT, or by a first call
    audit.record("tenant.updated", tenant_id, tenant_id, "updated", {"changed": {"webhookSecret": "created"}})
    return shown_secret(key)


def signing_key(tenant_id: str) -> bytes:
    """The tenant's signing key, made now if it has none (its URL was set before calls were signed,
    or the key could not be stored then): no call goes out unsigned."""
    from chalicelib.context import current

    keystore = current().keystore
    key = keystore.load_secret(tenant_id, SECRET_KIND)
    if key is not None:
        return key
    try:
        key = new_secret()
        keystore.put_secret(tenant_id, SECRET_KIND, key, replace=False)
        log.warning(
            "the approve webhook had no signing secret: made one; rotate it to see it", extra={"tenant": tenant_id}
        )
        return key
    except SecretAlreadyExists:
        stored = keystore.load_secret(tenant_id, SECRET_KIND)
        if stored is None:
            raise Unavailable("the webhook signing secret is not readable yet") from None
        return stored


@dataclass(frozen=True)
class WebhookVerdict:
    approved: bool
    failed: bool  # True: the webhook could not give an answer (retryable)
    reason: str


def call(url: str, payload: dict[str, object], timeout: float, *, tenant_id: str) -> WebhookVerdict:
    """POST ``payload`` to the tenant's webhook, signed with the tenant's key."""
    from chalicelib import observability

    started = time.perf_counter()
    refusal = url_refusal(url)
    if refusal is not None:
        verdict = WebhookVerdict(False, True, refusal)  # fail closed: nothing is sent
    else:
        try:
            key = signing_key(tenant_id)
        except Unavailable:
            verdict = WebhookVerdict(False, True, "webhook signing secret is not available")
        else:
            verdict = _call(url, json.dumps(payload).encode("utf-8"), key, timeout)
    observability.metric("WebhookLatency", (time.perf_counter() - started) * 1000, unit="Milliseconds")
    if verdict.failed:
        observability.metric("WebhookFailures")
    return verdict


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str, ssl.SSLContext | None]:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        import ssl

        context = ssl.create_default_context()
        https = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout, context=context)
        return https, path, context
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout), path, None


class NotPublic(Exception):
    """The webhook's host resolves to no public address (and private ones are not allowed)."""


def _connect(conn: http.client.HTTPConnection, context: ssl.SSLContext | None, allow_private: bool) -> None:
    """Open ``conn`` to an address of its host that passed the egress check (TLS with ``context``
    when given, verifying the host name)."""
    addresses = socket.getaddrinfo(conn.host, conn.port, type=socket.SOCK_STREAM)
    for _family, _type, _proto, _name, sockaddr in addresses:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if allow_private or is_public_address(address):
            break
    else:
        raise NotPublic(conn.host)
    sock = socket.create_connection((str(sockaddr[0]), int(sockaddr[1])), timeout=conn.timeout)
    conn.sock = context.wrap_socket(sock, server_hostname=conn.host) if context is not None else sock


def _call(url: str, body: bytes, key: bytes, timeout: float) -> WebhookVerdict:
    from chalicelib.settings import get_settings

    allow_private = get_settings().webhook_allow_private
    try:
        conn, path, context = _connection(url, timeout)
    except (ValueError, http.client.InvalidURL):
        return WebhookVerdict(False, True, "webhook URL is not usable")
    answers: queue.Queue[tuple[int, bytes] | BaseException] = queue.Queue(maxsize=1)
    # http.client drops conn.sock once an HTTP/1.0 answer starts; keep the socket to cut it off.
    sockets: list[socket.socket] = []

    def exchange() -> None:
        try:
            _connect(conn, context, allow_private)
            if conn.sock is not None:
                sockets.append(conn.sock)
            conn.request(
                "POST",
                path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "SeaCat-PKI-serverless",
                    # signed when sent: a receiver refuses old timestamps, so a copy cannot be replayed later
                    SIGNATURE_HEADER: signature(key, body, int(time.time())),
                },
            )
            response = conn.getresponse()
            answers.put((response.status, response.read(MAX_ANSWER + 1)))
        except BaseException as exc:  # handed to the caller, who decides
            answers.put(exc)

    worker = threading.Thread(target=exchange, name="approve-webhook", daemon=True)
    worker.start()
    try:
        outcome = answers.get(timeout=timeout)
    except queue.Empty:
        # Cut the exchange off: shutting the socket down ends the worker's blocked read at once.
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        conn.close()
        return WebhookVerdict(False, True, f"webhook did not answer within {timeout:g} s")
    conn.close()
    if isinstance(outcome, NotPublic):
        return WebhookVerdict(False, True, NOT_PUBLIC)
    if isinstance(outcome, TimeoutError):  # socket.timeout is TimeoutError
        return WebhookVerdict(False, True, f"webhook did not answer within {timeout:g} s")
    if isinstance(outcome, (OSError, http.client.HTTPException)):
        return WebhookVerdict(False, True, f"webhook unreachable or not speaking HTTP ({type(outcome).__name__})")
    if isinstance(outcome, BaseException):
        return WebhookVerdict(False, True, f"webhook call failed ({type(outcome).__name__})")
    status, body = outcome
    if not 200 <= status < 300:
        return WebhookVerdict(False, True, f"webhook answered HTTP {status}")
    if len(body) > MAX_ANSWER:
        return WebhookVerdict(False, False, "webhook answer is too large")
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return WebhookVerdict(False, False, "webhook answer is not JSON")
    if isinstance(answer, dict) and answer.get("result") == "OK":
        return WebhookVerdict(True, False, "approved by webhook")
    return WebhookVerdict(False, False, "refused by webhook")
