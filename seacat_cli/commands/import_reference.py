"""``seacat import-reference CONFIG [--ca-cert TENANT=FILE]... [--dry-run]``: the tenants of a reference
SeaCat PKI configuration, each with its CA key, its SeaCat setting, its approve URL and, given
``--ca-cert``, its exact CA certificate (the same ``TENANT:<sha384>`` id, so enrolled devices' gateways
keep their bundle). Everything is checked before the first call; a dry run calls nothing.

Per tenant: ``PUT /tenants/{tenant}`` (the key, ``seacat``, ``approve``), then
``PUT /{tenant}/x509/ca/import``. Both are idempotent: running it again after a failure goes on where
it stopped (a tenant that exists with another key is a 409, and nothing of it is changed).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any, TextIO

from seacat_cli import reference
from seacat_cli.core import Cli, CliError, quote

NAME = "import-reference"
HELP = "create the tenants of a reference SeaCat PKI configuration (keys, CA certificates, settings)"


def _ca_cert(text: str) -> tuple[str, Path]:
    tenant, sep, path = text.partition("=")
    if not sep or not tenant or not path:
        raise argparse.ArgumentTypeError(f"expected TENANT=FILE, got {text!r}")
    return tenant, Path(path)


def _plan_lines(plan: reference.TenantPlan, dry_run: bool) -> list[str]:
    would = "would " if dry_run else ""
    key = (
        f"the key of {plan.key_file} (fingerprint {plan.key_fingerprint})"
        if plan.key is not None
        else "a key the service generates"
    )
    lines = [
        f"tenant {plan.tenant}: {would}create or update with {key}; SeaCat {'on' if plan.seacat else 'off'}; "
        f"approve webhook {plan.approve or 'none'}"
    ]
    if plan.ca_pem is not None:
        lines.append(f"  CA certificate {plan.ca_id} from {plan.ca_file}: {would}import and make active")
    lines += [f"  note: {w}" for w in plan.warnings]
    return lines


def _run(cli: Cli) -> int:
    args = cli.args
    ca_certs: dict[str, Path] = {}
    for tenant, path in args.ca_cert or []:
        if tenant in ca_certs:
            raise CliError(2, f"--ca-cert {tenant}=... given twice")
        ca_certs[tenant] = path
    plans = reference.read(args.config, ca_certs, base_dir=args.base_dir)
    results: list[dict[str, Any]] = [plan.describe() for plan in plans]

    if args.dry_run:
        cli.emit(
            {"dryRun": True, "tenants": results},
            lambda out: out.write("\n".join(line for p in plans for line in _plan_lines(p, True)) + "\n"),
        )
        return 0

    # For people, each step as it happens; with --json, the one document at the end (and on failure:
    # stdout has what was done, stderr the error).
    out: TextIO = io.StringIO() if cli.as_json else cli.out
    for plan, result in zip(plans, results, strict=True):
        for line in _plan_lines(plan, False):
            out.write(line + "\n")
        try:
            response = cli.api.request("PUT", f"/tenants/{quote(plan.tenant)}", body=plan.tenant_body())
            answer = response.json()
            result["tenantCreated"] = response.status == 201
            out.write(
                f"  tenant {plan.tenant}: {'created' if response.status == 201 else 'existed: configuration merged'}\n"
            )
            if answer.get("webhookSecret"):
                result["webhookSecret"] = answer["webhookSecret"]
                if not cli.as_json:
                    out.write(f"  webhook secret (shown once, keep it now): {answer['webhookSecret']}\n")
            if plan.ca_pem is not None:
                response = cli.api.request(
                    "PUT", f"/{quote(plan.tenant)}/x509/ca/import", body={"certificate": plan.ca_pem}
                )
                made = response.json()
                result["caImported"] = response.status == 201
                result["activeCa"] = made.get("ca_cert")
                out.write(
                    f"  CA certificate {made.get('ca_cert')}: "
                    f"{'imported, active' if response.status == 201 else 'the tenant has it already'}\n"
                )
        except CliError as error:
            result["error"] = error.body
            if cli.as_json:
                cli.emit({"dryRun": False, "tenants": results}, lambda _: None)
            raise CliError(
                error.code,
                f"{plan.tenant}: {error} (the tenants before it are imported; run again once fixed)",
                error.body,
            ) from None
    cli.emit({"dryRun": False, "tenants": results}, lambda o: o.write(f"imported {len(plans)} tenant(s)\n"))
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=_run)
    parser.add_argument("config", type=Path, metavar="CONFIG", help="the reference's INI configuration")
    parser.add_argument(
        "--ca-cert",
        action="append",
        type=_ca_cert,
        metavar="TENANT=FILE",
        help="the tenant's existing CA certificate (PEM or DER), imported as it is (repeatable)",
    )
    parser.add_argument(
        "--base-dir", type=Path, metavar="DIR", help="where relative keyfile= paths start (default: CONFIG's folder)"
    )
    parser.add_argument("--dry-run", action="store_true", help="check everything and print the plan; send nothing")
