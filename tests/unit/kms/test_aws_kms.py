"""The aws-kms provider: against moto's server on loopback (an emulator), and through
botocore's Stubber for the answers moto never gives (a Decrypt refused for a disabled key).
The shared contract runs on it too (``conftest.CASES``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.unit.kms import aws_peer
from tests.unit.kms.aws_peer import fake_credentials, moto_url, new_key, options
from tests.unit.kms.peers import closed_port_url, ctx, silent_server

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError
from sealbox.kms.cloud import context_text

boto3 = pytest.importorskip("boto3")
from botocore.stub import Stubber  # noqa: E402

from sealbox.kms.aws_kms import AwsKmsKind, AwsKmsProvider  # noqa: E402

CTX = b"sealbox/kek\x00vault-1\x00kek-1"
KEY = bytes(range(32))


@pytest.fixture(autouse=True)
def _creds() -> Iterator[None]:
    with fake_credentials():
        yield


def _kms() -> Any:
    return boto3.client("kms", region_name=aws_peer.REGION, endpoint_url=moto_url())


# -- create: options and reaching the service ---------------------------------------------------
def test_create_with_a_new_key_wraps_and_unwraps() -> None:
    made = AwsKmsKind().create("aws", options(create_key="true"), ctx())
    try:
        assert made.config["key_id"].startswith("arn:aws:kms:")
        assert "create_key" not in made.config
        assert made.provider.key_id() == made.config["key_id"]
        blob = made.provider.wrap(KEY, CTX)
        # What is stored reopens the provider (a fresh client, the same key).
        again = AwsKmsKind().open("aws", made.config, ctx())
        assert again.unwrap(blob, CTX) == KEY
        again.close()
    finally:
        made.provider.close()


def test_create_with_an_alias() -> None:
    arn = new_key()
    _kms().create_alias(AliasName="alias/sealbox-test", TargetKeyId=arn)
    made = AwsKmsKind().create("aws", options("alias/sealbox-test"), ctx())
    try:
        assert made.config["key_id"] == "alias/sealbox-test"
        # check() resolved the alias: status shows the key's ARN.
        assert made.provider.key_id() == arn
        assert made.provider.unwrap(made.provider.wrap(KEY, CTX), CTX) == KEY
    finally:
        made.provider.close()


@pytest.mark.parametrize(
    ("opts", "says"),
    [
        ({"region": "us-east-1"}, "key_id"),
        ({"key_id": "k", "create_key": "true"}, "not both"),
        ({"key_id": "k", "colour": "blue"}, "colour"),
        ({"key_id": "k", "endpoint_url": "ftp://x"}, "endpoint_url"),
        ({"key_id": "k", "endpoint_url": "http://user:pw@host"}, "credentials"),
        ({"key_id": "k", "create_key": "maybe"}, "true or false"),
        ({"key_id": "  "}, "key_id"),
    ],
)
def test_create_refuses_bad_options(opts: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        AwsKmsKind().create("aws", opts, ctx())
    assert says in err.value.message
    assert "pw" not in err.value.message


def test_create_refuses_a_key_that_does_not_exist() -> None:
    missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    with pytest.raises(KeyProviderError):
        AwsKmsKind().create("aws", options(missing), ctx())


def test_create_refuses_an_unreachable_endpoint() -> None:
    opts = {**options("alias/x"), "endpoint_url": closed_port_url()}
    with pytest.raises(KeyProviderError) as err:
        AwsKmsKind().create("aws", opts, ctx(timeout=1.0))
    assert "EndpointConnectionError" in err.value.message


@pytest.mark.parametrize(
    ("action", "says"), [("disable", "disabled"), ("delete", "pending deletion")]
)
def test_check_refuses_a_disabled_or_deleted_key(action: str, says: str) -> None:
    arn = new_key()
    bare = arn.rsplit("/", 1)[1]  # moto's DisableKey wants the bare key id
    if action == "disable":
        _kms().disable_key(KeyId=bare)
    else:
        _kms().schedule_key_deletion(KeyId=bare, PendingWindowInDays=7)
    with pytest.raises(KeyProviderError) as err:
        AwsKmsKind().create("aws", options(arn), ctx())
    assert f"the KMS key {arn!r} is {says}" in err.value.message
    opened = AwsKmsKind().open("aws", options(arn), ctx())
    with pytest.raises(KeyProviderError):
        opened.check()
    opened.close()


@pytest.mark.parametrize(
    ("usage", "spec"), [("ENCRYPT_DECRYPT", "RSA_2048"), ("GENERATE_VERIFY_MAC", "HMAC_256")]
)
def test_create_refuses_a_key_that_is_not_symmetric_encryption(usage: str, spec: str) -> None:
    arn = _kms().create_key(KeyUsage=usage, KeySpec=spec)["KeyMetadata"]["Arn"]
    with pytest.raises(KeyProviderError) as err:
        AwsKmsKind().create("aws", options(arn), ctx())
    assert "not a symmetric encryption key" in err.value.message


def test_open_needs_a_key_id() -> None:
    with pytest.raises(KeyProviderError):
        AwsKmsKind().open("aws", {"region": "us-east-1"}, ctx())


def test_a_missing_credential_is_a_provider_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    provider = AwsKmsKind().open("aws", options("alias/x"), ctx())
    with pytest.raises(KeyProviderError) as err:
        provider.wrap(KEY, CTX)
    assert "NoCredentialsError" in err.value.message
    provider.close()


def test_an_unknown_profile_is_a_provider_error() -> None:
    with pytest.raises(KeyProviderError):
        AwsKmsKind().open("aws", options("alias/x", profile="no-such-profile"), ctx())


# -- the context binding and the answers moto never gives ---------------------------------------
def _stubbed(key_id: str = "alias/vault") -> tuple[AwsKmsProvider, Stubber]:
    client = boto3.client("kms", region_name="us-east-1")
    return AwsKmsProvider("aws", key_id, client), Stubber(client)


def test_wrap_and_unwrap_send_the_context_and_the_key_id() -> None:
    provider, stub = _stubbed()
    context = {"sealbox-context": context_text(CTX)}
    stub.add_response(
        "encrypt",
        {"CiphertextBlob": b"blob", "KeyId": "arn:aws:kms:us-east-1:1:key/k"},
        {"KeyId": "alias/vault", "Plaintext": KEY, "EncryptionContext": context},
    )
    stub.add_response(
        "decrypt",
        {"Plaintext": KEY, "KeyId": "arn:aws:kms:us-east-1:1:key/k"},
        {"KeyId": "alias/vault", "CiphertextBlob": b"blob", "EncryptionContext": context},
    )
    with stub:
        assert provider.wrap(KEY, CTX) == b"blob"
        assert provider.unwrap(b"blob", CTX) == KEY
        stub.assert_no_pending_responses()
    assert provider.key_id() == "arn:aws:kms:us-east-1:1:key/k"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("DisabledException", KeyProviderError),
        ("KMSInvalidStateException", KeyProviderError),
        ("AccessDeniedException", KeyProviderError),
        ("InvalidCiphertextException", IntegrityError),
        ("IncorrectKeyException", IntegrityError),
        ("ThrottlingException", KeyProviderError),
    ],
)
def test_kms_refusals_map_to_sealbox_errors(code: str, error: type[Exception]) -> None:
    provider, stub = _stubbed()
    stub.add_client_error("decrypt", service_error_code=code, service_message="refused")
    with stub, pytest.raises(error) as err:
        provider.unwrap(b"blob", CTX)
    assert code in str(err.value)
    if code == "DisabledException":
        assert "disabled" in str(err.value)
    if code == "AccessDeniedException":
        assert err.value.hint is not None and "kms:Decrypt" in err.value.hint  # type: ignore[attr-defined]


def test_an_empty_blob_is_refused_without_a_call() -> None:
    provider, stub = _stubbed()
    with stub, pytest.raises(IntegrityError):
        provider.unwrap(b"", CTX)


def test_moto_refuses_a_changed_context_and_another_keys_blob() -> None:
    with aws_peer.provider() as one, aws_peer.provider() as two:
        blob = one.wrap(KEY, CTX)
        with pytest.raises(IntegrityError):
            one.unwrap(blob, CTX + b"x")
        # moto answers AccessDenied where AWS answers IncorrectKeyException: refused either way.
        with pytest.raises((IntegrityError, KeyProviderError)):
            two.unwrap(blob, CTX)


# -- faults: a hanging endpoint, threads --------------------------------------------------------
def test_a_hanging_endpoint_fails_with_a_timeout() -> None:
    with silent_server() as port:
        url = f"http://127.0.0.1:{port}"
        provider = AwsKmsKind().open(
            "aws", {"key_id": "alias/x", "region": "us-east-1", "endpoint_url": url}, ctx(0.3)
        )
        with pytest.raises(KeyProviderError) as err:
            provider.unwrap(b"blob", CTX)
        assert "ReadTimeout" in err.value.message
        provider.close()


def test_one_provider_serves_several_threads() -> None:
    with aws_peer.provider() as provider:
        errors: list[BaseException] = []

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


def test_repr_names_the_key_only() -> None:
    with aws_peer.provider() as provider:
        text = repr(provider)
        assert "AwsKmsProvider" in text and "testing" not in text
        provider.close()
        provider.close()  # closing twice is harmless
