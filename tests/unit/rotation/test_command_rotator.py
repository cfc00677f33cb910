"""The command rotator with real small programs (Python scripts written to tmp): the value
arrives on stdin only, the environment is minimal, failures and timeouts say why, and no
value ever shows in a message or a note."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.rotation_fake import FakeContext

from sealbox.errors import InvalidInput, RotationFailed, UpstreamError
from sealbox.model import SecretRef, SecretValue
from sealbox.rotation.command import CommandRotator, scrub
from sealbox.rotation.registry import rotator

PENDING = SecretValue("pending-Value-4f1c2b9e7d")
CURRENT = SecretValue("current-Value-8a3e5d1f0c")
ADMIN = SecretValue('vendor-admin-"token"-77c1e0a2b4')

PROGRAM = r"""
import json, os, signal, subprocess, sys, time
report, mode = sys.argv[1], sys.argv[2]
value = sys.stdin.buffer.read() if mode != "ignore-stdin" else b""
with open("/proc/self/cmdline", "rb") as f:
    cmdline = f.read()
with open("/proc/self/environ", "rb") as f:
    environ = f.read()
env = dict(e.split("=", 1) for e in environ.decode().split("\0") if e)
with open(report, "w") as f:
    json.dump({
        "stdin": value.decode(),
        "value_in_cmdline": bool(value) and value in cmdline,
        "value_in_environ": bool(value) and value in environ,
        "env": env,
    }, f)
if mode == "fail":
    sys.stderr.write("vendor refused key " + value.decode() + " (HTTP 403)\n")
    sys.exit(3)
if mode == "reformat-fail":
    sys.stderr.write("bad input: " + json.dumps(json.loads(value), indent=1) + "\n")
    sys.exit(1)
if mode == "echo-fail":
    sys.stderr.write("cannot parse input: " + value.decode() + "\n")
    sys.exit(1)
if mode == "fail-stdout":
    sys.stdout.write("debug: " + value.decode() + "\n")
    sys.exit(1)
if mode == "flood":
    for _ in range(20000):
        sys.stderr.write("noise " + value.decode() + " noise\n")
    sys.stderr.write("\x1b[31mfinal error: quota exceeded\x1b[0m\n")
    sys.exit(2)
if mode == "sleep":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(report + ".child", "w") as f:
        f.write(str(child.pid))
    time.sleep(120)
if mode == "close-and-sleep":
    os.close(1)
    os.close(2)
    time.sleep(120)
if mode == "leave-child":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(report + ".child", "w") as f:
        f.write(str(child.pid))
    sys.exit(0)
if mode == "signal":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
if mode == "print":
    sys.stdout.write(sys.argv[3])
if mode == "print-echo":
    sys.stdout.write(sys.argv[3] + "\n")
    sys.stderr.write("minted " + sys.argv[3] + " but the vendor's audit failed\n")
    sys.exit(4)
