"""Client certificate path validation: the one module that uses ``cryptography.x509.verification``.

That API is young (outside cryptography's stability policy), so it stays fenced in here. It gives
RFC 5280 / Web PKI checks of the leaf against the tenant's CA certificates: signature, validity at
``now``, basic constraints, key usage and the clientAuth extended key usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.x509 import verification

# SeaCat client certificates name their identity in the subject CN and carry no subjectAltName;
# the Web PKI end-entity policy would require one.
_EE_POLICY = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
)
_CA_POLICY = verification.ExtensionPolicy.webpki_defaults_ca()


class ClientCertificateRejected(Exception):
    """The certificate does not chain to the given CAs, or is not valid now."""


def trust_store(cas: Sequence[x509.Certificate]) -> verification.Store:
    return verification.Store(list(cas))


def verify_client(leaf: x509.Certificate, store: verification.Store, now: datetime) -> x509.Certificate:
    """Verify ``leaf`` as directly issued by a CA in ``store`` (verify depth 1); returns that CA."""
    verifier = (
        verification.PolicyBuilder()
        .store(store)
        .time(now)
        .max_chain_depth(0)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(leaf, [])
    except verification.VerificationError as exc:
        raise ClientCertificateRejected(str(exc).split(" (encountered", 1)[0]) from None
    return verified.chain[-1]
