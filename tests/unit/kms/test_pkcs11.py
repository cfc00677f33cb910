"""The pkcs11 key provider against a real SoftHSM2 token (tests/unit/kms/softhsm.py).

The contract suite (test_contract.py) runs on it too; here: what is particular to an HSM
— the PIN, finding the token and key by label, keys that never leave the token, one
library shared by threads, a session the token drops — and a vault opened through it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from tests.unit.kms import softhsm
from tests.unit.kms.softhsm import LIBRARY, MAIN, PIN

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError, SealboxError

pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed (sealbox[pkcs11])")

CTX = b"sealbox/kek\x00vault-1\x00kek-1"
KEY = bytes(range(32))


@pytest.fixture(autouse=True)
def _hsm(soft_hsm: object) -> None:
    """Every test here needs the SoftHSM2 (skips, saying why, where it is missing)."""


def _raw_key(token_label: str, key_label: str) -> Any:
    """The token's key object, through python-pkcs11 directly (as an attacker with the
    PIN and the library would reach it), with its session."""
    import pkcs11

    token = pkcs11.lib(LIBRARY).get_token(token_label=token_label)
    session = token.open(rw=True)  # the process is logged in already (see the callers)
    return session, session.get_key(label=key_label)


# -- the PIN ------------------------------------------------------------------------------
def test_a_wrong_pin_is_refused_clearly_and_not_shown() -> None:
    wrong = "not-the-pin-4321"
    with (
        pytest.raises(KeyProviderError) as err,
        softhsm.opened(MAIN, token_label="sealbox-pin", env={"SEALBOX_PKCS11_PIN": wrong}),
    ):
        pass
    assert "the HSM refused the PIN" in err.value.message
    assert "sealbox-pin" in err.value.message
    assert wrong not in err.value.diagnostics() and PIN not in err.value.diagnostics()


def test_a_wrong_pin_is_refused_while_the_token_is_logged_in_here() -> None:
    """A PKCS#11 login is process-wide: a second provider on a logged-in token must
    still show the right PIN."""
    with softhsm.opened(MAIN) as good:
        with (
            pytest.raises(KeyProviderError, match="refused the PIN"),
            softhsm.opened(softhsm.OTHER, env={"SEALBOX_PKCS11_PIN": "wrong-pin-0000"}),
        ):
            pass
        # The refused one did not disturb the logged-in one.
        assert good.unwrap(good.wrap(KEY, CTX), CTX) == KEY


def test_closing_one_provider_leaves_the_others_on_the_token_logged_in() -> None:
    with softhsm.opened(MAIN) as first:
        with softhsm.opened(softhsm.OTHER) as second:
            blob = second.wrap(KEY, CTX)
        # C_Logout on the second's session would have logged the first out too.
        assert first.unwrap(first.wrap(KEY, CTX), CTX) == KEY
    with softhsm.opened(softhsm.OTHER) as again:
        assert again.unwrap(blob, CTX) == KEY


def test_a_missing_pin_names_the_variable() -> None:
    with pytest.raises(KeyProviderError) as err, softhsm.opened(MAIN, env={}):
        pass
    assert "SEALBOX_PKCS11_PIN" in err.value.message
    with (
        pytest.raises(KeyProviderError, match="HSM_PIN_PROD"),
        softhsm.opened(MAIN, env={"SEALBOX_PKCS11_PIN": PIN}, pin_env="HSM_PIN_PROD"),
    ):
        pass


def test_the_pin_comes_from_the_variable_pin_env_names() -> None:
    with softhsm.opened(MAIN, env={"HSM_PIN": PIN}, pin_env="HSM_PIN") as provider:
        provider.check()


# -- finding the token, the library and the key -----------------------------------------------
def test_a_missing_token_is_named() -> None:
    with pytest.raises(KeyProviderError) as err, softhsm.opened(MAIN, token_label="nope-token"):
        pass
    assert "'nope-token'" in err.value.message


def test_a_missing_library_is_named() -> None:
    with (
        pytest.raises(KeyProviderError) as err,
        softhsm.opened(MAIN, library="/nonexistent/libpkcs11.so"),
    ):
        pass
    assert "/nonexistent/libpkcs11.so" in err.value.message


def test_a_file_that_is_no_pkcs11_library_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "libbogus.so"
    bogus.write_bytes(b"not an ELF file")
    with (
        pytest.raises(KeyProviderError, match=str(bogus)),
        softhsm.opened(MAIN, library=str(bogus)),
    ):
        pass


def test_a_missing_key_is_named_and_not_made_without_generate() -> None:
    with pytest.raises(KeyProviderError) as err, softhsm.opened("no-such-key"):
        pass
    assert "'no-such-key'" in err.value.message
    # Not made as a side effect either.
    with pytest.raises(KeyProviderError), softhsm.opened("no-such-key"):
        pass


def test_generate_refuses_a_label_already_in_use() -> None:
    with pytest.raises(InvalidInput, match=MAIN), softhsm.opened(MAIN, generate=True):
        pass


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"token_label": "sealbox-a"}, "key_label"),
        ({"key_label": "k"}, "token_label"),
        ({"token_label": "sealbox-a", "key_label": "k", "colour": "blue"}, "colour"),
        ({"token_label": "sealbox-a", "key_label": "k", "library": "libsofthsm2.so"}, "library"),
        ({"token_label": "sealbox-a", "key_label": "k", "pin_env": "BAD NAME"}, "pin_env"),
        ({"token_label": "sealbox-a", "key_label": "k", "generate": "maybe"}, "generate"),
        ({"token_label": "x" * 33, "key_label": "k"}, "token_label"),
        ({"token_label": "sealbox-a", "key_label": "k\n"}, "key_label"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, str], named: str) -> None:
    from sealbox.kms.pkcs11 import Pkcs11Kind

    with pytest.raises(InvalidInput, match=named):
        Pkcs11Kind().create("hsm", options, softhsm.context())


def test_the_stored_config_holds_no_pin_and_defaults_are_filled() -> None:
    from sealbox.kms.pkcs11 import Pkcs11Kind

    new = Pkcs11Kind().create(
        "hsm", {"token_label": "sealbox-a", "key_label": MAIN}, softhsm.context()
    )
    try:
        assert new.config == {
            "library": LIBRARY,
            "token_label": "sealbox-a",
            "key_label": MAIN,
            "pin_env": "SEALBOX_PKCS11_PIN",
        }
        assert PIN not in json.dumps(new.config)
        assert new.provider.key_id() == f"pkcs11:sealbox-a/{MAIN}"
        assert PIN not in repr(new.provider)
        assert not Pkcs11Kind().interactive(new.config)
    finally:
        new.provider.close()


def test_the_registry_finds_the_family_by_name() -> None:
    from sealbox.kms.pkcs11 import Pkcs11Kind
    from sealbox.kms.registry import provider_kind

    assert isinstance(provider_kind("pkcs11"), Pkcs11Kind)


def test_a_stored_config_that_was_tampered_with_is_a_provider_error() -> None:
    from sealbox.kms.pkcs11 import Pkcs11Kind

    with pytest.raises(KeyProviderError, match="unusable config"):
        Pkcs11Kind().open("hsm", {"token_label": "sealbox-a"}, softhsm.context())


# -- keys stay in the token --------------------------------------------------------------------
def test_a_generated_key_is_a_sensitive_non_extractable_token_object() -> None:
    import pkcs11
    from pkcs11 import Attribute

    with softhsm.opened("gen-key", token_label="sealbox-gen", generate=True) as provider:
        blob = provider.wrap(KEY, CTX)
        session, key = _raw_key("sealbox-gen", "gen-key")
        try:
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                key[Attribute.VALUE]
            assert key[Attribute.EXTRACTABLE] is False
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.TOKEN] is True
            assert key[Attribute.VALUE_LEN] == 32
            assert key[Attribute.WRAP] is False and key[Attribute.SIGN] is False
            # Nor can it be made extractable afterwards.
            with pytest.raises(pkcs11.exceptions.PKCS11Error):
                key[Attribute.EXTRACTABLE] = True
        finally:
            session.close()
    # A token object: a provider opened later (a restart) still opens the wrapping.
    with softhsm.opened("gen-key", token_label="sealbox-gen") as again:
        assert again.unwrap(blob, CTX) == KEY


def test_a_key_deleted_from_the_token_fails_check() -> None:
    with softhsm.opened("doomed", token_label="sealbox-gen", generate=True) as provider:
        provider.check()
        session, key = _raw_key("sealbox-gen", "doomed")
        key.destroy()
        session.close()
        with pytest.raises(KeyProviderError, match="'doomed'"):
            provider.check()
        with pytest.raises(SealboxError):
            provider.wrap(KEY, CTX)


# -- the wrapping ------------------------------------------------------------------------------
def test_the_blob_is_versioned_and_other_versions_are_refused() -> None:
    from sealbox.kms.pkcs11 import IV_BYTES, TAG_BYTES, VERSION

    with softhsm.opened(MAIN) as provider:
        blob = provider.wrap(KEY, CTX)
        assert blob[0] == VERSION
        assert len(blob) == 1 + IV_BYTES + len(KEY) + TAG_BYTES
        with pytest.raises(IntegrityError, match="version 2"):
            provider.unwrap(bytes([2]) + blob[1:], CTX)
        with pytest.raises(IntegrityError):  # the wrong-AAD GeneralError, mapped
            provider.unwrap(blob, b"another context")
        # A blob moved between IVs (a changed IV) fails the tag too.
        with pytest.raises(IntegrityError):
            provider.unwrap(blob[:1] + bytes(IV_BYTES) + blob[1 + IV_BYTES :], CTX)


def test_two_threads_wrap_and_unwrap_at_once() -> None:
    errors: list[BaseException] = []
    with softhsm.opened(MAIN) as provider, softhsm.opened(softhsm.OTHER) as other:

        def work(p: Any, seed: int) -> None:
            try:
                for i in range(40):
                    key = bytes([seed, i]) * 16
                    ctx = CTX + bytes([seed, i])
                    assert p.unwrap(p.wrap(key, ctx), ctx) == key
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(p, n))
                   for n, p in enumerate((provider, provider, other, other))]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_a_busy_library_fails_within_the_timeout_instead_of_waiting() -> None:
    from sealbox.kms.pkcs11 import _library

    with softhsm.opened(MAIN) as provider:
        provider._timeout = 0.05
        lock = _library(LIBRARY).lock
        # Another thread inside a long library call holds the library's lock.
        with lock, pytest.raises(KeyProviderError, match="busy"):
            provider.wrap(KEY, CTX)
        assert provider.unwrap(provider.wrap(KEY, CTX), CTX) == KEY


def test_a_session_the_token_dropped_is_reopened() -> None:
    with softhsm.opened(MAIN) as provider:
        blob = provider.wrap(KEY, CTX)
        provider._session.close()  # the HSM dropped it (a restart, a network blip)
        assert provider.unwrap(blob, CTX) == KEY
        provider.check()


def test_check_after_a_dropped_session_reopens_it() -> None:
    with softhsm.opened(MAIN) as provider:
        provider._session.close()
        provider.check()
        assert provider.unwrap(provider.wrap(KEY, CTX), CTX) == KEY


def test_a_token_that_lost_the_login_is_logged_in_again() -> None:
    """An HSM restart logs the process out: private keys vanish from its sessions."""
    with softhsm.opened(MAIN) as provider, softhsm.opened(softhsm.OTHER) as other:
        blob = provider.wrap(KEY, CTX)
        provider._login.session.close()  # C_Logout: every session of the token is public now
        assert provider.unwrap(blob, CTX) == KEY
        assert other.unwrap(other.wrap(KEY, CTX), CTX) == KEY
        other.check()


def test_a_closed_provider_refuses_to_work() -> None:
    with softhsm.opened(MAIN) as provider:
        pass
    with pytest.raises(KeyProviderError, match="closed"):
        provider.wrap(KEY, CTX)


def test_the_sdk_is_not_imported_by_the_cli_or_the_registry() -> None:
    code = (
        "import sys, sealbox.cli.main, sealbox.kms.registry, sealbox.kms.opening;"
        "assert 'pkcs11' not in sys.modules, 'pkcs11 imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- a vault opened through the HSM, end to end ------------------------------------------------
def test_a_vault_opened_through_the_hsm_alone(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox import factory
    from sealbox.kms.master import UnlockMethod
    from sealbox.model import SecretRef, SecretValue

    key_file = tmp_path / "k.key"
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=key_file)
    vault = factory.open_vault(home=home)
    ref = SecretRef("payments", "prod", "DB_URL")
    vault.create_project("payments")
    vault.set(ref, SecretValue("postgres://hsm-protected"))
    monkeypatch.setenv("SEALBOX_PKCS11_PIN", PIN)
    added = vault.kms.add(
        "hsm",
        "pkcs11",
        {"library": LIBRARY, "token_label": "sealbox-vault", "key_label": "vault-kek",
         "generate": "true"},
    )  # fmt: skip
    assert added.provider.name == "hsm"
    vault.kms.remove("local")
    vault.close()
    key_file.unlink()

    # A fresh process's view: only the PIN in the environment, no key file anywhere.
    reopened = factory.open_vault(home=home, env={"SEALBOX_PKCS11_PIN": PIN})
    try:
        stored = {r.name: r for r in reopened._storage.list_key_providers()}
        assert set(stored) == {"hsm"} and PIN not in stored["hsm"].config
        assert reopened.get(ref, reveal=True).value.reveal() == "postgres://hsm-protected"
        status = reopened.kms.status()
        assert not status.problems, status.problems
    finally:
        reopened.close()

    wrong = factory.open_vault(home=home, env={"SEALBOX_PKCS11_PIN": "0000-wrong"})
    try:
        with pytest.raises(KeyProviderError) as err:
            wrong.get(ref, reveal=True)
        assert "the HSM refused the PIN" in err.value.message
        assert "0000-wrong" not in err.value.diagnostics()
    finally:
        wrong.close()


def test_the_cli_adds_an_hsm_and_a_wrong_pin_exits_with_the_provider_status(
    keyfile_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from sealbox.cli.main import main

    monkeypatch.setenv("SEALBOX_PKCS11_PIN", PIN)
    r = main(["kms", "add", "hsm", "--kind", "pkcs11", "--option", "token_label=sealbox-vault",
              "--option", "key_label=cli-kek", "--option", "generate=true"])  # fmt: skip
    assert r == 0, capsys.readouterr().err
    assert main(["kms", "status"]) == 0, capsys.readouterr()
    assert main(["kms", "remove", "local", "--yes"]) == 0
    (tmp_path / "master.key").unlink()
    capsys.readouterr()
    monkeypatch.setenv("SEALBOX_PKCS11_PIN", "wrong-pin-9999")
    assert main(["kms", "status"]) == 9  # KeyProviderError's exit status
    err = capsys.readouterr().err
    assert "refused the PIN" in err and "wrong-pin-9999" not in err
