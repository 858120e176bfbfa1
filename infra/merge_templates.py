"""Combine infra/resources.yaml and infra/api.yaml into the one merge template `chalice package` takes.

    python infra/merge_templates.py --stage STAGE --out OUT.yaml infra/resources.yaml infra/api.yaml

`chalice package --merge-template` accepts a single file, while infra/resources.yaml must stay a
stand-alone template (the emulator deploys it) and so cannot override Chalice's function. This
script reads both files with Chalice's own YAML loader and deep merge (the same semantics as
`--merge-template` itself), refuses a later file that would override anything an earlier file
defines, and pins the template's Stage parameter to the Chalice stage being packaged, so that a
dev package cannot be deployed with Stage=prod (its function's environment is dev's).

With --chalice-config, a stage with an `api_gateway_custom_domain` also gets its base path mapping
pointed at the SAM stage resource (`RestAPI.Stage`) instead of the stage's name: a reference is a
dependency, so CloudFormation no longer creates the mapping before the stage exists ("Invalid stage
identifier specified", a known race of chalice's SAM output).
"""

from __future__ import annotations

import argparse
import json
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


def _custom_domain(config: dict[str, Any], stage: str) -> dict[str, Any] | None:
    """The stage's `api_gateway_custom_domain`, looked up as chalice does (the stage's, else the top level's)."""
    stage_config = config.get("stages", {}).get(stage, {})
    domain = stage_config.get("api_gateway_custom_domain", config.get("api_gateway_custom_domain"))
    return domain if isinstance(domain, dict) else None


def custom_domain_fragment(config: dict[str, Any], stage: str) -> dict[str, Any]:
    """What the merge template adds over chalice's base path mapping (nothing without a custom domain)."""
    if _custom_domain(config, stage) is None:
        return {}
    # chalice names the mapping ApiGatewayCustomDomainMapping and writes the stage's name as Stage
    return {"Resources": {"ApiGatewayCustomDomainMapping": {"Properties": {"Stage": {"Ref": "RestAPI.Stage"}}}}}


def merge(paths: list[Path], stage: str, chalice_config: dict[str, Any] | None = None) -> dict[str, Any]:
    serializer = YAMLTemplateSerializer()
    merged: dict[str, Any] = {}
    for path in paths:
        template = serializer.load_template(path.read_text(), str(path))
        clashes = _clashes(merged, template)
        if clashes:
            raise SystemExit(f"{path} redefines {', '.join(clashes)}")
        merged = TemplateDeepMerger().merge(template, merged)
    if chalice_config is not None:
        merged = TemplateDeepMerger().merge(custom_domain_fragment(chalice_config, stage), merged)
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
    parser.add_argument("--chalice-config", type=Path, help="the project's .chalice/config.json (custom domain)")
    parser.add_argument("templates", nargs="+", type=Path)
    args = parser.parse_args(argv)
    config = json.loads(args.chalice_config.read_text()) if args.chalice_config else None
    merged = merge(args.templates, args.stage, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(YAMLTemplateSerializer().serialize_template(merged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
