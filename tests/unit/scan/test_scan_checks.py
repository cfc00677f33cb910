"""Post-match checks of provider rules (``check = …`` in rules.toml, sealbox.scan.checks).

``http-credentials``: a word after ``Basic``/``Bearer`` (prose, test names, UI labels) is not
credentials; base64 of ``user:password`` and random tokens still are. Values typed for these
tests.
"""

from __future__ import annotations

import base64

import pytest

from sealbox.errors import InvalidInput
from sealbox.scan.checks import basic_credentials, bearer_token
from sealbox.scan.engine import Engine
from sealbox.scan.rules import load_rules, parse_rules
from sealbox.scan.text import ScanText

RULES = ("authorization-credentials-value", "authorization-basic-header")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_rules())


def rule_ids(engine: Engine, line: str, path: str = "src/client.py") -> set[str]:
    return {f.rule_id for f in engine.scan_text(ScanText(line.encode(), path))}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "line",
    [
        'parser.add_argument("--auth", help="Basic Authorization for the proxy")',
        '- `"Basic Authorization"` labels are counted per repository',
        "assert scheme == 'Bearer Authentication'",
        'log.info("(Bearer AccessTokenRequired)")',
        "raise ValueError('Bearer authentication failed')",
        "docs: 'Basic Authentication' and 'Bearer Authorization' are both accepted",
        'headers = {"Authorization": "Basic Authentication"}',
        'AUTH_HELP = "Basic Zm9vYmFyYmF6cXV4"',  # base64 of a word without a colon
    ],
)
def test_words_after_basic_or_bearer_are_not_credentials(engine: Engine, line: str) -> None:
    assert not rule_ids(engine, line) & set(RULES)


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        (f'assert got == "Basic {_b64("deploy:W7qzPp2nVx")}"', RULES[0]),
        (f'call(url, auth="Basic {_b64("ci-bot:Hr5!tLw9mK")[:-2]}")', RULES[0]),  # unpadded
        ("headers['X'] = 'Bearer Zq8TmW3rKc7vLp2N'", RULES[0]),
        ("token = 'Bearer qzvnmtkrwplxcbhd'", RULES[0]),  # letters, but no word shape
        ("headers['X'] = 'Bearer xKcdRandomQuvalWep'", RULES[0]),  # CamelCase, starts lower+upper
        (f"curl -H 'Authorization: Basic {_b64('svc:Ty6mQ0vRs4Jd')}' https://h", RULES[1]),
    ],
)
def test_credentials_after_basic_or_bearer_are_still_found(
    engine: Engine, line: str, rule: str
) -> None:
    assert rule in rule_ids(engine, line)


def test_the_checks_themselves() -> None:
    assert basic_credentials(_b64("u:p4ssw0rd!x").encode())
    assert basic_credentials(_b64("user:Ünïcode-pw").encode())
    assert not basic_credentials(b"Authorization")
    assert not basic_credentials(_b64("nocolonhere12").encode())
    assert not basic_credentials(base64.b64encode(b"\xff\xfe:\x00\x01\x02\x03\x04"))
    assert not bearer_token(b"Authentication") and not bearer_token(b"AccessTokenHere")
    assert not bearer_token(b"authorization")
    assert bearer_token(b"Authentication2") and bearer_token(b"ACCESS_TOKEN_VALUE")
    assert bearer_token(b"qzvnmtkrwplxcbhd") and bearer_token(b"xKcdRandomQuvalWep")


def test_unknown_check_is_an_error_naming_the_rule() -> None:
    doc = """
version = 1
[[rule]]
id = "demo"
description = "Demo"
category = "generic"
severity = "high"
regex = 'demo_[a-z0-9]{12}'
keywords = ["demo_"]
check = "no-such-check"
"""
    with pytest.raises(InvalidInput, match=r"demo.*'check' must be one of http-credentials"):
        parse_rules(doc)
