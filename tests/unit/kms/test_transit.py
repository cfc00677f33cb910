"""The transit key provider against a real ``bao server -dev`` (tests/unit/kms/bao.py),
plus a few faults a dev server cannot show (a peer that never answers, an old Vault
that ignores associated_data, a broken answer) from small local stand-ins.

The contract suite (test_contract.py) runs on transit too.
"""

from __future__ import annotations

import http.client
import http.server
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.unit.kms import bao

from sealbox import factory
from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError
from sealbox.kms.transit import TransitKind, TransitProvider, parse_config
from sealbox.model import SecretRef, SecretValue

CTX = b"sealbox/kek\x00vault-1\x00kek-1"
KEY = bytes(range(32))


@pytest.fixture
def server() -> bao.BaoServer:
    return bao.bao_server()


def _new_key(server: bao.BaoServer, key_type: str = "aes256-gcm96") -> str:
    name = "k-" + secrets.token_hex(4)
    server.create_key(name, key_type)
    return name


# -- faults ------------------------------------------------------------------------------------
def test_a_wrong_token_is_refused_without_showing_it(server: bao.BaoServer) -> None:
    wrong = "sbtest-wrong-" + secrets.token_hex(8)
    with bao.opened(address=server.address, token=wrong) as provider:
        for call in (provider.check, lambda: provider.wrap(KEY, CTX)):
            with pytest.raises(KeyProviderError) as err:
                call()
            assert "refused the token" in err.value.message
            assert wrong not in err.value.diagnostics()
        assert wrong not in repr(provider)
    # A right token is not in the repr either.
    with bao.opened() as provider:
        assert server.token not in repr(provider)


def test_a_server_that_never_answers_fails_within_the_timeout() -> None:
    # Listening (the kernel completes the TCP handshake) but never reading or answering.
    with socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        hang.listen(8)
        address = f"http://127.0.0.1:{hang.getsockname()[1]}"
        with bao.opened(address=address, token="sbtest-x", timeout=0.5) as provider:
            for call in (provider.check, lambda: provider.unwrap(b"vault:v1:AAAA", CTX)):
                with pytest.raises(KeyProviderError) as err:
                    call()
                assert "did not answer within 0.5 s" in err.value.message
                assert address in err.value.message


def test_a_closed_port_names_the_address() -> None:
    address = f"http://127.0.0.1:{bao.closed_port()}"
    with (
        bao.opened(address=address, token="sbtest-x") as provider,
        pytest.raises(KeyProviderError) as err,
    ):
        provider.wrap(KEY, CTX)
    assert address in err.value.message and "cannot reach" in err.value.message


def test_tls_to_a_plain_http_server_fails_naming_the_address(server: bao.BaoServer) -> None:
    address = server.address.replace("http:", "https:")
    with (
        bao.opened(address=address, token=server.token) as provider,
        pytest.raises(KeyProviderError) as err,
    ):
        provider.check()
    assert address in err.value.message and "TLS" in err.value.message


@pytest.fixture(scope="module")
def tls_server() -> Iterator[bao.BaoServer]:
    found = bao.bao_tls_server()
    try:
        found.create_key("sealbox-tls")
        yield found
    finally:
        found.stop()


def test_tls_with_the_servers_ca(tls_server: bao.BaoServer) -> None:
    assert tls_server.address.startswith("https://") and tls_server.cacert
    env = bao.context({"SEALBOX_TRANSIT_TOKEN": tls_server.token})
    new = TransitKind().create(
        "bao",
        {"address": tls_server.address, "key": "sealbox-tls", "cacert": tls_server.cacert},
        env,
    )
    assert new.config["cacert"] == tls_server.cacert
    assert new.provider.unwrap(new.provider.wrap(KEY, CTX), CTX) == KEY
    # Without the CA (the system's trust only) the certificate is refused.
    with pytest.raises(KeyProviderError) as err:
        TransitKind().create("bao", {"address": tls_server.address, "key": "sealbox-tls"}, env)
    assert "TLS" in err.value.message and tls_server.address in err.value.message
    assert "CERTIFICATE_VERIFY_FAILED" in err.value.message


