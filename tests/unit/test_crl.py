"""The CRL builder: reasons, numbering, and a CRL with 100,000 revoked certificates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from chalicelib.ca import builder, crl, keys, spec
from chalicelib.errors import InvalidInput
from tests.conftest import REFERENCE_SPEC

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def ca() -> tuple[x509.Certificate, object]:
    key = keys.generate_ca_key()
    return builder.build_self_signed(spec.parse_certificate_spec(json.loads(REFERENCE_SPEC), now=NOW), key), key


def test_reason_names() -> None:
    assert crl.parse_reason(None) == "unspecified"
    assert crl.parse_reason("keyCompromise") == "keyCompromise"
    for bad in ("KeyCompromise", "removeFromCRL", 3, ""):
        with pytest.raises(InvalidInput) as err:
            crl.parse_reason(bad)
        assert err.value.field == "reason"


def test_a_crl_of_100000_revoked_certificates() -> None:
    issuer, key = ca()
    serials = [builder.random_serial() for _ in range(100_000)]
    reasons = list(crl.REASONS)
    entries = [
        crl.RevokedEntry(s, NOW - timedelta(minutes=i % 1000), reasons[i % len(reasons)]) for i, s in enumerate(serials)
    ]
    result = crl.build_crl(
        issuer=issuer,
        issuer_key=key,
        entries=entries,
        number=42,
        this_update=NOW,
        next_update=NOW + timedelta(days=1),  # type: ignore[arg-type]
    )
    assert result.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    assert len(result) == 100_000
    assert {r.serial_number for r in result} == set(serials)
    assert result.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    assert result.issuer == issuer.subject
    probe = result.get_revoked_certificate_by_serial_number(serials[1])
    assert probe is not None
    assert probe.extensions.get_extension_for_class(x509.CRLReason).value.reason == crl.REASONS[reasons[1]]
    unspecified = result.get_revoked_certificate_by_serial_number(serials[0])
    assert unspecified is not None and len(unspecified.extensions) == 0  # no reason code for "unspecified"
