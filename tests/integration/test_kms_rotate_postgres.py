"""A KEK rotation on a PostgreSQL vault while another process-like writer keeps writing
(a second Vault on the same database: as a second server would)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.pg import throwaway_database

from sealbox import factory
from sealbox.kms.master import UnlockMethod
from sealbox.model import RewrapProgress, SecretRef, SecretValue

pytestmark = pytest.mark.integration


def _ref(i: int) -> SecretRef:
    return SecretRef("app", "prod", f"S{i:03d}")


def test_rotation_on_postgres_with_a_concurrent_writer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with throwaway_database() as dsn:
        factory.init_vault(
            home=home, storage=dsn, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key",
            env={},
        )  # fmt: skip
        vault = factory.open_vault(home=home, env={})
        vault.create_project("app")
        for i in range(60):
            vault.set(_ref(i), SecretValue(f"value-{i}"))
        writer = factory.open_vault(home=home, env={})
        writer.get(_ref(0))  # its ring is open under the old KEK
        written: list[tuple[int, int]] = []
        enough, stop = threading.Event(), threading.Event()

        def write() -> None:
            n = 0
            while not stop.is_set():
                i = n % 3  # secrets behind the re-wrap's cursor
                written.append((i, writer.set(_ref(i), SecretValue(f"late-{n}"))))
                n += 1
                if n >= 10:
                    enough.set()

        thread = threading.Thread(target=write)

        def progress(p: RewrapProgress) -> None:
            if not thread.is_alive() and not stop.is_set():
                thread.start()
                assert enough.wait(30)
                stop.set()
                thread.join(30)

        try:
            done = vault.kms_rotation.rotate(batch=20, progress=progress, retire_old=True, grace=0)
            assert done.complete and len(done.retired) == 1
            assert done.rewrapped == 60 + len(written)
            keks = vault.kms.keks()
            assert [(k.kek_id, k.versions) for k in keks] == [(done.kek_id, 60 + len(written))]
            for i in range(60):
                assert vault.get(_ref(i), version=1).value.reveal() == f"value-{i}"
            for n, (i, version) in enumerate(written):
                assert vault.get(_ref(i), version=version).value.reveal() == f"late-{n}"
            assert vault.audit.verify().findings == []
        finally:
            writer.close()
            vault.close()
