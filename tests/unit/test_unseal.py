"""The unseal process (sealbox.unseal) and `operator init` (factory): shares collected in
memory, progress, faults naming the share, the KEKs handed to the vault, seal, audit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.conftest import PASSPHRASE

from sealbox import factory
from sealbox.errors import AccessDenied, InvalidInput, Sealed
from sealbox.kms.master import UnlockMethod
from sealbox.model import SecretRef, SecretValue

REF = SecretRef("payments", "dev", "API_KEY")


def _events(home: Path, operation: str) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute(
            "SELECT outcome, reason FROM sb_audit WHERE operation = ? ORDER BY seq", (operation,)
        ).fetchall()
    return [(str(o), str(r)) for o, r in rows]


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, tuple[str, ...]]:
    home = tmp_path / "home"
    result = factory.operator_init(shares=5, threshold=3, home=home, env={})
    assert not result.existing and result.auto_unseal is None
    return home, result.shares


def test_a_shares_vault_is_sealed_until_enough_shares_are_given(
    made: tuple[Path, tuple[str, ...]],
) -> None:
    home, shares = made
    vault = factory.open_vault(home=home, env={})
    try:
        with pytest.raises(Sealed, match="3 of its 5 shares"):
            vault.open_keys()
        unseal = vault.unseal
        status = unseal.status()
        assert (status.sealed, status.threshold, status.shares, status.progress) == (
            True, 3, 5, 0,
        )  # fmt: skip
        s1 = unseal.submit(shares[3])
        assert s1.progress == 1 and s1.sealed and s1.nonce
        assert unseal.submit(shares[1]).progress == 2
        done = unseal.submit(shares[0])
        assert not done.sealed and done.progress == 0 and not vault.sealed
        vault.create_project("payments")
        vault.set(REF, SecretValue("s3cret"))
        assert vault.get(REF, reveal=True).value.reveal() == "s3cret"
        vault.unseal.seal()
        assert vault.sealed
        with pytest.raises(Sealed):
            vault.get(REF, reveal=True)
    finally:
        vault.close()
    unseals = _events(home, "unseal")
    assert [o for o, _ in unseals] == ["allowed"] * 3
    assert unseals[0][1] == "progress 1/3" and "unsealed with 3 shares" in unseals[2][1]
    assert _events(home, "seal") == [("allowed", "keys dropped from memory")]
    text = "".join(r for _, r in unseals)
    assert not any(w in text.split() for s in shares for w in s.split())


def test_a_bad_share_is_refused_and_the_earlier_ones_kept(
    made: tuple[Path, tuple[str, ...]],
) -> None:
    home, shares = made
    vault = factory.open_vault(home=home, env={})
    try:
        unseal = vault.unseal
        unseal.submit(shares[0])
        with pytest.raises(InvalidInput, match="the 2nd share is the same as the 1st"):
            unseal.submit(shares[0])
        bad = shares[2].split()
        bad[-1] = "zero" if bad[-1] != "zero" else "zoom"
        with pytest.raises(InvalidInput, match="the 2nd share fails its checksum"):
            unseal.submit(" ".join(bad))
        assert unseal.status().progress == 1
        assert unseal.reset().progress == 0
        for share in shares[2:]:
            unseal.submit(share)
        assert not vault.sealed
    finally:
        vault.close()
    assert ("denied", "share 2 refused: invalid_input") in _events(home, "unseal")


def test_shares_of_another_vault_are_refused(
    made: tuple[Path, tuple[str, ...]], tmp_path: Path
) -> None:
    home, _ = made
    other = factory.operator_init(shares=3, threshold=2, home=tmp_path / "other", env={})
    vault = factory.open_vault(home=home, env={})
    try:
        with pytest.raises(InvalidInput, match="the 1st share belongs to another vault"):
            vault.unseal.submit(other.shares[0])
    finally:
        vault.close()


def test_embedded_unseal_starts_a_session_that_reopens_the_vault(
    made: tuple[Path, tuple[str, ...]],
) -> None:
    home, shares = made
    seen: list[int] = []
    token, _ = factory.operator_unseal(
        iter(shares[1:4]), home=home, env={}, progress=lambda s: seen.append(s.progress)
    )
    assert seen == [1, 2, 0]
    vault = factory.open_vault(home=home, env={"SEALBOX_SESSION": token})
    try:
        vault.open_keys()  # the session holds the shamir provider's key
        vault.create_project("payments")
    finally:
        vault.close()
    assert factory.lock(home=home, env={}) == 1
    with pytest.raises(InvalidInput, match="too few shares: 2 of the 3"):
        factory.operator_unseal(iter(shares[:2]), home=home, env={})


def test_operator_init_on_an_existing_vault_adds_recovery_shares(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"SEALBOX_PASSPHRASE": PASSPHRASE}
    factory.init_vault(home=home, method=UnlockMethod.PASSPHRASE, passphrase=PASSPHRASE, env={})
    result = factory.operator_init(shares=3, threshold=2, home=home, env=env)
    assert result.existing and len(result.shares) == 3
    assert _events(home, "kms.add")[0][0] == "allowed"
    with pytest.raises(InvalidInput, match="has unseal shares already"):
        factory.operator_init(shares=3, threshold=2, home=home, env=env)
    # Without the passphrase, the recovery shares open it.
    token, _ = factory.operator_unseal(iter(result.shares[:2]), home=home, env={})
    vault = factory.open_vault(home=home, env={"SEALBOX_SESSION": token})
    try:
        vault.open_keys()
    finally:
        vault.close()


def test_auto_unseal_with_a_key_file_and_recovery_shares(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = factory.operator_init(
        shares=3, threshold=2, auto_unseal="auto", kind="local",
        options={"method": "keyfile"}, home=home, env={},
    )  # fmt: skip
    assert result.auto_unseal == "auto" and len(result.shares) == 3
    vault = factory.open_vault(home=home, env={})
    try:
        assert vault.unseal.status().recovery
        assert vault.unseal.open_unattended()  # the key file opens it, no person needed
        vault.create_project("payments")
    finally:
        vault.close()
    (home / "master.key").unlink()
    vault = factory.open_vault(home=home, env={})
    try:
        assert not vault.unseal.open_unattended()
        for share in result.shares[:2]:
            vault.unseal.submit(share)
        assert vault.list_projects() == ["payments"] and not vault.sealed
    finally:
        vault.close()


def test_seal_needs_admin(made: tuple[Path, tuple[str, ...]]) -> None:
    from sealbox.auth.principal import Principal
    from sealbox.caller import Actor

    home, _ = made
    vault = factory.open_vault(home=home, env={})
    try:
        nobody = Principal("id-x", "nobody", "person", "token", ())
        view = vault.as_principal(nobody, Actor("nobody", "api"))
        with pytest.raises(AccessDenied):
            view.unseal.seal()
    finally:
        vault.close()


def test_a_tampered_shamir_wrapping_fails_the_unseal_as_integrity(
    made: tuple[Path, tuple[str, ...]],
) -> None:
    from sealbox.errors import IntegrityError

    home, shares = made
    with sqlite3.connect(home / "vault.db") as conn:
        (blob,) = conn.execute("SELECT wrapped FROM sb_kek_wrappings").fetchone()
        blob = bytes(blob)
        conn.execute("UPDATE sb_kek_wrappings SET wrapped = ?",
                     (blob[:-1] + bytes([blob[-1] ^ 1]),))  # fmt: skip
    vault = factory.open_vault(home=home, env={})
    try:
        vault.unseal.submit(shares[0])
        vault.unseal.submit(shares[1])
        with pytest.raises(IntegrityError, match="altered"):
            vault.unseal.submit(shares[2])
        assert vault.sealed and vault.unseal.status().progress == 0
    finally:
        vault.close()
    assert ("denied", "3 shares combined: integrity_error") in _events(home, "unseal")


def test_operator_init_with_an_auto_unseal_kms_from_the_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_kms import SWITCH

    from sealbox.cli.main import main
    from sealbox.kms.registry import BUILTIN

    monkeypatch.setitem(BUILTIN, "fake-kms", "tests.fake_kms:FakeKmsKind")
    SWITCH.mode = "up"
    args = ["operator", "init", "--shares", "3", "--threshold", "2",
            "--auto-unseal", "kms", "--kind", "fake-kms"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr()
    assert out.out.count("Recovery share") == 3 and "opens unattended by 'kms'" in out.err
    vault = factory.open_vault()
    try:
        assert vault.unseal.status().providers == (("kms", "fake-kms"), ("recovery", "shamir"))
        vault.open_keys()  # the KMS opens it, no person
    finally:
        vault.close()
    assert main(["operator", "init", "--option", "novalue"]) == 2


def test_a_second_vault_shares_the_unsealed_keys_and_loses_them_at_seal(
    made: tuple[Path, tuple[str, ...]],
) -> None:
    """The scheduler of a server unsealed by shares holds a copy of its KEKs (it cannot
    open them itself), and a seal drops that copy too."""
    home, shares = made
    main = factory.open_vault(home=home, env={})
    helper = factory.open_vault(home=home, env={}, source="scheduler", audit_node="n:scheduler")
    try:
        for share in shares[:3]:
            main.unseal.submit(share)
        main.create_project("payments")
        main.set(REF, SecretValue("v"))
        helper.unseal.share_keys_from(main.unseal)
        assert helper.get(REF, reveal=True).value.reveal() == "v"
        main.unseal.seal()
        assert helper.sealed
        with pytest.raises(Sealed):
            helper.get(REF, reveal=True)
    finally:
        helper.close()
        main.close()
