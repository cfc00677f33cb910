"""`sealbox run` in remote mode, `--watch` and `--mount`: the installed CLI as a subprocess.

The server runs in this process (a thread); every `sealbox run` is a real process, so
signals, exit statuses and the mounted file's life can be observed from outside.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.unit.client.live import Live, live_server

from sealbox.client import Client
from sealbox.model import SecretRef, SecretValue

SEALBOX = shutil.which("sealbox", path=os.path.dirname(sys.executable))
PY = sys.executable
BOUND = 15.0

pytestmark = pytest.mark.skipif(
    SEALBOX is None, reason="the sealbox console script is not installed"
)

#: A long-running child: logs its start (with the value it sees), SIGHUPs, and exits 42
#: on SIGTERM. With a mounted file it logs the file's content at start and on SIGHUP.
CHILD = r"""
import os, signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def mounted():
    path = os.environ.get("SEALBOX_SECRETS_FILE")
    return open(path).read().strip().replace("\n", "|") if path else "-"
log.write(f"start {os.environ.get('API_KEY', '-')} {mounted()}\n")
signal.signal(signal.SIGHUP, lambda *a: log.write(f"HUP {mounted()}\n"))
signal.signal(signal.SIGTERM, lambda *a: (log.write("TERM\n"), sys.exit(42)))
while True:
    time.sleep(0.05)
"""


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with live_server(tmp_path) as server:
        admin = Client(server.url, server.token)
        admin.create_project("payments")
        admin.set(SecretRef("payments", "dev", "API_KEY"), SecretValue("v1"))
        admin.set(SecretRef("payments", "dev", "OTHER"), SecretValue("o1"))
        admin.close()
        yield server


def _env(tmp_path: Path, live: Live | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    env.update(SEALBOX_HOME=str(tmp_path / "home"), SEALBOX_PROJECT="payments", SEALBOX_ENV="dev")
    if live is not None:
        env.update(
            SEALBOX_ADDR=live.url, SEALBOX_TOKEN=live.token, SEALBOX_HOME=str(tmp_path / "c")
        )
    return env


def _set(live: Live, name: str, value: str) -> None:
    with Client(live.url, live.token) as c:
        c.set(SecretRef("payments", "dev", name), SecretValue(value))


def test_remote_run_injects_and_withholds_the_token(live: Live, tmp_path: Path) -> None:
    dump = "import json, os; print(json.dumps({k: os.environ.get(k) for k in ('API_KEY', 'SEALBOX_TOKEN')}))"
    out = subprocess.run(
        [SEALBOX, "run", "--", PY, "-c", dump],
        env=_env(tmp_path, live),
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=True,
    )
    assert json.loads(out.stdout) == {"API_KEY": "v1", "SEALBOX_TOKEN": None}
    # The child's exit status is sealbox's.
    done = subprocess.run(
        [SEALBOX, "run", "--", PY, "-c", "raise SystemExit(3)"],
        env=_env(tmp_path, live),
        timeout=BOUND,
        check=False,
    )
    assert done.returncode == 3


def test_remote_run_with_the_server_down_and_an_offline_copy(live: Live, tmp_path: Path) -> None:
    env = {**_env(tmp_path, live), "SEALBOX_OFFLINE_MAX_AGE": "1h"}
    dump = "import os; print(os.environ['API_KEY'])"
    first = subprocess.run(
        [SEALBOX, "run", "--", PY, "-c", dump],
        env=env,
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=True,
    )
    assert first.stdout.strip() == "v1"
    from sealbox.server.testing import free_port

    down = {**env, "SEALBOX_ADDR": f"http://127.0.0.1:{free_port()}"}
    # A different address has no offline copy: a clear error, exit 8.
    failed = subprocess.run(
        [SEALBOX, "run", "--", PY, "-c", dump],
        env=down,
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert failed.returncode == 8 and "no offline copy" in failed.stderr
    # --prefer-offline reads the encrypted copy without asking the server.
    _set(live, "API_KEY", "v2")
    cached = subprocess.run(
        [SEALBOX, "run", "--prefer-offline", "--", PY, "-c", dump],
        env=env,
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=True,
    )
    assert cached.stdout.strip() == "v1"


def test_watch_restarts_on_change_and_forwards_sigterm(live: Live, tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    proc = subprocess.Popen(
        [SEALBOX, "run", "--watch", "--grace", "5s", "--", PY, "-c", CHILD, str(log)],
        env=_env(tmp_path, live),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _lines(log) == ["start v1 -"], "the first start")
        started = time.monotonic()
        _set(live, "API_KEY", "v2")
        _wait_for(lambda: "start v2 -" in _lines(log), "a restart with the new value")
        print(f"\nremote --watch restart after {time.monotonic() - started:.2f} s")
        assert _lines(log) == ["start v1 -", "TERM", "start v2 -"]
        # A change that does not alter any value (same content) does not restart.
        _set(live, "API_KEY", "v2")
        time.sleep(1.5)
        assert _lines(log)[-1] == "start v2 -"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(BOUND) == 42  # the child's own status
        assert _lines(log)[-1] == "TERM"
        assert "restarting" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_watch_only_reacts_to_secrets_the_command_uses(live: Live, tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    proc = subprocess.Popen(
        [SEALBOX, "run", "--watch", "--only", "API_KEY", "--", PY, "-c", CHILD, str(log)],
        env=_env(tmp_path, live),
    )
    try:
        _wait_for(lambda: _lines(log) == ["start v1 -"], "the first start")
        _set(live, "OTHER", "o2")
        time.sleep(1.5)
        assert _lines(log) == ["start v1 -"]
        _set(live, "API_KEY", "v3")
        _wait_for(lambda: "start v3 -" in _lines(log), "a restart")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(BOUND) == 42 or proc.returncode in (130, -2)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_embedded_watch_with_a_signal_and_a_mounted_file(
    keyfile_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from sealbox.cli.main import main

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"e1"), encoding="utf-8"))
    assert main(["secret", "set", "API_KEY"]) == 0
    log = tmp_path / "child.log"
    proc = subprocess.Popen(
        [
            SEALBOX,
            "run",
            "--watch",
            "--on-change",
            "signal:HUP",
            "--mount",
            "app.env",
            "--",
            PY,
            "-c",
            CHILD,
            str(log),
        ],
        env=_env(tmp_path),
    )
    try:
        _wait_for(lambda: bool(_lines(log)), "the first start")
        assert _lines(log) == ["start - API_KEY='e1'"]  # in the file, not the environment
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"e2"), encoding="utf-8"))
        assert main(["secret", "set", "API_KEY"]) == 0
        _wait_for(lambda: "HUP API_KEY='e2'" in _lines(log), "SIGHUP after the file changed")
        assert sum(1 for line in _lines(log) if line.startswith("start")) == 1  # no restart
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(BOUND) == 42
    finally:
        if proc.poll() is None:
            proc.kill()


MOUNT_REPORT = r"""
import json, os, stat, sys
path = os.environ["SEALBOX_SECRETS_FILE"]
print(json.dumps({
    "path": path,
    "mode": stat.S_IMODE(os.stat(path).st_mode),
    "content": open(path).read(),
    "env": os.environ.get("API_KEY"),
}))
sys.stdout.flush()
if len(sys.argv) > 1:
    import time
    while True:
        time.sleep(0.05)
