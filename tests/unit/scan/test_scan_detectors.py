"""Detectors: provider rules, generic assignments with placeholders, known values."""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from dataclasses import dataclass

import pytest
import scan_fakes as F

from sealbox.model import SecretValue
from sealbox.scan.detectors.generic import score_value
from sealbox.scan.detectors.known import KnownValuesDetector
from sealbox.scan.engine import Engine
from sealbox.scan.findings import DetectorKind, Finding, redact
from sealbox.scan.placeholders import is_placeholder
from sealbox.scan.rules import RuleSet
from sealbox.scan.text import ScanText


def scan(engine: Engine, text: str, path: str = "app/settings.env") -> list[Finding]:
    return engine.scan_text(ScanText(text.encode(), path))


def test_rule_detector_finds_each_kind(engine: Engine) -> None:
    r = F.rng(3)
    secrets = {
        "aws-access-key-id": F.aws_key(r),
        "github-pat": F.github_token(r),
        "slack-bot-token": F.slack_token(r),
    }
    text = "\n".join(f"X{i} = {v}" for i, v in enumerate(secrets.values()))
    found = {f.rule_id: f for f in scan(engine, text, "a.txt")}
    for rid, value in secrets.items():
        f = found[rid]
        assert f.detector is DetectorKind.RULE
        assert value not in repr(f) and value not in f.redacted
        assert f.redacted.startswith(value[:2]) and f.redacted.endswith(value[-1])
    assert found["github-pat"].line == 2


def test_pem_key_spans_lines(engine: Engine) -> None:
    key = F.pem_key(F.rng(4))
    found = scan(engine, "x = 1\n" + key + "\n", "k.txt")
    assert [(f.rule_id, f.line, f.end_line) for f in found] == [
        ("private-key", 2, 2 + key.count("\n"))
    ]


def test_entropy_threshold_rejects_low_entropy(engine: Engine) -> None:
    assert scan(engine, "t = " + "gh" + "p_" + "a" * 36, "a.txt") == []


def test_keyword_prefilter_is_case_insensitive(engine: Engine) -> None:
    assert engine.triggered(b"XOXB-") == frozenset({"slack-bot-token"})
    assert engine.triggered(b"nothing here") == frozenset()


@pytest.mark.parametrize(
    "line",
    [
        'password = "{p}"',
        "DB_PASSWORD={p}",
        "api_key: {p}",
        '"client_secret": "{p}"',
        "  secret_token: '{p}'",
        "auth.token={p}",
        "export SECRET_KEY={p}",
    ],
)
def test_generic_assignment_found(engine: Engine, line: str) -> None:
    p = F.password(F.rng(5), 24)
    found = scan(engine, line.format(p=p), "conf/app.cfg")
    assert [f.rule_id for f in found] == ["generic-secret-assignment"]
    assert p not in repr(found[0])


@pytest.mark.parametrize(
    "line",
    [
        'password = "changeme"',
        'password = "<your-password>"',
        "api_key: ${API_KEY}",
        'token = "{{ vault_token }}"',
        'secret = "xxxxxxxxxxxxxxxx"',
        "password: '********'",
        "API_KEY=your-api-key-here",
        "token = process.env.GITHUB_TOKEN",
        "password = os.environ['DB_PASSWORD']",
        'password = os.getenv("DB_PASSWORD")',
        "secret_key: $SECRET_KEY",
        "password_field = password_input_widget",
        "token_type = bearer_token_kind",
        "password: required",
        "token_url = https://example.org/oauth/token",
        "secret_path = /etc/app/secret.txt",
        'password = "%(password)s"',
        "password = 12345678901",
    ],
)
def test_generic_placeholders_and_benign(engine: Engine, line: str) -> None:
    assert scan(engine, line, "conf/app.cfg") == []


def test_generic_unquoted_in_code_is_an_expression(engine: Engine) -> None:
    assert scan(engine, "password = settings.DB_PASSWORD_VALUE_2\n", "app/db.py") == []
    p = F.password(F.rng(6), 24)
    assert len(scan(engine, f'password = "{p}"\n', "app/db.py")) == 1


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "<API_KEY>",
        "${VAR}",
        "{{ x }}",
        "{token}!",
        "pre{rnd(18)}",
        "xxxx-xxxx",
        "…",
        "your_token_here",
        "$FOO",
    ],
)
def test_is_placeholder(value: str) -> None:
    assert is_placeholder(value)


