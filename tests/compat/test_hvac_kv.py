"""Every hvac ``secrets.kv.v2`` method against sealbox and a real OpenBao dev server in the
same run: the same status (or the same exception), the same keys, the same value types."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from typing import Any

import hvac.exceptions
import pytest
from tests.compat.conftest import Peer, same_shape

pytestmark = pytest.mark.integration

_paths = itertools.count()


def fresh() -> str:
    return f"kvcompat/app{next(_paths)}/db"


def both(sealbox: Peer, openbao: Peer, call: Callable[[Any], Any]) -> tuple[Any, Any]:
    """``call(kv)`` on each server; an exception is compared by its type."""
    out = []
    for peer in (sealbox, openbao):
        try:
            out.append(call(peer.client().secrets.kv.v2))
        except hvac.exceptions.VaultError as exc:
            out.append(type(exc))
    ours, theirs = out
    if isinstance(theirs, type) or isinstance(ours, type):
        assert ours == theirs, f"sealbox: {ours!r}, OpenBao: {theirs!r}"
    return ours, theirs


def test_write_read_and_versions(sealbox: Peer, openbao: Peer) -> None:
    path = fresh()
    fields = {"user": "app", "port": 5432, "tags": ["a"], "nested": {"k": True}}
    ours, theirs = both(sealbox, openbao, lambda kv: kv.create_or_update_secret(path, fields))
    same_shape(ours, theirs)
    assert ours["data"]["version"] == theirs["data"]["version"] == 1
    both(sealbox, openbao, lambda kv: kv.create_or_update_secret(path, {"user": "b"}))
    for version in (None, 1):
        ours, theirs = both(
            sealbox,
            openbao,
            lambda kv, v=version: kv.read_secret_version(
                path, version=v, raise_on_deleted_version=True
            ),
        )
        same_shape(ours, theirs)
        assert ours["data"] == theirs["data"] | {"metadata": ours["data"]["metadata"]}
        assert ours["data"]["metadata"]["version"] == theirs["data"]["metadata"]["version"]
    both(
        sealbox,
        openbao,
        lambda kv: kv.read_secret_version(path, version=9, raise_on_deleted_version=True),
    )


def test_check_and_set_errors(sealbox: Peer, openbao: Peer) -> None:
    path = fresh()
    both(sealbox, openbao, lambda kv: kv.create_or_update_secret(path, {"a": "1"}, cas=0))
    ours, _ = both(sealbox, openbao, lambda kv: kv.create_or_update_secret(path, {"a": "2"}, cas=0))
    assert ours is hvac.exceptions.InvalidRequest
    both(sealbox, openbao, lambda kv: kv.update_metadata(path, cas_required=True))
    both(sealbox, openbao, lambda kv: kv.create_or_update_secret(path, {"a": "3"}))
    ours, _ = both(sealbox, openbao, lambda kv: kv.create_or_update_secret(path, {"a": "3"}, cas=1))
    assert ours["data"]["version"] == 2


def test_patch_metadata_and_list(sealbox: Peer, openbao: Peer) -> None:
    path = fresh()
    both(sealbox, openbao, lambda kv: kv.create_or_update_secret(path, {"a": "1", "b": "2"}))
    ours, theirs = both(sealbox, openbao, lambda kv: kv.patch(path, {"b": "3"}))
    same_shape(ours, theirs)
    both(
        sealbox,
        openbao,
        lambda kv: kv.update_metadata(
            path,
            max_versions=7,
            delete_version_after="3h",
            custom_metadata={"owner": "team-a", "managed-by": "x"},
        ),
    )
    ours, theirs = both(sealbox, openbao, lambda kv: kv.read_secret_metadata(path))
    same_shape(ours, theirs)
    for key in ("max_versions", "delete_version_after", "custom_metadata", "current_version"):
        assert ours["data"][key] == theirs["data"][key], key
    ours, theirs = both(
        sealbox, openbao, lambda kv: kv.read_secret_version(path, raise_on_deleted_version=True)
    )
    assert ours["data"]["metadata"]["custom_metadata"] == {"owner": "team-a", "managed-by": "x"}
    same_shape(ours, theirs)
    prefix = path.rsplit("/", 1)[0]
    ours, theirs = both(sealbox, openbao, lambda kv: kv.list_secrets(prefix))
    same_shape(ours, theirs)
    assert ours["data"]["keys"] == theirs["data"]["keys"] == ["db"]
    both(sealbox, openbao, lambda kv: kv.list_secrets(prefix + "/none"))


def test_delete_undelete_destroy_per_version(sealbox: Peer, openbao: Peer) -> None:
    path = fresh()
    for n in (1, 2, 3):
        both(sealbox, openbao, lambda kv, n=n: kv.create_or_update_secret(path, {"v": str(n)}))
    both(sealbox, openbao, lambda kv: kv.delete_latest_version_of_secret(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = both(
            sealbox,
            openbao,
            lambda kv: kv.read_secret_version(path, raise_on_deleted_version=False),
        )
    same_shape(ours, theirs)
    both(sealbox, openbao, lambda kv: kv.read_secret_version(path, raise_on_deleted_version=True))
    ours, theirs = both(
        sealbox,
        openbao,
        lambda kv: kv.read_secret_version(path, version=2, raise_on_deleted_version=True),
    )
    assert ours["data"]["data"] == theirs["data"]["data"] == {"v": "2"}
    both(sealbox, openbao, lambda kv: kv.undelete_secret_versions(path, [3]))
    both(sealbox, openbao, lambda kv: kv.delete_secret_versions(path, [1]))
    both(sealbox, openbao, lambda kv: kv.destroy_secret_versions(path, [2]))
    ours, theirs = both(sealbox, openbao, lambda kv: kv.read_secret_metadata(path))
    same_shape(ours, theirs)

    def states(meta: Any) -> list[tuple[bool, bool]]:
        versions = meta["data"]["versions"]
        return [(versions[k]["deletion_time"] != "", versions[k]["destroyed"]) for k in "123"]

    assert states(ours) == states(theirs) == [(True, False), (False, True), (False, False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = both(
            sealbox,
            openbao,
            lambda kv: kv.read_secret_version(path, version=2, raise_on_deleted_version=False),
        )
    assert ours is theirs is hvac.exceptions.InvalidPath  # a destroyed version: hvac raises
    r = sealbox.raw("GET", f"/v1/secret/data/{path}?version=2")
    t = openbao.raw("GET", f"/v1/secret/data/{path}?version=2")
    assert r.status_code == t.status_code == 404
    same_shape(r.json(), t.json())
    assert r.json()["data"]["metadata"]["destroyed"] is True
    both(sealbox, openbao, lambda kv: kv.delete_metadata_and_all_versions(path))
    both(sealbox, openbao, lambda kv: kv.read_secret_metadata(path))


def test_mount_configuration(sealbox: Peer, openbao: Peer) -> None:
    ours, theirs = both(sealbox, openbao, lambda kv: kv.read_configuration())
    same_shape(ours, theirs)
    both(sealbox, openbao, lambda kv: kv.configure(max_versions=4, cas_required=False))
    ours, theirs = both(sealbox, openbao, lambda kv: kv.read_configuration())
    assert ours["data"] == theirs["data"]
    both(sealbox, openbao, lambda kv: kv.configure(max_versions=0))
