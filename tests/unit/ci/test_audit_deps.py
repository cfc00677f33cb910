"""`.ci/audit_deps.py`: what fails CI and what does not (no network: the service is faked)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / ".ci" / "audit_deps.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


audit_deps = _load()

ADVISORY = {"id": "PYSEC-0000-1", "fixed_in": ["2.0"], "withdrawn": None}


def _skipped(name: str, version: str) -> dict[str, Any]:
    return {
        "name": name,
        "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} ({version})",
    }


def _project(latest: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"info": {"version": latest}, "vulnerabilities": list(vulns)}


def test_a_vulnerability_pip_audit_found_is_reported() -> None:
    report = {"dependencies": [{"name": "lib", "version": "1.0", "vulns": [
        {"id": "GHSA-x", "fix_versions": ["1.1"]}]}]}  # fmt: skip
    found, audited, unseen = audit_deps.audit(report, {}, lambda name: pytest.fail(name))
    assert found == ["lib 1.0: GHSA-x (fixed in: 1.1)"]
    assert (audited, unseen) == (1, [])


def test_a_release_the_service_does_not_know_is_audited_through_its_project() -> None:
    report = {"dependencies": [_skipped("Old_Lib", "1.0"), _skipped("fine", "3.0")]}
    projects = {"old-lib": _project("1.0", ADVISORY), "fine": _project("3.0")}
    found, audited, unseen = audit_deps.audit(
        report, {"old-lib": "1.0", "fine": "3.0"}, projects.__getitem__
    )
    assert found == ["old-lib 1.0: PYSEC-0000-1 (fixed in: 2.0)"]
    assert (audited, unseen) == (2, [])


def test_withdrawn_advisories_do_not_count_and_older_releases_are_not_audited() -> None:
    report = {"dependencies": [_skipped("a", "1.0"), _skipped("b", "1.0")]}
    withdrawn = {**ADVISORY, "withdrawn": "2026-01-01T00:00:00"}
    projects = {"a": _project("1.0", withdrawn), "b": _project("9.9", ADVISORY)}
    found, audited, unseen = audit_deps.audit(
        report, {"a": "1.0", "b": "1.0"}, projects.__getitem__
    )
    assert (found, audited, unseen) == ([], 1, ["b 1.0"])


def test_the_editable_install_is_left_out() -> None:
    report = {
        "dependencies": [{"name": "sealbox", "skip_reason": "distribution marked as editable"}]
    }
    assert audit_deps.audit(report, {}, lambda name: pytest.fail(name)) == ([], 0, [])


def _main(
    tmp_path: Path, report: dict[str, Any], monkeypatch: pytest.MonkeyPatch, fetch: Any
) -> int:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    monkeypatch.setattr(audit_deps, "fetch_project", fetch)
    monkeypatch.setattr(audit_deps, "installed_versions", lambda: {"lib": "1.0"})
    status: int = audit_deps.main(["--report", str(path)])
    return status


def test_exit_status_vulnerable_clean_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = {"dependencies": [_skipped("lib", "1.0")]}
    assert _main(tmp_path, report, monkeypatch, lambda n: _project("1.0", ADVISORY)) == 1
    assert "VULNERABLE lib 1.0: PYSEC-0000-1" in capsys.readouterr().out
    assert _main(tmp_path, report, monkeypatch, lambda n: _project("1.0")) == 0
    assert "1 distributions audited, 0 not audited, 0 known" in capsys.readouterr().out

    def down(name: str) -> dict[str, Any]:
        raise audit_deps.Unreachable(f"{name}: connection refused")

    assert _main(tmp_path, report, monkeypatch, down) == 2
    assert "could not be reached" in capsys.readouterr().err
