"""infra/precompile.py: the Lambda zip gets bytecode that the runtime's Python accepts as is."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_every_module_gets_unchecked_bytecode(tmp_path: Path) -> None:
    archive = tmp_path / "deployment.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("app.py", "VALUE = 6 * 7\n")
        z.writestr("pkg/__init__.py", "")
        z.writestr("pkg/broken.py", "print 'python 2'\n")
        z.writestr("data.json", "{}")
    run = subprocess.run(
        [sys.executable, "infra/precompile.py", str(archive)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        pyc = z.read(importlib.util.cache_from_source("app.py"))
    assert {"app.py", "pkg/__init__.py", "pkg/broken.py", "data.json"} <= names
    assert importlib.util.cache_from_source("pkg/__init__.py") in names
    assert importlib.util.cache_from_source("pkg/broken.py") not in names  # left to fail where it is used
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked: no source stat or hash at import
    # Python imports from the zip's tree with the source unchanged
    extract = tmp_path / "task"
    zipfile.ZipFile(archive).extractall(extract)
    check = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app; print(app.VALUE)"],
        cwd=extract,
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "42"
