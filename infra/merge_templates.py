"""Combine infra/resources.yaml and infra/api.yaml into the one merge template `chalice package` takes.

    python infra/merge_templates.py --stage STAGE --out OUT.yaml infra/resources.yaml infra/api.yaml

`chalice package --merge-template` accepts a single file, while infra/resources.yaml must stay a
stand-alone template (the emulator deploys it) and so cannot override Chalice's function. This
script reads both files with Chalice's own YAML loader and deep merge (the same semantics as
`--merge-template` itself), refuses a later file that would override anything an earlier file
defines, and pins the template's Stage parameter to the Chalice stage being packaged, so that a
dev package cannot be deployed with Stage=prod (its function's environment is dev's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chalice.package import TemplateDeepMerger, YAMLTemplateSerializer


def _clashes(earlier: dict[str, Any], later: dict[str, Any]) -> list[str]:
    clashes = []
    for section in ("Parameters", "Conditions", "Mappings", "Resources", "Outputs", "Rules"):
        both = set(earlier.get(section, {})) & set(later.get(section, {}))
        clashes += [f"{section}.{name}" for name in sorted(both)]
    return clashes


def merge(paths: list[Path], stage: str) -> dict[str, Any]:
    serializer = YAMLTemplateSerializer()
    merged: dict[str, Any] = {}
    for path in paths:
        template = serializer.load_template(path.read_text(), str(path))
        clashes = _clashes(merged, template)
        if clashes:
            raise SystemExit(f"{path} redefines {', '.join(clashes)}")
        merged = TemplateDeepMerger().merge(template, merged)
    parameter = merged.get("Parameters", {}).get("Stage")
    if parameter is None:
        raise SystemExit("no Stage parameter in the merged templates")
    parameter["Default"] = stage
    parameter["AllowedValues"] = [stage]
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True, help="the Chalice stage being packaged")
    parser.add_argument("--out", required=True, type=Path, help="where to write the merge template (.yaml)")
    parser.add_argument("templates", nargs="+", type=Path)
    args = parser.parse_args(argv)
    merged = merge(args.templates, args.stage)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(YAMLTemplateSerializer().serialize_template(merged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
