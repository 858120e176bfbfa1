"""A short bounded run of each atheris harness (a few thousand inputs, seconds); skipped without atheris.

The long runs are by hand (fuzz/README.md). A crash fails this test with libFuzzer's report.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

FUZZ = Path(__file__).resolve().parent
RUNS = 3000


@pytest.mark.parametrize("harness", ["fuzz_cr.py", "fuzz_spec.py"])
def test_harness_runs_clean(tmp_path: Path, harness: str) -> None:
    corpus = tmp_path / "corpus"
    args = [sys.executable, str(FUZZ / harness), str(corpus), f"-atheris_runs={RUNS}", "-max_len=4096", "-seed=1"]
    args += ["-max_total_time=60", f"-artifact_prefix={tmp_path}/"]
    if harness == "fuzz_spec.py":
        args.append(f"-dict={FUZZ / 'spec.dict'}")
    run = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-4000:]
    assert re.search(r"^Done \d+ in", run.stderr, re.M), run.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*"))
