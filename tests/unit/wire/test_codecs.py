"""Every codec of sealbox.wire: decode(encode(value)) == value, and a body the API does not
send is a WireError naming the field (never a KeyError, never the value)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sealbox.model import (
    Capability as Cap,
)
from sealbox.model import (
    CheckpointRow,
    Classification,
    Decision,
    Policy,
    Rule,
    Secret,
    SecretInfo,
    SecretMeta,
    SecretRef,
    SecretValue,
    Stage,
    Verification,
    VersionInfo,
)
from sealbox.wire import accounts, audit, errors, events, policies, secrets
from sealbox.wire.fields import WireError

REF = SecretRef("payments", "prod", "DB_URL")
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
META = SecretMeta(
    owner="team-pay",
    classification=Classification.HIGH,
    rotate_every_days=90,
    expires=T1,
    depends_on=("api",),
    tags=("pci", "db"),
)
INFO = SecretInfo(REF, 3, T0, T1, None, META)
DELETED = SecretInfo(SecretRef("payments", "prod", "OLD"), 1, T0, T0, T1, SecretMeta())
IDENTITY = accounts.IdentityInfo("id1", "ci", "machine", ("deploy",), "role-1", "2026-01-01", False)
PERSON = accounts.IdentityInfo("id2", "ann", "person", ("root",), None, "2026-01-01", True)
TOKEN = accounts.TokenInfo(
    "acc1", "ci", ("deploy",), "approle", "t0", "t1", "t2", False, "ci token", "acc0"
)
ROOT_TOKEN = accounts.TokenInfo("acc0", "admin", ("root",), "password", "t0", "t1", "t2", True, "")
POLICY = Policy(
    "deploy",
    (
        Rule("payments/*/*", frozenset({Cap.READ, Cap.LIST})),
        Rule("payments/prod/ROOT_*", frozenset(Cap), deny=True),
        Rule("sys/**", frozenset({Cap.ADMIN}), deny=True),
    ),
    "what CI may read",
)
CHECKPOINT = CheckpointRow("local", 7, "ab" * 32, "2026-01-01T00:00:00+00:00", "cd" * 32, "k1", 3)


def _wired(body: dict[str, Any]) -> Any:
    """As the body crosses HTTP: JSON text and back."""
    return json.loads(json.dumps(body))


# -- round trips ---------------------------------------------------------------------------------
ROUND_TRIPS: list[tuple[str, Callable[[], dict[str, Any]], Callable[[Any], Any], Any]] = [
    ("projects", lambda: secrets.encode_projects(["a", "b"]), secrets.decode_projects, ["a", "b"]),
    ("envs", lambda: secrets.encode_envs(["dev"]), secrets.decode_envs, ["dev"]),
    ("version", lambda: secrets.encode_version(REF, 4), secrets.decode_version, 4),
    ("destroyed", lambda: secrets.encode_destroyed(2), secrets.decode_destroyed, 2),
    ("meta", lambda: secrets.encode_meta(REF, META), secrets.decode_meta, META),
    (
        "empty meta",
        lambda: secrets.encode_meta(REF, SecretMeta()),
        secrets.decode_meta,
        SecretMeta(),
    ),
    ("info", lambda: secrets.encode_info(INFO), secrets.decode_info, INFO),
    (
        "listing",
        lambda: secrets.encode_listing([INFO, DELETED]),
        secrets.decode_listing,
        [INFO, DELETED],
    ),
    (
        "history",
        lambda: secrets.encode_history(
            [
                VersionInfo(1, Stage.PREVIOUS, T0, "ann", "", None),
                VersionInfo(2, Stage.CURRENT, T1, "ci", "", 1),
                VersionInfo(3, None, T1, "", ""),
            ]
        ),
        secrets.decode_history,
        [
            VersionInfo(1, Stage.PREVIOUS, T0, "ann", "", None),
            VersionInfo(2, Stage.CURRENT, T1, "ci", "", 1),
            VersionInfo(3, None, T1, "", ""),
        ],
    ),
    ("identity", lambda: accounts.encode_identity(IDENTITY), accounts.decode_identity, IDENTITY),
    ("person", lambda: accounts.encode_identity(PERSON), accounts.decode_identity, PERSON),
    (
        "identities",
        lambda: accounts.encode_identities([IDENTITY, PERSON]),
        accounts.decode_identities,
        [IDENTITY, PERSON],
    ),
    ("secret id", lambda: accounts.encode_secret_id("sid"), accounts.decode_secret_id, "sid"),
    ("revoked", lambda: accounts.encode_revoked(3), accounts.decode_revoked, 3),
    ("token", lambda: accounts.encode_token_info(TOKEN), accounts.decode_token_info, TOKEN),
    (
        "tokens",
        lambda: accounts.encode_tokens([TOKEN, ROOT_TOKEN]),
        accounts.decode_tokens,
        [TOKEN, ROOT_TOKEN],
    ),
    ("policy", lambda: policies.encode_policy(POLICY), policies.decode_policy, POLICY),
    ("policies", lambda: policies.encode_policies([POLICY]), policies.decode_policies, [POLICY]),
    (
        "events",
        lambda: audit.encode_events([{"op": "read", "n": 1}]),
        audit.decode_events,
        [{"op": "read", "n": 1}],
    ),
    ("hmac", lambda: audit.encode_hmac("ff" * 32), audit.decode_hmac, "ff" * 32),
    (
        "verification",
        lambda: audit.encode_verification(Verification(["bad"], ["note"], ["ok: 3 rows"])),
        audit.decode_verification,
        Verification(["bad"], ["note"], ["ok: 3 rows"]),
    ),
    (
        "checkpoints",
        lambda: audit.encode_checkpoints([CHECKPOINT]),
        audit.decode_checkpoints,
        [CHECKPOINT],
    ),
    (
        "snapshot",
        lambda: events.encode_snapshot({"A": 1, "B": 2}),
        events.decode_snapshot,
        {"A": 1, "B": 2},
    ),
    (
        "stream error",
        lambda: events.encode_stream_error("access_denied", "permission withdrawn"),
        events.decode_stream_error,
        "permission withdrawn",
    ),
    (
        "error",
        lambda: errors.encode_error("not_found", "no such secret", "rid-1"),
        errors.decode_error,
        ("not_found", "no such secret"),
    ),
]


@pytest.mark.parametrize(
    ("encode", "decode", "value"),
    [pytest.param(e, d, v, id=name) for name, e, d, v in ROUND_TRIPS],
)
def test_decode_of_encode_is_the_value(
    encode: Callable[[], dict[str, Any]], decode: Callable[[Any], Any], value: Any
) -> None:
    assert decode(_wired(encode())) == value


def test_a_read_round_trips_with_its_value() -> None:
    secret = Secret(REF, 2, SecretValue("s3cr3t ✓"), T0)
    body = _wired(secrets.encode_read(secret))
    assert body == {
        "path": REF.path,
        "version": 2,
        "value": "s3cr3t ✓",
        "created_at": T0.isoformat(),
    }
    got = secrets.decode_read(body, REF)
    assert got == secret
    assert got.value.reveal() == "s3cr3t ✓"


def test_resolved_values_round_trip() -> None:
    values = {"A": SecretValue("1"), "B": SecretValue("two")}
    got = secrets.decode_resolved(_wired(secrets.encode_resolved(values)))
    assert {k: v.reveal() for k, v in got.items()} == {"A": "1", "B": "two"}


#: Not UTF-8 text: an invalid lead byte, a lone continuation byte, an encoded surrogate.
NOT_UTF8 = b"\xff\x80\xc3\x28\xed\xa0\x80\x00\r\n"


def test_a_value_that_is_not_utf8_crosses_as_base64_byte_for_byte() -> None:
    secret = Secret(REF, 2, SecretValue(NOT_UTF8), T0)
    body = _wired(secrets.encode_read(secret))
    assert "value" not in body
    assert body["value_base64"] == base64.b64encode(NOT_UTF8).decode()
    assert secrets.decode_read(body, REF).value.reveal_bytes() == NOT_UTF8
    values = {"BIN": SecretValue(NOT_UTF8), "TEXT": SecretValue("caf\u00e9\x00\r\n")}
    wired = _wired(secrets.encode_resolved(values))
    assert wired["secrets"] == {
        "BIN": {"value_base64": base64.b64encode(NOT_UTF8).decode()},
        "TEXT": "caf\u00e9\x00\r\n",
    }
    got = secrets.decode_resolved(wired)
    assert {k: v.reveal_bytes() for k, v in got.items()} == {
        "BIN": NOT_UTF8,
        "TEXT": "caf\u00e9\x00\r\n".encode(),
    }


@pytest.mark.parametrize(
    "event",
    [
        events.ChangeEvent("payments", "prod", "DB_URL", 3, "write"),
        events.ChangeEvent("payments", "prod", "DB_URL", None, "purge"),
    ],
)
def test_a_change_round_trips(event: events.ChangeEvent) -> None:
    assert events.decode_change(_wired(events.encode_change(event))) == event


def test_a_new_token_round_trips_with_its_hash() -> None:
    new = accounts.NewToken("sbx_s_" + "A" * 49, accounts.token_hash("sbx_s_" + "A" * 49), "acc1")
    body = _wired(accounts.encode_new_token(new, TOKEN))
    assert body == {
        "token": new.value,
        "accessor": "acc1",
        "expires_at": "t1",
        "max_expires_at": "t2",
        "parent": "acc0",
    }
    assert accounts.decode_new_token(body) == new
    assert new.value not in repr(new)


def test_a_decision_round_trips_given_the_question() -> None:
    rule = POLICY.rules[1]
    decision = Decision(False, Cap.READ, "payments/prod/ROOT_KEY", "deploy", rule, "denied by it")
    body = _wired(policies.encode_decision(decision))
    assert policies.decode_decision(body, "payments/prod/ROOT_KEY", "read") == decision
    no_rule = decision._replace(rule=None, policy=None, reason="no rule grants it")
    body = _wired(policies.encode_decision(no_rule))
    assert body["rule"] is None
    assert policies.decode_decision(body, no_rule.path, "read") == no_rule


def test_a_deny_only_rule_refuses_everything_as_parse_policy_reads_it() -> None:
    from sealbox.auth.policy import parse_policy

    raw = {"name": "p", "rules": [{"path": "x/**", "capabilities": ["deny"]}]}
    assert policies.decode_policy(raw) == parse_policy(raw)


def test_login_keeps_the_token_and_its_accessor_and_expiry() -> None:
    token, info = accounts.decode_login({"token": "t", "accessor": "a", "expires_at": "e"})
    assert (token, info) == ("t", {"accessor": "a", "expires_at": "e"})


def test_the_server_sends_role_id_for_machines_only() -> None:
    assert "role_id" in accounts.encode_identity(IDENTITY)
    assert "role_id" not in accounts.encode_identity(PERSON)


# -- malformed bodies ----------------------------------------------------------------------------
GOOD_INFO = _wired(secrets.encode_info(INFO))

MALFORMED: list[tuple[str, Callable[[Any], Any], Any, str]] = [
    ("not an object", secrets.decode_projects, ["a"], "not a JSON object"),
    ("missing list", secrets.decode_projects, {}, "'projects' is missing"),
    ("list of numbers", secrets.decode_envs, {"environments": [1]}, "'environments'"),
    ("version as text", secrets.decode_version, {"version": "3"}, "'version' is not an integer"),
    ("version as bool", secrets.decode_destroyed, {"destroyed": True}, "'destroyed'"),
    ("no meta", secrets.decode_meta, {"path": REF.path}, "'meta' is missing"),
    ("bad meta", secrets.decode_meta, {"meta": {"classification": "top"}}, "'meta'"),
    ("bad path", secrets.decode_info, {**GOOD_INFO, "path": "a/b"}, "'path'"),
    ("bad time", secrets.decode_info, {**GOOD_INFO, "created_at": "yesterday"}, "'created_at'"),
    ("listing item", secrets.decode_listing, {"secrets": ["x"]}, "an item of 'secrets'"),
    ("stage", secrets.decode_history, {"versions": [{"version": 1, "stage": "gone"}]}, "'stage'"),
    ("resolve", secrets.decode_resolved, {"secrets": {"A": 1}}, "'secrets'"),
    (
        "resolve base64",
        secrets.decode_resolved,
        {"secrets": {"A": {"value_base64": "%%"}}},
        "'value_base64'",
    ),
    ("identity name", accounts.decode_identity, {"kind": "person"}, "'name' is missing"),
    (
        "disabled",
        accounts.decode_identity,
        {"name": "a", "kind": "b", "disabled": "no"},
        "'disabled'",
    ),
    ("token accessor", accounts.decode_token_info, {"identity": "ci"}, "'accessor' is missing"),
    ("tokens list", accounts.decode_tokens, {"tokens": {}}, "'tokens' is not a list"),
    ("new token", accounts.decode_new_token, {"token": 5, "accessor": "a"}, "'token' is not text"),
    ("login", accounts.decode_login, {"token": " "}, "'token' is empty"),
    ("secret id", accounts.decode_secret_id, None, "not a JSON object"),
    (
        "rule caps",
        policies.decode_policy,
        {"name": "p", "rules": [{"path": "x", "capabilities": ["fly"]}]},
        "unknown capability",
    ),
    ("no rules", policies.decode_policy, {"name": "p"}, "'rules' is missing"),
    ("decision", policies.decode_policies, {"policies": [1]}, "an item of 'policies'"),
    (
        "verification",
        audit.decode_verification,
        {"findings": [], "notices": []},
        "'summary' is missing",
    ),
    (
        "checkpoint",
        audit.decode_checkpoints,
        {"checkpoints": [{**CHECKPOINT._asdict(), "seq": "7"}]},
        "'seq'",
    ),
    (
        "checkpoint extra",
        audit.decode_checkpoints,
        {"checkpoints": [{**CHECKPOINT._asdict(), "x": 1}]},
        "unknown field",
    ),
    ("events", audit.decode_events, {"events": "all"}, "'events' is not a list"),
    ("snapshot", events.decode_snapshot, {"versions": {"A": "1"}}, "'versions'"),
    ("change path", events.decode_change, {"path": "a/b", "version": 1}, "'path'"),
    ("error body", errors.decode_error, {"errors": ["vault style"]}, "'error' is missing"),
    (
        "error code",
        errors.decode_error,
        {"error": {"code": 1, "message": "m"}},
        "'code' is not text",
    ),
]


@pytest.mark.parametrize(
    ("decode", "body", "names"),
    [pytest.param(d, b, n, id=name) for name, d, b, n in MALFORMED],
)
def test_a_malformed_body_is_a_wire_error_naming_the_field(
    decode: Callable[[Any], Any], body: Any, names: str
) -> None:
    with pytest.raises(WireError, match=names.replace("(", r"\(")):
        decode(body)


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"value_base64": "YQ"}, "'value_base64'"),
        ({"value": "a", "value_base64": "YQ=="}, "not both"),
    ],
)
def test_a_read_with_a_bad_value_field_is_a_wire_error(fields: dict[str, str], names: str) -> None:
    with pytest.raises(WireError, match=names):
        secrets.decode_read({"version": 1, "created_at": T0.isoformat(), **fields}, REF)


def test_a_malformed_read_never_quotes_the_value() -> None:
    with pytest.raises(WireError) as exc:
        secrets.decode_read({"version": 1, "value": "hunter2", "created_at": 5}, REF)
    assert "hunter2" not in str(exc.value)


def test_a_decision_for_an_unknown_capability_is_a_wire_error() -> None:
    with pytest.raises(WireError):
        policies.decode_decision({"allowed": True, "reason": "r"}, "p", "fly")


def test_every_decoder_has_a_round_trip_and_a_malformed_case() -> None:
    """A new decoder without tests fails here."""
    import inspect

    tested = {d for _, _, d, _ in ROUND_TRIPS} | {d for _, d, _, _ in MALFORMED}
    tested |= {secrets.decode_read, secrets.decode_resolved, events.decode_change}
    tested |= {accounts.decode_new_token, accounts.decode_login, policies.decode_decision}
    for module in (secrets, accounts, policies, audit, events, errors):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("decode_") and fn.__module__ == module.__name__:
                assert fn in tested, f"{module.__name__}.{name} has no test"
