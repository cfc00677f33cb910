"""dotenv/JSON/shell rendering round-trips through the parsers that read them back."""

from __future__ import annotations

import io
import json
import subprocess

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.delivery.dotenv_io import parse_dotenv, render, render_example
from sealbox.delivery.process import child_environment
from sealbox.errors import InvalidInput
from sealbox.model import SecretValue

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
# Values: any text without NUL or lone carriage returns (dotenv normalises line endings).
values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    max_size=60,
)
secret_maps = st.dictionaries(names, values, max_size=6)


@settings(max_examples=200, deadline=None)
@given(secret_maps)
def test_dotenv_round_trip_through_our_parser(data: dict[str, str]) -> None:
    text = render({k: SecretValue(v) for k, v in data.items()}, "dotenv")
    parsed = parse_dotenv(text)
    assert parsed.errors == []
    assert parsed.values == data


@settings(max_examples=200, deadline=None)
@given(secret_maps)
def test_dotenv_round_trip_through_python_dotenv(data: dict[str, str]) -> None:
    text = render({k: SecretValue(v) for k, v in data.items()}, "dotenv")
    assert dotenv_values(stream=io.StringIO(text), interpolate=False) == data


@settings(max_examples=100, deadline=None)
@given(secret_maps)
def test_json_round_trip(data: dict[str, str]) -> None:
    text = render({k: SecretValue(v) for k, v in data.items()}, "json")
    assert json.loads(text) == data


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(
        names.filter(lambda n: not n.startswith("BASH") and n != "_"),
        values,
        min_size=1,
        max_size=4,
    )
)
def test_shell_round_trip(data: dict[str, str]) -> None:
    text = render({k: SecretValue(v) for k, v in data.items()}, "shell")
    script = text + "".join(f'printf "%s\\0" "${k}"\n' for k in data)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    assert out.decode().split("\0")[:-1] == list(data.values())


def test_bad_lines_are_reported_with_numbers() -> None:
    text = "GOOD=1\nthis is not a binding\n1BAD=2\nALSO_GOOD='x'\nNOVALUE\n"
    parsed = parse_dotenv(text, source=".env.local")
    assert parsed.values == {"GOOD": "1", "ALSO_GOOD": "x"}
    assert [e.split(":")[1] for e in parsed.errors] == ["2", "3", "5"]
    assert all(e.startswith(".env.local:") for e in parsed.errors)


def test_references_are_not_expanded() -> None:
    assert parse_dotenv('A="${HOME}/x"\nB=$HOME\n').values == {"A": "${HOME}/x", "B": "$HOME"}


def test_example_has_keys_only() -> None:
    text = render_example(["B", "A"], {"A": "orders db"})
    assert "A=\n" in text and "B=\n" in text and "# orders db" in text


def test_unknown_format() -> None:
    with pytest.raises(InvalidInput):
        render({}, "yaml")


def test_child_environment_withholds_vault_credentials() -> None:
    parent = {"PATH": "/bin", "SEALBOX_SESSION": "s", "SEALBOX_PASSPHRASE": "p", "A": "parent"}
    env = child_environment(parent, {"A": SecretValue("secret"), "B": SecretValue("b")})
    assert env == {b"PATH": b"/bin", b"A": b"secret", b"B": b"b"}
    kept = child_environment(parent, {"A": SecretValue("secret")}, preserve_env=True)
    assert kept[b"A"] == b"parent"
    with pytest.raises(InvalidInput, match="secret A holds a NUL byte") as caught:
        child_environment({}, {"A": SecretValue("a\x00b")})
    assert "a\x00b" not in str(caught.value)


BINARY = b"\xff\xfe\x80 not utf-8 \xc3\x28\r\n"


def test_child_environment_carries_exact_bytes() -> None:
    # A parent given as bytes (os.environb) keeps its own undecodable bytes too.
    parent = {b"PATH": b"/bin", b"LANG_ODD": b"\xe9t\xe9", b"SEALBOX_SESSION": b"s"}
    values = {"BIN": SecretValue(BINARY), "TEXT": SecretValue("caf\u00e9\n")}
    env = child_environment(parent, values)
    assert env == {
        b"PATH": b"/bin",
        b"LANG_ODD": b"\xe9t\xe9",
        b"BIN": BINARY,
        b"TEXT": "caf\u00e9\n".encode(),
    }


def test_render_json_carries_bytes_as_base64_and_text_formats_refuse_them() -> None:
    import base64
    import json

    values = {"BIN": SecretValue(BINARY), "TEXT": SecretValue("line\r\n\x00")}
    data = json.loads(render(values, "json"))
    assert data == {
        "BIN": {"value_base64": base64.b64encode(BINARY).decode()},
        "TEXT": "line\r\n\x00",
    }
    for fmt in ("dotenv", "shell"):
        with pytest.raises(InvalidInput, match="secret BIN is not UTF-8 text") as caught:
            render(values, fmt)
        assert "value_base64" in str(caught.value)
        # Text values are still rendered.
        assert "TEXT" in render({"TEXT": values["TEXT"]}, fmt)
