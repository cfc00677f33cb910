"""The core's error wording names no CLI command or flag; the CLI words every hint_key."""

from __future__ import annotations

import ast
from pathlib import Path

import sealbox
from sealbox.cli.hints import CLI_HINTS

SRC = Path(sealbox.__file__).parent
ADAPTERS = ("cli/", "server/")
PENDING: tuple[str, ...] = ()


def _text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) for v in node.values if isinstance(v, ast.Constant | ast.JoinedStr))
    if isinstance(node, ast.BinOp):
        return _text(node.left) + _text(node.right)
    return ""


def _raised_errors() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                calls.append((rel, node.exc))
    return calls


def names_cli(text: str) -> bool:
    if text.startswith("git "):  # git's own flags (`git diff --cached failed: …`)
        return "`sealbox " in text
    return "`sealbox " in text or " --" in text or text.startswith("--")


def test_core_errors_name_no_cli_command_or_flag() -> None:
    offenders = []
    for rel, call in _raised_errors():
        if rel.startswith(ADAPTERS) or rel.startswith(PENDING):
            continue
        texts = [_text(a) for a in call.args[:1]]
        texts += [_text(k.value) for k in call.keywords if k.arg == "hint"]
        offenders += [f"{rel}:{call.lineno}: {t}" for t in texts if names_cli(t)]
    assert offenders == []


def test_every_hint_key_has_a_cli_wording_and_every_wording_is_used() -> None:
    used = {
        k.value.value
        for _, call in _raised_errors()
        for k in call.keywords
        if k.arg == "hint_key" and isinstance(k.value, ast.Constant)
    }
    assert used, "the walk found no hint_key"
    assert used == set(CLI_HINTS)
