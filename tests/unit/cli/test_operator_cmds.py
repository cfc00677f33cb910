"""`sealbox operator init | unseal | status | seal` on the embedded vault."""

from __future__ import annotations

import pytest
from tests.cli_harness import fake_stdin

from sealbox.cli.main import main


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_init_prints_the_shares_once_and_unseal_takes_them_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sealbox.cli.operator_cmds.tty_prompt", lambda: None)
    status, out, err = _run(capsys, ["operator", "init", "--shares", "3", "--threshold", "2"])
    assert status == 0, err
    shares = [line.split(": ", 1)[1] for line in out.splitlines()]
    assert len(shares) == 3 and "shown once" in err
    assert _run(capsys, ["operator", "status"])[0] == 2  # sealed, as `bao status`
    # A locked vault's commands say how to unseal it.
    status, _, err = _run(capsys, ["secret", "get", "X", "-p", "p", "-e", "dev"])
    assert status != 0

    monkeypatch.setattr("sys.stdin", fake_stdin(f"{shares[2]}\n{shares[0]}\n".encode()))
    status, out, err = _run(capsys, ["operator", "unseal", "--for", "1h"])
    assert status == 0, err
    assert "Unseal progress: 1/2" in err and "Unsealed." in err
    token = out.strip().removeprefix("export SEALBOX_SESSION=")
    monkeypatch.setenv("SEALBOX_SESSION", token)
    assert _run(capsys, ["project", "create", "payments"])[0] == 0
    assert _run(capsys, ["operator", "status"])[0] == 0
    status, _, err = _run(capsys, ["operator", "seal"])
    assert status == 0 and "1 unlock session(s) ended" in err


def test_a_bad_share_is_an_input_error_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sealbox.cli.operator_cmds.tty_prompt", lambda: None)
    status, out, _ = _run(capsys, ["operator", "init", "--shares", "3", "--threshold", "2"])
    first = out.splitlines()[0].split(": ", 1)[1]
    monkeypatch.setattr("sys.stdin", fake_stdin(f"{first}\n{first}\n".encode()))
    status, _, err = _run(capsys, ["operator", "unseal"])
    assert status == 2 and "the 2nd share is the same as the 1st" in err
    assert first.split()[4] not in err


def test_threshold_one_of_several_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, ["operator", "init", "--shares", "3", "--threshold", "1"])
    assert status == 2 and "whole key" in err
