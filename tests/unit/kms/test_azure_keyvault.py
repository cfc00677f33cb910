"""The azure-keyvault provider, driven through the real azure-keyvault-keys SDK and
azure-core's RequestsTransport whose session adapter is a fake of the Key Vault REST API
(``azure_peer``): no Key Vault emulator exists. The shared contract runs on it too."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.unit.kms import azure_peer
from tests.unit.kms.peers import ctx, silent_server

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError

pytest.importorskip("azure.keyvault.keys")
from sealbox.kms.azure_keyvault import AzureKeyVaultKind

CTX = b"sealbox/kek\x00vault-1\x00kek-1"
KEY = bytes(range(32))


@pytest.fixture
def fake() -> azure_peer.FakeKeyVault:
    return azure_peer.fake_vault()


@contextlib.contextmanager
def _opened(
    fake: azure_peer.FakeKeyVault, name: str, *, token: str = azure_peer.TOKEN, **extra: str
) -> Iterator[Any]:
    provider = azure_peer.kind(token, fake).open("azure", azure_peer.config(name, **extra), ctx())
    try:
        yield provider
    finally:
        provider.close()


def _ops(fake: azure_peer.FakeKeyVault, since: int) -> list[str]:
    return [f"{m} {p.rsplit('/', 1)[-1]}" for m, p, token in fake.calls[since:] if token]


@pytest.mark.parametrize(
    ("opts", "says"),
    [
        ({"key_name": "k"}, "vault_url"),
        ({"vault_url": azure_peer.VAULT_URL}, "key_name"),
        ({"vault_url": "http://v.vault.azure.net", "key_name": "k"}, "https"),
        ({"vault_url": azure_peer.VAULT_URL, "key_name": "a/b"}, "key_name"),
        (
            {"vault_url": azure_peer.VAULT_URL, "key_name": "k", "key_version": "../x"},
            "key_version",
        ),
        ({"vault_url": azure_peer.VAULT_URL, "key_name": "k", "tenant": "t"}, "tenant"),
    ],
)
def test_create_refuses_bad_options(opts: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        azure_peer.kind().create("azure", opts, ctx())
    assert says in err.value.message


def test_create_reaches_the_key_and_stores_no_credential(fake: azure_peer.FakeKeyVault) -> None:
    name = fake.new_key()
    credential = azure_peer.StaticCredential()
    kind = AzureKeyVaultKind(credential, azure_peer.transport(fake))
    since = len(fake.calls)
    made = kind.create("azure", azure_peer.config(name), ctx())
    try:
        assert made.config == azure_peer.config(name)
        assert azure_peer.TOKEN not in repr(made.provider)
        assert made.provider.key_id() == f"{azure_peer.VAULT_URL}/keys/{name}/{fake.current(name)}"
        # The SDK read the public key and wrapped locally (no wrapkey call); the unwrap, by
        # the version the blob names, went to the vault.
        assert _ops(fake, since) == [f"GET {name}", f"GET {fake.current(name)}", "POST unwrapkey"]
        assert set(credential.scopes) == {"https://vault.azure.net/.default"}
    finally:
        made.provider.close()


def test_without_keys_get_the_wrap_is_remote_and_needs_a_pinned_version(
    fake: azure_peer.FakeKeyVault,
) -> None:
    name = fake.new_key()
    with _opened(fake, name, token=azure_peer.TOKEN_NO_GET) as provider:
        with pytest.raises(KeyProviderError) as err:
            provider.wrap(KEY, CTX)
        assert err.value.hint is not None and "keys/get" in err.value.hint
    version = fake.current(name)
    with _opened(fake, name, token=azure_peer.TOKEN_NO_GET, key_version=version) as provider:
        since = len(fake.calls)
        blob = provider.wrap(KEY, CTX)
        assert "POST wrapkey" in _ops(fake, since)
        assert provider.unwrap(blob, CTX) == KEY


def test_the_context_is_bound_inside_the_wrapping(fake: azure_peer.FakeKeyVault) -> None:
    with _opened(fake, fake.new_key()) as provider:
        blob = provider.wrap(KEY, CTX)
        # Key Vault unwraps it (RSA has no AAD); sealbox's digest check refuses it.
        with pytest.raises(IntegrityError) as err:
            provider.unwrap(blob, CTX + b"x")
        assert "another context" in err.value.message


def test_a_changed_ciphertext_is_an_integrity_error(fake: azure_peer.FakeKeyVault) -> None:
    with _opened(fake, fake.new_key()) as provider:
        blob = bytearray(provider.wrap(KEY, CTX))
        blob[-5] ^= 0x01
        with pytest.raises(IntegrityError):
            provider.unwrap(bytes(blob), CTX)


def test_a_malformed_blob_is_refused_without_a_call(fake: azure_peer.FakeKeyVault) -> None:
    with _opened(fake, fake.new_key()) as provider:
        since = len(fake.calls)
        for blob in (b"", b"no-separator", b"\x00abc", b"../../x\x00abc"):
            with pytest.raises(IntegrityError):
                provider.unwrap(blob, CTX)
        assert fake.calls[since:] == []


def test_a_key_rotated_in_key_vault_still_opens_old_wrappings(
    fake: azure_peer.FakeKeyVault,
) -> None:
    name = fake.new_key()
    first = fake.current(name)
    with _opened(fake, name) as provider:
        old = provider.wrap(KEY, CTX)
    second = fake.rotate(name)
    with _opened(fake, name) as provider:
        new = provider.wrap(KEY, CTX)
        assert provider.key_id().endswith(second) and not old.startswith(second.encode())
        assert old.startswith(first.encode())
        assert provider.unwrap(old, CTX) == KEY == provider.unwrap(new, CTX)


def test_a_disabled_key_is_a_provider_error(fake: azure_peer.FakeKeyVault) -> None:
    name = fake.new_key()
    with _opened(fake, name) as provider:
        blob = provider.wrap(KEY, CTX)
        fake.disable(name)
        with pytest.raises(KeyProviderError) as err:
            provider.unwrap(blob, CTX)
        assert "disabled" in err.value.message
        with pytest.raises(KeyProviderError):
            provider.check()


def test_an_identity_without_permission_is_refused(fake: azure_peer.FakeKeyVault) -> None:
    name = fake.new_key()
    with _opened(
        fake, name, token=azure_peer.TOKEN_NO_PERMISSION, key_version=fake.current(name)
    ) as provider:
        with pytest.raises(KeyProviderError) as err:
            provider.wrap(KEY, CTX)
        assert "403" in err.value.message
        assert err.value.hint is not None and "keys/wrapKey" in err.value.hint
        assert azure_peer.TOKEN_NO_PERMISSION not in err.value.message


def test_a_rejected_token_is_a_provider_error(fake: azure_peer.FakeKeyVault) -> None:
    with _opened(fake, fake.new_key(), token="not-a-token") as provider:
        with pytest.raises(KeyProviderError) as err:
            provider.check()
        assert "not-a-token" not in err.value.message


def test_a_missing_key_is_a_provider_error(fake: azure_peer.FakeKeyVault) -> None:
    with pytest.raises(KeyProviderError) as err:
        azure_peer.kind(fake=fake).create("azure", azure_peer.config("no-such-key"), ctx())
    assert "no key" in err.value.message


def test_no_azure_credential_is_a_provider_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the environment credential, and no service principal in the environment.
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    fake = azure_peer.fake_vault()
    kind = AzureKeyVaultKind(transport=azure_peer.transport(fake))
    with pytest.raises(KeyProviderError) as err:
        kind.create("azure", azure_peer.config(fake.new_key()), ctx())
    assert "no credential was accepted" in err.value.message


def test_a_hanging_vault_fails_with_a_timeout() -> None:
    with silent_server() as port:
        provider = AzureKeyVaultKind(azure_peer.StaticCredential()).open(
            "azure", {"vault_url": f"https://127.0.0.1:{port}", "key_name": "k"}, ctx(0.3)
        )
        try:
            with pytest.raises(KeyProviderError):
                provider.check()
        finally:
            provider.close()


def test_one_provider_serves_several_threads(fake: azure_peer.FakeKeyVault) -> None:
    errors: list[BaseException] = []
    with _opened(fake, fake.new_key()) as provider:

        def work(i: int) -> None:
            try:
                for _ in range(3):
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


def test_a_closed_provider_refuses_calls(fake: azure_peer.FakeKeyVault) -> None:
    with _opened(fake, fake.new_key()) as provider:
        provider.close()
        with pytest.raises(KeyProviderError):
            provider.wrap(KEY, CTX)


def test_an_expired_key_is_a_provider_error(fake: azure_peer.FakeKeyVault) -> None:
    name = fake.new_key()
    fake.keys[name]["expires"] = 1_000_000  # 1970: long expired
    with _opened(fake, name) as provider, pytest.raises(KeyProviderError) as err:
        provider.check()  # the wrap may be local; the unwrap is refused by the vault
    assert "403" in err.value.message
