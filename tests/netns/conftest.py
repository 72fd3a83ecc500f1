"""Fixtures for the checks that start servers (an S3 store, Ray): they run only inside a loopback-only network
namespace, which tests/test_scaleout.py enters with `unshare -n` before running pytest on this folder."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator

import pytest

SECRET = "mmsearch-test-secret-do-not-store"


def only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]  # /sys/class/net is the host's view


@pytest.fixture(scope="session", autouse=True)
def _inside_namespace() -> None:
    if not only_loopback():
        pytest.skip("these checks start servers: run them through tests/test_scaleout.py (unshare -n)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback, with the standard AWS variables pointing at it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request would bury a failure's report
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                       "AWS_EC2_METADATA_DISABLED": "true"})
    yield endpoint
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    import boto3

    name = "b-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


def upload_folder(folder: Path, bucket: str, prefix: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    keys = []
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            key = f"{prefix}/{f.relative_to(folder).as_posix()}"
            client.upload_file(str(f), bucket, key)
            keys.append(key)
    return keys


def all_object_bytes(bucket: str) -> Iterator[tuple[str, bytes]]:
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            yield obj["Key"], client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
