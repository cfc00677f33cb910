"""The postgres and mysql rotators' options, checked when a secret is configured (no
server needed): each mistake is refused naming its option; a current value that is not
what the format says is refused without being echoed."""

from __future__ import annotations

from collections.abc import MutableMapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.errors import InvalidInput, RotationFailed
from sealbox.model import SecretRef, SecretValue
from sealbox.rotation.database import MAX_LENGTH, MIN_LENGTH, DatabaseRotator
from sealbox.rotation.mysql import MysqlRotator
from sealbox.rotation.postgres import PostgresRotator

ROTATORS = [PostgresRotator(), MysqlRotator()]
GOOD = {"admin": "app/prod/DB_ADMIN", "username": "app"}


@pytest.mark.parametrize("r", ROTATORS, ids=lambda r: r.name)
def test_defaults(r: DatabaseRotator) -> None:
    opts = r.options(GOOD)
    assert (opts.strategy, opts.format, opts.clone, opts.length) == (
        "single",
        "password",
        "app_clone",
        32,
    )
    alt = r.options({**GOOD, "strategy": "alternating"})
    assert alt.format == "url"


@pytest.mark.parametrize("r", ROTATORS, ids=lambda r: r.name)
@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"username": "app"}, "admin"),
        ({**GOOD, "admin": "postgresql://u:p@h/db"}, "admin"),
        ({"admin": "app/prod/DB_ADMIN"}, "username"),
        ({**GOOD, "username": ""}, "username"),
        ({**GOOD, "username": "app\nDROP"}, "username"),
        ({**GOOD, "username": "app "}, "username"),
        ({**GOOD, "username": "a" * 200}, "username"),
        ({**GOOD, "strategy": "both"}, "strategy"),
        ({**GOOD, "clone": "other"}, "clone"),
        ({**GOOD, "strategy": "alternating", "clone": "app"}, "clone"),
        ({**GOOD, "format": "yaml"}, "format"),
        ({**GOOD, "strategy": "alternating", "format": "password"}, "format"),
        ({**GOOD, "length": "8"}, "length"),
        ({**GOOD, "length": "200"}, "length"),
        ({**GOOD, "length": "lots"}, "length"),
        ({**GOOD, "alphabet": "emoji"}, "alphabet"),
        ({**GOOD, "host": "db host"}, "host"),
        ({**GOOD, "port": "99999"}, "port"),
        ({**GOOD, "database": "x\x00y"}, "database"),
        ({**GOOD, "timeout": "0"}, "timeout"),
        ({**GOOD, "passwd": "x"}, "passwd"),
    ],
)
def test_bad_options_are_refused_naming_the_option(
    r: DatabaseRotator, options: dict[str, str], option: str
) -> None:
    with pytest.raises(InvalidInput, match=rf"\b{option}\b"):
        r.check(options)


@pytest.mark.parametrize("r", ROTATORS, ids=lambda r: r.name)
def test_the_default_clone_name_must_fit_too(r: DatabaseRotator) -> None:
    long = "a" * (r.max_name - 2)
    r.check({**GOOD, "username": long})
    with pytest.raises(InvalidInput, match=f"option clone must be at most {r.max_name} "):
        r.check({**GOOD, "username": long, "strategy": "alternating"})
    r.check({**GOOD, "username": long, "strategy": "alternating", "clone": "short"})


def test_account_host_is_mysql_only() -> None:
    MysqlRotator().check({**GOOD, "account_host": "10.0.0.%"})
    with pytest.raises(InvalidInput, match="account_host"):
        MysqlRotator().check({**GOOD, "account_host": "a'b"})
    with pytest.raises(InvalidInput, match="no option account_host"):
        PostgresRotator().check({**GOOD, "account_host": "%"})


