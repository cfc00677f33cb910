import json
import pickle

import pytest

from sealbox.errors import InvalidInput
from sealbox.model import SecretRef, SecretValue, validate_name


def test_secret_value_never_prints_its_value() -> None:
    v = SecretValue("hunter2-value")
    for text in (
        repr(v),
        str(v),
        f"{v}",
        f"{v!r}",
        f"{v:>20}",
        "%s" % (v,),  # noqa: UP031
        repr([v]),
        repr({"k": v}),
    ):
        assert "hunter2" not in text
    assert v.reveal() == "hunter2-value"
    assert v.reveal_bytes() == b"hunter2-value"


def test_secret_value_cannot_be_pickled_or_hashed() -> None:
    v = SecretValue("x")
    with pytest.raises(TypeError):
        pickle.dumps(v)
    with pytest.raises(TypeError):
        hash(v)


def test_secret_value_equality_is_by_content() -> None:
    assert SecretValue("a") == SecretValue(b"a")
    assert SecretValue("a") != SecretValue("b")


@pytest.mark.parametrize(
    "name", ["A", "_", "DATABASE_URL", "a1_b2", "_X9", "1A", "api-key", "tls.crt", "_.-"]
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-A", ".A", "A B", "é", "A\x00", "A" * 256, "A/B", "A:B", "A@B"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_name(name)


@pytest.mark.parametrize(
    "path",
    ["payments/dev", "../dev/X", "-p/dev/X", "p/dev/-X", "p//X", "p/a//X", "p/a:b/c/X", "p/../X"],
)
def test_invalid_paths(path: str) -> None:
    with pytest.raises(InvalidInput):
        SecretRef.parse(path)


def test_a_longer_path_names_a_folder_and_the_root_folder_is_dot() -> None:
    ref = SecretRef.parse("MyApp/prod/db/creds/api-key")
    assert (ref.project, ref.env, ref.name) == ("MyApp", "prod:db:creds", "api-key")
    assert SecretRef.parse(ref.path) == ref
    assert SecretRef.parse("myapp/./TOKEN").env == "."
    with pytest.raises(InvalidInput):
        SecretRef("p", "a:.", "X")  # "." is the root folder only, never a segment
    with pytest.raises(InvalidInput):
        SecretRef("p", "x" * 256, "X")


def test_run_maps_names_that_are_no_variable_names_and_refuses_collisions() -> None:
    from sealbox.model import as_variables, variable_name

    assert [variable_name(n) for n in ("DB_URL", "api-key", "tls.crt", "1st")] == [
        "DB_URL",
        "api_key",
        "tls_crt",
        "_1st",
    ]
    assert as_variables({"api-key": 1, "X": 2}) == {"api_key": 1, "X": 2}
    with pytest.raises(InvalidInput, match="'api-key' and 'api_key' would both set"):
        as_variables({"api_key": 1, "api-key": 2})


def test_path_round_trip() -> None:
    ref = SecretRef.parse("payments/prod/DB_PASSWORD")
    assert (ref.project, ref.env, ref.name) == ("payments", "prod", "DB_PASSWORD")
    assert ref.path == "payments/prod/DB_PASSWORD"


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udcff"])
def test_a_lone_surrogate_is_invalid_input_not_an_encoding_crash(text: str) -> None:
    # From JSON ("\ud800") or from undecodable argv bytes (surrogateescape): issue 10, defect 7.
    with pytest.raises(InvalidInput, match="surrogate") as exc:
        SecretValue(text)
    assert text not in exc.value.message
    assert SecretValue("\U0001f600").reveal() == "\U0001f600"  # a real pair is fine


@pytest.mark.parametrize(
    "raw",
    [b"", b"text", "caf\u00e9 \U0001f600".encode(), b"a\x00b\r\n", b"\xff\xfe", b"\xed\xa0\x80"],
)
def test_value_json_round_trips_every_byte(raw: bytes) -> None:
    from sealbox.model import value_from_json, value_json

    as_json = value_json(SecretValue(raw))
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        assert set(as_json) == {"value_base64"}  # never U+FFFD
    else:
        assert set(as_json) == {"value"}
    again = json.loads(json.dumps(as_json))
    assert value_from_json(again).reveal_bytes() == raw


@pytest.mark.parametrize(
    ("data", "wrong"),
    [
        ({}, "missing field"),
        ({"value": "a", "value_base64": "YQ=="}, "not both"),
        ({"value_base64": "YQ"}, "base64"),
        ({"value_base64": "Y Q=="}, "base64"),
        ({"value_base64": "\u00e9"}, "base64"),
        ({"value_base64": None}, "must be a string"),
        ({"value": 1}, "must be a string"),
    ],
)
def test_value_from_json_refuses_what_is_not_one_value(data: dict[str, object], wrong: str) -> None:
    from sealbox.model import value_from_json

    with pytest.raises(InvalidInput, match=wrong):
        value_from_json(data)
