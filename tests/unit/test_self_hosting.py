"""docs/self-hosting.md's systemd unit (infra/systemd/seacat-pki.service) says what the service does,
and make run keeps the operator token out of systemd's journal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embedded import run, server
from scripts.datadir import EXIT_NOT_STARTED
from tests.conftest import ROOT

UNIT = ROOT / "infra" / "systemd" / "seacat-pki.service"
DOC = ROOT / "docs" / "self-hosting.md"


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            name, _, value = line.partition("=")
            found.setdefault(name, []).append(value)
    return found


def test_the_unit_is_the_documented_one_and_matches_the_service() -> None:
    assert UNIT.read_text().strip() in DOC.read_text()  # the document shows the file as it is
    unit = settings()
    env = dict(v.partition("=")[::2] for v in unit["Environment"])
    assert unit["ExecStart"] == ["/opt/seacat-pki/.venv/bin/python -m embedded.run"]
    assert env["HOST"] == "127.0.0.1" and env["SEACAT_DATA_DIR"] == unit["ReadWritePaths"][0]
    assert unit["KillSignal"] == ["SIGTERM"] and unit["KillMode"] == ["mixed"]
    assert int(unit["TimeoutStopSec"][0]) > server.GRACEFUL_SECONDS
    assert unit["Restart"] == ["on-failure"] and unit["RestartPreventExitStatus"] == [str(EXIT_NOT_STARTED)]
    for name, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}.items():
        assert unit[name] == [value], name
    assert not any("SEACAT_LOCAL_KEK" in v or "SEACAT_ADMIN_TOKEN" in v for v in unit["Environment"])


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_reads_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "seacat-pki.service"
    unit.write_text(UNIT.read_text().replace("/opt/seacat-pki/.venv/bin/python", sys.executable))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "seacat-pki.service" not in done.stderr, done.stderr


def test_the_banner_keeps_the_token_out_of_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "sct_00000000000000f1_banner-token-0123456789"
    data = tmp_path / "data"
    with (tmp_path / "journal").open("w") as stream:
        monkeypatch.setattr(sys, "stdout", stream)
        info = os.fstat(stream.fileno())
        monkeypatch.delenv("SEACAT_ADMIN_TOKEN", raising=False)
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
        assert run.banner_token(token, data) == (token, token)  # a terminal, a log file
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino + 1}")  # a desktop session's, not ours
        assert run.banner_token(token, data) == (token, token)
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        shown, curl = run.banner_token(token, data)
        assert token not in shown and "operator-token" in shown and curl == "$TOKEN"
        monkeypatch.setenv("SEACAT_ADMIN_TOKEN", token)
        assert run.banner_token(token, data)[0] == "in SEACAT_ADMIN_TOKEN (not written to the journal)"
