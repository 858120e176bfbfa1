"""The operators' console: static files (chalicelib/console/) served at ``/console/``, no server-side session.

The page signs in with an admin token kept in the browser's sessionStorage and calls the admin API
with it (same origin); these routes need no token and serve the same bytes to everyone. The files
are read once per container and served from a fixed list, so a path parameter can never reach
another file. Every answer carries a strict Content-Security-Policy: scripts and styles from this
origin only (nothing inline, no third party), Trusted Types required (an ``innerHTML`` with a string
is an error in the browser, not a hole), no framing, no referrer.
"""

from __future__ import annotations

import threading
from pathlib import Path

from chalice.app import Blueprint, Response

from chalicelib.api.errors import json_errors
from chalicelib.errors import NotFound

bp = Blueprint(__name__)

ROOT = Path(__file__).resolve().parents[1] / "console"
INDEX = "index.html"

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    # Revalidate every time: a new deployment's files are picked up at once, and nothing is stale.
    "Cache-Control": "no-cache",
}
_SECURITY = {k: v for k, v in HEADERS.items() if k != "Cache-Control"}

_files: dict[str, bytes] | None = None
_lock = threading.Lock()


def files() -> dict[str, bytes]:
    """Every servable file by name (flat: no subdirectories), read once."""
    global _files
    with _lock:
        if _files is None:
            _files = {
                path.name: path.read_bytes()
                for path in sorted(ROOT.iterdir())
                if path.is_file() and path.suffix in TYPES and not path.name.startswith(".")
            }
        return _files


def _serve(name: str) -> Response:
    body = files().get(name)
    if body is None:
        raise NotFound("no such console file", field="asset")
    content_type = TYPES[Path(name).suffix]
    return Response(body=body, status_code=200, headers={"Content-Type": content_type, **HEADERS})


@bp.route("/console", methods=["GET"])
@json_errors
def index() -> Response:
    """Public: the console's page. ``/console`` redirects to ``/console/`` so the page's relative
    URLs (``app.js``) resolve under it, behind a stage prefix or a custom domain alike."""
    context = bp.current_request.context or {}
    path = str(context.get("path") or "")
    if path and not path.endswith("/"):
        return Response(
            body=b"",
            status_code=308,
            headers={"Location": path.rsplit("/", 1)[-1] + "/", "Cache-Control": "no-cache", **_SECURITY},
        )
    return _serve(INDEX)


@bp.route("/console/{asset}", methods=["GET"])
@json_errors
def asset(asset: str) -> Response:
    """Public: one of the console's scripts and styles (a fixed list; anything else is 404)."""
    return _serve(asset)
