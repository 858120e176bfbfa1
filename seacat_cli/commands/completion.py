"""``seacat completion bash|zsh``: the shell completion script, on stdout (docs/cli.md says where it goes)."""

from __future__ import annotations

import argparse

from seacat_cli.core import Cli

NAME = "completion"
HELP = "print the bash or zsh completion script"


def _run(cli: Cli) -> int:
    from seacat_cli import completion
    from seacat_cli.__main__ import build_parser

    script = getattr(completion, cli.args.shell)(build_parser())
    cli.emit({"shell": cli.args.shell, "script": script}, lambda out: out.write(script))
    return 0


def register(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=("bash", "zsh"))
    parser.set_defaults(handler=_run)
