"""An AWS KMS to test against: moto's standalone server on loopback (an EMULATOR, not AWS:
it implements Encrypt/Decrypt/DescribeKey with real AES-GCM, but does not refuse a
Decrypt under a disabled key — that path is tested with botocore's Stubber).

The server starts on first use, on a free port, and stops when the test process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.unit.kms.peers import closed_port_url, ctx, free_port

from sealbox.kms.interface import KeyProvider

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
REGION = "us-east-1"

_lock = threading.Lock()
_server: dict[str, Any] = {}


@contextlib.contextmanager
def fake_credentials() -> Iterator[None]:
    """boto3's own chain finds fake credentials in the environment (and no user config)."""
    saved = {k: os.environ.get(k) for k in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def moto_url() -> str:
    """The moto server's URL (started on first use)."""
    pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    with _lock:
        if "url" not in _server:
            port = free_port()
            server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            atexit.register(server.stop)
            _server["url"] = f"http://127.0.0.1:{port}"
        url: str = _server["url"]
        return url


def new_key(url: str | None = None) -> str:
    """A new KMS key on the moto server: its ARN."""
    import boto3

    with fake_credentials():
        client = boto3.client("kms", region_name=REGION, endpoint_url=url or moto_url())
        arn: str = client.create_key(Description="sealbox test")["KeyMetadata"]["Arn"]
        client.close()
    return arn


def options(key_id: str | None = None, **extra: str) -> dict[str, str]:
    found = {"region": REGION, "endpoint_url": moto_url(), **extra}
    if key_id is not None:
        found["key_id"] = key_id
    return found


def open_provider(config: dict[str, Any], *, timeout: float = 5.0, name: str = "aws") -> Any:
    from sealbox.kms.aws_kms import AwsKmsKind

    return AwsKmsKind().open(name, config, ctx(timeout))


@contextlib.contextmanager
def provider() -> Iterator[KeyProvider]:
    """A working aws-kms provider on a fresh moto key."""
    with fake_credentials():
        found = open_provider(options(new_key()))
        try:
            yield found
        finally:
            found.close()


@contextlib.contextmanager
def unreachable() -> Iterator[KeyProvider]:
    """aws-kms pointed at a closed loopback port."""
    pytest.importorskip("boto3")
    with fake_credentials():
        found = open_provider(
            {"key_id": "alias/none", "region": REGION, "endpoint_url": closed_port_url()},
            timeout=1.0,
        )
        try:
            yield found
        finally:
            found.close()
