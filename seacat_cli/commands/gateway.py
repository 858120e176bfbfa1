"""``seacat gateway``: render a tenant's NGINX gateway (scripts/gateway.py: the same options and checks),
and its gateway credential (create, shown once; drop)."""

from __future__ import annotations

import argparse

from seacat_cli.core import USAGE, Cli, CliError, action, pairs, quote, subcommands

NAME = "gateway"
HELP = "the NGINX mutual-TLS gateway: render its configuration, its credential"


def _render(cli: Cli) -> int:
    from scripts import gateway

    args = cli.args
    if args.pki_url is None:
        args.pki_url = cli.api.url
    try:
        rendered = gateway.render(args, cli.environ)
    except gateway.GatewayError as error:
        raise CliError(USAGE, f"gateway: {error}") from None
    answer = {
        "conf": str(rendered.conf),
        "clientCa": str(rendered.client_ca),
        "serverCert": str(rendered.server_cert),
        "serverKey": str(rendered.server_key),
        "selfSigned": rendered.self_signed,
        "credential": rendered.credential,
    }
    cli.emit(answer, lambda out: gateway.report(rendered, out))
    return 0


def _credential(cli: Cli) -> int:
    answer = cli.api.json("POST", f"/{quote(cli.args.tenant)}/gateway/credential")
    cli.emit(
        answer,
        lambda out: out.write(
            f"gateway credential (shown once, keep it now): {answer.get('credential')}\n"
            f"valid credentials: {answer.get('valid')}; render every gateway with it "
            "(--gateway-credential-file), reload, then `seacat gateway drop-credential TENANT --previous`\n"
        ),
    )
    return 0


def _drop(cli: Cli) -> int:
    query = {"previous": "true"} if cli.args.previous else None
    answer = cli.api.json("DELETE", f"/{quote(cli.args.tenant)}/gateway/credential", query=query)
    cli.emit(answer, lambda out: pairs([("valid credentials", answer.get("valid"))], out))
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    from scripts.gateway import add_render_options

    sub = subcommands(parser)
    p = action(sub, "render", "fetch the tenant's CA bundle and write nginx.conf (docs/gateway.md)", common, _render)
    add_render_options(p, pki_url_required=False)
    p = action(
        sub, "credential", "a new gateway credential (shown once); the previous one stays valid", common, _credential
    )
    p.add_argument("tenant")
    p = action(sub, "drop-credential", "drop the previous credential (--previous) or all", common, _drop)
    p.add_argument("tenant")
    p.add_argument("--previous", action="store_true", help="only the previous one, after a rotation")
