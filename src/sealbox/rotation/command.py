"""The ``command`` rotator: your own programs apply and test a new value (a third-party API
that has no rotator of its own: push the key to its dashboard API, call it with the key).

Options (not secret; each program is a command line, split like a shell would split it
and run **without** a shell):

- ``set`` — makes the upstream system accept the pending value;
- ``test`` — proves the pending value works (exit 0) or not (any other status);
- ``undo`` — makes the upstream system accept the current value again (rehearsals, cancels);
- ``create`` — prints the new value on stdout (a vendor that mints its own keys); without
  it, the value is random by ``length``, ``alphabet`` and ``prefix`` as for the ``random``
  rotator;
- ``timeout`` — seconds (or ``30s``, ``2m``) each program may run, 1 to 3600, default 60;
  past it the program and everything it started are killed;
- ``input`` — ``value`` (the default: stdin is the value alone) or ``json`` (stdin is one
  JSON object ``{"step", "pending", "current", "admin"}``, values as text or null);
- ``admin`` — another secret's path (``payments/prod/VENDOR_ADMIN_TOKEN``): the credential
  the program uses on the vendor's API, read as the rotation's caller (authorised and
  audited) and given in the JSON input only (so it needs ``input=json``).

A program gets the value on **stdin only** (the pending value for set and test, the
current one for undo — empty when the secret had none), never in its arguments or
environment, where other local users and crash reporters can read it. Its environment is
``PATH``, ``HOME``, ``SEALBOX_SECRET`` (the secret's ``project/env/NAME``),
``SEALBOX_ROTATION_ID`` and ``SEALBOX_STEP``: nothing else of sealbox's own (a token, a
passphrase) leaks into it. A program that fails makes the step fail with the end of its
stderr in the message, the values scrubbed out of it; its stdout is never kept (except
create's, which is the value) and nothing it prints is logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sealbox.errors import InvalidInput, RotationFailed, SealboxError, UpstreamError
from sealbox.model import MAX_VALUE_BYTES, SecretRef, SecretValue, parse_duration
from sealbox.rotation.interface import RotationContext
from sealbox.rotation.random import RandomRotator, random_value

PROGRAM_STEPS = ("create", "set", "test", "undo")
POLICY_OPTIONS = frozenset({"length", "alphabet", "prefix"})
#: Options about running programs, shared with other rotators that run them (webhook).
RUN_OPTIONS = frozenset({"timeout", "input", "admin"})
INPUTS = ("value", "json")
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0
#: Characters of a failed program's stderr shown in the error (its end: where errors are).
STDERR_SHOWN = 400
# NOTE: stderr is read into a rolling buffer of this many bytes (plus the longest value, so
# a value cut by the rolling edge can be dropped whole): a chatty program cannot fill memory.
STDERR_KEPT = 8192
#: Seconds to wait for the pipes to close after killing a program that timed out.
KILL_GRACE = 5.0


@dataclass(frozen=True)
class Programs:
    """The command lines of a rotation's steps, how long each may run and what its stdin
    holds (``value`` or ``json``, with the ``admin`` secret's path)."""

    commands: Mapping[str, tuple[str, ...]]
    timeout: float
    input: str = "value"
    admin: str | None = None


def parse_programs(options: Mapping[str, str], steps: Iterable[str], rotator: str) -> Programs:
    """The programs named in ``options`` for ``steps``; InvalidInput naming a bad option."""
    commands: dict[str, tuple[str, ...]] = {}
    for step in steps:
        line = options.get(step)
        if line is None:
            continue
        try:
            argv = tuple(shlex.split(line))
        except ValueError as exc:
            raise InvalidInput(
                f"option {step} of the {rotator} rotator is not a valid command line ({exc})"
            ) from None
        if not argv:
            raise InvalidInput(f"option {step} of the {rotator} rotator names no program")
        commands[step] = argv
    mode = options.get("input", "value")
    if mode not in INPUTS:
        raise InvalidInput(f"option input of the {rotator} rotator must be value or json")
    admin = options.get("admin")
    if admin is not None:
        SecretRef.parse(admin)
        if mode != "json":
            raise InvalidInput(
                f"option admin of the {rotator} rotator needs input=json: the program gets"
                " the admin secret beside the value on stdin, never in argv or environment"
            )
    return Programs(commands, _timeout(options.get("timeout"), rotator), mode, admin)


def program_input(
    ctx: RotationContext, programs: Programs, step: str, value: SecretValue | None
) -> tuple[SecretValue | None, list[SecretValue]]:
    """What the program of ``step`` reads on stdin, and every value its stderr must not
    show. ``value`` is the step's own (pending for set and test, current for undo)."""
    hide = _known(ctx)
    if programs.input == "value":
        return value, hide
    admin = ctx.secret(programs.admin) if programs.admin else None
    pending: SecretValue | None = None
    with contextlib.suppress(SealboxError):  # no pending value before set
        pending = ctx.pending
    fields = {"pending": pending, "current": ctx.current, "admin": admin}
    document = {"step": step, **{k: v.reveal() if v else None for k, v in fields.items()}}
    if admin is not None:
        hide.append(admin)
    # A program that echoes its JSON input shows the values escaped: scrub those forms too.
    hide += [SecretValue(json.dumps(v.reveal())[1:-1]) for v in hide]
    return SecretValue(json.dumps(document)), hide


def _timeout(text: str | None, rotator: str) -> float:
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text) if text.strip().isdigit() else parse_duration(text).total_seconds()
    except InvalidInput:
        seconds = -1.0
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise InvalidInput(
            f"option timeout of the {rotator} rotator must be 1 to {MAX_TIMEOUT:g} seconds"
            " (60, 30s, 2m)"
        )
    return seconds


