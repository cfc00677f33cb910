"""The supervisor without a CLI: a fake vault, a real child, and what it reports."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from sealbox.delivery.supervise import Supervision, Supervisor
from sealbox.model import SecretValue

if TYPE_CHECKING:
    from sealbox.api import VaultAPI


class FakeVault:
    """resolve() and versions() of one environment whose values a test can change."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.version = 1

    def resolve(
        self, project: str, env: str, *, only: list[str] | None, purpose: str
    ) -> dict[str, SecretValue]:
        return {k: SecretValue(v) for k, v in self.values.items() if only is None or k in only}

    def versions(self, project: str, env: str) -> dict[str, int]:
        return {k: self.version for k in self.values}


def supervise(vault: FakeVault, command: list[str], options: Supervision) -> tuple[int, list[str]]:
    said: list[str] = []
    status = Supervisor(
        cast("VaultAPI", vault),  # a two-method fake
        "p",
        "e",
        None,
        command,
        options,
        parent_env={"PATH": "/usr/bin:/bin"},
        report=said.append,
    ).run()
    return status, said


def test_mounted_file_exists_while_the_child_runs_and_status_is_the_childs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "secrets.json"
    copy = tmp_path / "copy"
    script = f'cp "$SEALBOX_SECRETS_FILE" {copy}; [ -z "$A" ] || exit 9; exit 3'
    status, said = supervise(
        FakeVault({"A": "one"}),
        ["sh", "-c", script],
        Supervision(mount=str(target), mount_format="json"),
    )
    assert status == 3  # the child's, and A was not injected (no env_too)
    assert json.loads(copy.read_text()) == {"A": "one"}
    assert not target.exists()
    assert said == []
    assert capsys.readouterr().err == ""  # the supervisor never prints


def test_watch_restarts_the_child_with_the_new_values(tmp_path: Path) -> None:
    out = tmp_path / "out"
    vault = FakeVault({"A": "old"})
    script = f'echo "$A" >> {out}; [ "$A" = new ] || sleep 30'

    def change_once_started() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (out.exists() and out.read_text()):
            time.sleep(0.05)
        vault.values, vault.version = {"A": "new"}, 2

    changer = threading.Thread(target=change_once_started)
    changer.start()
    status, said = supervise(vault, ["sh", "-c", script], Supervision(watch=True, grace=5))
    changer.join()
    assert status == 0
    assert out.read_text() == "old\nnew\n"
    assert said == ["secrets changed; restarting the command"]
