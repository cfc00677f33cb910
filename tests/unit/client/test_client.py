"""sealbox.Client against a live server: parity with the embedded Vault, errors, no leaks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.unit.client.live import ADMIN_PASSWORD, Live

import sealbox
from sealbox import errors
from sealbox.cli.hints import CLI_HINTS
from sealbox.client import Client
from sealbox.client.errors import ERROR_CLASSES, BadReply, error_for, error_for_status
from sealbox.client.transport import Address, Transport
from sealbox.factory import open_vault
from sealbox.model import Classification, SecretRef, SecretValue

CANARY = "canary-value-8c1f5e2a"
REF = SecretRef("payments", "dev", "DB_PASSWORD")


def test_client_is_exported_lazily() -> None:
    import subprocess
    import sys

    code = "import sys, sealbox; print('sealbox.client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert sealbox.Client is Client


def _scenario(v: Any) -> list[Any]:
    """The same calls on an embedded Vault and on a Client; comparable results."""
    out: list[Any] = []

    def attempt(fn: Any, *a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except errors.SealboxError as exc:
            return ("error", type(exc).__name__)

    out.append(attempt(v.create_project, "payments"))
    out.append(attempt(v.create_project, "payments"))
    out.append(sorted(v.list_projects()))
    out.append(attempt(v.create_env, "payments", "qa"))
    out.append(sorted(v.list_envs("payments")))
    out.append(v.set(REF, SecretValue(CANARY)))
    out.append(v.set(REF, SecretValue("second"), if_version=1))
    out.append(attempt(v.set, REF, SecretValue("x"), if_version=1))
    out.append(attempt(v.set, REF, SecretValue("x"), if_version=-1))
    s = v.get(REF)
    out.append((s.version, s.value.reveal()))
    out.append(v.get(REF, version=1).value.reveal())
    out.append(attempt(v.get, REF, version=9))
    out.append(attempt(v.get, REF, version=0))
    out.append(attempt(v.get, SecretRef("payments", "dev", "MISSING")))
    out.append({k: x.reveal() for k, x in v.resolve("payments", "dev").items()})
    out.append(attempt(v.resolve, "payments", "dev", only=["NOPE"]))
    out.append(attempt(v.resolve, "payments", "dev", only=["bad-name"]))
    out.append([(h.version, h.stage, h.rollback_of) for h in v.history(REF)])
    out.append(v.rollback(REF, 1))
    out.append(v.get(REF).value.reveal())
    meta = v.update_meta(
        REF,
        owner="team-a",
        classification=Classification.HIGH,
        tags=("db", "pci"),
        rotate_every_days=30,
    )
    out.append(meta.to_dict())
    out.append(attempt(v.update_meta, REF, colour="red"))
    out.append(v.info(REF).meta.to_dict())
    info = v.info(REF)
    out.append((info.ref.path, info.current_version, info.deleted_at))
    listed = v.list_secrets("payments", "dev")
    out.append([(i.ref.path, i.current_version, i.meta.owner) for i in listed])
    v.delete(REF)
    out.append(attempt(v.get, REF))
    out.append([i.ref.name for i in v.list_secrets("payments", "dev", include_deleted=True)])
    v.undelete(REF)
    out.append(v.get(REF).version)
    out.append(v.purge(REF))
    out.append(attempt(v.get, REF))
    out.append(attempt(v.list_envs, "Bad Project"))
    return out


def test_client_matches_the_embedded_vault(live: Live, tmp_path: Path) -> None:
    with Client(live.url, live.token) as client:
        remote = _scenario(client)
    # The same scenario embedded, on a second vault of the same kind.
    import os

    os.environ["SEALBOX_HOME"] = str(tmp_path / "home2")
    from sealbox.cli.main import main

    assert main(["init", "--key-file", str(tmp_path / "k2.key")]) == 0
    vault = open_vault()
    try:
        embedded = _scenario(vault)
    finally:
        vault.close()
    assert remote == embedded


def test_accounts_round_trip(live: Live) -> None:
    from sealbox.auth.policy import parse_policy

    with Client(live.url, live.token) as client:
        acc = client.accounts
        policy = parse_policy(
            {
                "name": "reader",
                "rules": [
                    {"path": "payments/dev/*", "capabilities": ["read", "list"]},
                    {"path": "payments/dev/ROOT_*", "capabilities": ["deny"]},
                ],
            }
        )
        acc.apply_policy(policy)
        assert acc.get_policy("reader") == policy
        assert {p.name for p in acc.list_policies()} == {"root", "reader"}
        machine = acc.create_machine("ci", ["reader"])
        assert machine.kind == "machine" and machine.role_id
        person = acc.create_person("alice", "a long enough password", ["reader"])
        assert person.kind == "person"
        assert acc.get_identity("ci").policies == ("reader",)
        assert {i.name for i in acc.list_identities()} == {"admin", "ci", "alice"}
        d = acc.explain("ci", "payments/dev/ROOT_KEY", "read")
        assert not d.allowed and d.rule is not None and d.rule.deny and d.policy == "reader"
        d = acc.explain("ci", "payments/dev/DB", "read")
        assert d.allowed and d.explain().startswith("ALLOW read on payments/dev/DB")
        with pytest.raises(errors.InvalidInput):
            acc.explain("ci", "payments/dev/DB", "fly")
        secret_id = acc.new_secret_id("ci", uses=1, ttl=timedelta(minutes=5))
        ci = Client.login_approle(live.url, machine.role_id or "", secret_id)
        assert ci.token_self()["identity"] == "ci"
        with pytest.raises(errors.AuthenticationFailed):  # single use
            Client.login_approle(live.url, machine.role_id or "", secret_id)
        with pytest.raises(errors.AccessDenied):
            ci.accounts.list_identities()
        new = acc.create_token(identity="ci", ttl=timedelta(minutes=10))
        assert new.value.startswith("sbx_") and repr(new).count("***") == 1
        tokens = acc.list_tokens("ci")
        assert new.accessor in {t.accessor for t in tokens}
        acc.revoke_token(new.accessor)
        assert acc.revoke_identity_tokens("ci") >= 1
        with pytest.raises(errors.AuthenticationFailed):
            ci.list_projects()
        acc.set_policies("alice", [])
        assert acc.get_identity("alice").policies == ()
        acc.delete_identity("alice")
        with pytest.raises(errors.NotFound):
            acc.get_identity("alice")
        acc.delete_policy("reader")
        with pytest.raises(errors.InvalidInput):
            acc.delete_policy("root")
        ci.close()


def test_login_renew_and_revoke_self(live: Live) -> None:
    with pytest.raises(errors.AuthenticationFailed):
        Client.login_password(live.url, "admin", "wrong password!")
    client = Client.login_password(live.url, "admin", ADMIN_PASSWORD)
    me = client.token_self()
    assert me["identity"] == "admin" and "token" not in me
    before = datetime.now(UTC)
    renewed = datetime.fromisoformat(client.renew(timedelta(minutes=30)))
    # (Compared as times: a token renewed at 23:50 expires on the next day's date.)
    assert before + timedelta(minutes=29) < renewed <= datetime.now(UTC) + timedelta(minutes=30)
    client.revoke_self()
    with pytest.raises(errors.AuthenticationFailed) as exc:
        client.list_projects()
    assert "log in" in (exc.value.hint or "") and "`sealbox" not in (exc.value.hint or "")
    assert "sealbox login" in exc.value.diagnostics(CLI_HINTS)  # the CLI names its command


def test_error_table_covers_every_core_error() -> None:
    for cls in errors.ALL_ERRORS:
        assert ERROR_CLASSES[cls.code] is cls
        raised = error_for(cls.code, "msg", status=400, where="http://x")
        assert type(raised) is cls
    assert isinstance(error_for("who_knows", "m", status=503, where="x"), errors.BackendUnavailable)
    assert type(error_for("who_knows", "m", status=418, where="x")) is errors.SealboxError
    assert isinstance(error_for_status(502, "x"), errors.BackendUnavailable)
    assert isinstance(error_for_status(401, "x"), errors.AuthenticationFailed)
    assert isinstance(error_for_status(418, "x"), BadReply)


@pytest.mark.parametrize(
    "addr",
    ["localhost:8200", "ftp://x", "http://user:pw@host", "http://", "http://h:99999", ""],
)
def test_bad_addresses_are_refused(addr: str) -> None:
    with pytest.raises(errors.InvalidInput):
        Address.parse(addr)


def test_address_display() -> None:
    assert Address.parse("https://vault.example:443/").display == "https://vault.example"
    assert Address.parse("http://[::1]:8200/sb").display == "http://[::1]:8200/sb"


def test_server_down_is_backend_unavailable_naming_the_address() -> None:
    from sealbox.server.testing import free_port

    url = f"http://127.0.0.1:{free_port()}"
    token = "sbx_s_" + "A" * 49
    client = Client(url, token)
    with pytest.raises(errors.BackendUnavailable) as exc:
        client.list_projects()
    assert url in exc.value.message and "refused" in exc.value.message
    assert token not in exc.value.diagnostics() and token not in repr(client)


def test_no_token_is_an_authentication_error() -> None:
    with pytest.raises(errors.AuthenticationFailed):
        Client("http://127.0.0.1:1", "  ")


def test_wrong_token(live: Live) -> None:
    with pytest.raises(errors.AuthenticationFailed):
        Client(live.url, "sbx_s_" + "B" * 49).list_projects()


class _Garbage:
    """A plain HTTP server that answers every request with a fixed, broken reply."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        del outer

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"<html>proxy login</html>", BadReply),
        (200, b'{"unexpected": true}', BadReply),
        (502, b"<html>bad gateway</html>", errors.BackendUnavailable),
        (404, b"not here", errors.NotFound),
        (403, b'{"error": {"code": "access_denied", "message": "nope"}}', errors.AccessDenied),
    ],
)
def test_malformed_replies_get_clear_errors(status: int, body: bytes, expected: type) -> None:
    server = _Garbage(status, body)
    try:
        with pytest.raises(expected) as exc:
            Client(server.url, "sbx_s_" + "C" * 49).list_projects()
        assert "Traceback" not in exc.value.message
        assert "sbx_s_" not in exc.value.diagnostics()
    finally:
        server.close()


