"""``seacat est credential``: EST enrolment credentials (a username and password bound to one profile,
for a number of uses, until an expiry): create (the password printed then, and never again), list,
show, revoke."""

from __future__ import annotations

import argparse
import re
from typing import Any, TextIO

from seacat_cli.core import Cli, action, add_paging, pairs, quote, table

NAME = "est"
HELP = "EST enrolment credentials"

COLUMNS = [
    ("username", "USERNAME"),
    ("profile", "PROFILE"),
    ("state", "STATE"),
    ("usesLeft", "USES LEFT"),
    ("expiresAt", "EXPIRES"),
    ("lastUsedAt", "LAST USED"),
    ("label", "LABEL"),
]

_LIFETIME = re.compile(r"[0-9]+[smhd]?")


def lifetime(text: str) -> int | str:
    """Seconds, or 30m, 12h, 7d (the service checks the range: a minute to 366 days)."""
    if not _LIFETIME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"seconds or a number with m, h or d (30m, 12h, 7d), not {text!r}")
    return int(text) if text.isdigit() else text


def _without_password(answer: Any) -> Any:
    """The service never sends a password after creation; should one come, it is not printed either."""
    if isinstance(answer, dict):
        return {k: v for k, v in answer.items() if k != "password"}
    return answer


def show_credential(answer: dict[str, Any], out: TextIO) -> None:
    pairs(
        [
            ("username", answer.get("username")),
            ("tenant", answer.get("tenant")),
            ("profile", answer.get("profile")),
            ("state", answer.get("state")),
            ("uses", answer.get("uses")),
            ("uses left", answer.get("usesLeft")),
            ("expires", answer.get("expiresAt")),
            ("created", answer.get("createdAt")),
            ("last used", answer.get("lastUsedAt")),
            ("revoked", answer.get("revokedAt")),
            ("label", answer.get("label")),
        ],
        out,
    )


def _base(cli: Cli) -> str:
    return f"/{quote(cli.args.tenant)}/est/credentials"


def _create(cli: Cli) -> int:
    body: dict[str, Any] = {"profile": cli.args.profile, "uses": cli.args.uses, "expiresIn": cli.args.expires_in}
    if cli.args.label is not None:
        body["label"] = cli.args.label
    answer = cli.api.json("POST", _base(cli), body=body)

    def human(out: TextIO) -> None:
        show_credential(answer, out)
        out.write(f"password (shown once, keep it now): {answer.get('password')}\n")

    cli.emit(answer, human)
    return 0


def _list(cli: Cli) -> int:
    items = [_without_password(c) for c in cli.pages(_base(cli), {}, "credentials")]
    cli.emit(items, lambda out: table(items, COLUMNS, out) if items else out.write("no enrolment credential\n"))
    return 0


def _show(cli: Cli) -> int:
    answer = _without_password(cli.api.json("GET", f"{_base(cli)}/{quote(cli.args.username)}"))
    cli.emit(answer, lambda out: show_credential(answer, out))
    return 0


def _revoke(cli: Cli) -> int:
    answer = _without_password(cli.api.json("PUT", f"{_base(cli)}/{quote(cli.args.username)}/revoke"))
    cli.emit(answer, lambda out: show_credential(answer, out))
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    credential = groups.add_parser(
        "credential",
        help="enrolment credentials",
        description="enrolment credentials",
        parents=[common],
        allow_abbrev=False,
    )
    sub = credential.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = action(
        sub, "create", "a username and password for a device or a batch; the password printed once", common, _create
    )
    p.add_argument("tenant")
    p.add_argument("--profile", required=True, help="the profile it enrols under (not seacat)")
    p.add_argument("--uses", type=int, default=1, metavar="N", help="how many new CSRs it may have signed (default 1)")
    p.add_argument("--expires-in", required=True, type=lifetime, metavar="DURATION", help="seconds, or 30m, 12h, 7d")
    p.add_argument("--label", help="what it is for (a device, a batch)")
    p = action(sub, "list", "the tenant's credentials, newest first, with their states", common, _list)
    p.add_argument("tenant")
    add_paging(p)
    p = action(sub, "show", "one credential (never its password)", common, _show)
    p.add_argument("tenant")
    p.add_argument("username", help="estc_...")
    p = action(sub, "revoke", "stop it at once (idempotent; certificates it got stay valid)", common, _revoke)
    p.add_argument("tenant")
    p.add_argument("username", help="estc_...")
