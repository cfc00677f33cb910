"""The gcp-kms provider, driven through the real google-cloud-kms client (REST transport)
against a local fake of the Cloud KMS REST API (``gcp_peer``): no emulator of Cloud KMS
exists. The shared contract runs on it too (``conftest.CASES``)."""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.unit.kms import gcp_peer
from tests.unit.kms.peers import closed_port_url, ctx, free_port

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError

pytest.importorskip("google.cloud.kms")
from sealbox.kms.gcp_kms import GcpKmsKind

CTX = b"sealbox/kek\x00vault-1\x00kek-1"
KEY = bytes(range(32))
NAME = f"{gcp_peer.PARENT}/k"


@pytest.fixture
def fake() -> gcp_peer.FakeKms:
    found, _ = gcp_peer.fake_kms()
    return found


@contextlib.contextmanager
def _opened(key_name: str, *, timeout: float = 5.0, token: str = gcp_peer.TOKEN) -> Iterator[Any]:
    provider = gcp_peer.kind(token).open("gcp", gcp_peer.config(key_name), ctx(timeout))
    try:
        yield provider
    finally:
        provider.close()


@pytest.mark.parametrize(
    ("opts", "says"),
    [
        ({}, "key_name"),
        ({"key_name": "projects/p/keyRings/r"}, "resource name"),
        ({"key_name": NAME, "colour": "x"}, "colour"),
        ({"key_name": NAME, "transport": "carrier-pigeon"}, "grpc or rest"),
        ({"key_name": NAME, "endpoint": "http://h", "transport": "grpc"}, "transport=rest"),
        ({"key_name": NAME, "endpoint": "https://u:p@h"}, "credentials"),
        ({"key_name": NAME, "endpoint": "ftp://h"}, "endpoint"),
    ],
)
def test_create_refuses_bad_options(opts: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        gcp_peer.kind().create("gcp", opts, ctx())
    assert says in err.value.message


def test_create_reaches_the_key_and_stores_no_credential(fake: gcp_peer.FakeKms) -> None:
    name = fake.new_key()
    made = gcp_peer.kind().create(
        "gcp", {"key_name": name, "endpoint": gcp_peer.fake_kms()[1]}, ctx()
    )
    try:
        # An http endpoint means the REST transport; no token or credential in the config.
        assert made.config["transport"] == "rest"
        assert gcp_peer.TOKEN not in repr(made.config) and gcp_peer.TOKEN not in repr(made.provider)
        assert made.provider.key_id() == f"{name}/cryptoKeyVersions/1"
        blob = made.provider.wrap(KEY, CTX)
        assert made.provider.unwrap(blob, CTX) == KEY
    finally:
        made.provider.close()


def test_the_context_goes_as_aad_and_the_call_carries_the_token(fake: gcp_peer.FakeKms) -> None:
    name = fake.new_key()
    with _opened(name) as provider:
        provider.wrap(KEY, CTX)
        path, body, headers = fake.calls[-1]
        assert path == f"/v1/{name}:encrypt"
        assert base64.b64decode(body["additionalAuthenticatedData"]) == CTX
        assert {k.lower(): v for k, v in headers.items()}["authorization"] == (
            f"Bearer {gcp_peer.TOKEN}"
        )


def test_create_refuses_a_missing_key(fake: gcp_peer.FakeKms) -> None:
    with pytest.raises(KeyProviderError) as err:
        gcp_peer.kind().create("gcp", gcp_peer.config(f"{gcp_peer.PARENT}/missing"), ctx())
    assert "no key" in err.value.message


def test_create_refuses_a_disabled_key(fake: gcp_peer.FakeKms) -> None:
    name = fake.new_key()
    fake.disable(name)
    with pytest.raises(KeyProviderError) as err:
        gcp_peer.kind().create("gcp", gcp_peer.config(name), ctx())
    assert "disabled" in err.value.message


def test_create_refuses_an_unreachable_endpoint() -> None:
    with pytest.raises(KeyProviderError):
        gcp_peer.kind().create("gcp", gcp_peer.config(NAME, closed_port_url()), ctx(1.0))


def test_an_identity_without_permission_is_refused_with_the_permission_named(
    fake: gcp_peer.FakeKms,
) -> None:
    name = fake.new_key()
    with _opened(name, token=gcp_peer.TOKEN_NO_PERMISSION) as provider:
        with pytest.raises(KeyProviderError) as err:
            provider.wrap(KEY, CTX)
        assert "403" in err.value.message
        assert err.value.hint is not None and "useToEncrypt" in err.value.hint
        with pytest.raises(KeyProviderError) as err:
            provider.unwrap(b"x" * 40, CTX)
        assert err.value.hint is not None and "useToDecrypt" in err.value.hint
        assert gcp_peer.TOKEN_NO_PERMISSION not in str(err.value.message)


def test_a_rejected_token_is_a_provider_error(fake: gcp_peer.FakeKms) -> None:
    # 401: google-auth tries to refresh the token, which a static token cannot.
    with _opened(fake.new_key(), token="wrong-token") as provider:
        with pytest.raises(KeyProviderError) as err:
            provider.wrap(KEY, CTX)
        assert "wrong-token" not in err.value.message


def test_no_application_default_credentials_is_a_provider_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(KeyProviderError) as err:
        GcpKmsKind().open("gcp", gcp_peer.config(NAME), ctx())
    assert "Cloud KMS client" in err.value.message


def test_a_key_rotated_in_cloud_kms_still_opens_old_wrappings(fake: gcp_peer.FakeKms) -> None:
    name = fake.new_key()
    with _opened(name) as provider:
        old = provider.wrap(KEY, CTX)
        fake.rotate(name)
        new = provider.wrap(KEY, CTX)
        assert provider.key_id().endswith("/cryptoKeyVersions/2")
        assert provider.unwrap(old, CTX) == KEY == provider.unwrap(new, CTX)


def test_a_disabled_version_is_a_provider_error_not_tampering(fake: gcp_peer.FakeKms) -> None:
    name = fake.new_key()
    with _opened(name) as provider:
        blob = provider.wrap(KEY, CTX)
        fake.disable(name, 1)
        with pytest.raises(KeyProviderError) as err:
            provider.unwrap(blob, CTX)
        assert "disabled" in err.value.message
        with pytest.raises(KeyProviderError):
            provider.check()


def test_a_changed_context_or_blob_is_an_integrity_error(fake: gcp_peer.FakeKms) -> None:
    with _opened(fake.new_key()) as provider:
        blob = provider.wrap(KEY, CTX)
        with pytest.raises(IntegrityError):
            provider.unwrap(blob, CTX + b"x")
        with pytest.raises(IntegrityError):
            provider.unwrap(blob[:-1] + bytes([blob[-1] ^ 1]), CTX)
        with pytest.raises(IntegrityError):
            provider.unwrap(b"", CTX)


def test_a_hanging_service_fails_within_the_timeout(fake: gcp_peer.FakeKms) -> None:
    with _opened(fake.new_key(), timeout=0.3) as provider:
        fake.release.clear()
        fake.hang.set()
        try:
            with pytest.raises(KeyProviderError) as err:
                provider.wrap(KEY, CTX)
        finally:
            fake.hang.clear()
            fake.release.set()
        assert "Timeout" in err.value.message


def test_grpc_transport_errors_are_provider_errors() -> None:
    provider = gcp_peer.kind().open(
        "gcp", {"key_name": NAME, "endpoint": f"127.0.0.1:{free_port()}"}, ctx(1.0)
    )
    try:
        with pytest.raises(KeyProviderError):
            provider.wrap(KEY, CTX)
    finally:
        provider.close()


def test_one_provider_serves_several_threads(fake: gcp_peer.FakeKms) -> None:
    errors: list[BaseException] = []
    with _opened(fake.new_key()) as provider:

        def work(i: int) -> None:
            try:
                for _ in range(5):
                    key = bytes([i]) * 32
                    assert provider.unwrap(provider.wrap(key, CTX), CTX) == key
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
