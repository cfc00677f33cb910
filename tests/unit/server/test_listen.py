"""The listening socket: a busy address names its holder; workers die with their parent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sealbox.cli.exit_codes import exit_status
from sealbox.errors import AddressInUse, InvalidInput
from sealbox.server import listen as listen_mod
from sealbox.server.listen import holder_of, listen


def test_listen_binds_and_listens_before_anything_is_served() -> None:
    with listen("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # accepted into the backlog: it is listening


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_a_busy_address_is_exit_status_10_naming_the_process() -> None:
    with listen("127.0.0.1", 0) as holder:
        port = holder.getsockname()[1]
        assert (
            holder_of(port)
            == f"process {os.getpid()} ({Path('/proc/self/comm').read_text().strip()})"
        )
        with pytest.raises(AddressInUse) as exc:
            listen("127.0.0.1", port)
    assert f"127.0.0.1:{port}" in exc.value.message
    assert f"in use by process {os.getpid()} (" in exc.value.message
    assert exit_status(exc.value) == 10
    assert holder_of(port) is None  # closed: nobody holds it


def test_an_unknown_holder_is_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listen_mod, "holder_of", lambda port: None)
    with (
        listen("127.0.0.1", 0) as holder,
        pytest.raises(AddressInUse, match="in use by another process"),
    ):
        listen("127.0.0.1", holder.getsockname()[1])


def test_an_address_that_is_not_ours_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"cannot listen on 192\.0\.2\.1:"):
        listen("192.0.2.1", 0)  # TEST-NET-1: no interface here has it


def test_holder_of_reads_tcp6_and_skips_what_it_may_not_see(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (tmp_path / "net" / "tcp").write_text(header)
    row = "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1\n"
    (tmp_path / "net" / "tcp6").write_text(header + row)
    (tmp_path / "77" / "fd").mkdir(parents=True)
    (tmp_path / "77" / "comm").write_text("sealbox\n")
    os.symlink("socket:[4242]", tmp_path / "77" / "fd" / "3")
    (tmp_path / "12").mkdir()  # no fd directory: another user's process
    assert holder_of(0x1F90, tmp_path) == "process 77 (sealbox)"
    assert holder_of(8201, tmp_path) is None


def test_a_worker_whose_parent_is_gone_stops_at_once() -> None:
    # The parent it was started for is not its parent: it must stop by SIGTERM, not sleep.
    code = (
        "import time\n"
        "from sealbox.server.listen import die_with_parent\n"
        "die_with_parent(parent=1 if __import__('os').getppid() != 1 else 2)\n"
        "time.sleep(60)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], timeout=30, check=False)
    assert r.returncode == -signal.SIGTERM


def test_a_worker_dies_with_its_parent(tmp_path: Path) -> None:
    # parent (python) -> child (die_with_parent, sleeps); SIGKILL the parent: the child goes.
    pid_file = tmp_path / "child.pid"
    child = (
        "import os, time\n"
        "from sealbox.server.listen import die_with_parent\n"
        "die_with_parent()\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    parent = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {child!r}])\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent])
    try:
        for _ in range(300):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.1)
        child_pid = int(pid_file.read_text())
    finally:
        proc.kill()
        proc.wait(timeout=30)
    for _ in range(300):
        if not alive(child_pid):
            return
        time.sleep(0.1)
    os.kill(child_pid, signal.SIGKILL)
    raise AssertionError("the child outlived its parent")


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