def _environment(ctx: RotationContext, step: str) -> dict[str, str]:
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return {
        "PATH": os.environ.get("PATH") or os.defpath,
        "HOME": home,
        "SEALBOX_SECRET": ctx.ref.path,
        "SEALBOX_ROTATION_ID": ctx.rotation_id,
        "SEALBOX_STEP": step,
    }


def _failure(step: str, message: str) -> SealboxError:
    # A test that fails means the value does not work; any other step could not reach
    # or was refused by the upstream system (retriable once it is fixed).
    return RotationFailed(message) if step == "test" else UpstreamError(message)


def _printable(text: str) -> str:
    # NOTE: a program's stderr goes into messages shown on terminals: no escape sequences.
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text)


def scrub(output: bytes, values: Sequence[SecretValue], *, cut: bool) -> str:
    """``output`` with every value (and every line of 8+ bytes of a multi-line value)
    replaced by ``***``. ``cut``: the output's start was dropped by a rolling buffer, so a
    value may begin before it: the first bytes, as many as the longest value, go too."""
    needles: set[bytes] = set()
    for value in values:
        raw = value.reveal_bytes()
        if raw:
            needles.add(raw)
            needles.update(line for line in raw.splitlines() if len(line.strip()) >= 8)
    if cut and needles:
        output = output[max(len(n) for n in needles) :]
    # Longest first, so a line of a value does not break the whole value's match.
    for needle in sorted(needles, key=len, reverse=True):
        output = output.replace(needle, b"***")
    return output.decode("utf-8", errors="replace")


@dataclass
class _Output:
    stdout: bytes
    stdout_overflow: bool
    stderr: bytes
    stderr_cut: bool
    returncode: int | None  # None: still running at the timeout
    timed_out: bool = False  # the timeout passed with the output still open