def test_a_reply_of_the_wrong_shape_is_a_bad_reply_naming_the_field() -> None:
    server = _Garbage(200, b'{"projects": [1, 2]}')
    try:
        with pytest.raises(BadReply) as exc:
            Client(server.url, "sbx_s_" + "C" * 49).list_projects()
        assert "malformed reply from the sealbox server" in exc.value.message
        assert "(projects): field 'projects' is not a list of text" in exc.value.message
    finally:
        server.close()


def test_keep_alive_connection_is_reused_and_survives_a_server_close(live: Live) -> None:
    client = Client(live.url, live.token)
    client.list_projects()
    transport: Transport = client._transport
    conn = transport._local.conn
    client.list_projects()
    assert transport._local.conn is conn  # one connection for both
    import socket
    import time

    # As if the server had closed an idle keep-alive connection.
    conn.sock.shutdown(socket.SHUT_RDWR)
    time.sleep(0.1)
    assert client.list_projects() == []
    client.close()


def test_values_and_tokens_never_leak(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client(live.url, live.token, offline=True, cache_ttl=0)
    client.create_project("payments")
    client.set(REF, SecretValue(CANARY))
    secret = client.get(REF)
    values = client.resolve("payments", "dev")
    texts = [repr(client), repr(secret), repr(values), repr(client.accounts), str(secret.value)]
    for exc_call in (
        lambda: client.get(SecretRef("payments", "dev", "NOPE")),
        lambda: client.set(REF, SecretValue(CANARY), if_version=99),
        lambda: Client(live.url, live.token + "x").get(REF),
    ):
        with pytest.raises(errors.SealboxError) as exc:
            exc_call()
        texts += [exc.value.diagnostics(), repr(exc.value)]
    texts += [r.getMessage() for r in caplog.records]
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(client)
    for text in texts:
        assert CANARY not in text and live.token not in text
    client.close()


def test_binary_values_that_are_not_text_round_trip_as_base64(live: Live) -> None:
    with Client(live.url, live.token) as client:
        client.create_project("payments")
        client.set(REF, SecretValue(b"\xff\xfe\x00\r\n"))
        assert client.get(REF).value.reveal_bytes() == b"\xff\xfe\x00\r\n"
        assert client.audit_hash(SecretValue(b"\xff\xfe\x00\r\n")) == live.vault.audit.value_hmac(
            SecretValue(b"\xff\xfe\x00\r\n")
        )
