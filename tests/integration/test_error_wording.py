"""Core errors say what is wrong in terms every caller reads; the CLI adds its commands.

An HTTP caller never sees a CLI flag or command in an error body; the same errors through
the CLI still end in the CLI's hint (``sealbox.cli.hints``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli_harness import Cli
from tests.integration.test_server_native import Server, make_server

from sealbox import errors
from sealbox.cli.hints import CLI_HINTS

EXIT_INVALID, EXIT_NOT_FOUND = 2, 3


def names_no_cli(text: str) -> bool:
    return "--" not in text and "`sealbox" not in text and "sealbox project" not in text


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    yield from make_server(tmp_path)


def test_http_error_bodies_name_no_cli_flag_or_command(srv: Server) -> None:
    assert srv.call("POST", "/v1/projects", {"name": "payments"}).status_code == 201
    cases = [
        ("PUT", "/v1/secrets/nope/dev/A", {"value": "v"}, 404),  # no such project
        ("PUT", "/v1/secrets/payments/qa/A", {"value": "v"}, 404),  # no such environment
        ("PUT", "/v1/secrets/payments/dev/A", {"value": "v", "if_version": -1}, 400),
    ]
    for method, url, body, status in cases:
        r = srv.call(method, url, body)
        assert r.status_code == status, (url, r.text)
        message = r.json()["error"]["message"]
        assert message and names_no_cli(message), message
    compat = srv.call("POST", "/v1/kv/data/payments/dev/A", {"data": {"v": "1"}, "options": {}})
    assert compat.status_code == 200, compat.text
    r = srv.call("POST", "/v1/kv/data/payments/dev/A", {"data": {"v": "2"}, "options": {"cas": 9}})
    assert r.status_code == 400 and names_no_cli(r.text), r.text


def test_the_cli_adds_its_own_hints(keyfile_vault: Path, cli: Cli) -> None:
    r = cli("secret", "set", "nope/dev/A", stdin="v")
    assert r.status == EXIT_NOT_FOUND
    assert "project 'nope' does not exist" in r.err
    assert "hint: create it with `sealbox project create nope`" in r.err
    r = cli("secret", "set", "payments/qa/A", stdin="v")
    assert r.status == EXIT_NOT_FOUND
    assert "hint: create it with `sealbox env create qa --project payments`" in r.err
    r = cli("secret", "set", "A", "--if-version", "-1", stdin="v")
    assert r.status == EXIT_INVALID
    assert "hint: --if-version takes 0" in r.err


def test_the_core_hint_is_neutral_and_the_cli_words_its_own(keyfile_vault: Path) -> None:
    from sealbox.factory import open_vault
    from sealbox.model import SecretRef, SecretValue

    vault = open_vault()
    try:
        with pytest.raises(errors.NotFound) as info:
            vault.set(SecretRef("nope", "dev", "A"), SecretValue(b"v"))
    finally:
        vault.close()
    exc = info.value
    assert exc.hint and names_no_cli(exc.hint)
    assert names_no_cli(exc.diagnostics())
    assert "`sealbox project create nope`" in exc.diagnostics(CLI_HINTS)


def test_a_wording_that_does_not_fit_keeps_the_neutral_hint() -> None:
    exc = errors.NotFound("gone", hint="neutral", hint_key="k", hint_args={"a": "1"})
    assert exc.diagnostics({"k": "uses {b}"}) == "gone\nhint: neutral"
    assert exc.diagnostics({"k": "uses {a}"}) == "gone\nhint: uses 1"
    assert exc.diagnostics({"other": "x"}) == "gone\nhint: neutral"
    assert errors.NotFound("gone", hint_key="k").diagnostics() == "gone"
