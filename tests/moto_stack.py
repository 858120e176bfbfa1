"""The test stage's stack on moto, deployed once per test process and emptied between tests.

Deploying infra/resources.yaml through CloudFormation into moto costs 0.5-0.9 s; the per-test
``aws`` fixture paid it for every integration test. Here the stack is deployed once and kept in
moto's memory between tests (moto stays patched only while a test runs); before each test every
item of the stage's tables and every secret is deleted through the AWS API (scan + batch delete,
list + force delete), so a test sees an empty stack exactly as a fresh deployment would give it.

A test that starts its own moto (``with mock_aws():``, a module's ``moto_client``) resets moto when
it starts and when it ends; the next test here finds the stack gone and deploys it again. Inside
such a moto (a per-test fixture under a module-scoped moto) nothing is emptied: the module's state
is shared, as it always was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

STAGE = "test"
STACK_NAME = f"seacat-{STAGE}-resources"


class SharedStack:
    def __init__(self) -> None:
        self._stack_id: str | None = None  # the StackId of our deployment, while moto still holds it
        self._tables: list[str] = []
        self._keys: dict[str, list[str]] = {}  # table -> its key attributes
        self._clients: dict[str, Any] = {}
        self.deployments = 0  # how many times this process deployed the stack

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.session import get_session

            self._clients[service] = get_session().create_client(service, region_name="eu-west-1")
        return self._clients[service]

    @contextlib.contextmanager
    def fresh(self) -> Iterator[None]:
        """moto patched, the stage's stack deployed and empty; for one test."""
        from moto import mock_aws
        from moto.core.models import MockAWS

        from tests.conftest import deploy_resources

        if MockAWS._nested_count:  # inside a module's own moto: share its state
            with mock_aws():
                deploy_resources(STAGE)
                yield
            return
        mock = mock_aws()
        mock.start(reset=False)
        try:
            if self._intact():
                self._empty()
            else:
                mock.stop()  # drops whatever another moto user left
                mock.start()
                deploy_resources(STAGE)
                self._remember()
            yield
        finally:
            mock.stop(remove_data=False)

    def _intact(self) -> bool:
        if self._stack_id is None:
            return False
        cfn = self._client("cloudformation")
        try:
            stacks = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"]
        except cfn.exceptions.ClientError:
            return False
        if [s["StackId"] for s in stacks] != [self._stack_id]:
            return False
        names = self._client("dynamodb").list_tables()["TableNames"]
        return sorted(names) == self._tables

    def _remember(self) -> None:
        self.deployments += 1
        self._stack_id = self._client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackId"]
        ddb = self._client("dynamodb")
        self._tables = sorted(ddb.list_tables()["TableNames"])
        self._keys = {
            t: [k["AttributeName"] for k in ddb.describe_table(TableName=t)["Table"]["KeySchema"]] for t in self._tables
        }

    def _empty(self) -> None:
        ddb = self._client("dynamodb")
        for table in self._tables:
            names = {f"#k{i}": name for i, name in enumerate(self._keys[table])}
            scan: dict[str, Any] = {
                "TableName": table,
                "ProjectionExpression": ", ".join(names),
                "ExpressionAttributeNames": names,
            }
            while True:
                page = ddb.scan(**scan)
                items = page["Items"]
                for start in range(0, len(items), 25):
                    requests = [{"DeleteRequest": {"Key": key}} for key in items[start : start + 25]]
                    while requests:
                        requests = (
                            ddb.batch_write_item(RequestItems={table: requests})
                            .get("UnprocessedItems", {})
                            .get(table, [])
                        )
                if "LastEvaluatedKey" not in page:
                    break
                scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        sm = self._client("secretsmanager")
        for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
            for secret in page["SecretList"]:
                sm.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)


shared = SharedStack()


def share_botocore_data() -> None:
    """One botocore data loader (service models, endpoints) for every botocore session of the process.

    The service creates a botocore session per container (chalicelib/aws.py), and the tests reset it
    for each test, as a cold start: each new session parsed botocore's JSON models again (~150 ms a
    test). The files never change, so the test process shares the parsed data; a session is still new.
    """
    import functools

    import botocore.session
    from botocore import loaders

    if getattr(botocore.session.create_loader, "shared", False):
        return
    cached = functools.lru_cache(maxsize=None)(loaders.create_loader)

    def create_loader(search_path_string: str | None = None) -> Any:
        return cached(search_path_string)

    create_loader.shared = True  # type: ignore[attr-defined]
    botocore.session.create_loader = create_loader
