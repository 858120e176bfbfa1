"""The commands: each module here is one top-level command, found by name (no list to keep)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from types import ModuleType
from typing import Protocol, cast


class Command(Protocol):
    NAME: str
    HELP: str

    def register(self, parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None: ...


def modules() -> list[Command]:
    """Every command module, by its NAME. A module registers its subcommands on ``parser``; each
    subcommand's parser takes ``common`` as a parent (--json, --url, --token-file) and sets
    ``handler`` (a function of a seacat_cli.core.Cli returning the exit code)."""
    found: list[ModuleType] = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return sorted((cast(Command, m) for m in found), key=lambda m: m.NAME)
