"""The command rotator through the engine and the CLI: ``sealbox rotation configure
--method command`` with docs/rotation-command.md's program, as written, against a small
vendor API on 127.0.0.1; ``sealbox rotate``, ``--dry-run`` (the undo program runs), a test
program that exits 12 (nothing promoted), and ``rotation cancel`` after set (undo runs)."""

from __future__ import annotations

import json
import shlex
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.cli_harness import Cli
from tests.unit.rotation.test_command_docs import documented_program

FIRST_KEY = "vendor-key-first-3b9d0c7a1e"
ADMIN_TOKEN = "vendor-admin-token-5e2f8a4c6b"
ADMIN_PATH = "payments/dev/VENDOR_ADMIN_TOKEN"
EXIT_NOT_FOUND = 3
EXIT_UPSTREAM = 11
EXIT_ROTATION_FAILED = 12


class Vendor:
    """A vendor's key API: the admin token adds and revokes keys; /whoami takes any key
    it knows. ``calls`` is what it was asked, in order (keys as given, for the test)."""

    def __init__(self) -> None:
        self.keys = {FIRST_KEY}
        self.calls: list[tuple[str, str]] = []
        self.down = False  # answers 503 to everything (an outage)
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def _token(self) -> str:
                return self.headers.get("Authorization", "").removeprefix("Bearer ")

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                vendor.calls.append((self.path, self._token()))
                self._answer(200 if self._token() in vendor.keys else 401)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                vendor.calls.append((self.path, body["key"]))
                if vendor.down:
                    self._answer(503)
                    return
                if self._token() != ADMIN_TOKEN:
                    self._answer(403)
                    return
                if self.path == "/api/keys":
                    vendor.keys.add(body["key"])
                elif self.path == "/api/keys/revoke":
                    vendor.keys.discard(body["key"])
                self._answer(201)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def steps(self) -> list[str]:
        """The calls since the last look, by path."""
        paths = [path for path, _ in self.calls]
        self.calls.clear()
        return paths

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    v = Vendor()
    yield v
    v.close()


@pytest.fixture
def configured(keyfile_vault: Path, cli: Cli, vendor: Vendor, tmp_path: Path) -> Vendor:
    program = documented_program(tmp_path)
    assert cli("secret", "set", "VENDOR_KEY", stdin=FIRST_KEY).status == 0
    assert cli("secret", "set", "VENDOR_ADMIN_TOKEN", stdin=ADMIN_TOKEN).status == 0
    steps = [
        f"{step}={shlex.join([sys.executable, str(program), step, vendor.url])}"
        for step in ("set", "test", "undo")
    ]
    r = cli(
        "rotation", "configure", "VENDOR_KEY", "--method", "command",
        *(arg for step in steps for arg in ("--option", step)),
        "--option", "input=json", "--option", f"admin={ADMIN_PATH}",
        "--option", "timeout=30s", "--grace", "1h",
    )  # fmt: skip
    assert r.status == 0, r.err
    return vendor


def value(cli: Cli, *args: str) -> str:
    r = cli("secret", "get", "VENDOR_KEY", *args)
    assert r.status == 0, r.err
    return r.out.rstrip("\n")


def test_rotate_rehearse_fail_and_cancel_through_the_cli(
    configured: Vendor, cli: Cli, tmp_path: Path
) -> None:
    vendor = configured
    # The rehearsal: set, test, then undo at the vendor; current untouched.
    r = cli("rotate", "VENDOR_KEY", "--dry-run", "--json")
    assert r.status == 0, r.err
    report = json.loads(r.out)
    assert (report["state"], report["test"], report["dry_run"]) == ("rehearsed", "passed", True)
    assert vendor.steps() == ["/api/keys", "/api/whoami", "/api/keys/revoke"]
    assert vendor.keys == {FIRST_KEY}
    assert value(cli) == FIRST_KEY

    # For real: the vendor holds the new key beside the old one; old is previous.
    r = cli("rotate", "VENDOR_KEY")
    assert r.status == 0, r.err
    assert "succeeded (version 1 -> 3, test passed)" in r.err  # 2 was the rehearsal's
    assert vendor.steps() == ["/api/keys", "/api/whoami"]
    second = value(cli)
    assert second != FIRST_KEY and vendor.keys == {FIRST_KEY, second}
    assert value(cli, "--stage", "previous") == FIRST_KEY
    for text in (r.out, r.err):
        assert second not in text and FIRST_KEY not in text and ADMIN_TOKEN not in text

    # A test program that exits 12: the rotation fails at test, nothing is promoted.
    failing = tmp_path / "failing_test.py"
    failing.write_text("import sys\nsys.stdin.read()\nsys.exit(12)\n")
    doc = str(documented_program(tmp_path))
    r = cli(
        "rotation", "configure", "VENDOR_KEY", "--method", "command",
        "--option", "set=" + shlex.join([sys.executable, doc, "set", vendor.url]),
        "--option", "test=" + shlex.join([sys.executable, str(failing)]),
        "--option", "undo=" + shlex.join([sys.executable, doc, "undo", vendor.url]),
        "--option", "input=json", "--option", f"admin={ADMIN_PATH}",
    )  # fmt: skip
    assert r.status == 0, r.err
    r = cli("rotate", "VENDOR_KEY", "--json")
    assert r.status == EXIT_ROTATION_FAILED, r.err
    failed = json.loads(r.out)
    assert (failed["state"], failed["step"]) == ("failed", "test")
    assert "exited with status 12" in failed["error"]
    assert vendor.steps() == ["/api/keys"]  # set ran; the failing test called nobody
    assert value(cli) == second  # nothing promoted
    pending = value(cli, "--stage", "pending")
    assert pending not in (second, FIRST_KEY) and pending in vendor.keys
    r = cli("rotation", "status", "--failed")
    assert r.status == EXIT_ROTATION_FAILED and failed["id"] in r.out

    # Cancel after set: the undo program makes the vendor forget the pending key.
    r = cli("rotation", "cancel", "VENDOR_KEY", "--json")
    assert r.status == 0, r.err
    assert json.loads(r.out)["state"] == "cancelled"
    assert vendor.calls == [("/api/keys/revoke", pending)]
    assert vendor.keys == {FIRST_KEY, second}
    assert value(cli) == second
    assert cli("secret", "get", "VENDOR_KEY", "--stage", "pending").status == EXIT_NOT_FOUND
    r = cli("rotation", "history", "VENDOR_KEY", "--json")
    states = [x["state"] for x in json.loads(r.out)]
    assert states == ["cancelled", "succeeded", "rehearsed"]


def test_a_vendor_down_at_set_leaves_the_rotation_pending_and_resumable(
    configured: Vendor, cli: Cli
) -> None:
    vendor = configured
    vendor.down = True
    r = cli("rotate", "VENDOR_KEY", "--json")
    assert r.status == EXIT_UPSTREAM, r.err
    stuck = json.loads(r.out)
    assert (stuck["state"], stuck["step"]) == ("pending", "set")
    assert "the vendor answered HTTP 503 to set" in stuck["error"]
    assert ADMIN_TOKEN not in r.out + r.err
    assert value(cli) == FIRST_KEY and vendor.keys == {FIRST_KEY}
    vendor.down = False
    vendor.steps()
    r = cli("rotation", "resume", stuck["id"], "--json")
    assert r.status == 0, r.err
    assert json.loads(r.out)["state"] == "succeeded"
    assert vendor.steps() == ["/api/keys", "/api/whoami"]
    assert value(cli) != FIRST_KEY and value(cli) in vendor.keys
    assert value(cli, "--stage", "previous") == FIRST_KEY
