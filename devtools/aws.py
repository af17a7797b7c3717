"""Secrets Manager and DynamoDB from a local moto server, reached through boto3's ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

# The name ``make run``, ``make invoke`` and the tests give the idempotency table (DESIGN §8).
IDEMPOTENCY_TABLE = "local-idempotency"

LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def start_moto() -> tuple[ThreadedMotoServer, str]:
    """A moto server on 127.0.0.1 (free port) and its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def local_aws_env(endpoint_url: str) -> dict[str, str]:
    return {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": endpoint_url}


def use_local_aws(endpoint_url: str) -> None:
    os.environ.update(local_aws_env(endpoint_url))


def put_secret(name: str, value: str, endpoint_url: str | None = None) -> None:
    """Create ``name`` or give it a new current value (a rotation)."""
    client = boto3.client("secretsmanager", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))
    try:
        client.put_secret_value(SecretId=name, SecretString=value)
    except client.exceptions.ResourceNotFoundException:
        client.create_secret(Name=name, SecretString=value)


def delete_secret(name: str, endpoint_url: str | None = None) -> None:
    client = boto3.client("secretsmanager", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def _dynamodb(endpoint_url: str | None) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))


def create_idempotency_table(name: str = IDEMPOTENCY_TABLE, endpoint_url: str | None = None) -> None:
    """The template's ``IdempotencyTable``: partition key ``id`` (S), TTL on ``expiration``.

    Does nothing when the table exists already.
    """
    client = _dynamodb(endpoint_url)
    try:
        client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except client.exceptions.ResourceInUseException:
        return
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})


def clear_idempotency_table(name: str = IDEMPOTENCY_TABLE, endpoint_url: str | None = None) -> None:
    """Create the table if needed and delete every record in it (tests must not replay each other)."""
    create_idempotency_table(name, endpoint_url)
    client = _dynamodb(endpoint_url)
    for page in client.get_paginator("scan").paginate(TableName=name, ProjectionExpression="id"):
        for item in page.get("Items", []):
            client.delete_item(TableName=name, Key={"id": item["id"]})


def delete_idempotency_table(name: str = IDEMPOTENCY_TABLE, endpoint_url: str | None = None) -> None:
    client = _dynamodb(endpoint_url)
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        client.delete_table(TableName=name)
