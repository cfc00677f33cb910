"""``vault.kms_rotation``: a new KEK wrapped under every provider, every data key re-wrapped
under it (values untouched, byte for byte), resumable, audited; retiring old KEKs; moving
onto another provider. Faults: a provider that cannot wrap, a tampered wrapped data key,
writes during the re-wrap, retiring a KEK still in use."""

from __future__ import annotations

import base64
import sqlite3
import threading
from pathlib import Path

import pytest

from sealbox import factory
from sealbox.errors import Conflict, IntegrityError, InvalidInput, KeyProviderError
from sealbox.kms.local import wrapping_kek
from sealbox.kms.master import UnlockMethod
from sealbox.model import RewrapProgress, SecretRef, SecretValue
from sealbox.vault import Vault

SECRETS = 12
VERSIONS = 2  # per secret


def _ref(i: int) -> SecretRef:
    return SecretRef("app", "dev", f"S{i:03d}")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    vault = factory.open_vault(home=home, env={})
    try:
        vault.create_project("app")
        for i in range(SECRETS):
            for v in range(VERSIONS):
                vault.set(_ref(i), SecretValue(f"value-{i}-{v}"))
    finally:
        vault.close()
    return home


def _open(home: Path) -> Vault:
    return factory.open_vault(home=home, env={})


def _rows(home: Path) -> dict[tuple[int, int], tuple[str, bytes, bytes]]:
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute(
            "SELECT secret_id, version, kek_id, wrapped_key, ciphertext FROM sb_versions"
        ).fetchall()
    return {(r[0], r[1]): (str(r[2]), bytes(r[3]), bytes(r[4])) for r in rows}


def _keks(home: Path) -> list[str]:
    with sqlite3.connect(home / "vault.db") as conn:
        return [str(r[0]) for r in conn.execute("SELECT kek_id FROM sb_keks ORDER BY created_at")]