"""


@pytest.fixture
def program(tmp_path: Path) -> Any:
    script = tmp_path / "vendor.py"
    script.write_text(PROGRAM)
    made = iter(range(1000))

    def command(mode: str, *extra: str) -> tuple[str, Path]:
        report = tmp_path / f"report-{mode}-{next(made)}.json"
        argv = [sys.executable, str(script), str(report), mode, *extra]
        return shlex.join(argv), report

    return command


def read(report: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def no_value_in(text: str, *values: SecretValue) -> bool:
    return all(v.reveal() not in text for v in (values or (PENDING, CURRENT, ADMIN)))


def test_registry_finds_the_command_rotator() -> None:
    assert isinstance(rotator("command"), CommandRotator)


def test_set_gets_the_pending_value_on_stdin_only(
    program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALBOX_TOKEN", "sbx-parent-token-never-inherited")
    monkeypatch.setenv("SEALBOX_PASSPHRASE", "parent passphrase")
    line, report = program("ok")
    ctx = Ctx({"set": line})
    CommandRotator().set(ctx)
    seen = read(report)
    assert seen["stdin"] == PENDING.reveal()
    assert seen["value_in_cmdline"] is False
    assert seen["value_in_environ"] is False
    assert set(seen["env"]) == {
        "PATH",
        "HOME",
        "SEALBOX_SECRET",
        "SEALBOX_ROTATION_ID",
        "SEALBOX_STEP",
    }
    assert seen["env"]["SEALBOX_SECRET"] == "payments/prod/VENDOR_KEY"
    assert seen["env"]["SEALBOX_ROTATION_ID"] == "rot_test000001"
    assert seen["env"]["SEALBOX_STEP"] == "set"
    assert ctx.notes == [f"{Path(sys.executable).name} exited 0"]


def test_test_gets_pending_and_undo_gets_current(program: Any) -> None:
    test_line, test_report = program("ok")
    undo_line, undo_report = program("ok")
    ctx = Ctx({"test": test_line, "undo": undo_line})
    CommandRotator().test(ctx)
    CommandRotator().undo(ctx)
    assert read(test_report)["stdin"] == PENDING.reveal()
    assert read(test_report)["env"]["SEALBOX_STEP"] == "test"
    assert read(undo_report)["stdin"] == CURRENT.reveal()
    assert read(undo_report)["value_in_environ"] is False


def test_undo_of_a_first_rotation_gets_empty_stdin(program: Any) -> None:
    line, report = program("ok")
    CommandRotator().undo(Ctx({"test": line, "undo": line}, current=None))
    assert read(report)["stdin"] == ""


def test_a_step_without_a_program_does_nothing_and_says_so(program: Any) -> None:
    line, report = program("ok")
    ctx = Ctx({"test": line})
    CommandRotator().set(ctx)
    CommandRotator().undo(ctx)
    assert not report.exists()
    assert ctx.notes == ["no program configured", "no program configured"]


def test_a_failing_set_is_an_upstream_error_with_stderr_scrubbed(program: Any) -> None:
    line, _ = program("fail")
    with pytest.raises(UpstreamError) as failed:
        CommandRotator().set(Ctx({"set": line}))
    message = str(failed.value)
    assert "exited with status 3" in message
    assert "vendor refused key *** (HTTP 403)" in message
    assert "payments/prod/VENDOR_KEY" in message
    assert no_value_in(message)


def test_a_failing_test_is_a_rotation_failure(program: Any) -> None:
    line, _ = program("fail")
    with pytest.raises(RotationFailed) as failed:
        CommandRotator().test(Ctx({"test": line}))
    assert "vendor refused key ***" in str(failed.value)
    assert no_value_in(str(failed.value))


def test_a_failing_undo_echoing_current_is_scrubbed(program: Any) -> None:
    line, _ = program("fail")
    with pytest.raises(UpstreamError) as failed:
        CommandRotator().undo(Ctx({"test": line, "undo": line}))
    assert "vendor refused key ***" in str(failed.value)
    assert no_value_in(str(failed.value))


def test_stdout_of_a_failed_program_is_not_kept(program: Any) -> None:
    line, _ = program("fail-stdout")
    with pytest.raises(UpstreamError) as failed:
        CommandRotator().set(Ctx({"set": line}))
    assert "it printed nothing on stderr" in str(failed.value)
    assert "debug" not in str(failed.value)


def test_a_flood_of_stderr_shows_only_its_scrubbed_printable_end(program: Any) -> None:
    line, _ = program("flood")
    with pytest.raises(UpstreamError) as failed:
        CommandRotator().set(Ctx({"set": line}))
    message = str(failed.value)
    assert message.rstrip().endswith("?[31mfinal error: quota exceeded?[0m")
    assert "\x1b" not in message
    assert len(message) < 800
    assert no_value_in(message)


def test_scrub_drops_a_value_cut_by_the_rolling_buffer() -> None:
    """A value whose start fell off the buffer's edge leaves no fragment behind."""
    raw = PENDING.reveal_bytes()
    tail = raw[7:] + b" then the real error"
    assert PENDING.reveal()[7:] in tail.decode()
    scrubbed = scrub(tail, [PENDING], cut=True)
    assert PENDING.reveal()[7:] not in scrubbed
    assert scrubbed.endswith("real error")  # what follows the dropped bytes is kept
    # A multi-line value: each of its lines is scrubbed on its own too.
    pem = SecretValue("-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END KEY-----")
    said = scrub(b"bad line MIIEvQIBADANBgkqhkiG9w0B here", [pem], cut=False)
    assert said == "bad line *** here"


