"""The shared moto stack of the ``aws`` fixture (tests/moto_stack.py): each test gets it empty."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import TEST_ENV
from tests.moto_stack import SharedStack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> SharedStack:
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    return SharedStack()  # its own, so that this test decides when it deploys


def _clients() -> tuple[Any, Any]:
    import boto3

    return boto3.client("dynamodb"), boto3.client("secretsmanager")


def _fill() -> None:
    ddb, sm = _clients()
    for table in ddb.list_tables()["TableNames"]:
        keys = ddb.describe_table(TableName=table)["Table"]["KeySchema"]
        with_range = {k["AttributeName"]: {"S": "x"} for k in keys}
        for n in range(30):  # more than one batch of deletes
            ddb.put_item(TableName=table, Item={**with_range, keys[0]["AttributeName"]: {"S": f"item-{n}"}})
    sm.create_secret(Name="seacat/test/acme/ca-key", SecretString="a key")
    sm.create_secret(Name="seacat/test/acme/gone", SecretString="deleted, recoverable")
    sm.delete_secret(SecretId="seacat/test/acme/gone")


def _contents() -> tuple[dict[str, int], list[str]]:
    ddb, sm = _clients()
    tables = {t: ddb.scan(TableName=t, Select="COUNT")["Count"] for t in ddb.list_tables()["TableNames"]}
    secrets = [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]]
    return tables, secrets


def test_the_next_test_sees_none_of_the_items_or_secrets_of_the_last(stack: SharedStack) -> None:
    with stack.fresh():
        tables, secrets = _contents()
        assert len(tables) == 6 and set(tables.values()) == {0} and secrets == []
        _fill()
        assert set(_contents()[0].values()) == {30}
    with stack.fresh():
        assert _contents() == (tables, [])
        _fill()  # the same names again: nothing of the last test is in the way
    assert stack.deployments == 1


def test_a_test_with_its_own_moto_in_between_gets_the_stack_deployed_again(stack: SharedStack) -> None:
    from moto import mock_aws

    with stack.fresh():
        _fill()
    with mock_aws():  # another test's moto: empty, and emptied again at its end
        assert _clients()[0].list_tables()["TableNames"] == []
    with stack.fresh():
        tables, secrets = _contents()
        assert len(tables) == 6 and set(tables.values()) == {0} and secrets == []
    assert stack.deployments == 2


def test_inside_a_modules_own_moto_the_state_is_shared_not_emptied(stack: SharedStack) -> None:
    from moto import mock_aws

    from tests.conftest import deploy_resources

    with mock_aws():
        deploy_resources("test")
        _fill()
        with stack.fresh():
            assert set(_contents()[0].values()) == {30}
    assert stack.deployments == 0
