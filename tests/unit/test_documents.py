"""The one data model (documents.py): a KV document is a folder's secrets, with Vault's
per-document versions, in both directions and byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sealbox import factory
from sealbox.auth.policy import Capability, Policy, Rule
from sealbox.auth.principal import Principal
from sealbox.caller import Actor
from sealbox.documents import CAS_MISMATCH, CAS_REQUIRED, DocSettings, folder_of, kv_path_of
from sealbox.errors import AccessDenied, InvalidInput, NotFound
from sealbox.kms.master import UnlockMethod
from sealbox.model import SecretRef, SecretValue, as_variables
from sealbox.vault import Vault


@pytest.fixture
def vault(home: Path, tmp_path: Path) -> Iterator[Vault]:
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    v = factory.open_vault(home=home)
    yield v
    v.close()


def test_kv_paths_map_to_folders_and_back() -> None:
    cases = {
        "myapp": ("myapp", "."),
        "myapp/config": ("myapp", "config"),
        "MyApp/prod/db/creds": ("MyApp", "prod:db:creds"),
        "api.example.com/Prod": ("api.example.com", "Prod"),
    }
    for path, folder in cases.items():
        assert folder_of(path) == folder
        assert kv_path_of(*folder) == path
    for bad in ("", "my app", "a/b c", "a/:x", "a/.", "a/..", "-a"):
        with pytest.raises(InvalidInput):
            folder_of(bad)


def test_a_document_written_through_kv_is_the_folders_secrets(vault: Vault) -> None:
    docs = vault.documents
    state = docs.write("myapp", "prod:db", {"user": "app", "api-key": "k\n", "port": 5432})
    assert state.version == 1
    # The CLI and sealbox run see plain values, byte for byte, under the keys' names.
    assert vault.get(SecretRef.parse("myapp/prod/db/user")).value.reveal() == "app"
    assert vault.get(SecretRef("myapp", "prod:db", "api-key")).value.reveal_bytes() == b"k\n"
    assert vault.get(SecretRef("myapp", "prod:db", "port")).value.reveal() == "5432"
    env = as_variables(vault.resolve("myapp", "prod:db"))
    assert sorted(env) == ["api_key", "port", "user"]
    # and KV reads the JSON types back.
    read = docs.read("myapp", "prod:db")
    assert read.data == {"user": "app", "api-key": "k\n", "port": 5432}
    assert read.version.created_at == state.created_at


def test_native_writes_read_back_through_kv_as_new_versions(vault: Vault) -> None:
    vault.create_project("payments")
    vault.set(SecretRef("payments", "prod", "DB_URL"), SecretValue("postgres://x"))
    read = vault.documents.read("payments", "prod")
    assert (read.data, read.version.version) == ({"DB_URL": "postgres://x"}, 1)
    vault.set(SecretRef("payments", "prod", "TOKEN"), SecretValue(b"\xff\x00raw"))
    read = vault.documents.read("payments", "prod")
    assert read.version.version == 2 and read.data is not None
    assert read.data["TOKEN"] == "\ufffd\x00raw" and read.warnings  # JSON has no bytes
    assert vault.documents.read("payments", "prod", 1).data == {"DB_URL": "postgres://x"}
    # Reading again changes nothing.
    assert vault.documents.metadata("payments", "prod").current_version == 2


def test_versions_keys_dropped_and_unchanged_values(vault: Vault) -> None:
    docs = vault.documents
    docs.write("app", "prod", {"A": "1", "B": "2"})
    docs.write("app", "prod", {"A": "1", "C": "3"})
    assert docs.read("app", "prod", 1).data == {"A": "1", "B": "2"}
    assert docs.read("app", "prod").data == {"A": "1", "C": "3"}
    # A unchanged: one secret version; B dropped: deleted, not destroyed.
    assert [v.version for v in vault.history(SecretRef("app", "prod", "A"))] == [1]
    assert vault.info(SecretRef("app", "prod", "B")).deleted_at is not None
    with pytest.raises(NotFound):
        docs.read("app", "prod", 7)


def test_check_and_set(vault: Vault) -> None:
    docs = vault.documents
    docs.write("app", "dev", {"A": "1"}, cas=0)
    with pytest.raises(InvalidInput, match=CAS_MISMATCH):
        docs.write("app", "dev", {"A": "2"}, cas=0)
    docs.write("app", "dev", {"A": "2"}, cas=1)
    docs.write_metadata("app", "dev", cas_required=True)
    with pytest.raises(InvalidInput, match=CAS_REQUIRED):
        docs.write("app", "dev", {"A": "3"})
    docs.write_metadata("app", "dev", cas_required=False)
    vault.documents.set_config(DocSettings(cas_required=True))
    with pytest.raises(InvalidInput, match=CAS_REQUIRED):
        docs.write("app", "dev", {"A": "3"})


def test_delete_undelete_and_destroy_per_version(vault: Vault) -> None:
    docs = vault.documents
    for n in range(1, 4):
        docs.write("app", "prod", {"A": str(n)})
    docs.delete_versions("app", "prod")  # the latest
    assert docs.read("app", "prod").data is None
    assert docs.read("app", "prod", 2).data == {"A": "2"}  # older versions stay readable
    with pytest.raises(NotFound):
        vault.get(SecretRef("app", "prod", "A"))  # and sealbox run no longer delivers it
    docs.undelete_versions("app", "prod", [3])
    assert vault.get(SecretRef("app", "prod", "A")).value.reveal() == "3"
    docs.destroy_versions("app", "prod", [1])
    meta = docs.metadata("app", "prod")
    assert [(v.version, v.destroyed) for v in meta.versions] == [(1, True), (2, False), (3, False)]
    assert docs.read("app", "prod", 1).data is None
    # Its secret version is gone too; the others are not.
    assert [v.version for v in vault.history(SecretRef("app", "prod", "A"))] == [2, 3]
    # Destroying every version keeps the metadata (Vault does).
    docs.destroy_versions("app", "prod", [2, 3])
    assert docs.metadata("app", "prod").current_version == 3


def test_max_versions_prunes_the_oldest(vault: Vault) -> None:
    docs = vault.documents
    docs.write_metadata(
        "app", "prod", max_versions=2, custom_metadata={"owner": "team-a", "k": "v"}
    )
    for n in range(1, 5):
        docs.write("app", "prod", {"A": str(n)})
    meta = docs.metadata("app", "prod")
    assert (meta.oldest_version, meta.current_version) == (3, 4)
    assert [v.version for v in meta.versions] == [3, 4]
    assert meta.custom_metadata == {"owner": "team-a", "k": "v"}
    # owner is an inventory field: it reaches the secret; "k" stays a label.
    assert vault.info(SecretRef("app", "prod", "A")).meta.owner == "team-a"
    assert [v.version for v in vault.history(SecretRef("app", "prod", "A"))] == [3, 4]


def test_metadata_before_data_and_listing(vault: Vault) -> None:
    docs = vault.documents
    docs.write_metadata("team", "svc:api", custom_metadata={"managed-by": "external-secrets"})
    assert docs.metadata("team", "svc:api").current_version == 0
    docs.write("team", "svc:api", {"X": "1"})
    docs.write("team", "svc", {"Y": "1"})
    docs.write("team", ".", {"Z": "1"})
    vault.create_project("empty")  # no document: not listed (a listed folder always lists)
    assert docs.list_keys("") == ["team", "team/"]
    assert docs.list_keys("team") == ["svc", "svc/"]
    assert docs.list_keys("team/svc") == ["api"]
    docs.delete_document("team", "svc:api")
    with pytest.raises(NotFound):
        docs.metadata("team", "svc:api")
    with pytest.raises(NotFound):
        vault.get(SecretRef("team", "svc:api", "X"))


def test_a_reader_needs_read_on_the_folder(vault: Vault) -> None:
    vault.documents.write("payments", "prod", {"A": "1"})
    policy = Policy("ro", (Rule("payments/dev/*", frozenset({Capability.READ})),))
    who = Principal("id-x", "x", "machine", "token", (policy,), token_accessor="a-x")
    view = vault.as_principal(who, Actor("x", "api"))
    with pytest.raises(AccessDenied):
        view.documents.read("payments", "prod")
    with pytest.raises(AccessDenied):
        view.documents.write("payments", "prod", {"A": "2"})
