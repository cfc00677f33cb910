"""The benchmark harnesses' shared helpers: rounds, ratios, installs, bytecode, ports.

Nothing here times anything; these are the parts that decide what a comparison means.
"""

from __future__ import annotations

import socket
import statistics
from pathlib import Path

import pytest
from benchmarks.bench_common import (
    Spread,
    bytecode_env,
    free_port,
    per_round_ratios,
    port_is_free,
    resolve_install,
    rotated,
    spread,
)


def test_rotated_gives_every_tool_the_first_slot_in_turn_and_keeps_each_round_whole() -> None:
    tools = ["sealbox", "base", "openbao"]
    rounds = [rotated(tools, r) for r in range(6)]
    assert [r[0] for r in rounds] == ["sealbox", "base", "openbao"] * 2
    assert all(sorted(r) == sorted(tools) for r in rounds)
    assert rotated(["a", "b"], 0) == ["a", "b"]
    assert rotated(["a", "b"], 1) == ["b", "a"]
    assert rotated([], 3) == []


def test_ratios_are_taken_within_each_round_not_between_medians() -> None:
    # Round 2 is slow for both (a noisy neighbour): within-round ratios stay at 2.0, while
    # the ratio of the medians would say 1.0.
    rounds = [{"a": 200.0, "b": 100.0}, {"a": 20.0, "b": 10.0}, {"a": 2000.0, "b": 1000.0}]
    assert per_round_ratios(rounds, "a", "b") == [2.0, 2.0, 2.0]
    rounds = [{"a": 100.0, "b": 400.0}, {"a": 200.0, "b": 100.0}, {"a": 300.0, "b": 200.0}]
    ratios = per_round_ratios(rounds, "a", "b")
    assert ratios == [0.25, 2.0, 1.5]
    medians = statistics.median(r["a"] for r in rounds) / statistics.median(r["b"] for r in rounds)
    assert medians == 1.0
    assert spread(ratios) == Spread(median=1.5, low=0.25, high=2.0)


def test_a_round_without_the_denominator_is_left_out() -> None:
    rounds = [{"a": 1.0, "b": 2.0}, {"a": 1.0}, {"a": 3.0, "b": 0.0}]
    assert per_round_ratios(rounds, "a", "b") == [0.5]


def test_spread_is_median_and_range_and_shows_both() -> None:
    s = spread([1.2, 0.9, 1.05, 1.4])
    assert s == Spread(median=1.125, low=0.9, high=1.4)
    assert s.show() == "1.12 (0.90-1.40)"
    assert spread([2.0]).show(1) == "2.0 (2.0-2.0)"
    with pytest.raises(ValueError):
        spread([])


def test_bytecode_env_turns_bytecode_on_into_the_cache_dir_only(tmp_path: Path) -> None:
    parent = {"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin", "SEALBOX_HOME": "/h"}
    env = bytecode_env(parent, tmp_path / "pyc")
    assert env == {
        "PATH": "/usr/bin",
        "SEALBOX_HOME": "/h",
        "PYTHONPYCACHEPREFIX": str(tmp_path / "pyc"),
    }
    assert parent["PYTHONDONTWRITEBYTECODE"] == "1"  # the caller's mapping is left alone


def _fake_venv(root: Path) -> Path:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "sealbox"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir / "python"


def test_an_install_is_found_from_its_python_its_venv_or_its_checkout(tmp_path: Path) -> None:
    python = _fake_venv(tmp_path / "checkout" / ".venv")
    for where in (python, python.parents[1], tmp_path / "checkout"):
        inst = resolve_install("base", where)
        assert (inst.label, inst.python, inst.sealbox) == (
            "base",
            python,
            python.with_name("sealbox"),
        )


def test_an_install_without_sealbox_is_refused_with_the_path(tmp_path: Path) -> None:
    python = _fake_venv(tmp_path / "venv")
    python.with_name("sealbox").unlink()
    with pytest.raises(SystemExit, match="no_install"):
        resolve_install("base", tmp_path / "venv")
    with pytest.raises(SystemExit, match="no_install"):
        resolve_install("base", tmp_path / "nowhere")


def test_a_port_in_use_is_not_free_and_free_port_checks_the_ports_after_it() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        assert not port_is_free(held.getsockname()[1])
    port = free_port(span=2)
    assert port_is_free(port) and port_is_free(port + 1)
