"""atheris harness: the JSON certificate spec of PUT /{tenant}/x509/self-signed, coverage-guided.

The input is taken as the request body: JSON that does not decode is skipped, as the HTTP layer
answers it 400 (and JSON nested past Python's recursion limit is the HTTP layer's known bug, see
tests/integration/test_fuzz_http.py). Every decoded document must give either a spec that the
builder signs into a certificate matching it, or InvalidInput with a reason; anything else
raised is a crash.

    .venv/bin/python fuzz/fuzz_spec.py fuzz/corpus-spec -max_len=4096 -dict=fuzz/spec.dict
    .venv/bin/python fuzz/fuzz_spec.py fuzz/corpus-spec -atheris_runs=100000
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import atheris
from _common import seed_corpus

with atheris.instrument_imports():
    from cryptography.hazmat.primitives.asymmetric import ec

    from chalicelib.ca import builder, spec
    from chalicelib.errors import InvalidInput

KEY = ec.generate_private_key(ec.SECP256R1())
NOW = datetime(2026, 1, 1, tzinfo=UTC)

SEEDS = {
    "reference": {
        "serialNumber": 1,
        "subject": {"O": "My Org", "CN": "Root CA"},
        "validity": {"notBefore": "now", "notAfter": {"weeks": 1040}},
        "extensions": [
            {"basicConstraints": {"CA": True, "pathLen": 0}, "critical": True},
            {"keyUsage": ["keyCertSign", "cRLSign"]},
        ],
    },
    "everything": {
        "subject": {"C": "CZ", "ST": "x", "L": "x", "OU": "x", "CN": "x", "emailAddress": "a@b.c"},
        "validity": {"notBefore": "2030-01-01T00:00:00Z", "notAfter": {"years": 1.5, "days": 2}},
        "extensions": [
            {"basicConstraints": {"CA": True}},
            {"keyUsage": ["keyCertSign", "cRLSign", "digitalSignature"]},
            {"extendedKeyUsage": ["clientAuth", "1.2.3.4"]},
            {"subjectAltName": ["DNS:example.com", "IP:127.0.0.1", {"email": "a@b.c"}, "URI:https://x/"]},
            {"crlDistributionPoints": ["http://x/crl"]},
            {"subjectKeyIdentifier": True},
            {"authorityKeyIdentifier": {}},
        ],
    },
}


def TestOneInput(data: bytes) -> None:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    try:
        parsed = spec.parse_certificate_spec(body, now=NOW)
    except InvalidInput as exc:
        assert exc.message, "a refusal without a reason"  # field: a dotted path, absent for the top level
        return
    cert = builder.build_self_signed(parsed, KEY)
    assert cert.serial_number == parsed.serial_number and cert.subject == parsed.subject
    assert cert.not_valid_before_utc == parsed.not_before and cert.not_valid_after_utc == parsed.not_after


def main() -> None:
    seed_corpus(sys.argv, {f"{name}.json": json.dumps(doc).encode() for name, doc in SEEDS.items()})
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
