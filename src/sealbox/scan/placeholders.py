"""Recognise placeholder and template values: ``changeme``, ``<your-key>``, ``${VAR}``,
``{{ … }}``, ``xxxx``, ``process.env.X``, ``os.environ[...]`` and their kin, and famous example
passwords (``hunter2``, XKCD's ``correct horse battery staple``).

A value that is a placeholder is documentation, not a leak, so the generic detector drops it.
"""

from __future__ import annotations

import re

PLACEHOLDER_WORDS = frozenset(
    [
        "changeme",
        "change_me",
        "change-me",
        "changeit",
        "changethis",
        "password",
        "passw0rd",
        "passwd",
        "secret",
        "secrets",
        "token",
        "apikey",
        "api_key",
        "example",
        "examples",
        "sample",
        "test",
        "testing",
        "dummy",
        "fake",
        "placeholder",
        "redacted",
        "removed",
        "hidden",
        "none",
        "null",
        "nil",
        "undefined",
        "true",
        "false",
        "empty",
        "todo",
        "fixme",
        "tbd",
        "notset",
        "not_set",
        "unset",
        "default",
        "admin",
        "root",
        "guest",
        "user",
        "username",
        "value",
        "mypassword",
        "yourpassword",
        "your_password",
        "my_password",
        "secretpassword",
        "password123",
        "letmein",
        "supersecret",
        "super_secret",
        "mysecret",
        "my_secret",
        "yoursecret",
        "your_secret",
        "mytoken",
        "your_token",
        "insert_here",
        "replace_me",
        "replaceme",
        "required",
        "optional",
        "string",
        "str",
        "bytes",
        "env",
        # filler words of tests and docs
        "foo",
        "bar",
        "baz",
        "qux",
        "foobar",
        "foobarbaz",
        "invalid",
        "ignored",
        "wrong",
        "bad",
        "good",
        "valid",
        "include",
        "omit",
        "same-origin",
        "qwerty",
        "abc",
        "abcd",
        "abcdef",
        "xyz",
        "blah",
        "mysql",
        "postgres",
        "postgresql",
        "mongodb",
        "redis",
        "sqlite",
        "oracle",
        "sa",
        "pass",
        "passw",
        "pwd",
        "pw",
        "key",
        "auth",
        "credentials",
        "hidden_value",
        "masked",
        "sensitive",
        "encrypted",
        "obfuscated",
        "generated",
        "random",
        "auto",
        "off",
        "on",
        "yes",
        "no",
        # famous example passwords and passphrases (comics, tutorials, films): a test or doc
        # quoting one shows how a password is used, it does not leak one
        "hunter2",
        "correcthorsebatterystaple",
        "correct-horse-battery-staple",
        "correct_horse_battery_staple",
        "correct.horse.battery.staple",
        "correct horse battery staple",
        "tr0ub4dor&3",
        "tr0ub4dor",
        "swordfish",
        "opensesame",
        "open-sesame",
        "open_sesame",
        "trustno1",
        "iloveyou",
        "p@ssw0rd",
        "p4ssw0rd",
        "s3cr3t",
        "topsecret",
        "top_secret",
    ]
)

# NOTE: Python ``re`` is fine here: it runs on short candidate values only, never on a file.
_TEMPLATE_RE = re.compile(
    r"""
      <[^<>]{1,80}>                 # <your-key>, <PASSWORD>
    | ^(?:\$\{|\$\(|<|\(\(|\{\{|\{%|\#\{|%\{|@\{|\#\#\#|__[A-Z]|@@)
                                  # an opening the cut value never closed: ${VAR:?msg …},
                                  # ${VAR:-""}, $(openssl rand …), <multi word …>, ((var)),
                                  # ###NAME###, __TOKEN__, @@KEY@@
    | \#\#\#\w+\#\#\#                 # ###NAME### inside a value
    | \$\{[^}]*\}                   # ${VAR}, ${{ secrets.X }}
    | \$\([^)]*\)                   # $(command)
    | \{\{.*?\}\}                   # {{ jinja }}, {{ .Values.x }}
    | \{%.*?%\}                     # {% tag %}
    | \{[A-Za-z_][^{}]*\}           # {name}, {rnd(18)}: f-string / str.format fields
    | ^\$[A-Za-z_]                  # $VAR
    | ^%[A-Za-z_(]                  # %s, %(name)s, %APPDATA%
    | ^:[A-Za-z_]                   # :param (SQL bind, Ruby symbol)
    | ^@[A-Za-z_]                   # @variable
    | (.)\1{3,}                     # xxxx, ****, 0000, ....
    | \.\.\.|…                      # ellipsis
    | process\.env | os\.environ | os\.getenv | getenv\( | System\.getenv | ENV\[
    | environ\.get | \benv\( | secrets\.[A-Za-z_] | vault: | ssm: | arn:aws
    | example | placeholder | changeme | redacted | dummy
    | (?:^|[-_ .])(?:your|my|example|sample|dummy|fake|placeholder|insert|replace|enter|
                   changeme|redacted|test)(?:[-_ .]|$)
    """,
    re.IGNORECASE | re.VERBOSE,
)


def is_placeholder(value: str) -> bool:
    """True when ``value`` is a template, a variable reference or an obvious stand-in."""
    stripped = value.strip().strip("\"'`")
    if not stripped:
        return True
    if stripped.lower() in PLACEHOLDER_WORDS:
        return True
    return _TEMPLATE_RE.search(stripped) is not None
