"""Fixtures for driving the CLI in-process: `cli(...)` and no terminal to prompt on."""

from __future__ import annotations

import sys

import pytest
from tests.cli_harness import Cli, Result, fake_stdin

from sealbox.cli.main import main


@pytest.fixture(autouse=True)
def _no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as in CI even when pytest runs in a terminal: there is no tty to prompt on."""
    import sealbox.cli.common
    import sealbox.cli.doctor_cmd
    import sealbox.cli.kms_cmds
    import sealbox.cli.kms_per_version_cmd
    import sealbox.cli.scope
    import sealbox.cli.secret_cmds
    import sealbox.cli.session_cmds
    import sealbox.cli.vault_cmds

    for module in (
        sealbox.cli.scope,
        sealbox.cli.common,
        sealbox.cli.secret_cmds,
        sealbox.cli.session_cmds,
        sealbox.cli.vault_cmds,
        sealbox.cli.doctor_cmd,
        sealbox.cli.kms_cmds,
        sealbox.cli.kms_per_version_cmd,
    ):
        monkeypatch.setattr(module, "tty_prompt", lambda: None, raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``sealbox ARGS`` in-process; ``stdin=`` bytes or text are piped in."""

    def run(*args: str, stdin: bytes | str | None = None) -> Result:
        capsys.readouterr()
        data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
        monkeypatch.setattr(sys, "stdin", fake_stdin(data))
        status = main(list(args))
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return run