def _exchange(
    proc: subprocess.Popen[bytes], data: bytes, deadline: float, stdout_cap: int, stderr_keep: int
) -> _Output:
    """Feed ``data`` to the program's stdin and read its output until it exits or the
    deadline passes; bounded buffers, no threads."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out = bytearray()
    err = bytearray()
    overflow = cut = False
    offset = 0
    with selectors.DefaultSelector() as sel:
        if data:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # NOTE: the program may have exited while a process it started still
                # holds its output open: its status then, the leftover is killed.
                return _Output(bytes(out), overflow, bytes(err), cut, proc.poll(), True)
            for key, _ in sel.select(remaining):
                stream = key.fileobj
                if stream is proc.stdin:
                    try:
                        offset += os.write(key.fd, data[offset : offset + select.PIPE_BUF])
                    except BrokenPipeError:
                        offset = len(data)  # the program does not read stdin: its choice
                    if offset >= len(data):
                        sel.unregister(stream)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(stream)
                    continue
                if stream is proc.stdout:
                    if not stdout_cap:
                        continue  # not kept: only create's stdout is the value
                    if len(out) + len(chunk) > stdout_cap:
                        overflow = True
                        out += chunk[: max(0, stdout_cap - len(out))]
                    else:
                        out += chunk
                else:
                    err += chunk
                    if len(err) > stderr_keep:
                        del err[: len(err) - stderr_keep]
                        cut = True
    # Pipes closed: the program exited (or closed them); wait for its status.
    remaining = max(0.0, deadline - time.monotonic())
    try:
        returncode: int | None = proc.wait(remaining)
    except subprocess.TimeoutExpired:
        returncode = None
    return _Output(bytes(out), overflow, bytes(err), cut, returncode)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # NOTE: the whole process group (start_new_session): a shell script's children too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(KILL_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_program(
    ctx: RotationContext,
    programs: Programs,
    step: str,
    stdin: SecretValue | None,
    *,
    hide: Sequence[SecretValue] = (),
) -> bytes:
    """Run the program of ``step`` with ``stdin`` on its stdin; its stdout (only ``create``
    keeps it). Raises RotationFailed (test) or UpstreamError (other steps) when it cannot
    start, exits non-zero or outlives the timeout, with its stderr's end, every value in
    ``hide`` and ``stdin`` scrubbed out."""
    argv = programs.commands[step]
    shown = shlex.join(argv)
    shown = shown if len(shown) <= 200 else shown[:199] + "…"
    secret_values = [*hide, *([stdin] if stdin is not None else [])]
    data = stdin.reveal_bytes() if stdin is not None else b""
    longest = max((len(v) for v in secret_values), default=0)
    try:
        # NOTE: argv from the secret's options, run without a shell.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(ctx, step),
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise _failure(
            step,
            f"the {step} program of {ctx.ref} cannot be started ({shown}):"
            f" {exc.strerror or type(exc).__name__}",
        ) from None
    output: _Output | None = None
    try:
        output = _exchange(
            proc,
            data,
            time.monotonic() + programs.timeout,
            MAX_VALUE_BYTES if step == "create" else 0,
            STDERR_KEPT + longest,
        )
    finally:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if proc.returncode is None or output is None or output.timed_out:
            _kill(proc)
    if step == "create" and output.stdout.strip():
        # A create program that echoes its new value on stderr too: scrub that as well.
        secret_values.append(SecretValue(output.stdout.strip()))
    tail = _printable(scrub(output.stderr, secret_values, cut=output.stderr_cut)).strip()
    if len(tail) > STDERR_SHOWN:
        tail = "…" + tail[-STDERR_SHOWN:]
    said = f": {tail}" if tail else " (it printed nothing on stderr)"
    if output.timed_out and output.returncode is not None:
        raise _failure(
            step,
            f"the {step} program of {ctx.ref} ({shown}) exited with status"
            f" {output.returncode}, but a process it started kept its output open past the"
            f" {programs.timeout:g} s timeout and was killed{said}",
        )
    if output.returncode is None:
        raise _failure(
            step,
            f"the {step} program of {ctx.ref} ({shown}) did not finish within"
            f" {programs.timeout:g} s and was killed{said}",
        )
    if output.returncode < 0:
        raise _failure(
            step,
            f"the {step} program of {ctx.ref} ({shown}) was killed by signal"
            f" {-output.returncode}{said}",
        )
    if output.returncode != 0:
        raise _failure(
            step,
            f"the {step} program of {ctx.ref} ({shown}) exited with status"
            f" {output.returncode}{said}",
        )
    if output.stdout_overflow:
        raise _failure(
            step,
            f"the {step} program of {ctx.ref} ({shown}) printed more than"
            f" {MAX_VALUE_BYTES} bytes on stdout",
        )
    # NOTE: the engine files each note under its step; the program by name, never output.
    ctx.note(f"{os.path.basename(argv[0])} exited 0")
    return output.stdout


class CommandRotator:
    """Your programs for create (optional), set, test and undo."""

    name = "command"

    def check(self, options: Mapping[str, str]) -> None:
        self._programs(options)

    def runs_programs(self, options: Mapping[str, str]) -> bool:
        """Always: its steps are programs on the vault's host."""
        return True

    @staticmethod
    def _programs(options: Mapping[str, str]) -> Programs:
        known = {*PROGRAM_STEPS, *RUN_OPTIONS, *POLICY_OPTIONS}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(
                f"the command rotator has no option {', '.join(unknown)}"
                f" (it takes {', '.join(sorted(known))})"
            )
        programs = parse_programs(options, PROGRAM_STEPS, "command")
        if not {"set", "test"} & set(programs.commands):
            raise InvalidInput(
                "the command rotator needs a set or a test program (option set=… or test=…);"
                " a value that nothing upstream needs to know is the random rotator's job"
            )
        policy = {k: v for k, v in options.items() if k in POLICY_OPTIONS}
        if "create" in programs.commands and policy:
            raise InvalidInput(
                f"option create and option {', '.join(sorted(policy))} exclude each other:"
                " the create program makes the value"
            )
        RandomRotator().check(policy)
        return programs

    def create(self, ctx: RotationContext) -> SecretValue:
        programs = self._programs(ctx.options)
        if "create" not in programs.commands:
            return random_value({k: v for k, v in ctx.options.items() if k in POLICY_OPTIONS})
        stdin, hide = program_input(ctx, programs, "create", None)
        printed = run_program(ctx, programs, "create", stdin, hide=hide)
        value = printed[:-2] if printed.endswith(b"\r\n") else printed.removesuffix(b"\n")
        if not value.strip():
            raise UpstreamError(
                f"the create program of {ctx.ref} printed no value on stdout (it must print"
                " the new value, and only it)"
            )
        return SecretValue(value)

    def set(self, ctx: RotationContext) -> None:
        self._run(ctx, "set", ctx.pending)

    def test(self, ctx: RotationContext) -> None:
        self._run(ctx, "test", ctx.pending)

    def finish(self, ctx: RotationContext) -> None:
        """Nothing to run: the old value's retirement, if any, is the next set's job."""

    def undo(self, ctx: RotationContext) -> None:
        self._run(ctx, "undo", ctx.current)

    def _run(self, ctx: RotationContext, step: str, value: SecretValue | None) -> None:
        programs = self._programs(ctx.options)
        if step not in programs.commands:
            ctx.note("no program configured")
            return
        stdin, hide = program_input(ctx, programs, step, value)
        run_program(ctx, programs, step, stdin, hide=hide)


def _known(ctx: RotationContext) -> list[SecretValue]:
    """The values a program's stderr must not show (whatever this step can see)."""
    found: list[SecretValue] = []
    if ctx.current is not None:
        found.append(ctx.current)
    # Before set there is no pending value yet (InvalidInput).
    with contextlib.suppress(SealboxError):
        found.append(ctx.pending)
    return found
