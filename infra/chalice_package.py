"""`chalice package` for a chosen Lambda Python runtime, whatever Python runs it.

    python infra/chalice_package.py --runtime python3.13 package --stage STAGE ... OUT

Chalice takes the function's runtime from the interpreter that runs it (``Config.lambda_python_version``,
"we may open this up to configuration later"), and so also the wheels it downloads for the zip
(cp311 for Python 3.11). The Lambda runtime is a deployment choice (docs/deploy.md, "Runtime and
architecture"), not the development virtualenv's: this runs chalice's own command line with that
property set to ``--runtime``, so the template's Runtime and the zip's wheels (cp313, and aarch64 with
``lambda_architecture: arm64`` in .chalice/config.json) are the runtime's. Pure-Python code is the same.

Chalice asks pip for the runtime's wheels by platform and ABI (``--platform ... --abi cp313``) but not by
Python version, which pip then takes from the running interpreter, and finds no cp313 wheel for 3.11:
each such download also gets ``--python-version`` here. A dependency without a wheel for the runtime
stops the packaging (chalice itself would warn and package without it). tests/integration/test_package.py checks the
zip's wheels and binaries.
"""

from __future__ import annotations

import re
import sys
from typing import Any


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--runtime" or not re.fullmatch(r"python3\.\d+", argv[1]):
        print(__doc__, file=sys.stderr)
        return 2
    runtime = argv[1]
    from chalice import cli, config
    from chalice.deploy import packager

    config.Config.lambda_python_version = property(lambda self: runtime)  # type: ignore[method-assign,assignment]
    execute = packager.PipRunner._execute

    def for_the_runtime(self: packager.PipRunner, command: str, args: list[str], *rest: Any, **kw: Any) -> Any:
        if command == "download" and "--platform" in args and "--python-version" not in args:
            args = ["--python-version", runtime.removeprefix("python"), *args]
        return execute(self, command, args, *rest, **kw)

    packager.PipRunner._execute = for_the_runtime  # type: ignore[method-assign]

    # Chalice warns about a dependency it found no wheel for and goes on (and caches that zip for the next
    # run): a zip without cryptography's or cffi's binaries would fail only on Lambda. Stop instead.
    build = packager.DependencyBuilder.build_site_packages

    def complete(self: packager.DependencyBuilder, *args: Any, **kwargs: Any) -> None:
        try:
            build(self, *args, **kwargs)
        except packager.MissingDependencyError as missing:
            names = ", ".join(sorted(p.identifier for p in missing.missing))
            raise SystemExit(f"no {runtime} wheel for: {names} (not packaged)") from None

    packager.DependencyBuilder.build_site_packages = complete  # type: ignore[method-assign]
    sys.argv = ["chalice", *argv[2:]]
    result = cli.main()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
