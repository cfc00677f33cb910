"""`sealbox run`'s one parser agrees with click's parser on every line, and stays click-free."""

from __future__ import annotations

import subprocess
import sys
import typing

import click
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sealbox.cli.main import cli
from sealbox.cli.run_args import OPTIONS, RunArgs, RunUsageError, parse_run_args
from sealbox.cli.run_cmd import RunCommand, run

# Tokens that exercise every rule: known and unknown, long and short, clusters, `=` values,
# the `--` terminator, a lone `-`, help, the choice option, plain words and empty strings.
TOKENS = [
    "--", "-", "", "cmd", "x=y", "-p", "-pX", "-e", "-pe", "-ph", "-hp", "-xp", "-xy", "-p=v",
    "--project", "--env", "--only", "--only=", "--only=A,B", "--preserve-env", "--watch",
    "--watch=1", "--prefer-offline", "--on-change", "--grace", "--mount", "--mount-format",
    "--mount-format=json", "dotenv", "json", "xml", "--env-too", "--foo", "--foo=bar", "---x",
    "-h", "--help", "--help=1", "-h=1", "--=x", "--on", "-x",
]  # fmt: skip


def click_parse(args: list[str]) -> tuple[str, object]:
    """What plain click makes of ``run ARGS`` with the same declared parameters."""
    reference = click.Command(
        "run", params=run.params, context_settings=run.context_settings, callback=run.callback
    )
    parent = click.Context(cli, info_name="sealbox", help_option_names=["-h", "--help"])
    try:
        ctx = click.Command.make_context(reference, "run", list(args), parent=parent)
    except click.exceptions.Exit:
        return ("help", None)
    except click.UsageError as exc:
        return ("error", exc.format_message())
    params = dict(ctx.params)
    params["command"] = tuple(params["command"])
    return ("ok", params)


def ours(args: list[str]) -> tuple[str, object]:
    try:
        parsed = parse_run_args(args)
    except RunUsageError as exc:
        return ("error", exc.message)
    if parsed.help:
        return ("help", None)
    params = parsed._asdict()
    del params["help"]
    return ("ok", params)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=7))
@example(["-xpfoo", "z"])
@example(["--only", "-x", "y"])
@example(["--mount-format", "x'y\"z", "cmd"])
@example(["--mount-format", "xml", "--help"])
@example(["--help", "--only"])
def test_the_parser_agrees_with_click(args: list[str]) -> None:
    assert ours(args) == click_parse(args), args


def test_the_option_table_matches_run_args() -> None:
    hints = typing.get_type_hints(RunArgs)
    for opt in OPTIONS:
        assert opt.dest in RunArgs._fields, opt
        if opt.takes_value:
            assert hints[opt.dest] == str | None and RunArgs._field_defaults[opt.dest] is None
        else:
            assert hints[opt.dest] is bool and RunArgs._field_defaults[opt.dest] is False
    dests = {opt.dest for opt in OPTIONS}
    assert dests | {"command", "help"} == set(RunArgs._fields)


def test_the_click_command_parses_with_the_same_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    real = parse_run_args

    def spy(args: list[str]) -> RunArgs:
        calls.append(list(args))
        return real(args)

    monkeypatch.setattr("sealbox.cli.run_cmd.parse_run_args", spy)
    assert isinstance(run, RunCommand)
    parent = click.Context(cli, info_name="sealbox")
    ctx = run.make_context("run", ["-ppay", "sh", "-c", "x"], parent=parent)
    assert calls == [["-ppay", "sh", "-c", "x"]]
    assert ctx.params["parsed"] == RunArgs(("sh", "-c", "x"), project="pay")


def test_parsing_run_imports_no_click() -> None:
    code = (
        "import sys; from sealbox.cli.run_args import parse_run_args;"
        "parse_run_args(['-p', 'x', '--watch', 'sh']);"
        "import sealbox.cli.run_core, sealbox.delivery.supervise, sealbox.delivery.mounts;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich', 'dataclasses'));"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
