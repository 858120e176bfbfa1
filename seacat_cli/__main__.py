"""``seacat`` / ``python -m seacat_cli``: the entry point (exit codes in seacat_cli.core and docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from seacat_cli import commands
from seacat_cli.core import (
    INTERRUPTED,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    URL_ENV,
    Api,
    Cli,
    CliError,
    environment,
    read_token,
    service_url,
)

PROG = "seacat"
EPILOG = f"""environment: {URL_ENV} (the service, default http://127.0.0.1:8080), {TOKEN_ENV} (an admin token) or
{TOKEN_FILE_ENV} (a file holding it). exit codes: 0 ok, 1 refused by the service (4xx), 2 usage or local
input, 3 not found (404), 4 service unavailable (5xx, network), 5 pending approval (cert sign), 130
interrupted. See docs/cli.md."""


def common_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (the top level's value stands unless
    the command's own is given: SUPPRESS keeps argparse from overwriting it with a default)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output, for scripts")
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help=f"the service (default ${URL_ENV} or http://127.0.0.1:8080)",
    )
    common.add_argument(
        "--token-file",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help=f'a file holding the admin token ("-": standard input); default ${TOKEN_ENV}',
    )
    # Refused with its own message, never echoing the value: argv is in every `ps` listing.
    common.add_argument("--token", dest="token_on_command_line", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The SeaCat PKI's command line, over the admin API.",
        epilog=EPILOG,
        parents=[common],
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in commands.modules():
        command = sub.add_parser(
            module.NAME, help=module.HELP, description=module.HELP, parents=[common], allow_abbrev=False
        )
        module.register(command, common)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    environ = environment() if environ is None else environ
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: 2 on a usage error (its message is on stderr), 0 for --help
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    as_json = bool(getattr(args, "json", False))
    try:
        if hasattr(args, "token_on_command_line"):
            raise CliError(
                2,
                f"the token is not taken on the command line (ps shows it to everyone): set {TOKEN_ENV} "
                f'or give --token-file PATH ("-": standard input)',
            )
        api = Api(service_url(args, environ), lambda: read_token(args, environ))
        cli = Cli(args, environ, out, err, api)
        code: int = args.handler(cli)
        return code
    except CliError as error:
        if as_json:
            err.write(json.dumps({"exitCode": error.code, **error.body}) + "\n")
        else:
            from seacat_cli.core import clean

            err.write(f"{PROG}: {clean(str(error))}\n")
        return error.code
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return INTERRUPTED
    except BrokenPipeError:  # `seacat ... | head`: the reader left; nothing more to say
        return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
