"""Values byte for byte, as a user sees them: the installed ``sealbox`` in subprocesses.

A binary value set from a file comes back from ``secret get`` into a pipe, and reaches a
``sealbox run`` child's environment, with exactly its bytes: embedded, and remote through a
live server (real sockets). A value holding NUL is refused by ``run``, naming the variable.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.client.live import Live, live_server

from sealbox.client import Client

SEALBOX = shutil.which("sealbox", path=os.path.dirname(sys.executable))
PY = sys.executable
BOUND = 60.0
#: Not UTF-8 (a lone continuation byte, an invalid lead, an encoded surrogate), with a
#: trailing CR LF that must survive.
BINARY = b"\xff\xfe\x80bin\xc3\x28\xed\xa0\x80 \xe9t\xe9\r\n"
#: Prints the child's variable X as raw bytes.
CHILD = 'import os, sys; sys.stdout.buffer.write(os.environb[b"X"])'
#: Values ``secret get`` must print exactly (its old habit was to add a newline).
EXACT = {
    "PLAIN": b"no newline",
    "NL": b"ends in a newline\n",
    "CRLF": b"windows\r\n",
    "TWO_NL": b"two\n\n",
    "NUL": b"a\x00b",
    "BIN": BINARY,
}

pytestmark = pytest.mark.skipif(
    SEALBOX is None, reason="the sealbox console script is not installed"
)


def _sealbox(
    *args: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    assert SEALBOX is not None
    return subprocess.run(
        [SEALBOX, *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=BOUND,
        check=False,
    )


def _base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.update(SEALBOX_HOME=str(tmp_path / "home"), SEALBOX_PROJECT="payments", SEALBOX_ENV="dev")
    return env


def _set_from_files(tmp_path: Path, env: dict[str, str]) -> None:
    for name, value in EXACT.items():
        source = tmp_path / f"{name}.bin"
        source.write_bytes(value)
        done = _sealbox("secret", "set", name, "--from-file", str(source), env=env)
        assert done.returncode == 0, done.stderr


def _check_round_trips(env: dict[str, str]) -> None:
    for name, value in EXACT.items():
        got = _sealbox("secret", "get", name, env=env)
        assert got.returncode == 0, got.stderr
        assert got.stdout == value, name
    shown = _sealbox("secret", "get", "BIN", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert "value" not in data
    assert base64.b64decode(data["value_base64"]) == BINARY
    # run: the child's environment holds the exact bytes (never U+FFFD, never re-encoded).
    ran = _sealbox("run", "--only", "BIN", "--", PY, "-c", CHILD.replace('b"X"', 'b"BIN"'), env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == BINARY
    # A NUL cannot be in an environment: refused, naming the variable, nothing run.
    refused = _sealbox("run", "--only", "NUL", "--", PY, "-c", "print('ran')", env=env)
    assert refused.returncode != 0
    assert b"ran" not in refused.stdout
    assert b"secret NUL holds a NUL byte" in refused.stderr
    # Exports: JSON carries the bytes as base64; dotenv refuses, naming the variable.
    exported = _sealbox("export", "--format", "json", "--only", "BIN,PLAIN", env=env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == {
        "BIN": {"value_base64": base64.b64encode(BINARY).decode()},
        "PLAIN": "no newline",
    }
    dotenv = _sealbox("export", "--only", "BIN", env=env)
    assert dotenv.returncode != 0
    assert b"secret BIN is not UTF-8 text" in dotenv.stderr
    assert BINARY not in dotenv.stdout + dotenv.stderr


def test_embedded_values_are_byte_exact(tmp_path: Path) -> None:
    env = _base_env(tmp_path)
    init = _sealbox("init", "--key-file", str(tmp_path / "master.key"), env=env)
    assert init.returncode == 0, init.stderr
    assert _sealbox("project", "create", "payments", env=env).returncode == 0
    _set_from_files(tmp_path, env)
    _check_round_trips(env)
    # The example of the docs: set X from a binary file, the child writes its bytes.
    (tmp_path / "x.bin").write_bytes(BINARY)
    done = _sealbox("secret", "set", "X", "--from-file", str(tmp_path / "x.bin"), env=env)
    assert done.returncode == 0, done.stderr
    ran = _sealbox("run", "--only", "X", "--", PY, "-c", CHILD, env=env)
    assert (ran.returncode, ran.stdout) == (0, BINARY), ran.stderr


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with live_server(tmp_path) as server:
        with Client(server.url, server.token) as admin:
            admin.create_project("payments")
        yield server


def test_remote_values_are_byte_exact(live: Live, tmp_path: Path) -> None:
    env = {
        **_base_env(tmp_path),
        "SEALBOX_ADDR": live.url,
        "SEALBOX_TOKEN": live.token,
        "SEALBOX_HOME": str(tmp_path / "client"),
    }
    _set_from_files(tmp_path, env)
    _check_round_trips(env)
    # --watch runs the child under a supervising sealbox (subprocess, not exec): same bytes.
    (tmp_path / "x.bin").write_bytes(BINARY)
    done = _sealbox("secret", "set", "X", "--from-file", str(tmp_path / "x.bin"), env=env)
    assert done.returncode == 0, done.stderr
    ran = _sealbox("run", "--watch", "--only", "X", "--", PY, "-c", CHILD, env=env)
    assert (ran.returncode, ran.stdout) == (0, BINARY), ran.stderr


def test_a_sealbox_server_process_carries_binary_values_and_the_whole_limit(
    tmp_path: Path,
) -> None:
    from tests.e2e.test_server_lifecycle import init_admin, server_process

    from sealbox.errors import InvalidInput
    from sealbox.model import MAX_VALUE_BYTES, SecretRef, SecretValue

    server_env = {**_base_env(tmp_path), "SEALBOX_HOME": str(tmp_path / "server")}
    init = _sealbox("init", "--key-file", str(tmp_path / "master.key"), env=server_env)
    assert init.returncode == 0, init.stderr
    token = init_admin(server_env)
    # body_limit at its smallest: a body carrying a value is bounded by the value limit.
    (tmp_path / "server.toml").write_text("body_limit = 1024\nworkers = 1\n")
    with server_process(server_env, "--config", str(tmp_path / "server.toml")) as (url, _):
        with Client(url, token) as sdk:
            sdk.create_project("payments")
            escaped = "\x00\x1f" * (MAX_VALUE_BYTES // 2)  # 6 bytes a byte in JSON
            ref = SecretRef("payments", "dev", "BIG")
            sdk.set(ref, SecretValue(escaped))
            assert sdk.get(ref).value == SecretValue(escaped)
            with pytest.raises(InvalidInput, match=f"larger than {MAX_VALUE_BYTES} bytes"):
                sdk._call("PUT", "/v1/secrets/payments/dev/BIG", body={"value": escaped + "x"})
        env = {
            **_base_env(tmp_path),
            "SEALBOX_ADDR": url,
            "SEALBOX_TOKEN": token,
            "SEALBOX_HOME": str(tmp_path / "client"),
        }
        (tmp_path / "x.bin").write_bytes(BINARY)
        done = _sealbox("secret", "set", "X", "--from-file", str(tmp_path / "x.bin"), env=env)
        assert done.returncode == 0, done.stderr
        got = _sealbox("secret", "get", "X", env=env)
        assert (got.returncode, got.stdout) == (0, BINARY), got.stderr
        ran = _sealbox("run", "--only", "X", "--", PY, "-c", CHILD, env=env)
        assert (ran.returncode, ran.stdout) == (0, BINARY), ran.stderr
