"""Shared by the atheris harnesses: the repository on sys.path, and a seed corpus."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def seed_corpus(argv: list[str], seeds: dict[str, bytes]) -> None:
    """Write the seeds into the first corpus directory on the command line when it is empty."""
    dirs = [Path(a) for a in argv[1:] if not a.startswith("-")]
    if not dirs:
        return
    corpus = dirs[0]
    if corpus.is_file():  # replaying one input (a crash file): no corpus
        return
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for name, data in seeds.items():
        (corpus / name).write_bytes(data)
