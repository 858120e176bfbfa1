"""The embedded AWS emulator: resources from infra/resources.yaml, deployed through CloudFormation.

Used by `make run` (moto in server mode on 127.0.0.1) and by the tests (moto in-process), so the
local run and AWS are built from one definition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "resources.yaml"


def _client(service: str, endpoint_url: str | None) -> Any:
    import boto3

    return boto3.session.Session().client(service, endpoint_url=endpoint_url)


def deploy_stack(stage: str, endpoint_url: str | None = None) -> dict[str, str]:
    """Create (or find) the stage's stack; returns its outputs."""
    cfn = _client("cloudformation", endpoint_url)
    name = f"seacat-{stage}-resources"
    try:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except cfn.exceptions.ClientError:
        cfn.create_stack(
            StackName=name,
            TemplateBody=TEMPLATE.read_text(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage}],
        )
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise RuntimeError(f"stack {name} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
