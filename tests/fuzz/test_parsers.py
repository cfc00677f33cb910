"""Standing suite "fuzz": Hypothesis on every parser of untrusted text.

Properties: a parser answers bad input only with the project's own error (``InvalidInput``
or, for tokens, ``AuthenticationFailed``), never another exception; a format with both
directions round-trips; the KV path encoding is reversible and injective. Derandomized
(the same examples on every run) and without an example database, so CI is reproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import string
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from tests.standing_summary import record

from sealbox.auth import tokens
from sealbox.auth.policy import (
    DENY,
    Capability,
    Policy,
    Rule,
    glob_match,
    parse_policy,
    parse_policy_text,
    policy_from_json,
)
from sealbox.delivery.dotenv_io import parse_dotenv, render, render_example
from sealbox.documents import folder_of, kv_path_of
from sealbox.errors import AuthenticationFailed, InvalidInput, SealboxError
from sealbox.model import NAME_RE, SecretRef, SecretValue
from sealbox.server.errors import PayloadTooLarge
from sealbox.server.http import json_body
from sealbox.server.settings import ServerSettings

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def count() -> None:
    record("fuzz", "hypothesis examples")


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
#: Any text a file or a request could carry (no lone surrogates: not valid UTF-8 text).
texts = st.text(max_size=200)
json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


# -- dotenv --------------------------------------------------------------------------------------
@FUZZ
@given(texts)
@example("A=1\nB\n=x\n9X=1\nexport C='unterminated\n")
def test_dotenv_parse_never_fails_and_never_echoes_a_bad_line(text: str) -> None:
    count()
    parsed = parse_dotenv(text, source="f.env")
    assert all(NAME_RE.match(name) for name in parsed.values)
    for error in parsed.errors:
        assert error.startswith("f.env:")
        # A malformed line may be a pasted value: its text is never quoted back.
        for line in text.splitlines():
            if len(line.strip()) > 12:
                assert line.strip() not in error


@FUZZ
@given(st.dictionaries(names, texts, max_size=8))
@example({"A": "it's \\ a 'quote'\nand a newline", "B": "", "C": "${HOME} $x"})
def test_dotenv_render_then_parse_round_trips(values: dict[str, str]) -> None:
    count()
    text = render({k: SecretValue(v) for k, v in values.items()}, "dotenv")
    parsed = parse_dotenv(text)
    assert parsed.errors == []
    assert parsed.values == values


@FUZZ
@given(st.dictionaries(names, texts, max_size=8))
def test_json_and_shell_exports_round_trip(values: dict[str, str]) -> None:
    count()
    secrets = {k: SecretValue(v) for k, v in values.items()}
    assert json.loads(render(secrets, "json")) == values
    words = shlex.split(render(secrets, "shell"))
    assert words == [w for name in sorted(values) for w in ("export", f"{name}={values[name]}")]


@FUZZ
@given(st.lists(names, max_size=6, unique=True), st.dictionaries(names, texts, max_size=6))
@example(["A"], {"A": "purpose\nB=smuggled"})
def test_an_example_file_holds_its_keys_and_nothing_else(
    keys: list[str], comments: dict[str, str]
) -> None:
    count()
    parsed = parse_dotenv(render_example(keys, comments))
    assert parsed.errors == []
    assert parsed.values == dict.fromkeys(keys, "")


# -- policies ------------------------------------------------------------------------------------
patterns = st.from_regex(r"[A-Za-z0-9_*?/-]{1,40}", fullmatch=True)
capabilities = st.lists(st.sampled_from([*(c.value for c in Capability), DENY]), min_size=1)
rules = st.fixed_dictionaries({"path": patterns, "capabilities": capabilities})
policy_docs = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True),
        "rules": st.lists(rules, min_size=1, max_size=5),
    },
    optional={"description": st.text(max_size=40)},
)


@FUZZ
@given(policy_docs)
def test_a_policy_round_trips_through_its_dict_and_its_json(doc: dict[str, Any]) -> None:
    count()
    policy = parse_policy(doc)
    assert parse_policy(policy.to_dict()) == policy
    assert policy_from_json(policy.to_json()) == policy
    assert isinstance(policy, Policy) and all(isinstance(r, Rule) for r in policy.rules)


@FUZZ
@given(
    st.one_of(
        json_values,
        policy_docs.flatmap(
            lambda d: st.dictionaries(
                st.sampled_from(["name", "rules", "rule", "x"]), json_values
            ).map(lambda extra: {**d, **extra})
        ),
    )
)
def test_any_policy_data_is_a_policy_or_invalid_input(data: Any) -> None:
    count()
    with contextlib.suppress(InvalidInput):
        parse_policy(data)


@FUZZ
@given(texts, st.sampled_from(["toml", "yaml", "json", "ini"]))
@example('name = "p"\n[[rules]]\npath = "a/*"\ncapabilities = ["read"]\n', "toml")
@example("name: p\nrules: [{path: '**', capabilities: [deny]}]\n", "yaml")
@example("!!python/object/apply:os.system ['true']", "yaml")
@example("[" * 5000, "json")
def test_any_policy_text_is_a_policy_or_invalid_input(text: str, fmt: str) -> None:
    count()
    try:
        parse_policy_text(text, fmt=fmt, source="p")
    except InvalidInput as exc:
        assert str(exc).startswith("p:")


@FUZZ
@given(patterns, st.text(alphabet=string.ascii_letters + string.digits + "/_-.", max_size=40))
def test_glob_matching_never_fails(pattern: str, path: str) -> None:
    count()
    assert isinstance(glob_match(pattern, path), bool)
    if "*" not in pattern and "?" not in pattern:
        assert glob_match(pattern, path) == (pattern == path)


# -- tokens --------------------------------------------------------------------------------------
@FUZZ
@given(st.text(max_size=80) | st.from_regex(tokens.TOKEN_RE, fullmatch=True))
def test_any_text_is_a_well_formed_token_or_refused(value: str) -> None:
    count()
    ok = tokens.well_formed(value)
    if ok:
        assert len(tokens.require_well_formed(value)) == 64
    else:
        with pytest.raises(AuthenticationFailed):
            tokens.require_well_formed(value)


@FUZZ
@given(st.sampled_from(sorted(tokens.KINDS)), st.integers(min_value=0), st.sampled_from("aZ09_-"))
def test_a_minted_token_is_well_formed_and_a_changed_one_is_not(
    kind: str, where: int, char: str
) -> None:
    count()
    token = tokens.mint(kind)
    assert tokens.well_formed(token.value)
    assert token.hash == tokens.token_hash(token.value)
    pos = where % len(token.value)
    if token.value[pos] == char:
        return
    changed = token.value[:pos] + char + token.value[pos + 1 :]
    assert not tokens.well_formed(changed)


# -- KV paths ------------------------------------------------------------------------------------
segments = st.text(
    st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]), min_size=1, max_size=12
)
kv_paths = st.lists(segments, min_size=1, max_size=5).map("/".join)
valid_segments = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)


@FUZZ
@given(kv_paths)
@example("myapp")
@example("MyApp/prod/db")
@example("a/./b")
@example("a/../b")
@example("é/ü/😀")
@example("a/b:c")
def test_any_kv_path_is_a_folder_or_invalid_input(path: str) -> None:
    """A KV path maps to exactly one folder, and back to itself; anything else is a 400."""
    count()
    try:
        project, env = folder_of(path)
    except InvalidInput:
        return
    assert kv_path_of(project, env) == path.strip("/")
    SecretRef(project, env, "X")  # the folder is a valid scope for secrets


@FUZZ
@given(st.lists(valid_segments, min_size=2, max_size=5), valid_segments)
def test_distinct_kv_paths_are_distinct_folders(a: list[str], name: str) -> None:
    count()
    if not a[0][0].isalnum():
        return
    path = "/".join(a)
    ref = SecretRef.parse(f"{path}/{name}")
    assert kv_path_of(ref.project, ref.env) == path
    assert SecretRef.parse(ref.path) == ref


def test_a_lone_surrogate_in_a_kv_path_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        folder_of("a/b\ud800")


# -- JSON bodies ---------------------------------------------------------------------------------
SETTINGS = ServerSettings()


def _request(raw: bytes, content_type: str = "application/json") -> Request:
    app = SimpleNamespace(state=SimpleNamespace(sealbox=SimpleNamespace(settings=SETTINGS)))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", content_type.encode())],
        "app": app,
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request(scope, receive)


LOOP = asyncio.new_event_loop()


def parse_body(raw: bytes, **fields: Any) -> dict[str, Any]:
    return LOOP.run_until_complete(json_body(_request(raw), **fields))


@FUZZ
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
@example(b'{"a": 1, "a": 2}')
@example(b"\xff\xfe{\x00}\x00")
@example(b'{"value": "\\ud800"}')
@example(b"[" * 50 + b"]" * 50)
def test_any_body_is_an_object_or_invalid_input(raw: bytes) -> None:
    count()
    try:
        data = parse_body(raw, any_fields=True)
    except (InvalidInput, PayloadTooLarge) as exc:
        assert isinstance(exc, SealboxError)
        return
    assert isinstance(data, dict)


@pytest.mark.slow
@FUZZ
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_a_json_object_body_round_trips(data: dict[str, Any]) -> None:
    count()
    assert parse_body(json.dumps(data).encode(), any_fields=True) == data


@FUZZ
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), json_scalars, max_size=4))
def test_a_body_holds_only_the_fields_a_route_names(data: dict[str, Any]) -> None:
    count()
    raw = json.dumps(data).encode()
    try:
        parsed = parse_body(raw, required=("a",), optional=("b",))
    except InvalidInput as exc:
        assert "a" not in data or set(data) - {"a", "b"}, exc
        return
    assert "a" in parsed and set(parsed) <= {"a", "b"}


def test_deeply_nested_json_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_body(b"[" * 100_000 + b"]" * 100_000)
