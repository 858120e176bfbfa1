"""A small SeaCat G3-compatible client (command line: ``python -m seacat_client``).

It behaves like the TeskaLabs SeaCat G3 SDKs (Android, iOS, Python): it keeps a P-256 key,
builds the SeaCat certificate request with its own MiniASN1-style DER writer, enrols with
``PUT <apiURL>/enroll`` and renews by the G3 rule. It shares no code with the server
(no ``chalicelib``, no ``cryptography.hazmat.asn1``) so that tests against the server's
decoder mean something.
"""

from __future__ import annotations

from .cr import build_cr, build_tbs, default_attributes, format_cr_time
from .identity import (
    CERT_FILE,
    CERT_PEM_FILE,
    DEFAULT_APPLICATION,
    KEY_FILE,
    EnrollError,
    EnrollResult,
    SeaCatClientError,
    enroll,
    get_certificate,
    identity_of_public_key,
    load_certificate,
    load_key,
    load_or_create_key,
    needs_renewal,
    normalize_api_url,
    renewal_starts,
    write_pem,
)

__all__ = [
    "CERT_FILE",
    "CERT_PEM_FILE",
    "DEFAULT_APPLICATION",
    "KEY_FILE",
    "EnrollError",
    "EnrollResult",
    "SeaCatClientError",
    "build_cr",
    "build_tbs",
    "default_attributes",
    "enroll",
    "format_cr_time",
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
