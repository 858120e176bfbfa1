"""atheris harness: the SeaCat CR decoder (chalicelib.seacat.codec.decode_cr), coverage-guided.

Any bytes must give a verified SeaCatRequest, or InvalidInput / PayloadTooLarge with a reason:
anything else raised is a crash (libFuzzer writes the input to crash-<sha1>). A decoded request
must also be self-consistent (its identity is its point's, its id the SHA-384 of the body).

    .venv/bin/python fuzz/fuzz_cr.py fuzz/corpus-cr -max_len=4096            # until stopped
    .venv/bin/python fuzz/fuzz_cr.py fuzz/corpus-cr -atheris_runs=100000      # bounded
"""

from __future__ import annotations

import hashlib
import json
import sys

import atheris
from _common import ROOT, seed_corpus

with atheris.instrument_imports():
    from chalicelib.errors import InvalidInput, PayloadTooLarge
    from chalicelib.seacat.codec import IDENTITY_RE, MAX_CR_SIZE, decode_cr, identity_from_point


def seeds() -> dict[str, bytes]:
    vectors = json.loads((ROOT / "tests" / "vectors" / "seacat-cr-vectors.json").read_text())
    found = {f"vector-{v['name']}": bytes.fromhex(v["der_hex"]) for v in vectors["cr_vectors"]}
    found["empty-sequence"] = b"\x30\x00"
    return found


def TestOneInput(data: bytes) -> None:
    try:
        request = decode_cr(data)
    except PayloadTooLarge:
        assert len(data) > MAX_CR_SIZE
        return
    except InvalidInput as exc:
        assert exc.field == "cr" and exc.message, "a refusal without a reason"
        return
    assert request.der == data
    assert request.cr_id == hashlib.sha384(data).hexdigest()
    assert request.identity == identity_from_point(request.point) and IDENTITY_RE.fullmatch(request.identity)
    assert data.find(request.tbs) == request.der.index(request.tbs)


def main() -> None:
    seed_corpus(sys.argv, seeds())
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