def _events(home: Path, operation: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute(
            "SELECT outcome, path, reason FROM sb_audit WHERE operation = ? ORDER BY seq",
            (operation,),
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _audit_key_keks(home: Path) -> set[str | None]:
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute(
            "SELECT value FROM sb_settings WHERE key IN ('audit_key', 'audit_signing_key')"
        ).fetchall()
    return {wrapping_kek(base64.b64decode(r[0])) for r in rows}


def _all_read(home: Path) -> None:
    vault = _open(home)
    try:
        for i in range(SECRETS):
            for v in range(VERSIONS):
                got = vault.get(_ref(i), version=v + 1).value.reveal()
                assert got == f"value-{i}-{v}"
        assert vault.audit.verify().findings == []
    finally:
        vault.close()


def test_rotate_rewraps_every_data_key_and_never_touches_a_ciphertext(home: Path) -> None:
    before = _rows(home)
    [old] = _keks(home)
    seen: list[RewrapProgress] = []
    vault = _open(home)
    try:
        done = vault.kms_rotation.rotate(batch=5, progress=seen.append)
        # The same process keeps reading and writing through its ring.
        assert vault.get(_ref(0)).value.reveal() == "value-0-1"
        vault.set(_ref(0), SecretValue("after"))
    finally:
        vault.close()
    assert done.created and done.complete and done.remaining == 0
    assert done.rewrapped == SECRETS * VERSIONS
    assert done.audit_keys == 2
    assert _keks(home) == [old, done.kek_id]  # the old one stays until retired
    after = _rows(home)
    for key, (kek, wrapped, ciphertext) in before.items():
        new_kek, new_wrapped, new_ciphertext = after[key]
        assert new_ciphertext == ciphertext  # values are never re-encrypted
        assert (kek, new_kek) == (old, done.kek_id)
        assert new_wrapped != wrapped
    assert {k for k, _, _ in after.values()} == {done.kek_id}
    assert _audit_key_keks(home) == {done.kek_id}
    assert seen[-1].done == seen[-1].total == SECRETS * VERSIONS
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert _events(home, "kms.rotate")[0][:2] == ("allowed", "sys/kms")
    rewraps = _events(home, "kms.rewrap")
    assert sum(int(r.split()[0]) for _, _, r in rewraps) == SECRETS * VERSIONS
    assert _events(home, "kms.rewrap-audit-keys")[0][0] == "allowed"
    _all_read(home)


def test_a_stopped_rotation_is_resumed_without_another_kek(home: Path) -> None:
    vault = _open(home)
    try:
        stopped = vault.kms_rotation.rotate(batch=4, stop=lambda: True)
    finally:
        vault.close()
    assert not stopped.complete
    assert stopped.rewrapped == 4 and stopped.remaining == SECRETS * VERSIONS - 4
    _all_read(home)  # half re-wrapped: every version opens (the old KEK is kept)
    vault = _open(home)
    try:
        active, left, audit_left = vault.kms_rotation.unfinished()
        assert (active, left, audit_left) == (stopped.kek_id, SECRETS * VERSIONS - 4, 2)
        # A plain rotate refuses: it would make yet another KEK.
        with pytest.raises(Conflict, match="unfinished") as caught:
            vault.kms_rotation.rotate()
        assert caught.value.hint_key == "kms_rotate_resume"
        done = vault.kms_rotation.rotate(resume=True)
    finally:
        vault.close()
    assert (done.kek_id, done.created, done.complete) == (stopped.kek_id, False, True)
    assert done.rewrapped == SECRETS * VERSIONS - 4
    assert len(_keks(home)) == 2
    assert {k for k, _, _ in _rows(home).values()} == {done.kek_id}
    assert _events(home, "kms.rotate")[-1][0] == "error"
    _all_read(home)


def test_a_provider_that_cannot_wrap_stops_the_rotation_before_anything_changes(
    home: Path, tmp_path: Path
) -> None:
    disk = tmp_path / "disk.key"
    vault = _open(home)
    try:
        vault.kms.add("disk", "local", {"method": "keyfile", "key_file": str(disk)})
    finally:
        vault.close()
    disk.unlink()  # the second provider is gone
    before, keks = _rows(home), _keks(home)
    vault = _open(home)
    try:
        with pytest.raises(KeyProviderError, match=r"'disk'.*nothing was changed"):
            vault.kms_rotation.rotate()
    finally:
        vault.close()
    assert _rows(home) == before and _keks(home) == keks
    assert _events(home, "kms.rotate")[-1][0] == "error"
    _all_read(home)


def test_every_provider_wraps_the_new_kek(home: Path, tmp_path: Path) -> None:
    vault = _open(home)
    try:
        vault.kms.add("disk", "local", {"method": "keyfile", "key_file": str(tmp_path / "d.key")})
        done = vault.kms_rotation.rotate()
        status = vault.kms.status()
    finally:
        vault.close()
    assert status.problems == ()
    for provider in status.providers:
        assert done.kek_id in provider.opens
    # Either provider alone opens everything, the new KEK included.
    (tmp_path / "k.key").unlink()
    _all_read(home)


def test_a_tampered_wrapped_data_key_stops_the_rewrap_and_is_named(home: Path) -> None:
    with sqlite3.connect(home / "vault.db") as conn:
        sid = conn.execute("SELECT id FROM sb_secrets WHERE name = 'S005'").fetchone()[0]
        [wrapped] = conn.execute(
            "SELECT wrapped_key FROM sb_versions WHERE secret_id = ? AND version = 2", (sid,)
        ).fetchone()
        bad = bytes(wrapped[:-1]) + bytes([wrapped[-1] ^ 1])
        conn.execute(
            "UPDATE sb_versions SET wrapped_key = ? WHERE secret_id = ? AND version = 2",
            (bad, sid),
        )
    vault = _open(home)
    try:
        with pytest.raises(IntegrityError, match="app/dev/S005 version 2") as caught:
            vault.kms_rotation.rotate(batch=5)
        assert caught.value.hint_key == "kms_rewrap_bad"
        new = vault.kms_rotation.unfinished()[0]
        # Reported again on resume: never silently skipped.
        with pytest.raises(IntegrityError, match="S005 version 2"):
            vault.kms_rotation.rotate(resume=True)
    finally:
        vault.close()
    rows = _rows(home)
    assert rows[(sid, 2)][1] == bad  # the bad one is left as it is
    earlier = [k for (s, v), (k, _, _) in rows.items() if (s, v) < (sid, 2)]
    assert earlier and set(earlier) == {new}  # those before it stay re-wrapped
    assert ("error", "app/dev/S005", "integrity_error") in _events(home, "kms.rewrap")


def test_writes_during_the_rewrap_are_caught_by_the_final_pass(home: Path) -> None:
    writer = _open(home)
    writer.get(_ref(0))  # its ring is open (old KEK active) before the rotation starts
    written: list[int] = []
    enough = threading.Event()
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            # Versions of the FIRST secret: behind the re-wrap's cursor once it moved on.
            written.append(writer.set(_ref(0), SecretValue(f"concurrent-{n}")))
            n += 1
            if n >= 8:
                enough.set()

    thread = threading.Thread(target=write)
    calls = [0]

    def progress(p: RewrapProgress) -> None:
        calls[0] += 1
        if calls[0] == 1:
            thread.start()
            assert enough.wait(30)
            stop.set()
            thread.join(30)

    vault = _open(home)
    try:
        done = vault.kms_rotation.rotate(batch=6, progress=progress)
    finally:
        vault.close()
    writer.close()
    assert done.complete and written
    assert done.rewrapped == SECRETS * VERSIONS + len(written)
    assert {k for k, _, _ in _rows(home).values()} == {done.kek_id}  # none under the old KEK
    vault = _open(home)
    try:
        for n, version in enumerate(written):
            assert vault.get(_ref(0), version=version).value.reveal() == f"concurrent-{n}"
        assert vault.audit.verify().findings == []
    finally:
        vault.close()


def test_retire_old_deletes_the_old_kek_once_nothing_uses_it(home: Path) -> None:
    [old] = _keks(home)
    slept: list[float] = []
    vault = _open(home)
    try:
        done = vault.kms_rotation.rotate(retire_old=True, grace=30.0, sleep=slept.append)
    finally:
        vault.close()
    assert done.retired == (old,)
    assert _keks(home) == [done.kek_id]
    # It waited for running servers to see the new KEK before retiring the old one.
    assert 25.0 < sum(slept) <= 30.0 and max(slept) <= 1.0
    assert _events(home, "kms.retire")[0][:2] == ("allowed", "sys/kms")
    _all_read(home)


def test_a_stop_during_the_grace_wait_retires_nothing(home: Path) -> None:
    [old] = _keks(home)
    slept: list[float] = []
    vault = _open(home)
    try:
        done = vault.kms_rotation.rotate(
            retire_old=True, grace=30.0, sleep=slept.append, stop=lambda: len(slept) >= 3
        )
    finally:
        vault.close()
    assert not done.complete and done.retired == () and len(slept) == 3
    assert old in _keks(home)
    _all_read(home)


def test_retiring_is_refused_while_an_old_kek_is_still_used(home: Path) -> None:
    [old] = _keks(home)
    vault = _open(home)
    try:
        vault.kms_rotation.rotate(batch=3, stop=lambda: True)
        with pytest.raises(Conflict, match=f"{old}.*still wrap"):
            vault.kms_rotation.retire()
        done = vault.kms_rotation.rotate(resume=True, retire_old=True, grace=0)
    finally:
        vault.close()
    assert done.retired == (old,)
    _all_read(home)


def test_a_second_rotation_retires_both_older_keks(home: Path) -> None:
    vault = _open(home)
    try:
        first = vault.kms_rotation.rotate()
        second = vault.kms_rotation.rotate(retire_old=True, grace=0)
    finally:
        vault.close()
    assert len(second.retired) == 2 and first.kek_id in second.retired
    assert _keks(home) == [second.kek_id]
    _all_read(home)


def test_a_bad_batch_size_is_refused() -> None:
    # Checked before the vault is touched.
    from sealbox.kms_rotate import KmsRotation

    service = object.__new__(KmsRotation)
    with pytest.raises(InvalidInput, match="batch"):
        service.rotate(batch=0)


def test_migrate_moves_the_vault_onto_another_provider(home: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk.key"
    vault = _open(home)
    try:
        done = vault.kms_rotation.migrate(
            "disk", kind="local", options={"method": "keyfile", "key_file": str(disk)}
        )
        again = vault.kms_rotation.migrate("disk")  # a rerun: nothing left to do
    finally:
        vault.close()
    assert (done.added, done.removed) == (True, ("local",))
    assert (again.added, again.removed) == (False, ())
    (tmp_path / "k.key").unlink()  # the old provider's key is not needed any more
    _all_read(home)
    assert [e[0] for e in _events(home, "kms.migrate")] == ["allowed", "allowed"]
    assert _events(home, "kms.remove")[0][:2] == ("allowed", "sys/kms/local")


def test_migrate_interrupted_between_its_steps_resumes(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the new provider was added and before the old one was removed (each
    step is its own transaction): the vault opens either way, and a rerun finishes."""
    from sealbox.kms_ops import KmsOps

    options = {"method": "keyfile", "key_file": str(tmp_path / "d.key")}

    def killed(self: KmsOps, name: str) -> None:
        raise KeyboardInterrupt  # stands in for SIGKILL at that instant

    vault = _open(home)
    try:
        with monkeypatch.context() as m:
            m.setattr(KmsOps, "remove", killed)
            with pytest.raises(KeyboardInterrupt):
                vault.kms_rotation.migrate("disk", kind="local", options=options)
        assert [p.name for p in vault.kms.providers()] == ["local", "disk"]
    finally:
        vault.close()
    _all_read(home)  # half-way, every secret still opens
    vault = _open(home)
    try:
        done = vault.kms_rotation.migrate("disk", kind="local", options=options)
    finally:
        vault.close()
    assert (done.added, done.removed) == (False, ("local",))
    (tmp_path / "k.key").unlink()
    _all_read(home)


def test_migrate_keeps_what_it_is_told_to(home: Path, tmp_path: Path) -> None:
    vault = _open(home)
    try:
        vault.kms.add("spare", "local", {"method": "keyfile", "key_file": str(tmp_path / "s.key")})
        done = vault.kms_rotation.migrate(
            "disk",
            kind="local",
            options={"method": "keyfile", "key_file": str(tmp_path / "d.key")},
            keep=["spare"],
        )
        names = [p.name for p in vault.kms.providers()]
        with pytest.raises(InvalidInput, match="nope"):
            vault.kms_rotation.migrate("disk", keep=["nope"])
        with pytest.raises(InvalidInput, match="give its kind"):
            vault.kms_rotation.migrate("elsewhere")
    finally:
        vault.close()
    assert done.removed == ("local",) and done.kept == ("spare",)
    assert names == ["spare", "disk"]


def test_migrate_removes_nothing_before_the_new_provider_is_proven(
    home: Path, tmp_path: Path
) -> None:
    disk = tmp_path / "disk.key"
    vault = _open(home)
    try:
        vault.kms.add("disk", "local", {"method": "keyfile", "key_file": str(disk)})
    finally:
        vault.close()
    disk.write_bytes(b"\x00" * 32)  # its key changed: its wrappings no longer open
    disk.chmod(0o600)
    vault = _open(home)
    try:
        with pytest.raises(KeyProviderError, match=r"'disk' is not proven.*nothing was removed"):
            vault.kms_rotation.migrate("disk")
        assert [p.name for p in vault.kms.providers()] == ["local", "disk"]
    finally:
        vault.close()
    assert _events(home, "kms.migrate")[-1][0] == "error"
    _all_read(home)


def test_an_interrupted_migration_is_finished_by_a_rerun(home: Path, tmp_path: Path) -> None:
    vault = _open(home)
    try:
        # As if killed after the new provider was added, before anything was removed.
        vault.kms.add("disk", "local", {"method": "keyfile", "key_file": str(tmp_path / "d.key")})
        done = vault.kms_rotation.migrate("disk", kind="local")
        with pytest.raises(InvalidInput, match="not 'transit'"):
            vault.kms_rotation.migrate("disk", kind="transit")
    finally:
        vault.close()
    assert (done.added, done.removed) == (False, ("local",))
    _all_read(home)


def test_migrate_moves_per_version_kms_wrappings_before_removing_anything(
    home: Path, tmp_path: Path
) -> None:
    from sealbox.kms.per_version import PerVersionSetting
    from sealbox.model import Classification

    ref = SecretRef("app", "dev", "CRIT")
    vault = _open(home)
    try:
        vault.kms_per_version.configure(PerVersionSetting("local"))
        vault.set(ref, SecretValue("crit-1"))
        vault.update_meta(ref, classification=Classification.CRITICAL)
        vault.set(ref, SecretValue("crit-2"))  # wrapped by the local provider itself
        assert vault.kms_per_version.status().versions == {"kms:local": 1}
        vault.kms_rotation.migrate(
            "disk", kind="local", options={"method": "keyfile", "key_file": str(tmp_path / "d")}
        )
        found = vault.kms_per_version.status()
        assert found.versions == {"kms:disk": 1}
        assert found.setting is not None and found.setting.provider == "disk"
        assert [p.name for p in vault.kms.providers()] == ["disk"]
    finally:
        vault.close()
    (tmp_path / "k.key").unlink()  # the old provider's key is gone: only disk opens it
    fresh = _open(home)
    try:
        assert fresh.get(ref, reveal=True).value.reveal() == "crit-2"
        assert fresh.get(ref, version=1, reveal=True).value.reveal() == "crit-1"
    finally:
        fresh.close()


class _SealedFake:
    """A provider that, like shamir, wraps with what its config holds and unwraps only
    once unsealed (a test double: its "public" key is a plain AES key)."""

    kind = "sealed-fake"

    def __init__(self, name: str, key: bytes, unsealed: bool) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._name, self._box, self._unsealed = name, AESGCM(key), unsealed

    @property
    def name(self) -> str:
        return self._name

    def key_id(self) -> str:
        return "fake public key"

    def wrap(self, key: bytes, context: bytes) -> bytes:
        import os

        nonce = os.urandom(12)
        return nonce + self._box.encrypt(nonce, key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        from sealbox.errors import Sealed

        if not self._unsealed:
            raise Sealed("the fake is sealed")
        return self._box.decrypt(blob[:12], blob[12:], context)

    def check(self) -> None:
        """Nothing to reach."""

    def close(self) -> None:
        """Nothing to release."""


class SealedFakeKind:
    kind = "sealed-fake"

    def interactive(self, config: object) -> bool:
        return True

    def create(self, name: str, options: object, ctx: object) -> object:
        import os

        from sealbox.kms.interface import NewProvider

        key = os.urandom(32)
        return NewProvider({"key": key.hex()}, _SealedFake(name, key, True))

    def open(self, name: str, config: dict[str, str], ctx: object) -> object:
        return _SealedFake(name, bytes.fromhex(config["key"]), False)


def test_a_provider_that_wraps_without_its_shares_takes_part_in_a_rotation(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox.kms import registry

    monkeypatch.setitem(
        registry.BUILTIN, "sealed-fake", "tests.unit.test_kms_rotate:SealedFakeKind"
    )
    vault = _open(home)
    try:
        vault.kms.add("recovery", "sealed-fake", {})
        done = vault.kms_rotation.rotate()
    finally:
        vault.close()
    assert done.complete
    with sqlite3.connect(home / "vault.db") as conn:
        wrapped = {
            str(p): bytes(w)
            for p, w in conn.execute(
                "SELECT provider, wrapped FROM sb_kek_wrappings WHERE kek_id = ?", (done.kek_id,)
            )
        }
        [key] = conn.execute(
            "SELECT config FROM sb_key_providers WHERE name = 'recovery'"
        ).fetchone()
    assert set(wrapped) == {"local", "recovery"}
    import json

    from sealbox.kms.local import kek_context

    # Once "unsealed", the recovery provider opens the new KEK.
    vault = _open(home)
    try:
        vault_id = vault.vault_id
    finally:
        vault.close()
    opened = _SealedFake("recovery", bytes.fromhex(json.loads(key)["key"]), True).unwrap(
        wrapped["recovery"], kek_context(vault_id, done.kek_id)
    )
    assert len(opened) == 32


def test_wrappings_under_a_providers_older_key_are_rewrapped_under_its_newest(
    home: Path, tmp_path: Path
) -> None:
    # As after a Transit key rotation: the stored key_ref is not the provider's key now.
    with sqlite3.connect(home / "vault.db") as conn:
        conn.execute("UPDATE sb_kek_wrappings SET key_ref = 'an older key version'")
        [(old_wrapped,)] = conn.execute("SELECT wrapped FROM sb_kek_wrappings").fetchall()
    vault = _open(home)
    try:
        done = vault.kms_rotation.rotate()
        again = vault.kms_rotation.rotate()  # nothing stale any more
    finally:
        vault.close()
    assert done.providers_rewrapped == ("local",) and again.providers_rewrapped == ()
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute("SELECT wrapped, key_ref FROM sb_kek_wrappings").fetchall()
    assert {str(r[1]) for r in rows} == {"master key (keyfile)"}
    assert old_wrapped not in {bytes(r[0]) for r in rows}
    assert _events(home, "kms.rewrap-provider")[0][:2] == ("allowed", "sys/kms/local")
    _all_read(home)


def test_rotate_and_migrate_need_admin_on_sys_kms_and_a_denial_is_audited(home: Path) -> None:
    from sealbox.auth.policy import Capability, Policy, Rule
    from sealbox.auth.principal import Principal
    from sealbox.caller import Actor
    from sealbox.errors import AccessDenied

    policy = Policy("ops", (Rule("sys/kms", frozenset({Capability.READ})),))
    ops = Principal("id-ops", "ops", "machine", "token", (policy,), token_accessor="a-ops")
    before = _rows(home)
    vault = _open(home)
    try:
        view = vault.as_principal(ops, Actor("ops", "api"))
        with pytest.raises(AccessDenied):
            view.kms_rotation.rotate()
        with pytest.raises(AccessDenied):
            view.kms_rotation.migrate("disk", kind="local")
        with pytest.raises(AccessDenied):
            view.kms_rotation.retire()
        assert view.kms_rotation.unfinished()[1:] == (0, 0)  # reading is allowed
    finally:
        vault.close()
    assert _rows(home) == before and len(_keks(home)) == 1
    assert _events(home, "kms.rotate")[0][0] == "denied"
    assert _events(home, "kms.migrate")[0][0] == "denied"