def test_a_program_that_outlives_the_timeout_is_killed_with_its_children(
    program: Any,
) -> None:
    line, report = program("sleep")
    with pytest.raises(UpstreamError, match=r"did not finish within 1 s and was killed"):
        CommandRotator().set(Ctx({"set": line, "timeout": "1"}))
    # Killed with its process group: gone, or a zombie waiting for init to reap it.
    assert gone(int(Path(str(report) + ".child").read_text()))


def gone(pid: int) -> bool:
    """The process ended (or is a zombie waiting for init), polled for up to 5 s."""
    for _ in range(100):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    os.kill(pid, 9)
    return False


def test_a_program_that_closes_its_output_and_hangs_is_killed(program: Any) -> None:
    line, _ = program("close-and-sleep")
    with pytest.raises(UpstreamError, match="did not finish within 1 s"):
        CommandRotator().set(Ctx({"set": line, "timeout": "1"}))


def test_a_child_left_holding_the_output_is_killed_and_reported(program: Any) -> None:
    line, report = program("leave-child")
    with pytest.raises(UpstreamError, match="exited with status 0, but a process it started"):
        CommandRotator().set(Ctx({"set": line, "timeout": "1"}))
    assert gone(int(Path(str(report) + ".child").read_text()))


def test_a_large_value_is_read_whole_from_stdin(program: Any) -> None:
    line, report = program("ok")
    big = SecretValue("v" * 300_000 + "-end")
    CommandRotator().set(Ctx({"set": line}, pending=big))
    assert read(report)["stdin"] == big.reveal()


def test_a_test_that_times_out_is_a_rotation_failure(program: Any) -> None:
    line, _ = program("sleep")
    with pytest.raises(RotationFailed, match="did not finish"):
        CommandRotator().test(Ctx({"test": line, "timeout": "1s"}))


def test_a_program_killed_by_a_signal_says_so(program: Any) -> None:
    line, _ = program("signal")
    with pytest.raises(UpstreamError, match="killed by signal 15"):
        CommandRotator().set(Ctx({"set": line}))


def test_a_missing_program_cannot_be_started(tmp_path: Path) -> None:
    with pytest.raises(UpstreamError, match=r"cannot be started .*No such file"):
        CommandRotator().set(Ctx({"set": str(tmp_path / "no-such-program")}))
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(RotationFailed, match=r"cannot be started .*Permission denied"):
        CommandRotator().test(Ctx({"test": str(script)}))


def test_a_program_that_ignores_a_large_stdin_is_fine(program: Any) -> None:
    line, report = program("ignore-stdin")
    big = SecretValue("k" * 300_000)
    CommandRotator().set(Ctx({"set": line}, pending=big))
    assert read(report)["stdin"] == ""


def test_create_program_prints_the_value(program: Any) -> None:
    line, _ = program("print-echo", "vendor-minted-key-0001")
    set_line, _ = program("ok")
    with pytest.raises(UpstreamError) as failed:
        CommandRotator().create(Ctx({"create": line, "set": set_line}, pending=None))
    # The create program echoed the key it minted on stderr: scrubbed too.
    assert "minted ***" in str(failed.value)
    assert "vendor-minted-key-0001" not in str(failed.value)

    for printed in ("vendor-minted-key-0001", "vendor-minted-key-0001\n"):
        line, _ = program("print", printed)
        value = CommandRotator().create(Ctx({"create": line, "set": set_line}, pending=None))
        assert value.reveal() == "vendor-minted-key-0001"


def test_create_program_printing_nothing_fails(program: Any) -> None:
    line, _ = program("print", "\n")
    set_line, _ = program("ok")
    with pytest.raises(UpstreamError, match="printed no value"):
        CommandRotator().create(Ctx({"create": line, "set": set_line}, pending=None))


