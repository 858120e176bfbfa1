"""Certificate serial numbers: the bound RFC 5280 sets and how this service picks them.

Its own module so that the spec parser and the builder both use it without importing each other.
"""

from __future__ import annotations

import secrets

# RFC 5280 §4.1.2.2: a positive integer of at most 20 octets (so below 2**159 as DER's sign bit allows).
SERIAL_LIMIT = 1 << 159


def random_serial() -> int:
    """A random serial in [2**127, 2**128): 127 random bits, always 17 DER octets.

    Forcing the top bit keeps it far above 2**63 (the CA/B Forum's 64-bit entropy
    floor) and gives every serial the same length; 128 bits stays well inside the
    20-octet limit. Length matches the serials of the reference SeaCat PKI.
    """
    return (1 << 127) | secrets.randbits(127)