"""


@pytest.mark.parametrize("fmt", ["dotenv", "json"])
def test_mount_exists_only_while_the_child_runs(live: Live, tmp_path: Path, fmt: str) -> None:
    out = subprocess.run(
        [
            SEALBOX,
            "run",
            "--mount",
            "secrets.env",
            "--mount-format",
            fmt,
            "--",
            PY,
            "-c",
            MOUNT_REPORT,
        ],
        env=_env(tmp_path, live),
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=True,
    )
    report = json.loads(out.stdout)
    path = Path(report["path"])
    assert report["mode"] == 0o600 and report["env"] is None
    assert path.name == "secrets.env"
    if Path("/dev/shm").is_dir():
        assert str(path).startswith("/dev/shm/")
    if fmt == "json":
        assert json.loads(report["content"]) == {"API_KEY": "v1", "OTHER": "o1"}
    else:
        assert "API_KEY='v1'" in report["content"]
    assert not path.exists() and not path.parent.exists()


def test_mount_absolute_path_env_too_and_removal_on_sigterm(live: Live, tmp_path: Path) -> None:
    target = tmp_path / "run" / "app.json"
    target.parent.mkdir()
    proc = subprocess.Popen(
        [
            SEALBOX,
            "run",
            "--mount",
            str(target),
            "--mount-format",
            "json",
            "--env-too",
            "--",
            PY,
            "-c",
            MOUNT_REPORT,
            "stay",
        ],
        env=_env(tmp_path, live),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        report = json.loads(proc.stdout.readline())
        assert report["path"] == str(target) and report["env"] == "v1"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(BOUND) == 128 + signal.SIGTERM  # killed by the forwarded signal
        assert not target.exists()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--on-change", "signal:HUP"], "apply to --watch"),
        (["--watch", "--on-change", "explode"], "invalid --on-change"),
        (["--watch", "--grace", "soon"], "invalid duration"),
        (["--mount", "../x"], "give a file name"),
        (["--env-too"], "apply to --mount"),
    ],
)
def test_bad_run_options(live: Live, tmp_path: Path, args: list[str], message: str) -> None:
    out = subprocess.run(
        [SEALBOX, "run", *args, "--", PY, "-c", "print('ran')"],
        env=_env(tmp_path, live),
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert out.returncode == 2 and message in out.stderr and "ran" not in out.stdout
