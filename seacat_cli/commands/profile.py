"""``seacat profile``: a tenant's certificate profiles (what a PKCS#10 CSR may obtain): list, show, put, delete."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from seacat_cli.core import Cli, action, add_paging, pairs, quote, read_input, subcommands, table, usage

NAME = "profile"
HELP = "certificate profiles for PKCS#10 signing and EST"

COLUMNS = [
    ("name", "NAME"),
    ("keyTypes", "KEY TYPES"),
    ("extendedKeyUsage", "EKU"),
    ("lifetimeHours", "HOURS"),
    ("approval", "APPROVAL"),
    ("estDefault", "EST DEFAULT"),
    ("description", "DESCRIPTION"),
]

# In what `show` answers but not part of a profile: dropped from a `put` body, so that
# `seacat profile show T P --json > p.json`, an edit, then `put T P --file p.json` works.
SHOWN_ONLY = ("tenant", "estDefault", "builtin")


def show_profile(answer: dict[str, Any], out: TextIO) -> None:
    subject = answer.get("subject") or {}
    sans = answer.get("sans") or {}
    pairs(
        [
            ("name", answer.get("name")),
            ("tenant", answer.get("tenant")),
            ("description", answer.get("description")),
            ("key types", answer.get("keyTypes")),
            ("RSA minimum bits", answer.get("rsaMinBits")),
            ("lifetime hours", answer.get("lifetimeHours") or "the tenant's lifetimeDays"),
            ("key usage", answer.get("keyUsage")),
            ("extended key usage", answer.get("extendedKeyUsage")),
            ("subject mode", subject.get("mode")),
            *(
                [("subject template", [f"{k}={v}" for part in subject.get("template") or [] for k, v in part.items()])]
                if subject.get("mode") == "template"
                else [("subject allowed", subject.get("allowed")), ("subject required", subject.get("required"))]
            ),
            *[(f"SAN {kind}", patterns) for kind, patterns in sans.items()],
            ("max SANs", answer.get("maxSans")),
            ("SAN required", answer.get("requireSan")),
            ("approval", answer.get("approval") or "the tenant's"),
            ("EST default", answer.get("estDefault")),
            ("built in", answer.get("builtin", False)),
        ],
        out,
    )


def _path(cli: Cli) -> str:
    return f"/{quote(cli.args.tenant)}/x509/profiles/{quote(cli.args.name)}"


def _list(cli: Cli) -> int:
    items = list(cli.pages(f"/{quote(cli.args.tenant)}/x509/profiles", {}, "profiles"))
    cli.emit(items, lambda out: table(items, COLUMNS, out) if items else out.write("no profile\n"))
    return 0


def _show(cli: Cli) -> int:
    answer = cli.api.json("GET", _path(cli))
    cli.emit(answer, lambda out: show_profile(answer, out))
    return 0


def _body(cli: Cli) -> dict[str, Any]:
    source = cli.args.file
    try:
        body = json.loads(read_input(source))
    except ValueError as error:
        raise usage(f"{'standard input' if source == '-' else source} is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise usage(f"{source} must hold a JSON object (a profile, docs/api.md#certificate-profiles-and-pkcs10)")
    if body.get("tenant", cli.args.tenant) != cli.args.tenant:
        raise usage(f"{source} is a profile of tenant {body['tenant']!r}, not of {cli.args.tenant!r}")
    return {key: value for key, value in body.items() if key not in SHOWN_ONLY}


def _put(cli: Cli) -> int:
    response = cli.api.request("PUT", _path(cli), body=_body(cli))
    answer = response.json()
    cli.note(f"profile {cli.args.name} {'created' if response.status == 201 else 'replaced'}")
    cli.emit(answer, lambda out: show_profile(answer, out))
    return 0


def _delete(cli: Cli) -> int:
    answer = cli.api.json("DELETE", _path(cli))
    done = "deleted" if answer.get("deleted") else "did not exist: nothing deleted"
    cli.emit(answer, lambda out: out.write(f"profile {cli.args.name}: {done}\n"))
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = subcommands(parser)
    p = action(sub, "list", "the tenant's profiles, the built-in seacat first", common, _list)
    p.add_argument("tenant")
    add_paging(p)
    p = action(sub, "show", "one profile: key types, usages, subject and SAN rules, approval", common, _show)
    p.add_argument("tenant")
    p.add_argument("name")
    p = action(sub, "put", "create or replace a profile from its JSON (absent keys take the defaults)", common, _put)
    p.add_argument("tenant")
    p.add_argument("name")
    p.add_argument("--file", default="-", metavar="FILE", help='the profile as JSON (default "-": standard input)')
    p = action(sub, "delete", "delete a profile (idempotent; its certificates stay valid)", common, _delete)
    p.add_argument("tenant")
    p.add_argument("name")
