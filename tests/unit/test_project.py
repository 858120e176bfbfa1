"""The project's packaging: console scripts resolve, and every pinned requirement carries its hashes."""

from __future__ import annotations

import importlib
import re
import tomllib

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_console_scripts_resolve_to_callables() -> None:
    scripts = PYPROJECT["project"]["scripts"]
    assert set(scripts) == {"seacat", "seacat-client", "seacat-admin", "seacat-backup", "seacat-transfer"}
    for target in scripts.values():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), target


def test_lock_files_pin_every_requirement_with_hashes() -> None:
    for name in ("requirements.txt", "requirements-local.txt", "requirements-dev.txt"):
        text = (ROOT / name).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])  # one entry per requirement
        pins = [e for e in entries if re.match(r"[A-Za-z0-9_.-]+==", e)]
        assert pins, name
        for entry in pins:
            assert "--hash=sha256:" in entry, f"{name}: {entry.splitlines()[0]} has no hash"
        assert not [e for e in entries if re.match(r"[A-Za-z0-9_.-]+(>=|<=|~=|>|<)", e)], f"{name}: unpinned"


def test_the_runtime_lock_satisfies_the_declared_dependencies() -> None:
    pinned = {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^ \\\n]+)", (ROOT / "requirements.txt").read_text(), re.M)
    }
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert name is not None and name.group(0).lower() in pinned, requirement
    assert pinned["cryptography"].split(".")[0] == "50"
