"""The request-body checks every route shares (server/http.py), against a model of them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.errors import InvalidInput
from sealbox.server.http import check_json_depth, parse_json

LIMIT = 4
TEXT = st.text(alphabet=st.sampled_from('ab[]{}"\\\n\u00e9\U0001f600'), max_size=6)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=200, deadline=None)
@given(JSON, st.booleans())
def test_the_depth_scan_agrees_with_the_parsed_depth(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    if depth(value) <= LIMIT:
        check_json_depth(raw, LIMIT)
    else:
        with pytest.raises(InvalidInput, match=f"deeper than {LIMIT}"):
            check_json_depth(raw, LIMIT)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_parse_json_reads_what_json_dumps_wrote(value: Any) -> None:
    if depth(value) <= 64:
        assert parse_json(json.dumps(value).encode()) == value


def test_malformed_bodies_are_400_not_too_deep() -> None:
    for raw in (b"[[[", b"]]]]]]", b'"unterminated [[[[[[', b"{" * 10 + b"]" * 10):
        with pytest.raises(InvalidInput):
            parse_json(raw)
