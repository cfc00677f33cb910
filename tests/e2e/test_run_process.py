"""`sealbox run` as a user runs it: the installed console script in a subprocess.

`run` replaces itself with the command (exec), so it can only be tested from outside.
The vault is prepared in-process (fast); every `run` is a real process.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sealbox.cli.main import main

SEALBOX = shutil.which("sealbox", path=os.path.dirname(sys.executable))
PY = sys.executable
SECRETS = {f"SECRET_{i:02d}": f"value-{i:02d} with spaces and $dollar" for i in range(20)}
DUMP = "import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))"

pytestmark = pytest.mark.skipif(
    SEALBOX is None, reason="the sealbox console script is not installed"
)


def _stdin(monkeypatch: pytest.MonkeyPatch, data: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode()), encoding="utf-8"))


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """The subprocess environment: the test's (isolated SEALBOX_HOME), nothing sealbox-scoped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    env["SEALBOX_HOME"] = str(tmp_path / "home")
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


@pytest.fixture
def vault20(
    keyfile_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base_env: dict[str, str]
) -> dict[str, str]:
    """A key-file vault whose payments/dev holds 20 secrets (and prod one); returns the env."""
    env_file = tmp_path / "seed.env"
    env_file.write_text("".join(f'{k}="{v}"\n' for k, v in SECRETS.items()))
    assert main(["import", str(env_file)]) == 0
    _stdin(monkeypatch, "prod-only")
    assert main(["secret", "set", "payments/prod/PROD_ONLY"]) == 0
    _stdin(monkeypatch, "prod-01")
    assert main(["secret", "set", "payments/prod/SECRET_01"]) == 0
    return {**base_env, "SEALBOX_PROJECT": "payments", "SEALBOX_ENV": "dev"}


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def sealbox(tmp_path: Path) -> Run:
    def run(
        *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        assert SEALBOX is not None
        return subprocess.run(
            [SEALBOX, *args],
            env=env,
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def dumped(proc: subprocess.CompletedProcess[str]) -> dict[str, str | None]:
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


# -- injection ------------------------------------------------------------------------------------
def test_run_injects_secrets_with_sh(vault20: dict[str, str], sealbox: Run) -> None:
    proc = sealbox("run", "--", "sh", "-c", 'echo "$SECRET_07"', env=vault20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == SECRETS["SECRET_07"] + "\n"
    assert proc.stderr == ""


def test_run_injects_all_twenty_and_keeps_the_parent_env(
    vault20: dict[str, str], sealbox: Run
) -> None:
    env = {**vault20, "PARENT_ONLY": "from-parent"}
    names = [*SECRETS, "PARENT_ONLY", "PROD_ONLY"]
    got = dumped(sealbox("run", "--", PY, "-c", DUMP, *names, env=env))
    assert got == {**SECRETS, "PARENT_ONLY": "from-parent", "PROD_ONLY": None}


def test_secrets_override_the_parent_unless_preserve_env(
    vault20: dict[str, str], sealbox: Run
) -> None:
    env = {**vault20, "SECRET_00": "parent-value"}
    got = dumped(sealbox("run", "--", PY, "-c", DUMP, "SECRET_00", "SECRET_01", env=env))
    assert got == {"SECRET_00": SECRETS["SECRET_00"], "SECRET_01": SECRETS["SECRET_01"]}
    got = dumped(
        sealbox("run", "--preserve-env", "--", PY, "-c", DUMP, "SECRET_00", "SECRET_01", env=env)
    )
    assert got == {"SECRET_00": "parent-value", "SECRET_01": SECRETS["SECRET_01"]}


def test_only_narrows_and_missing_is_not_found(vault20: dict[str, str], sealbox: Run) -> None:
    got = dumped(
        sealbox(
            "run",
            "--only",
            "SECRET_03,SECRET_04",
            "--",
            PY,
            "-c",
            DUMP,
            "SECRET_03",
            "SECRET_04",
            "SECRET_05",
            env=vault20,
        )
    )
    assert got == {
        "SECRET_03": SECRETS["SECRET_03"],
        "SECRET_04": SECRETS["SECRET_04"],
        "SECRET_05": None,
    }
    proc = sealbox("run", "--only", "MISSING", "--", "sh", "-c", "echo should-not-run", env=vault20)
    assert proc.returncode == 3
    assert "MISSING" in proc.stderr
    assert "should-not-run" not in proc.stdout
    proc = sealbox("run", "--only", "bad name", "--", "true", env=vault20)
    assert proc.returncode == 2


def test_exit_status_is_the_childs(vault20: dict[str, str], sealbox: Run) -> None:
    for code in (0, 1, 7, 42, 255):
        proc = sealbox("run", "--", "sh", "-c", f"exit {code}", env=vault20)
        assert proc.returncode == code


def test_command_not_found_is_127(vault20: dict[str, str], sealbox: Run, tmp_path: Path) -> None:
    proc = sealbox("run", "--", "no-such-command-sealbox-test", env=vault20)
    assert proc.returncode == 127
    assert "no-such-command-sealbox-test" in proc.stderr
    for value in SECRETS.values():
        assert value not in proc.stderr
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    proc = sealbox("run", "--", str(script), env=vault20)
    assert proc.returncode == 126


def test_run_without_a_command_is_invalid(vault20: dict[str, str], sealbox: Run) -> None:
    for args in (("run",), ("run", "--"), ("run", "--only", "A", "--")):
        proc = sealbox(*args, env=vault20)
        assert proc.returncode == 2, (args, proc.stderr)


def test_run_with_a_locked_vault_is_sealed_and_runs_nothing(
    tmp_path: Path, base_env: dict[str, str], sealbox: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALBOX_PASSPHRASE", "pw-for-run-test")
    assert main(["init"]) == 0
    assert main(["project", "create", "payments"]) == 0
    _stdin(monkeypatch, "needs-the-key")
    assert main(["secret", "set", "payments/dev/LOCKED"]) == 0
    env = {**base_env, "SEALBOX_PROJECT": "payments", "SEALBOX_ENV": "dev"}
    proc = subprocess.run(
        [SEALBOX or "sealbox", "run", "--", "sh", "-c", "echo ran"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,  # no controlling terminal: no prompt
    )
    assert proc.returncode == 6
    assert "unlock" in proc.stderr
    assert "ran" not in proc.stdout


def test_vault_credentials_are_not_passed_to_the_child(
    tmp_path: Path, base_env: dict[str, str], sealbox: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    passphrase = "pw-never-in-child"
    monkeypatch.setenv("SEALBOX_PASSPHRASE", passphrase)
    assert main(["init"]) == 0
    assert main(["project", "create", "payments"]) == 0
    _stdin(monkeypatch, "visible")
    assert main(["secret", "set", "payments/dev/APP_SECRET"]) == 0
    env = {**base_env, "SEALBOX_PROJECT": "payments", "SEALBOX_ENV": "dev"}
    unlock = sealbox("unlock", env={**env, "SEALBOX_PASSPHRASE": passphrase})
    assert unlock.returncode == 0, unlock.stderr
    token = unlock.stdout.strip().split("=", 1)[1].strip("'\"")
    watched = ("SEALBOX_SESSION", "SEALBOX_PASSPHRASE", "SEALBOX_NEW_PASSPHRASE", "APP_SECRET")
    child_env = {
        **env,
        "SEALBOX_SESSION": token,
        "SEALBOX_PASSPHRASE": passphrase,
        "SEALBOX_NEW_PASSPHRASE": "another",
    }
    got = dumped(sealbox("run", "--", PY, "-c", DUMP, *watched, env=child_env))
    assert got == {
        "SEALBOX_SESSION": None,
        "SEALBOX_PASSPHRASE": None,
        "SEALBOX_NEW_PASSPHRASE": None,
        "APP_SECRET": "visible",
    }
    # The whole environment, not just the named keys.
    proc = sealbox("run", "--", "env", env=child_env)
    assert proc.returncode == 0
    assert token not in proc.stdout
    assert passphrase not in proc.stdout
    # With the session alone (no passphrase) it works too; and via the click parser.
    session_only = {**env, "SEALBOX_SESSION": token}
    got = dumped(sealbox("run", PY, "-c", DUMP, *watched, env=session_only))
    assert got["SEALBOX_SESSION"] is None
    assert got["APP_SECRET"] == "visible"


# -- signals --------------------------------------------------------------------------------------
TRAP = """
import os, signal, sys, time
ready, done = sys.argv[1], sys.argv[2]
def on_term(signum, frame):
    with open(done, "w") as f:
        f.write(os.environ.get("SECRET_00", "missing"))
    sys.exit(42)
signal.signal(signal.SIGTERM, on_term)
with open(ready, "w") as f:
    f.write(str(os.getpid()))
for _ in range(600):
    time.sleep(0.1)
sys.exit(3)
"""


def test_sigterm_reaches_the_child(vault20: dict[str, str], tmp_path: Path) -> None:
    ready, done = tmp_path / "ready", tmp_path / "done"
    assert SEALBOX is not None
    proc = subprocess.Popen(
        [SEALBOX, "run", "--", PY, "-c", TRAP, str(ready), str(done)],
        env=vault20,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() or not ready.read_text():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child never became ready"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert status == 42
    assert done.read_text() == SECRETS["SECRET_00"]


# -- scope selection ----------------------------------------------------------------------------------
def test_run_with_explicit_project_and_env(vault20: dict[str, str], sealbox: Run) -> None:
    env = {k: v for k, v in vault20.items() if k not in ("SEALBOX_PROJECT", "SEALBOX_ENV")}
    got = dumped(
        sealbox(
            "run",
            "-p",
            "payments",
            "-e",
            "prod",
            "--",
            PY,
            "-c",
            DUMP,
            "PROD_ONLY",
            "SECRET_01",
            "SECRET_02",
            env=env,
        )
    )
    assert got == {"PROD_ONLY": "prod-only", "SECRET_01": "prod-01", "SECRET_02": None}
    got = dumped(
        sealbox(
            "run", "--project=payments", "--env=dev", "--", PY, "-c", DUMP, "SECRET_02", env=env
        )
    )
    assert got == {"SECRET_02": SECRETS["SECRET_02"]}
    # Flags beat SEALBOX_ENV.
    got = dumped(sealbox("run", "-e", "prod", "--", PY, "-c", DUMP, "PROD_ONLY", env=vault20))
    assert got == {"PROD_ONLY": "prod-only"}


def test_run_finds_sealbox_toml_in_a_parent_directory(
    vault20: dict[str, str], sealbox: Run, tmp_path: Path
) -> None:
    env = {k: v for k, v in vault20.items() if k not in ("SEALBOX_PROJECT", "SEALBOX_ENV")}
    project = tmp_path / "project"
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    setup = sealbox("setup", "-p", "payments", "-e", "prod", env=env, cwd=project)
    assert setup.returncode == 0, setup.stderr
    assert (project / "sealbox.toml").is_file()
    got = dumped(sealbox("run", "--", PY, "-c", DUMP, "PROD_ONLY", env=env, cwd=deep))
    assert got == {"PROD_ONLY": "prod-only"}
    # An explicit flag overrides the binding.
    got = dumped(
        sealbox(
            "run", "-e", "dev", "--", PY, "-c", DUMP, "PROD_ONLY", "SECRET_09", env=env, cwd=deep
        )
    )
    assert got == {"PROD_ONLY": None, "SECRET_09": SECRETS["SECRET_09"]}
    # Outside the bound tree there is no scope.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = sealbox("run", "--", "true", env=env, cwd=outside)
    assert proc.returncode == 2
    assert "setup" in proc.stderr


# -- one parser: every form that runs a command is parsed without click ----------------------------
def _imports_click(
    args: list[str], env: dict[str, str], cwd: Path
) -> tuple[bool, subprocess.CompletedProcess[str]]:
    assert SEALBOX is not None
    proc = subprocess.run(
        [SEALBOX, *args],
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    imported = any(
        line.startswith("import time:") and line.split("|")[-1].strip() == "click"
        for line in proc.stderr.splitlines()
    )
    return imported, proc


def test_every_run_form_takes_the_fast_path(vault20: dict[str, str], tmp_path: Path) -> None:
    """With and without `--`, clustered or `=` values: the same result, and no click."""
    cmd = ["sh", "-c", 'printf "%s|%s|%s" "$SECRET_00" "$SECRET_01" "$SECRET_02"']
    spellings = [
        (["run", "--", *cmd], ["run", *cmd]),
        (
            ["run", "--only", "SECRET_00,SECRET_01", "--", *cmd],
            ["run", "--only=SECRET_00,SECRET_01", *cmd],
        ),
        (["run", "-p", "payments", "-e", "dev", "--", *cmd], ["run", "-ppayments", "-edev", *cmd]),
        (
            ["run", "--only=SECRET_00", "--preserve-env", "--", *cmd],
            ["run", "--preserve-env", "--only", "SECRET_00", *cmd],
        ),
    ]
    for one, other in spellings:
        used_click, a = _imports_click(one, vault20, tmp_path)
        assert not used_click, f"{one} imported click"
        used_click, b = _imports_click(other, vault20, tmp_path)
        assert not used_click, f"{other} imported click"
        assert a.returncode == b.returncode == 0, (a.stderr[-500:], b.stderr[-500:])
        assert a.stdout == b.stdout, (one, other)
    expected = f"{SECRETS['SECRET_00']}|{SECRETS['SECRET_01']}|"
    assert _imports_click(spellings[1][1], vault20, tmp_path)[1].stdout == expected

    # Errors and exit statuses agree too.
    pairs = [
        (["run", "--only", "MISSING", "--", "true"], ["run", "--only", "MISSING", "true"], 3),
        (["run", "--", "sh", "-c", "exit 7"], ["run", "sh", "-c", "exit 7"], 7),
        (["run", "--", "no-such-cmd-xyz"], ["run", "no-such-cmd-xyz"], 127),
        (["run", "-e", "nope", "--", "true"], ["run", "-enope", "true"], 3),
    ]
    for one, other, code in pairs:
        _, a = _imports_click(one, vault20, tmp_path)
        _, b = _imports_click(other, vault20, tmp_path)
        assert a.returncode == b.returncode == code, (one, a.returncode, other, b.returncode)


def test_a_malformed_run_line_is_a_usage_error_from_click(
    vault20: dict[str, str], tmp_path: Path
) -> None:
    for args, message in [
        (["run"], "Missing argument 'COMMAND...'."),
        (["run", "--only"], "Option '--only' requires an argument."),
        (["run", "--watch=yes", "true"], "Option '--watch' does not take a value."),
        (["run", "--mount-format", "xml", "true"], "'xml' is not one of 'dotenv', 'json'."),
    ]:
        used_click, proc = _imports_click(args, vault20, tmp_path)
        assert used_click, args
        assert proc.returncode == 2, (args, proc.stderr[-500:])
        lines = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
        assert lines[-1].startswith("Error: ") and lines[-1].endswith(message), (args, lines)
        assert "Usage: sealbox run [OPTIONS] COMMAND..." in proc.stderr


def test_run_help_goes_to_click(vault20: dict[str, str], tmp_path: Path) -> None:
    used_click, proc = _imports_click(["run", "--help"], vault20, tmp_path)
    assert used_click
    assert proc.returncode == 0
    assert "Usage:" in proc.stdout
    assert "--only" in proc.stdout
    assert "--preserve-env" in proc.stdout


def test_value_with_nul_byte_cannot_be_injected(
    vault20: dict[str, str], sealbox: Run, tmp_path: Path
) -> None:
    blob = tmp_path / "nul"
    blob.write_bytes(b"before\x00after-nul-secret")
    assert main(["secret", "set", "payments/dev/WITH_NUL", "--from-file", str(blob)]) == 0
    proc = sealbox("run", "--", "sh", "-c", "echo ran", env=vault20)
    assert proc.returncode == 2
    assert "WITH_NUL" in proc.stderr
    assert "after-nul-secret" not in proc.stderr
    assert "ran" not in proc.stdout
    # The other secrets can still be run with --only.
    got = dumped(
        sealbox("run", "--only", "SECRET_00", "--", PY, "-c", DUMP, "SECRET_00", env=vault20)
    )
    assert got == {"SECRET_00": SECRETS["SECRET_00"]}


def test_empty_only_does_not_inject_everything(vault20: dict[str, str], sealbox: Run) -> None:
    """`--only "$NEEDED"` with an unset variable must not widen to every secret."""
    for args in (["--only", ""], ["--only="], ["--only", ","]):
        proc = sealbox("run", *args, "--", PY, "-c", DUMP, "SECRET_00", env=vault20)
        if proc.returncode == 0:
            assert json.loads(proc.stdout) == {"SECRET_00": None}, f"{args} injected every secret"
        else:
            assert proc.returncode == 2, (args, proc.stderr)
