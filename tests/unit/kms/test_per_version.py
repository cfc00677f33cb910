"""Per-version KMS wrapping of the most sensitive secrets (``sealbox.kms_per_version``):
the data-key cache's bounds, the write and read paths, faults, the re-wrap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.kms import fake_remote
from tests.unit.kms.fake_remote import REMOTE

from sealbox import factory
from sealbox.errors import Conflict, IntegrityError, InvalidInput, KeyProviderError
from sealbox.kms import registry
from sealbox.kms.local import kek_context
from sealbox.kms.master import UnlockMethod
from sealbox.kms.per_version import DataKeyCache, PerVersionKeys, cache_key, opener_for
from sealbox.kms_per_version import PerVersionSetting, RewrapProgress, rewrap_per_version
from sealbox.model import Classification, SecretRef, SecretValue
from sealbox.storage.rows import KekWrapping, KeyProviderRow
from sealbox.vault import Vault

NOW = "2026-01-01T00:00:00+00:00"
CRIT = SecretRef("payments", "prod", "SIGNING_KEY")
HIGH = SecretRef("payments", "prod", "API_KEY")
PLAIN = SecretRef("payments", "prod", "LOG_LEVEL")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- the cache --------------------------------------------------------------------------------
def _cache(clock: Clock, *, age: float = 60, uses: int = 3, entries: int = 2) -> DataKeyCache:
    return DataKeyCache(max_age=age, max_uses=uses, max_entries=entries, clock=clock)


def test_cache_expires_by_age() -> None:
    clock = Clock()
    cache = _cache(clock, uses=100)
    cache.put(b"k", b"d" * 32)
    clock.t += 59
    assert cache.get(b"k") == b"d" * 32
    clock.t += 1
    assert cache.get(b"k") is None
    assert len(cache) == 0


def test_cache_expires_by_uses_counting_the_fetching_read() -> None:
    cache = _cache(Clock(), uses=3)
    cache.put(b"k", b"d" * 32)  # read 1 fetched it
    assert cache.get(b"k") is not None  # read 2
    assert cache.get(b"k") is not None  # read 3: its last
    assert cache.get(b"k") is None
    assert (cache.hits, cache.misses) == (2, 1)


def test_cache_entries_bound_drops_least_recently_used() -> None:
    cache = _cache(Clock(), uses=100, entries=2)
    cache.put(b"a", b"a" * 32)
    cache.put(b"b", b"b" * 32)
    assert cache.get(b"a") is not None  # b is now the least recently used
    cache.put(b"c", b"c" * 32)
    assert len(cache) == 2
    assert cache.get(b"b") is None
    assert cache.get(b"a") is not None and cache.get(b"c") is not None


def test_cache_clear_and_expiry_zeroise_the_keys() -> None:
    clock = Clock()
    cache = _cache(clock, uses=100)
    cache.put(b"a", b"a" * 32)
    cache.put(b"b", b"b" * 32)
    held = list(cache._entries.values())
    clock.t += 61
    assert cache.get(b"a") is None  # expired: dropped
    assert cache.clear() == 1
    assert all(bytes(e.dek) == b"\x00" * 32 for e in held)


def test_cache_disabled_keeps_nothing() -> None:
    for cache in (_cache(Clock(), age=0), _cache(Clock(), uses=1), _cache(Clock(), entries=0)):
        cache.put(b"k", b"d" * 32)
        assert cache.get(b"k") is None


def test_cache_key_binds_blob_and_context() -> None:
    assert cache_key(b"blob", b"ctx") != cache_key(b"blob", b"ctx2")
    assert cache_key(b"blob", b"ctx") != cache_key(b"blob2", b"ctx")
    assert cache_key(b"ab", b"c") != cache_key(b"a", b"bc")


def test_setting_validates_and_round_trips() -> None:
    s = PerVersionSetting("transit", Classification.HIGH, 5, 10, 20)
    assert PerVersionSetting.parse(s.to_json()) == s
    assert PerVersionSetting.parse("") is None
    assert s.applies(Classification.CRITICAL) and s.applies(Classification.HIGH)
    assert not s.applies(Classification.MEDIUM) and not s.applies(None)
    for bad in (
        {"provider": "t", "min_classification": "secret"},
        {"provider": "t", "cache_max_uses": 0},
        {"provider": "t", "cache_max_age": -1},
        {"provider": "t", "cache_max_entries": "many"},
        {"provider": ""},
        {"provider": "t", "colour": "red"},
    ):
        with pytest.raises(InvalidInput):
            PerVersionSetting.from_dict(bad)


# -- a vault with a remote provider -----------------------------------------------------------
@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vault]:
    monkeypatch.setitem(registry.BUILTIN, fake_remote.KIND, fake_remote.TARGET)
    REMOTE.up = True
    REMOTE.keys.clear()
    home, key_file = tmp_path / "home", tmp_path / "master.key"
    env = {"SEALBOX_KEY_FILE": str(key_file)}
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=key_file, env={})
    v = factory.open_vault(home=home, env=env)
    _add_remote(v, "remote")
    v.create_project("payments")
    for ref, level in ((CRIT, "critical"), (HIGH, "high"), (PLAIN, None)):
        v.set(ref, SecretValue(b"first " + ref.name.encode()))
        if level:
            v.update_meta(ref, classification=Classification(level))
    REMOTE.reset_calls()
    yield v
    v.close()


def _add_remote(v: Vault, name: str) -> None:
    """The fake remote as one of the vault's providers, wrapping every KEK (what
    ``sealbox kms add`` stores)."""
    ring = v._state.key_provider()
    provider = fake_remote.FakeRemoteProvider(name, "k1")
    wrappings = [
        KekWrapping(k, name, provider.wrap(ring.kek(k), kek_context(v.vault_id, k)), "fake", NOW)
        for k in ring.kek_ids  # type: ignore[attr-defined]
    ]
    v._storage.add_key_provider(KeyProviderRow(name, fake_remote.KIND, '{"key": "k1"}', 5, NOW),
                                wrappings)  # fmt: skip


def _kek_id(v: Vault, ref: SecretRef, version: int | None = None) -> str:
    return v._storage.read_version(ref.project, ref.env, ref.name, version).kek_id


def _value(v: Vault, ref: SecretRef, version: int | None = None) -> bytes:
    value = v.get(ref, version=version, reveal=True).value
    assert value is not None
    return value.reveal_bytes()


def _on(v: Vault, **kw: object) -> None:
    v.kms_per_version.configure(PerVersionSetting("remote", **kw))  # type: ignore[arg-type]
    REMOTE.reset_calls()


def test_default_changes_nothing_and_reads_never_call_a_provider(vault: Vault) -> None:
    vault.set(CRIT, SecretValue(b"second"))
    assert not _kek_id(vault, CRIT).startswith("kms:")
    assert _value(vault, CRIT) == b"second"
    assert REMOTE.calls == {"wrap": 0, "unwrap": 0}


def test_critical_version_is_wrapped_by_the_provider_and_reads_hit_the_cache(
    vault: Vault,
) -> None:
    _on(vault)
    version = vault.set(CRIT, SecretValue(b"second"))
    assert _kek_id(vault, CRIT) == "kms:remote"
    row = vault._storage.read_version(CRIT.project, CRIT.env, CRIT.name, version)
    assert row.wrapped_key.startswith(b"kms\x00remote\x00")
    assert REMOTE.calls == {"wrap": 1, "unwrap": 0}  # the KMS call of the write
    assert _value(vault, CRIT) == b"second"
    assert REMOTE.calls["unwrap"] == 1
    for _ in range(5):
        assert _value(vault, CRIT) == b"second"
    assert REMOTE.calls["unwrap"] == 1  # cache hits: no call
    stats = vault.kms_per_version.status()
    assert stats.versions == {"kms:remote": 1}
    assert stats.cache.hits == 5


def test_below_the_threshold_stays_on_the_kek_path(vault: Vault) -> None:
    _on(vault)
    vault.set(HIGH, SecretValue(b"h2"))
    vault.set(PLAIN, SecretValue(b"p2"))
    assert not _kek_id(vault, HIGH).startswith("kms:")
    assert not _kek_id(vault, PLAIN).startswith("kms:")
    assert _value(vault, HIGH) == b"h2"
    assert REMOTE.calls == {"wrap": 0, "unwrap": 0}
    _on(vault, min_classification=Classification.HIGH)
    vault.set(HIGH, SecretValue(b"h3"))
    assert _kek_id(vault, HIGH) == "kms:remote"


def test_cache_expiry_by_age_and_uses_calls_the_provider_again(vault: Vault) -> None:
    clock = Clock()
    keys = PerVersionKeys(vault._storage, opener_for(vault._state.unlocker), clock=clock)
    vault._state._per_version = keys
    _on(vault, cache_max_age=10, cache_max_uses=3)
    vault.set(CRIT, SecretValue(b"second"))
    REMOTE.reset_calls()
    for _ in range(3):
        _value(vault, CRIT)
    assert REMOTE.calls["unwrap"] == 1
    _value(vault, CRIT)  # the entry served 3 reads: the 4th asks the KMS
    assert REMOTE.calls["unwrap"] == 2
    clock.t += 10
    _value(vault, CRIT)  # 10 s old: asks again
    assert REMOTE.calls["unwrap"] == 3


def test_a_process_that_only_reads_follows_the_stored_cache_bounds(vault: Vault) -> None:
    _on(vault, cache_max_age=0)  # no cache
    vault.set(CRIT, SecretValue(b"second"))
    # Another process (a server that never writes): a fresh per-version state.
    vault._state._per_version = PerVersionKeys(vault._storage, opener_for(vault._state.unlocker))
    REMOTE.reset_calls()
    for _ in range(3):
        _value(vault, CRIT)
    assert REMOTE.calls["unwrap"] == 3


def test_entries_bound_applies_across_secrets(vault: Vault) -> None:
    _on(vault, cache_max_entries=1)
    vault.set(CRIT, SecretValue(b"c"))
    other = SecretRef("payments", "prod", "ROOT_CA_KEY")
    vault.set(other, SecretValue(b"o1"))
    vault.update_meta(other, classification=Classification.CRITICAL)
    vault.set(other, SecretValue(b"o2"))
    REMOTE.reset_calls()
    _value(vault, CRIT)
    _value(vault, other)  # pushes CRIT's key out
    _value(vault, CRIT)
    assert REMOTE.calls["unwrap"] == 3
    assert vault.kms_per_version.status().cache.entries == 1


def _tamper(v: Vault, sql: str, params: tuple[object, ...] = ()) -> None:
    with v._storage._tx(write=True) as tx:  # type: ignore[attr-defined]
        tx.execute(sql, params)


def test_tampered_wrapped_key_or_ciphertext_is_an_integrity_error(vault: Vault) -> None:
    _on(vault)
    version = vault.set(CRIT, SecretValue(b"second"))
    assert _value(vault, CRIT) == b"second"  # its key is cached now
    row = vault._storage.read_version(CRIT.project, CRIT.env, CRIT.name, version)
    flipped = bytes([row.ciphertext[0] ^ 1]) + row.ciphertext[1:]
    _tamper(vault, "UPDATE sb_versions SET ciphertext = ? WHERE kek_id = 'kms:remote'", (flipped,))
    with pytest.raises(IntegrityError):
        _value(vault, CRIT)  # the cached key does not open an altered value
    _tamper(vault, "UPDATE sb_versions SET ciphertext = ? WHERE kek_id = 'kms:remote'",
            (row.ciphertext,))  # fmt: skip
    assert _value(vault, CRIT) == b"second"
    blob = row.wrapped_key[:-1] + bytes([row.wrapped_key[-1] ^ 1])
    _tamper(vault, "UPDATE sb_versions SET wrapped_key = ? WHERE kek_id = 'kms:remote'", (blob,))
    with pytest.raises(IntegrityError):
        _value(vault, CRIT)  # another blob: a miss, and the provider refuses it
    _tamper(vault, "UPDATE sb_versions SET wrapped_key = ?, kek_id = 'kms:local'"
            " WHERE kek_id = 'kms:remote'", (row.wrapped_key,))  # fmt: skip
    with pytest.raises(IntegrityError):
        _value(vault, CRIT)  # the row names another provider than its blob


def test_unreachable_provider_fails_that_secret_only(vault: Vault) -> None:
    _on(vault)
    vault.set(CRIT, SecretValue(b"second"))
    REMOTE.up = False
    with pytest.raises(KeyProviderError) as err:
        _value(vault, CRIT)
    assert "payments/prod/SIGNING_KEY version 2" in err.value.message
    assert "remote" in err.value.message
    assert _value(vault, HIGH).startswith(b"first")  # others unaffected
    assert _value(vault, CRIT, 1).startswith(b"first")  # its KEK-wrapped version too
    with pytest.raises(KeyProviderError):
        vault.set(CRIT, SecretValue(b"third"))  # a write needs the KMS call: refused
    assert vault.history(CRIT)[-1].version == 2  # nothing half-written
    REMOTE.up = True
    assert _value(vault, CRIT) == b"second"


def test_turned_off_new_versions_use_keks_old_ones_stay_readable(vault: Vault) -> None:
    _on(vault)
    old = vault.set(CRIT, SecretValue(b"wrapped by remote"))
    vault.kms_per_version.configure(None)
    new = vault.set(CRIT, SecretValue(b"kek again"))
    assert _kek_id(vault, CRIT, old) == "kms:remote"
    assert not _kek_id(vault, CRIT, new).startswith("kms:")
    assert _value(vault, CRIT, old) == b"wrapped by remote"
    assert vault.kms_per_version.status().setting is None


def test_configure_refuses_an_unknown_provider_and_an_unreachable_one(vault: Vault) -> None:
    with pytest.raises(InvalidInput):
        vault.kms_per_version.configure(PerVersionSetting("nope"))
    REMOTE.up = False
    with pytest.raises(KeyProviderError):
        vault.kms_per_version.configure(PerVersionSetting("remote"))
    assert vault.kms_per_version.status().setting is None


def test_configure_is_audited(vault: Vault) -> None:
    _on(vault)
    vault.kms_per_version.configure(None)
    events = [e["reason"] for e in vault.audit.tail(20) if e["operation"] == "kms.per_version"]
    assert events[-2:] == [PerVersionSetting("remote").to_json(), "off"]


def test_lock_empties_the_cache(vault: Vault) -> None:
    _on(vault)
    vault.set(CRIT, SecretValue(b"second"))
    _value(vault, CRIT)
    assert vault.kms_per_version.status().cache.entries == 1
    vault.keys.lock()
    assert vault.kms_per_version.status().cache.entries == 0
    _value(vault, CRIT)
    assert REMOTE.calls["unwrap"] == 2


def test_the_local_provider_can_be_the_per_version_one(vault: Vault) -> None:
    vault.kms_per_version.configure(PerVersionSetting("local"))
    vault.set(CRIT, SecretValue(b"local"))
    assert _kek_id(vault, CRIT) == "kms:local"
    assert _value(vault, CRIT) == b"local"


def test_removing_the_provider_is_refused_while_versions_use_it(vault: Vault) -> None:
    _on(vault)
    vault.set(CRIT, SecretValue(b"second"))
    with pytest.raises(Conflict) as err:
        vault._storage.remove_key_provider("remote")
    assert err.value.hint_key == "kms_per_version_rewrap"


def test_rewrap_moves_versions_resumably_and_points_the_setting_at_the_target(
    vault: Vault,
) -> None:
    _on(vault)
    values = {}
    for i in range(5):
        values[vault.set(CRIT, SecretValue(b"v%d" % i))] = b"v%d" % i
    assert vault.kms_per_version.status().versions == {"kms:remote": 5}

    def crash(p: RewrapProgress) -> None:
        if p.done >= 2:
            raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError):
        vault.kms_per_version.rewrap("local", batch=2, progress=crash)
    assert vault.kms_per_version.status().versions == {"kms:remote": 3, "kms:local": 2}
    assert vault.kms_per_version.status().setting.provider == "local"  # type: ignore[union-attr]
    for version, value in values.items():  # readable midway
        assert _value(vault, CRIT, version) == value
    seen: list[RewrapProgress] = []
    assert rewrap_per_version(vault.kms_per_version, "local", progress=seen.append) == 3
    assert seen[-1] == RewrapProgress(3, 3)
    assert vault.kms_per_version.status().versions == {"kms:local": 5}
    vault._storage.remove_key_provider("remote")  # nothing needs it now
    vault._state.drop_data_keys()
    for version, value in values.items():
        assert _value(vault, CRIT, version) == value
    # Back under the KEKs: no version needs a provider of its own.
    assert vault.kms_per_version.rewrap(None) == 5
    assert vault.kms_per_version.status().versions == {}
    for version, value in values.items():
        assert _value(vault, CRIT, version) == value
