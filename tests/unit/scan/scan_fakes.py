"""Fake credentials built at run time (so no test file holds a literal that looks like one)
and a small rules file in the schema of ``rules.toml``."""

from __future__ import annotations

import base64
import json
import random
import string

ALNUM = string.ascii_letters + string.digits
B32 = string.ascii_uppercase + "234567"


def rng(seed: int = 7) -> random.Random:
    return random.Random(seed)


def rand(r: random.Random, alphabet: str, n: int) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def aws_key(r: random.Random) -> str:
    return "AK" + "IA" + rand(r, B32, 16)


def github_token(r: random.Random) -> str:
    return "gh" + "p_" + rand(r, ALNUM, 36)


def slack_token(r: random.Random) -> str:
    return (
        "xo"
        + "xb-"
        + rand(r, string.digits, 12)
        + "-"
        + rand(r, string.digits, 12)
        + "-"
        + (rand(r, ALNUM, 24))
    )


def pem_key(r: random.Random, kind: str = "RSA PRIVATE KEY") -> str:
    body = base64.b64encode(r.randbytes(600)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    dash = "-" * 5
    return "\n".join([f"{dash}BEGIN {kind}{dash}", *lines, f"{dash}END {kind}{dash}"])


def password(r: random.Random, n: int = 20) -> str:
    return rand(r, ALNUM + "!#%&*+", n)


def _q(s: str) -> str:
    return json.dumps(s)


def rules_toml(r: random.Random | None = None) -> str:
    """A rules document with four rules, examples included."""
    r = r or rng(99)
    rules = [
        {
            "id": "aws-access-key-id",
            "description": "AWS access key ID",
            "category": "cloud",
            "severity": "critical",
            "regex": r"\b((?:AKIA|ASIA)[A-Z2-7]{16})\b",
            "secret_group": 1,
            "keywords": ["akia", "asia"],
            "examples": [f"key = {aws_key(r)}"],
            "counter_examples": ["AKIA" + "lowercase" * 2],
        },
        {
            "id": "github-pat",
            "description": "GitHub personal access token",
            "category": "source-forge",
            "severity": "high",
            "regex": r"\b(ghp_[A-Za-z0-9]{36})\b",
            "secret_group": 1,
            "keywords": ["ghp_"],
            "entropy": 3.0,
            "examples": [f"token: {github_token(r)}"],
            "counter_examples": ["gh" + "p_" + "a" * 36],
        },
        {
            "id": "private-key",
            "description": "Private key (PEM)",
            "category": "private-key",
            "severity": "critical",
            "regex": r"(?s)-----BEGIN[ A-Z]{0,24}PRIVATE KEY-----.+?-----END[ A-Z]{0,24}"
            r"PRIVATE KEY-----",
            "keywords": ["-----begin"],
            "examples": [pem_key(r)],
            "counter_examples": ["-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----"],
        },
        {
            "id": "slack-bot-token",
            "description": "Slack bot token",
            "category": "messaging",
            "severity": "high",
            "regex": r"\b(xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24,34})\b",
            "secret_group": 1,
            "keywords": ["xoxb-"],
            "examples": [f"SLACK={slack_token(r)}"],
            "counter_examples": ["xo" + "xb-123-456-short"],
        },
    ]
    out = ["version = 1", ""]
    for rule in rules:
        out.append("[[rule]]")
        for key, value in rule.items():
            if isinstance(value, list):
                out.append(f"{key} = [{', '.join(_q(v) for v in value)}]")
            elif isinstance(value, str):
                out.append(f"{key} = {_q(value)}")
            else:
                out.append(f"{key} = {value}")
        out.append("")
    return "\n".join(out)
