"""Shared fixtures: an isolated SEALBOX_HOME per test, and quick vault set-up."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own SEALBOX_HOME and no inherited sealbox variables."""
    for key in list(os.environ):
        if key.startswith("SEALBOX_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SEALBOX_HOME", str(tmp_path / "home"))
    # Fast Argon2 parameters would weaken the product; tests pay the real cost sparingly.
    yield


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def keyfile_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An initialised key-file vault with project `payments`; returns SEALBOX_HOME."""
    from sealbox.cli.main import main

    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    assert main(["project", "create", "payments"]) == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEALBOX_PROJECT", "payments")
    monkeypatch.setenv("SEALBOX_ENV", "dev")
    return tmp_path / "home"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the standing suites covered (see tests/standing_summary.py)."""
    from tests.standing_summary import lines

    summary = lines()
    if summary:
        terminalreporter.section("standing suites")
        for line in summary:
            terminalreporter.write_line(line)
