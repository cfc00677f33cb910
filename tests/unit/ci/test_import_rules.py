"""The import rules of DESIGN.md as `lint-imports` checks them (pyproject.toml).

The contracts are run on a copy of the source, once as it is and once with a forbidden
import added, so these tests show both that the code keeps the rules and that a rule
catches a break. The allow-lists of the SDK and storage are written as "every sibling
but…": a new top-level package must be placed in them on purpose.
"""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import sealbox

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contract(contract_id: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == contract_id]
    return contract


def _siblings() -> set[str]:
    return {f"sealbox.{m.name}" for m in pkgutil.iter_modules(sealbox.__path__)}


@pytest.mark.parametrize(
    ("contract_id", "allowed"),
    [
        # The SDK: the wire codecs, model, errors, the file helpers and crypto's sealing API.
        (
            "sdk",
            {
                "sealbox.client",
                "sealbox.wire",
                "sealbox.model",
                "sealbox.errors",
                "sealbox.files",
                "sealbox.crypto",
            },
        ),
        ("storage", {"sealbox.storage", "sealbox.errors", "sealbox.model", "sealbox.changes"}),
        ("wire", {"sealbox.wire", "sealbox.files", "sealbox.model", "sealbox.errors"}),
    ],
)
def test_an_allow_list_contract_forbids_every_other_sibling(
    contract_id: str, allowed: set[str]
) -> None:
    forbidden = set(_contract(contract_id)["forbidden_modules"])
    assert forbidden.isdisjoint(allowed)
    assert forbidden | allowed == _siblings()


def _lint(
    tmp_path: Path, break_with: tuple[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts over a copy of src/sealbox."""
    shutil.copytree(
        ROOT / "src" / "sealbox",
        tmp_path / "src" / "sealbox",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    if break_with is not None:
        module, line = break_with
        path = tmp_path / "src" / Path(*module.split(".")).with_suffix(".py")
        path.write_text(path.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_source_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # The cycle issue 11 broke: storage naming the audit chain's genesis again.
        ("sealbox.storage.sql", "from sealbox.audit import events", "No import cycles"),
        ("sealbox.storage.sql", "from sealbox.kms import local", "Storage persists"),
        ("sealbox.cli.scope", "from sealbox.storage import sql", "Adapters import no"),
        ("sealbox.server.routes_kv", "from sealbox.crypto import aead", "Adapters import no"),
        ("sealbox.client.transport", "from sealbox import factory", "The SDK imports only"),
        ("sealbox.client.watch", "from sealbox import changes", "The SDK imports only"),
        ("sealbox.wire.secrets", "from sealbox import vault", "The wire codecs are a leaf"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    result = _lint(tmp_path, (module, line))
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken, result.stdout


def test_ci_runs_the_readme_test_command_and_it_checks_the_import_rules() -> None:
    readme = (ROOT / "README.md").read_text()
    # The second command of the README's first code block.
    (command,) = [
        line for line in readme.splitlines() if line.startswith("pip install -e '.[dev]' && ")
    ]
    tests = command.removeprefix("pip install -e '.[dev]' && ")
    assert "&& lint-imports &&" in tests
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == tests
