"""Statements and user names of dynamic credentials: placeholders checked, statements split
where a MySQL connection needs it, names within each database's length and unique."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbox.creds import templates
from sealbox.errors import InvalidInput


def test_statements_split_outside_quotes_and_dollar_bodies() -> None:
    text = (
        "CREATE ROLE \"a;b\" LOGIN PASSWORD 'x;''y';"
        " DO $$BEGIN PERFORM 1; END$$; GRANT `c;d` TO e ;; "
    )
    assert templates.split_statements(text) == [
        "CREATE ROLE \"a;b\" LOGIN PASSWORD 'x;''y'",
        "DO $$BEGIN PERFORM 1; END$$",
        "GRANT `c;d` TO e",
    ]
    assert templates.split_statements(" ; ; ") == []


def test_placeholders_are_checked() -> None:
    with pytest.raises(InvalidInput, match=r"use \{\{user\}\}: they may use"):
        templates.check_statements(
            "CREATE ROLE {{user}}", what="creation", allowed=templates.CREATION_VARS
        )
    with pytest.raises(InvalidInput, match=r"must use \{\{password\}\}"):
        templates.check_statements(
            'CREATE ROLE "{{name}}"',
            what="creation",
            allowed=templates.CREATION_VARS,
            required=("name", "password"),
        )
    # A revocation has no password to use: it is never kept.
    with pytest.raises(InvalidInput, match="password"):
        templates.check_statements(
            "ALTER ROLE {{name}} PASSWORD '{{password}}'",
            what="revocation",
            allowed=templates.REVOCATION_VARS,
        )
    with pytest.raises(InvalidInput, match="empty"):
        templates.check_statements(";", what="renewal", allowed=templates.RENEWAL_VARS)


def test_render_fills_every_placeholder() -> None:
    out = templates.render("A {{ name }} B {{password}}", {"name": "n", "password": "p"})
    assert out == "A n B p"


def test_a_template_must_make_each_user_new() -> None:
    with pytest.raises(InvalidInput, match=r"\{\{random\}\}"):
        templates.check_template("v-{{role}}")
    with pytest.raises(InvalidInput, match=r"\{\{nope\}\}"):
        templates.check_template("v-{{nope}}-{{random}}")


def test_usernames_are_safe_lowercase_and_fit() -> None:
    values = {"role": "DB-ReadOnly", "identity": "Alice O'Brien\"; DROP", "project": "p"}
    name = templates.username("v-{{identity}}-{{role}}-{{random}}", values, max_len=63)
    assert set(name) <= set(string.ascii_lowercase + string.digits + "_-")
    assert name.startswith("v-alice_o_brien_drop-db-readonly-")
    assert len(name) <= 63


@given(
    st.text(min_size=0, max_size=200),
    st.integers(min_value=templates.RANDOM_LENGTH + 2, max_value=120),
)
def test_a_cut_name_keeps_its_random_part_whole(identity: str, max_len: int) -> None:
    rand = "r" * (templates.RANDOM_LENGTH - 1) + "9"
    name = templates.username(
        "{{identity}}-{{random}}-{{unix_time}}",
        {"identity": identity},
        max_len=max_len,
        random_part=rand,
    )
    assert len(name) <= max_len and rand in name
    assert set(name) <= set(string.ascii_lowercase + string.digits + "_-")


def test_two_names_from_one_template_differ() -> None:
    names = {templates.username("u-{{random}}", {}, max_len=63) for _ in range(50)}
    assert len(names) == 50


def test_passwords_hold_each_class_and_nothing_that_ends_a_quote() -> None:
    for _ in range(50):
        pw = templates.password()
        assert len(pw) == templates.PASSWORD_LENGTH
        assert any(c.isupper() for c in pw) and any(c.islower() for c in pw)
        assert any(c.isdigit() for c in pw)
        assert set(pw) <= set(string.ascii_letters + string.digits)


def test_expiration_is_utc_with_an_offset() -> None:
    at = datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC)
    assert templates.expiration(at) == "2026-12-02 03:04:05+0000"
