"""Standing leak-canary suite (issue 10): the suite's secret values are canaries; a
realistic scenario runs through every front end; then every output, log, audit record,
database row, spool and file is scanned for them with sealbox's known-value scanner.

Front ends: the embedded CLI (set, get, run, export, import, history, rollback, meta,
delete, list), a real ``sealbox server`` (JSON access log at debug level), its native HTTP
API, KV v2 through hvac, the SDK client and the CLI in remote mode; and the error paths:
a canary as a wrong token, in a wrong field, as a name, and in CAS-rejected writes.

What delivers a value by design (``secret get``, ``export`` and value reads' bodies) is
checked for the right value and not scanned; its stderr is. Everything else is scanned.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.standing.canary import (
    CanaryCheck,
    binary_canary,
    text_canary,
    unicode_canary,
)
from tests.standing_summary import record

from sealbox.model import SecretRef, SecretValue
from sealbox.scan.text import ScanText

SEALBOX = shutil.which("sealbox", path=os.path.dirname(sys.executable))
pytestmark = pytest.mark.skipif(SEALBOX is None, reason="the sealbox console script is missing")
ADMIN_PASSWORD = "correct horse battery staple"
PROJECT, ENV = "payments", "dev"


class Scenario:
    """Runs the front ends, keeping everything they print for the final scan."""

    def __init__(self, tmp_path: Path, check: CanaryCheck) -> None:
        self.tmp = tmp_path
        self.check = check
        self.captured: list[tuple[str, bytes, bool]] = []
        #: Outputs that deliver values by design: not leaks, and the live proof that the
        #: check recognises these canaries where they are.
        self.deliveries: list[tuple[str, bytes]] = []
        #: Directories outside the test's own where sealbox put value files.
        self.outside: list[Path] = []
        self.inputs = tmp_path / "inputs"
        self.inputs.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
        self.env.update(
            SEALBOX_HOME=str(tmp_path / "home"), SEALBOX_PROJECT=PROJECT, SEALBOX_ENV=ENV
        )

    def canary(
        self, label: str, kind: Callable[[], str] = text_canary, *, name: bool = False
    ) -> str:
        """A new canary; ``name``: sent as a name or path segment, not a value."""
        value = kind()
        self.check.add(label, value, name=name)
        return value

    def keep(self, where: str, data: bytes | str, *, reply: bool = False) -> None:
        """Keep output for the scan; ``reply``: what the server answered the sender."""
        blob = data.encode() if isinstance(data, str) else data
        self.captured.append((where, blob, reply))

    def cli(
        self,
        *args: str,
        stdin: bytes = b"",
        ok: bool = True,
        delivers: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """``sealbox ARGS``; stdout is kept for the scan unless it delivers values."""
        assert SEALBOX is not None
        r = subprocess.run(
            [SEALBOX, *args],
            input=stdin,
            env=env or self.env,
            cwd=self.tmp,
            capture_output=True,
            timeout=120,
            check=False,
        )
        where = "sealbox " + " ".join(args)[:80]
        assert (r.returncode == 0) == ok, (where, r.returncode, r.stderr[-2000:])
        self.keep(f"{where} (stderr)", r.stderr)
        if delivers:
            self.deliveries.append((where, r.stdout))
        else:
            self.keep(f"{where} (stdout)", r.stdout)
        return r

    def input_file(self, name: str, data: bytes) -> Path:
        path = self.inputs / name
        path.write_bytes(data)
        return path


def _embedded_cli(s: Scenario) -> None:
    """The embedded CLI, values set from stdin, a file and a dotenv import."""
    assert s.cli("init", "--key-file", str(s.tmp / "master.key"), env={**s.env}).returncode == 0
    s.cli("project", "create", PROJECT)
    db1, db2 = s.canary("cli DB_PASSWORD v1"), s.canary("cli DB_PASSWORD v2")
    blob = binary_canary()
    s.check.add("cli BLOB (binary)", blob)
    uni = s.canary("cli UNI (unicode)", unicode_canary)
    s.cli("secret", "set", "DB_PASSWORD", stdin=db1.encode())
    s.cli("secret", "set", "DB_PASSWORD", "--json", stdin=db2.encode())
    s.cli("secret", "set", "BLOB", "--from-file", str(s.input_file("blob.bin", blob)))
    s.cli("secret", "set", "UNI", stdin=uni.encode())

    assert s.cli("secret", "get", "DB_PASSWORD", delivers=True).stdout == db2.encode()
    got = s.cli("secret", "get", "DB_PASSWORD", "--version", "1", delivers=True)
    assert got.stdout == db1.encode()
    # run: the child proves it got the values without printing them.
    probe = (
        "import hashlib, os; "
        "print(hashlib.sha256(os.environb[b'DB_PASSWORD'] + os.environb[b'UNI']).hexdigest())"
    )
    r = s.cli("run", "--only", "DB_PASSWORD,UNI", "--", sys.executable, "-c", probe)
    assert r.stdout.strip() == hashlib.sha256(db2.encode() + uni.encode()).hexdigest().encode()
    mounted = s.tmp / "mnt" / "secrets.env"
    mounted.parent.mkdir()
    probe = "import os; print(os.path.getsize(os.environ['SEALBOX_SECRETS_FILE']) > 0)"
    # dotenv carries text only: BLOB (not UTF-8) is left out (tested refused just below).
    text_only = ("--only", "DB_PASSWORD,UNI")
    r = s.cli("run", "--mount", str(mounted), *text_only, "--", sys.executable, "-c", probe)
    assert r.stdout.strip() == b"True"  # and the file is gone now (the tree scan sees it)
    # A bare name goes to a private directory on tmpfs: it is gone after the run too.
    probe = "import os; print(os.environ['SEALBOX_SECRETS_FILE'])"
    r = s.cli("run", "--mount", "secrets.env", *text_only, "--", sys.executable, "-c", probe)
    s.outside.append(Path(r.stdout.decode().strip()).parent)

    # Refused, naming BLOB, and nothing of any value in the error.
    assert b"secret BLOB is not UTF-8" in s.cli("export", ok=False).stderr
    assert db2.encode() in s.cli("export", *text_only, delivers=True).stdout
    exported = json.loads(s.cli("export", "--format", "json", delivers=True).stdout)
    assert uni in exported.values() and set(exported["BLOB"]) == {"value_base64"}
    out = s.tmp / "exported.env"
    s.cli("export", "-o", str(out), *text_only)
    assert oct(out.stat().st_mode & 0o777) == "0o600" and db2.encode() in out.read_bytes()
    out.unlink()  # a delivery the user asked for: not a leak

    imp1, imp2 = s.canary("cli import A"), s.canary("cli import B")
    s.cli("import", str(s.input_file("good.env", f'IMP_A={imp1}\nIMP_B="{imp2}"\n'.encode())))
    s.cli("secret", "history", "DB_PASSWORD", "--json")
    s.cli("secret", "rollback", "DB_PASSWORD", "1")
    s.cli("secret", "meta", "DB_PASSWORD", "--owner", "team-pay", "--tag", "canary")
    s.cli("secret", "meta", "DB_PASSWORD", "--json")
    s.cli("secret", "list", "--json")
    s.cli("secret", "delete", "UNI")

    # Error paths, each with a canary where it does not belong.
    rejected = s.canary("cli CAS-rejected")
    r = s.cli(
        "secret", "set", "DB_PASSWORD", "--if-version", "99", stdin=rejected.encode(), ok=False
    )
    assert r.returncode == 5
    s.cli(
        "secret", "set", "BAD NAME", stdin=s.canary("cli value for a bad name").encode(), ok=False
    )
    s.cli("secret", "set", "payments/nope/X", stdin=s.canary("cli bad env").encode(), ok=False)
    s.cli("secret", "get", "DB_PASSWORD", "--version", "99", ok=False)
    bad = s.canary("cli bad dotenv line")
    s.cli(
        "import", str(s.input_file("bad.env", f"OK=1\n1BAD={bad}\nX='{bad}\n".encode())), ok=False
    )
    s.cli("run", "--only", "DB_PASSWORD,MISSING", "--", "true", ok=False)


def _start_server(s: Scenario) -> tuple[str, str, subprocess.Popen[bytes], Path]:
    from sealbox.server.testing import free_port, wait_for_port

    boot = s.cli(
        "server", "init", "--admin", "boss", env={**s.env, "SEALBOX_ADMIN_PASSWORD": ADMIN_PASSWORD}
    )
    token = boot.stdout.decode().strip()
    cfg = s.tmp / "server.toml"
    cfg.write_text('log_level = "debug"\n')
    log = s.tmp / "server.log"
    port = free_port()
    assert SEALBOX is not None
    with log.open("wb") as sink:
        address = f"127.0.0.1:{port}"
        proc = subprocess.Popen(
            [SEALBOX, "server", "--address", address, "--workers", "1", "--config", str(cfg)],
            env=s.env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_port(port, timeout=30)
    return f"http://127.0.0.1:{port}", token, proc, log


def _native_http(s: Scenario, url: str, token: str) -> None:
    import httpx2

    h = {"Authorization": f"Bearer {token}"}
    base = f"{url}/v1/secrets/{PROJECT}/{ENV}"
    with httpx2.Client(headers=h, timeout=30) as c:

        def keep(r: Any, what: str) -> Any:
            s.keep(f"http {what} -> {r.status_code}", r.content, reply=True)
            s.keep(f"http {what} headers", repr(dict(r.headers)), reply=True)
            return r

        v1, v2 = s.canary("http API_KEY v1"), s.canary("http API_KEY v2")
        assert keep(c.put(f"{base}/API_KEY", json={"value": v1}), "put").status_code == 200
        r = c.put(f"{base}/API_KEY", json={"value": v2, "if_version": 1})
        assert keep(r, "put cas").json()["version"] == 2
        r = c.get(f"{base}/API_KEY")
        assert r.json()["value"] == v2
        s.deliveries.append(("http read", r.content))
        assert c.get(f"{base}/API_KEY", params={"version": 1}).json()["value"] == v1
        assert keep(c.get(f"{base}/API_KEY/history"), "history").status_code == 200
        keep(c.post(f"{base}/API_KEY/rollback", json={"version": 1}), "rollback")
        keep(c.patch(f"{base}/API_KEY/meta", json={"owner": "team-api"}), "meta")
        keep(c.get(f"{base}/API_KEY/meta"), "get meta")
        keep(c.get(base), "list")
        assert c.get(f"{url}/v1/resolve/{PROJECT}/{ENV}").status_code == 200  # delivery
        keep(c.delete(f"{base}/API_KEY"), "delete")
        keep(c.post(f"{base}/API_KEY/undelete", json={}), "undelete")

        # Error paths.
        wrong = {"Authorization": f"Bearer {s.canary('http canary as a token')}"}
        r = keep(c.get(f"{base}/API_KEY", headers=wrong), "wrong token")
        assert r.status_code in (401, 403)
        sbx_like = "sbx_p_" + s.canary("http token-shaped canary").replace("-", "")
        keep(c.get(f"{base}/API_KEY", headers={"Authorization": f"Bearer {sbx_like}"}), "bad sbx")
        keep(c.put(f"{base}/API_KEY", json={"valeu": s.canary("http wrong field")}), "wrong field")
        body = {"value": s.canary("http with a bad if_version"), "if_version": "x" + "1"}
        keep(c.put(f"{base}/API_KEY", json=body), "bad if_version")
        keep(c.put(f"{base}/API_KEY", json={"value": 12345678901}), "value not a string")
        r = c.put(f"{base}/API_KEY", json={"value": s.canary("http CAS-rejected"), "if_version": 1})
        assert keep(r, "cas conflict").status_code == 409
        bad_name = s.canary("http canary as a name", name=True) + "!"
        keep(c.put(f"{base}/{bad_name}", json={"value": "x" * 10}), "bad name")
        keep(c.get(f"{base}/API_KEY", params={"version": s.canary("http as a version")}), "ver")
        raw = b'{"value": "' + s.canary("http broken JSON").encode() + b'"'
        keep(
            c.put(
                f"{base}/API_KEY", content=raw, headers={**h, "Content-Type": "application/json"}
            ),
            "broken json",
        )


def _kv_v2(s: Scenario, url: str, token: str) -> None:
    import hvac
    import hvac.exceptions

    kv = hvac.Client(url=url, token=token).secrets.kv.v2
    path = f"{PROJECT}/{ENV}/kv/stripe"
    pw1, pw2 = s.canary("kv password v1"), s.canary("kv password v2")
    s.keep(
        "hvac create", repr(kv.create_or_update_secret(path, secret={"password": pw1, "u": "svc"}))
    )
    s.keep("hvac patch", repr(kv.patch(path, secret={"password": pw2})))
    got = kv.read_secret_version(path, raise_on_deleted_version=True)  # delivery
    assert got["data"]["data"]["password"] == pw2
    s.keep("hvac metadata", repr(kv.read_secret_metadata(path)))
    s.keep("hvac list", repr(kv.list_secrets(f"{PROJECT}/{ENV}/kv")))
    errors: list[tuple[str, Callable[[], Any]]] = [
        (
            "cas",
            lambda: kv.create_or_update_secret(
                path, secret={"password": s.canary("kv CAS-rejected")}, cas=0
            ),
        ),
        (
            "wrong token",
            lambda: hvac.Client(
                url=url, token=s.canary("kv canary as a token")
            ).secrets.kv.v2.read_secret_version(path, raise_on_deleted_version=True),
        ),
        (
            "bad path",
            lambda: kv.create_or_update_secret(
                f"{PROJECT}/{s.canary('kv as a folder', name=True)} x", secret={"a": "b" * 9}
            ),
        ),
    ]
    for what, call in errors:
        try:
            result = call()
        except hvac.exceptions.VaultError as exc:
            s.keep(f"hvac {what} error", f"{exc!s} {exc!r}", reply=True)
        else:
            raise AssertionError(f"hvac {what}: no error but {result!r}")
    kv.delete_latest_version_of_secret(path)
    kv.undelete_secret_versions(path, versions=[2])


def _sdk(s: Scenario, url: str, token: str) -> None:
    from sealbox.client import Client
    from sealbox.errors import SealboxError

    ref = SecretRef(PROJECT, ENV, "SDK_TOKEN")
    c1 = s.canary("sdk v1")
    client = Client(url, token, offline=True, cache_dir=s.tmp / "home" / "sdk-cache")
    try:
        assert client.set(ref, SecretValue(c1)) == 1
        assert client.get(ref).value.reveal() == c1  # delivery
        s.keep("sdk history", repr(client.history(ref)))
        s.keep("sdk meta", repr(client.update_meta(ref, owner="team-sdk")))
        s.keep("sdk info", repr(client.info(ref)))
        s.keep("sdk repr", repr(client))
        with pytest.raises(SealboxError) as exc:
            client.set(ref, SecretValue(s.canary("sdk CAS-rejected")), if_version=9)
        s.keep("sdk cas error", f"{exc.value!s} {exc.value!r} {exc.value.diagnostics()}")
    finally:
        client.close()
    bad = Client(url, s.canary("sdk canary as a token"))
    try:
        with pytest.raises(SealboxError) as exc:
            bad.get(ref)
        s.keep("sdk wrong token", f"{exc.value!s} {exc.value!r} {bad!r}")
    finally:
        bad.close()


def _remote_cli(s: Scenario, url: str, token: str) -> None:
    remote = {**s.env, "SEALBOX_ADDR": url, "SEALBOX_TOKEN": token}
    value = s.canary("remote cli value")
    s.cli("secret", "set", "REMOTE", stdin=value.encode(), env=remote)
    assert (
        s.cli("secret", "get", "REMOTE", env=remote, delivers=True).stdout.strip() == value.encode()
    )
    s.cli("secret", "history", "REMOTE", env=remote)
    rejected = s.canary("remote cli CAS-rejected")
    s.cli(
        "secret",
        "set",
        "REMOTE",
        "--if-version",
        "7",
        stdin=rejected.encode(),
        env=remote,
        ok=False,
    )
    wrong = {**remote, "SEALBOX_TOKEN": s.canary("remote cli canary as a token")}
    s.cli("secret", "get", "REMOTE", env=wrong, ok=False)


def _spool_snapshot(s: Scenario) -> None:
    """A server-mode vault's spool holds its events before the drain: copied for the scan
    (a server's own spool is empty again by the time it stops)."""
    from sealbox.factory import open_vault

    vault = open_vault(env=s.env, source="api", audit_node="canary-spool")
    try:
        vault.serve()
        for name in ("DB_PASSWORD", "BLOB", "IMP_A", "IMP_B"):
            vault.get(SecretRef(PROJECT, ENV, name), reveal=True)
        vault.resolve(PROJECT, ENV)
        spools = sorted((s.tmp / "home" / "vault.db.audit-spool").glob("*.spool"))
        assert any(p.stat().st_size for p in spools)
        kept = s.tmp / "spool-snapshot"
        kept.mkdir()
        for path in spools:
            shutil.copyfile(path, kept / path.name)
    finally:
        vault.close()


def run_everything(tmp_path: Path, check: CanaryCheck) -> Scenario:
    s = Scenario(tmp_path, check)
    _embedded_cli(s)
    _spool_snapshot(s)
    url, token, proc, log = _start_server(s)
    try:
        _native_http(s, url, token)
        _kv_v2(s, url, token)
        _sdk(s, url, token)
        _remote_cli(s, url, token)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()[-3000:]
    assert b'"route"' in log.read_bytes()  # the access log was captured
    # The audit trail as sealbox shows it; the raw rows come with the database scan.
    s.cli("audit", "log", "--json", "--limit", "100000")
    s.cli("audit", "verify")
    return s


def scan_everything(s: Scenario) -> int:
    """Scan every captured output and every file and row left; returns places scanned."""
    check = s.check
    detector = check.detector()
    for where, data in s.deliveries:
        hits = list(detector.detect(ScanText(data, where), frozenset()))
        assert hits, f"{where}: the delivered value was not recognised"
    for where, data, reply in s.captured:
        check.scan(where, data, reply=reply)
    shutil.rmtree(s.inputs)  # the user's own input files, which hold canaries by design
    home = s.tmp / "home"
    spool = home / "vault.db.audit-spool"
    assert spool.is_dir()  # the server spooled its audit events there
    rows = check.scan_sqlite(home / "vault.db")
    files = check.scan_tree(s.tmp)
    for directory in s.outside:
        if directory.exists():
            files += check.scan_tree(directory)
            check.found.append(f"{directory}: left behind after the run")
    assert rows > 50 and files > 5
    return check.scanned


@pytest.mark.slow
# hvac's own patch() reads without raise_on_deleted_version and warns of its v3 default.
@pytest.mark.filterwarnings("ignore:The raise_on_deleted_version:DeprecationWarning")
def test_no_canary_escapes_any_front_end(tmp_path: Path) -> None:
    check = CanaryCheck()
    s = run_everything(tmp_path, check)
    scanned = scan_everything(s)
    record("canary", "canaries", len(check.canaries))
    record("canary", "files and records scanned", scanned)
    record("canary", "found", len(check.found))
    assert check.found == [], "\n".join(check.found)


# -- the check finds what it looks for ---------------------------------------------------------
def _forms(value: bytes) -> dict[str, bytes]:
    """A value as a leak may show it: raw and in each encoding the suite looks for."""
    forms = {
        "raw": value,
        "base64": base64.b64encode(value),
        "base64 unpadded": base64.b64encode(value).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(value),
        "base64url unpadded": base64.urlsafe_b64encode(value).rstrip(b"="),
        "hex": value.hex().encode(),
        "HEX": value.hex().upper().encode(),
        "url-encoded": urllib.parse.quote_from_bytes(value, safe="").encode(),
        "form-encoded": urllib.parse.quote_plus(value, safe="").encode(),
    }
    for k in (1, 2):  # inside a longer base64 stream, at the other two alignments
        forms[f"base64 offset {k}"] = base64.b64encode(b"x" * k + value + b"tail")
        forms[f"base64url offset {k}"] = base64.urlsafe_b64encode(b"\xfb" * k + value + b"!")
    try:
        text = value.decode()
    except UnicodeDecodeError:
        pass
    else:
        forms["json-escaped"] = json.dumps({"v": text}).encode()
    return forms


@pytest.mark.parametrize("kind", ["text", "unicode", "binary"])
def test_the_canary_check_finds_a_planted_canary_in_every_form(tmp_path: Path, kind: str) -> None:
    """Planted in a file, a database row and a captured output, in each form: found each
    time (so the suite cannot pass by looking in the wrong way or place)."""
    import sqlite3

    check = CanaryCheck()
    make = {"text": text_canary, "unicode": unicode_canary, "binary": binary_canary}[kind]
    value = make()
    raw = value.encode() if isinstance(value, str) else value
    check.add("planted", value)
    for name, form in _forms(raw).items():
        assert check.scan(f"output with {name}", b"log: " + form + b" end") >= 1, name
        tree = tmp_path / name.replace(" ", "_")
        (tree / "sub").mkdir(parents=True)
        (tree / "sub" / "f.log").write_bytes(b"prefix " + form)
        before = len(check.found)
        assert check.scan_tree(tree) == 1
        assert len(check.found) > before, name
        db = tree / "vault.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE sb_audit (id INTEGER, event TEXT)")
            conn.execute("CREATE TABLE sb_versions (id INTEGER, ciphertext BLOB, stage TEXT)")
            conn.execute("INSERT INTO sb_audit VALUES (1, ?)", (form,))
            conn.execute("INSERT INTO sb_versions VALUES (1, ?, 'current')", (form,))
        conn.close()
        before = len(check.found)
        assert check.scan_sqlite(db) == 2
        # Found in the event column, not in the ciphertext column (which is not scanned).
        assert [f.split(":")[1] for f in check.found[before:]] == ["sb_audit row 0"], name
    assert "planted" not in repr(check.detector())
    for finding in check.found:
        assert raw.decode("latin-1") not in finding