def test_postgres_names_are_counted_in_bytes() -> None:
    """PostgreSQL truncates a name past 63 bytes: a 32-letter name of 2-byte letters is
    64 bytes, and would become another role's name."""
    with pytest.raises(InvalidInput, match="username must be at most 63 bytes"):
        PostgresRotator().check({**GOOD, "username": "é" * 32})
    MysqlRotator().check({**GOOD, "username": "é" * 80})
    with pytest.raises(InvalidInput, match="username must be at most 80 characters"):
        MysqlRotator().check({**GOOD, "username": "é" * 81})


class Ctx:
    def __init__(self, options: dict[str, str], current: SecretValue) -> None:
        self.ref = SecretRef("app", "prod", "DB")
        self.rotation_id = "r1"
        self.options = options
        self.dry_run = False
        self.current: SecretValue | None = current
        self.state: MutableMapping[str, str] = {}

    @property
    def pending(self) -> SecretValue:
        raise InvalidInput("no pending value")

    def secret(self, path: str) -> SecretValue:
        raise AssertionError("not reached: the current value is refused first")

    def note(self, message: str) -> None:
        raise AssertionError(message)


@pytest.mark.parametrize("r", ROTATORS, ids=lambda r: r.name)
@pytest.mark.parametrize(
    ("fmt", "value", "match"),
    [
        ("url", "just-a-password-123", "current value of app/prod/DB"),
        ("json", "just-a-password-123", "not a JSON object"),
        ("json", '{"username": "app", "pw": "just-a-password-123"}', "not a JSON object"),
        ("url", "{scheme}://someone:just-a-password-123@h/db", "logs in as 'someone'"),
    ],
)
def test_a_current_value_that_is_not_a_credential_is_refused_unechoed(
    r: DatabaseRotator, fmt: str, value: str, match: str
) -> None:
    scheme = "postgresql" if r.name == "postgres" else "mysql"
    ctx = Ctx(
        {**GOOD, "strategy": "alternating", "format": fmt},
        SecretValue(value.replace("{scheme}", scheme)),
    )
    with pytest.raises(RotationFailed, match=match) as info:
        r.create(ctx)
    assert "just-a-password-123" not in info.value.diagnostics()


@pytest.mark.parametrize("r", ROTATORS, ids=lambda r: r.name)
@pytest.mark.parametrize(
    "value",
    [
        "{scheme}://app:just-a-password-123@h/db",
        '{"username": "app", "password": "just-a-password-123"}',
    ],
)
def test_a_url_or_json_where_a_bare_password_is_expected_is_refused_at_undo(
    r: DatabaseRotator, value: str
) -> None:
    """Undo would make the whole text the role's password, locking the application out."""
    scheme = "postgresql" if r.name == "postgres" else "mysql"
    ctx = Ctx(dict(GOOD), SecretValue(value.replace("{scheme}", scheme)))
    with pytest.raises(RotationFailed, match="looks like a URL or JSON") as info:
        r.undo(ctx)
    assert "just-a-password-123" not in info.value.diagnostics()


KEYS = st.sampled_from(
    [
        *("strategy", "clone", "format", "length", "alphabet", "host", "port"),
        *("database", "timeout", "account_host", "other"),
    ]
)
VALUES = st.one_of(
    st.text(max_size=90),
    st.sampled_from(["alternating", "single", "url", "json", "password", "16", "0", "%"]),
)


@settings(max_examples=400, deadline=None)
@given(
    base=st.fixed_dictionaries(
        {
            "admin": st.sampled_from(["app/prod/DB_ADMIN", "x", "postgresql://a:b@h/d"]),
            "username": st.text(min_size=0, max_size=90),
        }
    ),
    more=st.dictionaries(KEYS, VALUES, max_size=6),
)
def test_any_options_are_accepted_or_refused_as_invalid_input(
    base: dict[str, str], more: dict[str, str]
) -> None:
    options = {**base, **more}
    for r in ROTATORS:
        try:
            opts = r.options(options)
        except InvalidInput:
            continue
        assert opts.username == options["username"] and opts.clone != opts.username
        assert opts.format != "password" or opts.strategy == "single"
        assert MIN_LENGTH <= opts.length <= MAX_LENGTH
