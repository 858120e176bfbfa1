"""``seacat whoami``: which admin token this is and what it reaches (its tenant, or every one for the operator's)."""

from __future__ import annotations

import argparse
from typing import TextIO

from seacat_cli.core import Cli, pairs

NAME = "whoami"
HELP = "the token in use: its id, its tenant, whether it is the operator's"


def _whoami(cli: Cli) -> int:
    answer = cli.api.json("GET", "/whoami")

    def human(out: TextIO) -> None:
        operator = bool(answer.get("operator"))
        pairs(
            [
                ("token id", answer.get("tokenId")),
                ("tenant", "every tenant" if operator else answer.get("tenant")),
                ("operator", operator),
            ],
            out,
        )

    cli.emit(answer, human)
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=_whoami)
