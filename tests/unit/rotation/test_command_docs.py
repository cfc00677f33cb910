"""docs/rotation-command.md's example program, run as written by the command rotator through
set, test and undo against a small vendor API on 127.0.0.1."""

from __future__ import annotations

import json
import re
import shlex
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.unit.rotation.test_command_rotator import ADMIN, CURRENT, PENDING, Ctx

from sealbox.errors import RotationFailed
from sealbox.model import SecretValue
from sealbox.rotation.command import CommandRotator

DOC = Path(__file__).resolve().parents[3] / "docs" / "rotation-command.md"


class Vendor:
    """A vendor's key API: the admin token adds and revokes keys; /whoami takes any key."""

    def __init__(self) -> None:
        self.keys = {CURRENT.reveal()}
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def _token(self) -> str:
                return self.headers.get("Authorization", "").removeprefix("Bearer ")

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self._answer(200 if self._token() in vendor.keys else 401)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self._token() != ADMIN.reveal():
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

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    v = Vendor()
    yield v
    v.close()


def documented_program(tmp_path: Path) -> Path:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    (program,) = [b for b in blocks if "# vendor.py STEP BASE_URL" in b]
    path = tmp_path / "vendor.py"
    path.write_text(program)
    return path


def test_the_documented_program_rotates_a_vendor_key(vendor: Vendor, tmp_path: Path) -> None:
    program = documented_program(tmp_path)
    options = {
        step: shlex.join([sys.executable, str(program), step, vendor.url])
        for step in ("set", "test", "undo")
    } | {"input": "json", "admin": "payments/prod/VENDOR_ADMIN_TOKEN", "timeout": "30s"}
    rotator = CommandRotator()
    rotator.check(options)
    ctx = Ctx(options)
    rotator.set(ctx)
    assert vendor.keys == {CURRENT.reveal(), PENDING.reveal()}
    rotator.test(ctx)
    rotator.undo(ctx)
    assert vendor.keys == {CURRENT.reveal()}
    assert ctx.read == ["payments/prod/VENDOR_ADMIN_TOKEN"] * 3

    # A key the vendor does not know fails the test step, and says why.
    with pytest.raises(RotationFailed, match="the vendor answered HTTP 401 to test"):
        rotator.test(Ctx(options, pending=SecretValue("never-pushed-key-000000")))
