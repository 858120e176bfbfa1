"""What both local runs share: their data directory (owner-only, one run at a time, atomic writes,
the operator token, `make reset`) and the few helpers their start-ups print with.

``make run`` (embedded/run.py: SQLite and the local key store, default ``.seacat-local/``) and
``make run-emulator`` (scripts/local_run.py: the AWS emulator and its journal, default
``.seacat-emulator/``) each keep their state in a directory of their own; ``SEACAT_DATA_DIR``
moves either. A directory is created 0700, its files 0600 (they hold secrets), and the running
start-up holds ``lock`` (flock) for its whole life, so a second run on it is refused.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LOCK = "lock"
OPERATOR_TOKEN = "operator-token"  # the generated operator token, when SEACAT_ADMIN_TOKEN does not set one
EXIT_NOT_STARTED = 2  # the directory cannot be used as it is; it was left untouched


class StateError(Exception):
    """The data directory cannot be used as it is; the message says why and what to do."""


class InUse(StateError):
    """Another run holds the directory's lock."""


def data_dir(default: Path) -> Path:
    raw = os.environ.get("SEACAT_DATA_DIR")
    return Path(raw).expanduser().absolute() if raw else default


def chosen(given: Path | None, default: Path) -> Path:
    """A command's data directory: ``given`` (its --data-dir), else SEACAT_DATA_DIR, else ``default`` when
    the command runs from the project's checkout; installed elsewhere (pip) it has no default."""
    if given is not None:
        return given.expanduser().absolute()
    if os.environ.get("SEACAT_DATA_DIR") or (ROOT / "Makefile").is_file():
        return data_dir(default)
    raise StateError("which data directory? Give --data-dir, or set SEACAT_DATA_DIR")


def shown(path: Path) -> str:
    """The path as the user would type it: relative to the current directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


def plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f"{count} {noun[:-1]}ies"
    return f"{count} {noun}s"


def stage_environment(stage: str) -> dict[str, str]:
    """The environment Chalice gives the app for this stage (.chalice/config.json)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def wait_healthy(url: str, deadline: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll ``GET /health`` until it answers 200 (True) or the deadline passes or ``alive()`` fails (False)."""
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


# --- the directory --------------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private(path: Path) -> None:
    """Create the directory owner-only, or tighten an existing one and its files to owner-only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)
    for child in path.iterdir():
        if child.is_file() and stat.S_IMODE(child.stat().st_mode) & 0o077:
            child.chmod(0o600)


def lock(path: Path) -> int:
    """Hold the directory's lock for the life of this process (and of the children it forks, which
    share it); InUse if another run holds it."""
    import fcntl

    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InUse("another `make run` is using this data directory") from None
    return fd


def is_locked(path: Path) -> bool:
    import fcntl

    try:
        fd = os.open(path / LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Atomically and owner-only: a temporary file, fsync, rename over, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def removable(path: Path, ours: Iterable[str]) -> bool:
    """True if ``path`` holds nothing but files whose names match ``ours`` (names or fnmatch patterns):
    make reset may delete it."""
    from fnmatch import fnmatchcase

    patterns = tuple(ours)
    return path.is_dir() and all(
        child.is_file() and any(fnmatchcase(child.name, p) for p in patterns) for child in path.iterdir()
    )


def operator_token(data: Path) -> str:
    """The operator token of this data directory: generated by its first run, the same on every restart."""
    path = data / OPERATOR_TOKEN
    try:
        saved = path.read_text().strip()
    except FileNotFoundError:
        saved = ""
    if saved:
        return saved
    token = f"sct_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    write_private(path, token.encode() + b"\n")
    return token


def reset(data: Path, ours: Iterable[str], what: str) -> int:
    """Delete the data directory (make reset); refuses while a run uses it or if it is not ours.
    ``what`` says what it held, for the message."""
    import shutil

    names = tuple(ours)
    if not data.exists():
        print(f"seacat: nothing to reset, {shown(data)} does not exist; the next make run starts empty")
        return 0
    if not removable(data, names):
        print(
            f"seacat: not deleting {shown(data)}: it holds files that are not the local run's "
            f"(only {', '.join(sorted(n for n in names if not n.endswith('.tmp')))} are); check SEACAT_DATA_DIR",
            file=sys.stderr,
        )
        return 1
    if is_locked(data):
        print(f"seacat: not deleting {shown(data)}: a make run is using it; stop it first (Ctrl-C)", file=sys.stderr)
        return 1
    shutil.rmtree(data)
    print(f"seacat: deleted {shown(data)} ({what}); the next make run starts empty")
    return 0