def test_create_without_a_program_follows_the_random_policy(program: Any) -> None:
    set_line, _ = program("ok")
    options = {"set": set_line, "length": "40", "alphabet": "hex", "prefix": "vk_"}
    CommandRotator().check(options)
    value = CommandRotator().create(Ctx(options, pending=None)).reveal()
    assert value.startswith("vk_") and len(value) == 43
    assert set(value[3:]) <= set("0123456789abcdef")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs a set or a test program"),
        ({"create": "/bin/true"}, "needs a set or a test program"),
        ({"set": "'unbalanced"}, "not a valid command line"),
        ({"set": "   "}, "names no program"),
        ({"set": "/bin/true", "retries": "3"}, "has no option retries"),
        ({"set": "/bin/true", "timeout": "0"}, "timeout"),
        ({"set": "/bin/true", "timeout": "2h"}, "timeout"),
        ({"set": "/bin/true", "timeout": "soon"}, "timeout"),
        ({"set": "/bin/true", "create": "/bin/echo", "length": "40"}, "exclude each other"),
        ({"set": "/bin/true", "length": "8"}, "length"),
    ],
)
def test_bad_options_are_refused_at_configure_time(options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        CommandRotator().check(options)


def test_json_input_carries_the_values_and_the_admin_secret(program: Any) -> None:
    line, report = program("ok")
    ctx = Ctx({"set": line, "input": "json", "admin": "payments/prod/VENDOR_ADMIN"})
    CommandRotator().check(ctx.options)
    CommandRotator().set(ctx)
    seen = read(report)
    assert json.loads(seen["stdin"]) == {
        "step": "set",
        "pending": PENDING.reveal(),
        "current": CURRENT.reveal(),
        "admin": ADMIN.reveal(),
    }
    assert ctx.read == ["payments/prod/VENDOR_ADMIN"]  # read through the context: audited
    assert seen["value_in_cmdline"] is False and seen["value_in_environ"] is False
    assert "vendor-admin" not in json.dumps(seen["env"])


def test_json_input_of_a_create_program_has_no_pending(program: Any) -> None:
    line, report = program("print", "minted-by-vendor-0042")
    set_line, _ = program("ok")
    ctx = Ctx({"create": line, "set": set_line, "input": "json"}, pending=None)
    assert CommandRotator().create(ctx).reveal() == "minted-by-vendor-0042"
    assert json.loads(read(report)["stdin"]) == {
        "step": "create",
        "pending": None,
        "current": CURRENT.reveal(),
        "admin": None,
    }


def test_a_program_echoing_its_json_input_shows_no_value(program: Any) -> None:
    line, _ = program("echo-fail")
    ctx = Ctx({"set": line, "input": "json", "admin": "payments/prod/VENDOR_ADMIN"})
    with pytest.raises(UpstreamError) as failed:
        CommandRotator().set(ctx)
    assert str(failed.value).endswith("cannot parse input: ***")
    # Echoed in another layout: each value (the admin token JSON-escaped) is scrubbed.
    line, _ = program("reformat-fail")
    ctx = Ctx({"set": line, "input": "json", "admin": "payments/prod/VENDOR_ADMIN"})
    with pytest.raises(UpstreamError) as failed:
        CommandRotator().set(ctx)
    message = str(failed.value)
    assert '"step": "set"' in message and '"pending": "***"' in message
    assert '"admin": "***"' in message
    assert no_value_in(message)
    assert "77c1e0a2b4" not in message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"set": "/bin/true", "input": "xml"}, "must be value or json"),
        ({"set": "/bin/true", "admin": "payments/prod/ADMIN"}, "needs input=json"),
        ({"set": "/bin/true", "input": "json", "admin": "ADMIN"}, "invalid secret path"),
    ],
)
def test_bad_input_options_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        CommandRotator().check(options)


def test_the_webhook_rotator_runs_a_set_program_to_tell_a_receiver(program: Any) -> None:
    from sealbox.rotation.webhook import WebhookRotator

    line, report = program("ok")
    webhook = WebhookRotator()
    new = webhook.create(Ctx({}))
    ctx = Ctx({"set": line, "undo": line}, pending=new)
    webhook.check(ctx.options)
    webhook.set(ctx)
    assert read(report)["stdin"] == new.reveal()
    assert read(report)["value_in_environ"] is False
    failing, _ = program("fail")
    with pytest.raises(UpstreamError) as failed:
        webhook.set(Ctx({"set": failing}, pending=new))
    assert new.reveal() not in str(failed.value)


def Ctx(
    options: Mapping[str, str],
    pending: SecretValue | None = PENDING,
    current: SecretValue | None = CURRENT,
) -> FakeContext:
    return FakeContext(
        options,
        pending=pending,
        current=current,
        secrets={
            p: ADMIN for p in ("payments/prod/VENDOR_ADMIN", "payments/prod/VENDOR_ADMIN_TOKEN")
        },
        ref=SecretRef("payments", "prod", "VENDOR_KEY"),
    )