def test_score_value_accepts_random() -> None:
    assert score_value("password", F.password(F.rng(8), 16)) is not None
    assert score_value("password_hash_name", F.password(F.rng(8), 16)) is None


def test_redaction_shows_only_edges() -> None:
    assert redact("ghp_" + "A" * 30 + "x9Z") == "ghp_…x9Z"
    assert redact("abcdefgh") == "a…h"
    assert redact("abc") == "a…"
    assert redact("") == "…"


def test_inline_allow_comment(engine: Engine) -> None:
    tok = F.github_token(F.rng(9))
    assert scan(engine, f"t = {tok}  # sealbox:allow\n", "a.txt") == []


@dataclass
class KV:
    path: str
    version: int
    value: SecretValue


def known_engine(rules: RuleSet, *values: KV) -> Engine:
    return Engine(rules, known=KnownValuesDetector(values))


def test_known_values_all_encodings(rules: RuleSet) -> None:
    raw = "plain words but s3cret!&/"
    eng = known_engine(rules, KV("payments/prod/DB_PASSWORD", 3, SecretValue(raw)))
    b = raw.encode()
    encoded = {
        "exact": raw,
        "base64": base64.b64encode(b).decode(),
        "base64url": base64.urlsafe_b64encode(b).decode().rstrip("="),
        "url": urllib.parse.quote(raw, safe=""),
        "hex": binascii.hexlify(b).decode(),
        "HEX": binascii.hexlify(b).decode().upper(),
        "in-stream": base64.b64encode(b"PREFIX!" + b + b"suffix").decode(),
    }
    for name, text in encoded.items():
        found = [
            f
            for f in scan(eng, f"log line: {text} end", "ci.log")
            if f.detector is DetectorKind.KNOWN
        ]
        assert found, name
        f = found[0]
        assert "payments/prod/DB_PASSWORD" in f.description and "v3" in f.description
        assert f.redacted == "payments/prod/DB_PASSWORD@v3"
        for shown in (repr(f), f.description, f.redacted):
            assert raw not in shown and text not in shown


def test_known_values_json_escaped(rules: RuleSet) -> None:
    """JSON log lines (the server's, `--json` output) escape non-ASCII as \\uXXXX and a
    quote or backslash with a backslash: a leaked value is found in that form too."""
    import json

    for raw in ("pässwörd-☃-canary", 'quote"and\\backslash-canary'):
        eng = known_engine(rules, KV("payments/prod/API", 1, SecretValue(raw)))
        for ascii_only in (True, False):
            line = json.dumps({"msg": f"leaked {raw}"}, ensure_ascii=ascii_only)
            found = [f for f in scan(eng, line, "app.log") if f.detector is DetectorKind.KNOWN]
            assert [f.redacted for f in found] == ["payments/prod/API@v1"], (raw, line)
    # Not valid UTF-8: no JSON form, and nothing breaks.
    det = KnownValuesDetector([KV("p/e/BIN", 1, SecretValue(b"\xff\xfe-binary-value"))])
    assert det.values_count == 1


def test_known_values_short_values_ignored_and_old_versions_found(rules: RuleSet) -> None:
    det = KnownValuesDetector(
        [
            KV("p/dev/PIN", 1, SecretValue("1234567")),
            KV("p/dev/TOKEN", 1, SecretValue("old-value-0001")),
            KV("p/dev/TOKEN", 2, SecretValue("new-value-0002")),
        ]
    )
    assert det.values_count == 2
    assert "1234567" not in repr(det)
    eng = Engine(rules, known=det)
    found = scan(eng, "pin 1234567 and old-value-0001\n", "x.txt")
    assert [f.redacted for f in found] == ["p/dev/TOKEN@v1"]


def test_known_values_many_values_linear(rules: RuleSet) -> None:
    r = F.rng(11)
    values = [KV(f"p/e/K{i}", 1, SecretValue(F.password(r, 24))) for i in range(2000)]
    eng = Engine(rules, known=KnownValuesDetector(values))
    target = values[1234].value.reveal()
    text = ("filler text " * 20000) + target
    found = scan(eng, text, "big.txt")
    assert [f.redacted for f in found] == ["p/e/K1234@v1"]


def test_no_known_values_is_fine(rules: RuleSet) -> None:
    eng = Engine(rules, known=KnownValuesDetector([]))
    assert scan(eng, "nothing", "a.txt") == []
