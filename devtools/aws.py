"""Secrets Manager from a local moto server, reached through boto3's ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import contextlib
import os

import boto3
from moto.server import ThreadedMotoServer

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
