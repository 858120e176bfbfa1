"""``seacat audit``: a tenant's audit trail, newest first; with ``--follow``, the events as they come.

Following polls ``GET /audit`` every ``--interval`` seconds (5 by default, at least 1) for the events
since the newest one seen, oldest first; each poll reads at most a bounded number of pages. It runs
until Ctrl-C (exit 130) or ``--polls N`` polls.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from seacat_cli.core import Cli, add_paging, clean, table, usage

NAME = "audit"
HELP = "the audit trail (--follow: new events as they come)"

COLUMNS = [("at", "AT"), ("type", "TYPE"), ("subject", "SUBJECT"), ("outcome", "OUTCOME"), ("actor", "ACTOR")]
MIN_INTERVAL = 1.0
DEFAULT_INTERVAL = 5.0
FOLLOW_PAGES = 50  # per poll: 5,000 events at most, then the next poll goes on from there
MAX_RANGE = timedelta(days=30)  # the API takes at most 31 days per query

sleep = time.sleep  # one place a test can step in between two polls


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"at least {MIN_INTERVAL:g} second: {text!r}")
    return value


def _query(args: argparse.Namespace) -> dict[str, object]:
    return {"tenant": args.tenant, "from": args.start, "to": args.end, "type": args.type}


def _line(event: dict[str, Any]) -> str:
    return "  ".join(clean(event.get(k)) for k in ("at", "type", "subject", "outcome", "actor")) + (
        f"  {clean(json.dumps(event['details'], sort_keys=True))}" if event.get("details") else ""
    )


def _list(cli: Cli) -> int:
    items = list(cli.pages("/audit", _query(cli.args), "events"))
    cli.emit(items, lambda out: table(items, COLUMNS, out) if items else out.write("no event in the range\n"))
    return 0


def _parse_at(value: object) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _since(cli: Cli, since: datetime) -> Iterator[dict[str, Any]]:
    """Every event at or after ``since`` (newest first), at most FOLLOW_PAGES pages."""
    query = {**_query(cli.args), "from": since.isoformat().replace("+00:00", "Z"), "to": None}
    token: str | None = None
    for _ in range(FOLLOW_PAGES):
        page = cli.api.json("GET", "/audit", query={**query, "limit": 100, "next": token})
        yield from page.get("items") or []
        token = page.get("next")
        if not token:
            return


def _follow(cli: Cli) -> int:
    out: TextIO = cli.out
    args = cli.args
    interval = args.interval or DEFAULT_INTERVAL

    def show(events: list[dict[str, Any]]) -> None:
        for event in events:
            out.write((json.dumps(event) if cli.as_json else _line(event)) + "\n")
        out.flush()

    # The latest events first (as `tail -f` does), oldest first.
    recent = list(cli.pages("/audit", _query(args), "events"))
    recent.reverse()
    show(recent)
    newest = max((_parse_at(e["at"]) for e in recent), default=datetime.now(UTC) - timedelta(minutes=10))
    seen = {e["id"] for e in recent if _parse_at(e["at"]) >= newest}
    if not cli.as_json:
        cli.note(f"following {args.tenant}'s audit trail every {interval:g} s; Ctrl-C stops")
    polls = 0
    while args.polls is None or polls < args.polls:
        sleep(interval)
        polls += 1
        since = max(newest, datetime.now(UTC) - MAX_RANGE)
        fresh = [e for e in _since(cli, since) if e.get("id") not in seen]
        fresh.reverse()
        show(fresh)
        for event in fresh:  # oldest first
            at = _parse_at(event["at"])
            if at > newest:
                newest, seen = at, set()
            if at == newest:
                seen.add(event["id"])
    return 0


def _run(cli: Cli) -> int:
    if cli.args.follow:
        if cli.args.end:
            raise usage("--follow reads up to now: leave --to out")
        return _follow(cli)
    if cli.args.interval is not None or cli.args.polls is not None:
        raise usage("--interval and --polls go with --follow")
    return _list(cli)


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    # One command, no subcommands: `seacat audit TENANT [--follow]`.
    parser.set_defaults(handler=_run)
    parser.add_argument("tenant", help='the tenant ("_": events of no tenant, operator tokens only)')
    parser.add_argument("--from", dest="start", metavar="ISO", help="from this date-time (default: a day before --to)")
    parser.add_argument("--to", dest="end", metavar="ISO", help="up to this date-time, excluded (default: now)")
    parser.add_argument("--type", metavar="EVENT", help="one event type, e.g. cr.approved (docs/operations.md)")
    add_paging(parser, default=50)
    parser.add_argument("--follow", "-f", action="store_true", help="then print new events as they come")
    parser.add_argument(
        "--interval",
        type=_interval,
        metavar="SECONDS",
        help=f"--follow: seconds between polls (default 5, at least {MIN_INTERVAL:g})",
    )
    parser.add_argument("--polls", type=int, metavar="N", help="--follow: stop after N polls (default: until Ctrl-C)")