def test_a_missing_cacert_is_invalid_input(server: bao.BaoServer, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cacert"):
        TransitKind().create(
            "bao",
            {"address": "https://127.0.0.1:8200", "key": "k", "cacert": str(tmp_path / "no.pem")},
            bao.context({"SEALBOX_TRANSIT_TOKEN": server.token}),
        )


class _Stub(http.server.BaseHTTPRequestHandler):
    """Answers every POST/GET with the server's canned (status, body)."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body = self.server.canned  # type: ignore[attr-defined]
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[http.server.HTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def _stub_provider(stub: http.server.HTTPServer, status: int, body: Any) -> TransitProvider:
    stub.canned = (status, body)  # type: ignore[attr-defined]
    return bao.provider(address=f"http://127.0.0.1:{stub.server_address[1]}", token="sbtest-x")


def test_a_transit_that_ignores_associated_data_is_refused(stub: http.server.HTTPServer) -> None:
    # What Vault before 1.13 answers: the ciphertext, and a warning that the context was
    # dropped. Storing that blob would leave the KEK unbound to its vault.
    body = {
        "data": {"ciphertext": "vault:v1:AAAAAAAAAAAAAAAA"},
        "warnings": ["Endpoint ignored these unrecognized parameters: [associated_data]"],
    }
    with pytest.raises(KeyProviderError, match="ignores associated_data"):
        _stub_provider(stub, 200, body).wrap(KEY, CTX)


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (500, {"errors": ["internal error"]}, "unavailable (HTTP 500"),
        (503, {"errors": ["Vault is sealed"]}, "unavailable (HTTP 503: Vault is sealed)"),
        (200, b"<html>proxy</html>", "not a Transit engine's JSON"),
        (200, {"data": {"ciphertext": "plain"}}, "without a ciphertext"),
        (307, {}, "redirected"),
    ],
)
def test_broken_answers_are_provider_errors(
    stub: http.server.HTTPServer, status: int, body: Any, said: str
) -> None:
    provider = _stub_provider(stub, status, body)
    with pytest.raises(KeyProviderError) as err:
        provider.wrap(KEY, CTX)
    assert said in err.value.message
    assert KEY.hex() not in err.value.message


def test_a_decrypt_without_a_key_in_the_answer_is_an_error(stub: http.server.HTTPServer) -> None:
    provider = _stub_provider(stub, 200, {"data": {"plaintext": None}})
    with pytest.raises(KeyProviderError, match="without a key"):
        provider.unwrap(b"vault:v1:AAAA", CTX)


# -- create / open ----------------------------------------------------------------------------
def _create(server: bao.BaoServer, **options: str) -> Any:
    opts = {"address": server.address, **options}
    return TransitKind().create("bao", opts, bao.context({"VAULT_TOKEN": server.token}))


def test_a_missing_key_is_refused_unless_create_key(server: bao.BaoServer) -> None:
    name = "k-" + secrets.token_hex(4)
    with pytest.raises(KeyProviderError) as err:
        _create(server, key=name)
    assert "does not exist" in err.value.message and "create_key=true" in (err.value.hint or "")
    status, _ = server.api("GET", f"/v1/transit/keys/{name}", check=False)
    assert status == 404  # nothing was made
    new = _create(server, key=name, create_key="true")
    assert new.config == {"address": server.address, "mount": "transit", "key": name}
    assert "token" not in json.dumps(new.config) and server.token not in json.dumps(new.config)
    _, found = server.api("GET", f"/v1/transit/keys/{name}")
    assert found["data"]["type"] == "aes256-gcm96"
    assert new.provider.unwrap(new.provider.wrap(KEY, CTX), CTX) == KEY
    assert new.provider.key_id() == f"transit:transit/{name} v1"


@pytest.mark.parametrize(("key_type", "said"), [("rsa-2048", "AEAD"), ("ed25519", "AEAD")])
def test_a_key_that_cannot_bind_a_context_is_refused(
    server: bao.BaoServer, key_type: str, said: str
) -> None:
    name = _new_key(server, key_type)
    with pytest.raises(KeyProviderError, match=said):
        _create(server, key=name)


def test_a_derived_key_is_refused(server: bao.BaoServer) -> None:
    name = "k-" + secrets.token_hex(4)
    server.api("POST", f"/v1/transit/keys/{name}", {"type": "aes256-gcm96", "derived": True})
    with pytest.raises(KeyProviderError, match="derived"):
        _create(server, key=name)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"key": "k"}, "address"),
        ({"address": "ftp://h:1", "key": "k"}, "http(s)://"),
        ({"address": "https://user:pw@h:8200", "key": "k"}, "credentials"),
        ({"address": "https://h:8200/v1", "key": "k"}, "no path"),
        ({"address": "https://h:99999", "key": "k"}, "http(s)://"),
        ({"address": "http://bao.example:8200", "key": "k"}, "in the clear"),
        ({"address": "https://h:8200"}, "key=NAME"),
        ({"address": "https://h:8200", "key": "../sys"}, "invalid transit key"),
        ({"address": "https://h:8200", "key": "k", "mount": "a/../b"}, "invalid transit mount"),
        ({"address": "https://h:8200", "key": ".."}, "invalid transit key"),
        ({"address": "https://h:8200", "key": "k", "namespace": "a b"}, "namespace"),
        ({"address": "https://h:8200", "key": "k", "token_env": "A B"}, "token_env"),
        ({"address": "https://h:8200", "key": "k", "create_key": "maybe"}, "true or false"),
        ({"address": "https://h:8200", "key": "k", "tokne": "x"}, "unknown option"),
    ],
)
def test_bad_options_are_invalid_input(options: dict[str, str], said: str) -> None:
    with pytest.raises(InvalidInput) as err:
        TransitKind().create("bao", options, bao.context({"VAULT_TOKEN": "t"}))
    assert said in err.value.message
    assert "pw" not in err.value.message.replace("https://", "")


def test_plain_http_elsewhere_needs_insecure_http() -> None:
    cfg = parse_config({"address": "http://bao.example:8200", "key": "k", "insecure_http": "1"})
    assert cfg.stored()["insecure_http"] is True
    assert parse_config({"address": "http://[::1]:8200", "key": "k"}).insecure_http is False


def test_the_token_comes_from_the_environment_only(server: bao.BaoServer) -> None:
    config = {"address": server.address, "key": "sealbox-test", "token_env": "MY_BAO"}
    kind = TransitKind()
    # token_env named: only that variable counts.
    with pytest.raises(KeyProviderError) as err:
        kind.open("bao", config, bao.context({"VAULT_TOKEN": server.token}))
    assert "MY_BAO" in err.value.message
    kind.open("bao", config, bao.context({"MY_BAO": server.token})).check()
    # Default order: SEALBOX_TRANSIT_TOKEN, VAULT_TOKEN, BAO_TOKEN.
    config.pop("token_env")
    kind.open("bao", config, bao.context({"BAO_TOKEN": server.token})).check()
    opened = kind.open(
        "bao", config, bao.context({"SEALBOX_TRANSIT_TOKEN": server.token, "VAULT_TOKEN": "bad"})
    )
    opened.check()
    with pytest.raises(KeyProviderError, match="SEALBOX_TRANSIT_TOKEN or VAULT_TOKEN or BAO"):
        kind.open("bao", config, bao.context({}))
    assert kind.interactive(config) is False


def test_a_stored_config_that_was_altered_is_a_provider_error() -> None:
    with pytest.raises(KeyProviderError, match="provider 'bao'"):
        TransitKind().open("bao", {"address": "gopher://x", "key": "k"}, bao.context({}))


def test_a_key_in_a_namespace(server: bao.BaoServer) -> None:
    namespace = "ns" + secrets.token_hex(3)
    key = "k-" + secrets.token_hex(4)
    server.api("POST", f"/v1/sys/namespaces/{namespace}", {})
    with pytest.raises(KeyProviderError, match="no Transit engine is mounted"):
        _create(server, key=key, namespace=namespace, create_key="true")
    assert _mount_in(server, namespace)
    new = _create(server, key=key, namespace=namespace, create_key="true")
    assert new.config["namespace"] == namespace
    assert new.provider.key_id() == f"transit:{namespace}/transit/{key} v1"
    blob = new.provider.wrap(KEY, CTX)
    assert new.provider.unwrap(blob, CTX) == KEY
    # The same key name outside the namespace does not exist.
    with bao.opened(key) as outside, pytest.raises(KeyProviderError, match="does not exist"):
        outside.check()


def _mount_in(server: bao.BaoServer, namespace: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(
            "POST",
            "/v1/sys/mounts/transit",
            body=json.dumps({"type": "transit"}),
            headers={"X-Vault-Token": server.token, "X-Vault-Namespace": namespace},
        )
        return conn.getresponse().status < 300
    finally:
        conn.close()


# -- the documented policy --------------------------------------------------------------------
POLICY = """
path "transit/encrypt/{key}" {{ capabilities = ["update"] }}
path "transit/decrypt/{key}" {{ capabilities = ["update"] }}
path "transit/keys/{key}"    {{ capabilities = ["read"] }}
"""


def test_the_documented_policy_is_enough_and_less_is_refused(server: bao.BaoServer) -> None:
    key = _new_key(server)
    server.api("PUT", f"/v1/sys/policies/acl/{key}", {"policy": POLICY.format(key=key)})
    _, made = server.api("POST", "/v1/auth/token/create", {"policies": [key], "ttl": "10m"})
    scoped = made["auth"]["client_token"]
    with bao.opened(key, address=server.address, token=scoped) as provider:
        provider.check()
        assert provider.unwrap(provider.wrap(KEY, CTX), CTX) == KEY
        assert provider.key_id() == f"transit:transit/{key} v1"
    # The same token on another key: refused, not "missing".
    with (
        bao.opened("sealbox-test", address=server.address, token=scoped) as provider,
        pytest.raises(KeyProviderError, match="refused the token"),
    ):
        provider.wrap(KEY, CTX)


# -- rotation ---------------------------------------------------------------------------------
def test_a_rotated_transit_key_still_opens_old_blobs(server: bao.BaoServer) -> None:
    key = _new_key(server)
    with bao.opened(key) as provider:
        old = provider.wrap(KEY, CTX)
        assert old.startswith(b"vault:v1:")
        assert provider.key_id() == f"transit:transit/{key} v1"
        server.api("POST", f"/v1/transit/keys/{key}/rotate")
        assert provider.key_id() == f"transit:transit/{key} v2"
        assert provider.unwrap(old, CTX) == KEY
        new = provider.wrap(KEY, CTX)
        assert new.startswith(b"vault:v2:")
        rewrapped = provider.rewrap(old, CTX)
        assert rewrapped.startswith(b"vault:v2:")
        assert provider.unwrap(rewrapped, CTX) == KEY
        # Rewrap keeps the context binding.
        with pytest.raises(IntegrityError):
            provider.unwrap(rewrapped, CTX + b"x")
        with pytest.raises(IntegrityError):
            provider.rewrap(old, CTX + b"x")
        with pytest.raises(IntegrityError):
            provider.rewrap(b"not a blob", CTX)
        # Once old versions are retired in Transit, an old blob is a provider matter
        # (configuration), not tampering.
        server.api("POST", f"/v1/transit/keys/{key}/config", {"min_decryption_version": 2})
        with pytest.raises(KeyProviderError):
            provider.unwrap(old, CTX)
        assert provider.unwrap(rewrapped, CTX) == KEY


def test_a_blob_for_a_key_that_is_gone_is_a_provider_error(server: bao.BaoServer) -> None:
    with bao.opened() as provider:
        blob = provider.wrap(KEY, CTX)
    with bao.opened("k-never-made") as provider, pytest.raises(KeyProviderError):
        provider.unwrap(blob, CTX)


def test_a_provider_is_safe_to_share_between_threads(server: bao.BaoServer) -> None:
    with bao.opened() as provider:
        keys = [secrets.token_bytes(32) for _ in range(24)]

        def roundtrip(key: bytes) -> bytes:
            context = b"ctx-" + key[:4]
            return provider.unwrap(provider.wrap(key, context), context)

        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(roundtrip, keys)) == keys


# -- a vault opened through Transit, end to end -----------------------------------------------
def test_a_vault_moves_onto_transit_and_opens_with_only_the_token(
    server: bao.BaoServer, tmp_path: Path
) -> None:
    home, key_file = tmp_path / "home", tmp_path / "master.key"
    env = {"SEALBOX_HOME": str(home)}
    with_token = {**env, "SEALBOX_TRANSIT_TOKEN": server.token}
    factory.init_vault(home=home, method="keyfile", key_file=key_file, env=env)
    ref = SecretRef("app", "prod", "DB_URL")
    vault = factory.open_vault(home=home, env=with_token)
    try:
        vault.create_project("app")
        vault.set(ref, SecretValue(b"postgres://u:p@db/app"))
        key = _new_key(server)
        added = vault.kms.add("bao", "transit", {"address": server.address, "key": key})
        assert server.token not in json.dumps(added.provider.config)
        vault.kms.remove("local")
    finally:
        vault.close()
    key_file.unlink()

    vault = factory.open_vault(home=home, env=with_token)
    try:
        assert vault.get(ref, reveal=True).value.reveal() == "postgres://u:p@db/app"
        status = vault.kms.status()
        assert status.problems == ()
        (bao_status,) = status.providers
        assert bao_status.key_id == f"transit:transit/{key} v1"
        assert bao_status.reachable is True
    finally:
        vault.close()

    # Without the token, or with Transit refusing it, the vault stays closed.
    for broken in (env, {**env, "SEALBOX_TRANSIT_TOKEN": "sbtest-wrong"}):
        vault = factory.open_vault(home=home, env=broken)
        try:
            with pytest.raises(KeyProviderError):
                vault.get(ref, reveal=True)
        finally:
            vault.close()
