"""A rotation killed at any instant is resumed or cancelled, and the vault and the upstream
system agree afterwards (issue 12).

A ``sealbox rotate`` subprocess runs the test rotator of :mod:`tests.file_rotator`
(its upstream is a JSON file), registered the way a third party registers one: a
``*.dist-info`` with an ``entry_points.txt`` on PYTHONPATH. The rotator blocks at a named
point — at the start of each step (after the engine recorded the step as started, before
the step did anything: between two steps) and at its end (the work done upstream, not yet
recorded: inside the step) — and the test SIGKILLs the process there. Then
``sealbox rotation resume`` must complete the rotation with exactly one new version that
upstream accepts, and ``sealbox rotation cancel`` must restore the old state (or, once
the new version was promoted, refuse and leave resume to finish it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.file_rotator import upstream_password

pytestmark = pytest.mark.slow

INITIAL = "initial-password-0001"
POINTS = [f"{step}:{where}" for step in ("create", "set", "test", "finish")
          for where in ("start", "end")]  # fmt: skip
PROMOTED = {"finish:start", "finish:end"}  # the engine promotes before the rotator's finish


class World:
    """A vault, an installed third-party rotator and its upstream file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.site = tmp / "site"
        self.upstream = tmp / "upstream.json"
        self.control = tmp / "control.json"
        self.reached = tmp / "reached"
        self.exe = shutil.which("sealbox", path=os.path.dirname(sys.executable))
        assert self.exe is not None
        self._install_rotator()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")},
            "SEALBOX_HOME": str(tmp / "home"),
            "SEALBOX_PROJECT": "payments",
            "SEALBOX_ENV": "dev",
            "PYTHONPATH": str(self.site),
        }

    def _install_rotator(self) -> None:
        source = Path(__file__).parents[1] / "file_rotator.py"
        self.site.mkdir()
        shutil.copy(source, self.site / "crash_test_rotator.py")
        dist = self.site / "crash_test_rotator-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: crash-test-rotator\nVersion: 1.0\n"
        )
        (dist / "entry_points.txt").write_text(
            "[sealbox.rotators]\nfile = crash_test_rotator:FileRotator\n"
        )

    def sealbox(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        assert self.exe is not None
        return subprocess.run(
            [self.exe, *args], env=self.env, input=stdin, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip

    def setup(self, block: str) -> None:
        assert self.sealbox("init", "--key-file", str(self.tmp / "master.key")).returncode == 0
        assert self.sealbox("project", "create", "payments").returncode == 0
        assert self.sealbox("secret", "set", "DB", stdin=INITIAL).returncode == 0
        self.upstream.write_text(json.dumps({"password": INITIAL}))
        self.control.write_text(json.dumps({"block": block, "reached": str(self.reached)}))
        r = self.sealbox(
            "rotation", "configure", "DB", "--method", "file",
            "--option", f"upstream={self.upstream}", "--option", f"control={self.control}",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr

    def rotate_and_kill(self, point: str) -> None:
        assert self.exe is not None
        proc = subprocess.Popen(
            [self.exe, "rotate", "DB"], env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            # NOTE: the rotator creates the file, then writes the point: wait for both.
            while not (self.reached.exists() and self.reached.read_text()):
                if proc.poll() is not None:
                    raise AssertionError(f"rotate ended before {point}: {proc.communicate()}")
                assert time.monotonic() < deadline, f"never reached {point}"
                time.sleep(0.02)
            assert self.reached.read_text() == point
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()  # reaped: the pid no longer runs

    def versions(self) -> list[dict[str, object]]:
        r = self.sealbox("secret", "history", "DB", "--json")
        assert r.returncode == 0, r.stderr
        return list(json.loads(r.stdout))

    def current(self) -> str:
        r = self.sealbox("secret", "get", "DB")
        assert r.returncode == 0, r.stderr
        return r.stdout.rstrip("\n")

    def open_rotations(self) -> list[dict[str, object]]:
        r = self.sealbox("rotation", "status", "--json")
        return [x for x in json.loads(r.stdout) if x["state"] in ("running", "pending", "failed")]


@pytest.mark.parametrize("point", POINTS)
def test_killed_then_resumed_completes_with_one_version(tmp_path: Path, point: str) -> None:
    world = World(tmp_path)
    world.setup(block=point)
    world.rotate_and_kill(point)
    [stuck] = world.open_rotations()
    assert stuck["state"] == "running"
    r = world.sealbox("rotation", "resume", "DB", "--json")
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert (done["id"], done["state"]) == (stuck["id"], "succeeded")
    # One version created; the vault's current value is what upstream accepts.
    assert [(v["version"], v["stage"]) for v in world.versions()] == [
        (1, "previous"),
        (2, "current"),
    ]
    assert world.current() == upstream_password(world.upstream) != INITIAL
    assert world.open_rotations() == []
    r = world.sealbox("secret", "get", "DB", "--stage", "previous")
    assert r.stdout.rstrip("\n") == INITIAL


@pytest.mark.parametrize("point", POINTS)
def test_killed_then_cancelled_restores_the_old_state(tmp_path: Path, point: str) -> None:
    world = World(tmp_path)
    world.setup(block=point)
    world.rotate_and_kill(point)
    r = world.sealbox("rotation", "cancel", "DB")
    if point in PROMOTED:
        # Promoted already: cancel refuses (nothing half done), resume finishes it.
        assert r.returncode == 5 and "resume" in r.stderr, r.stderr
        assert world.sealbox("rotation", "resume", "DB").returncode == 0
        assert world.current() == upstream_password(world.upstream) != INITIAL
        return
    assert r.returncode == 0, r.stderr
    assert world.current() == INITIAL == upstream_password(world.upstream)
    stages = [(v["version"], v["stage"]) for v in world.versions()]
    assert stages[0] == (1, "current")
    assert all(stage is None for _, stage in stages[1:])  # never promoted, not pending
    assert len(stages) <= 2  # at most the one version the rotation wrote
    assert world.open_rotations() == []
    assert world.sealbox("secret", "get", "DB", "--stage", "pending").returncode == 3


def test_two_rotations_at_once_the_second_is_refused_naming_the_first(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.setup(block="set:start")
    assert world.exe is not None
    proc = subprocess.Popen(
        [world.exe, "rotate", "DB"], env=world.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not world.reached.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        [first] = world.open_rotations()
        r = world.sealbox("rotate", "DB")
        assert r.returncode == 5
        assert f"unfinished rotation {first['id']}" in r.stderr
        # The first's owner still runs: neither resume nor cancel takes it from it.
        r = world.sealbox("rotation", "resume", str(first["id"]))
        assert r.returncode == 5 and "being run by" in r.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert world.sealbox("rotation", "resume", "DB").returncode == 0
