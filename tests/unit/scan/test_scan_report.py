"""Reports: JSON, SARIF 2.1.0 structure, table; no full secret anywhere."""

from __future__ import annotations

import io
import json

import scan_fakes as F

from sealbox.scan.engine import Engine
from sealbox.scan.findings import ScanResult
from sealbox.scan.report import to_json, to_sarif, write_table
from sealbox.scan.text import ScanText


def result(engine: Engine) -> tuple[ScanResult, list[str]]:
    r = F.rng(41)
    secrets = [F.github_token(r), F.aws_key(r), F.password(r, 24)]
    text = f"t = {secrets[0]}\nk = {secrets[1]}\npassword = '{secrets[2]}'\n"
    res = ScanResult(files_scanned=1, bytes_scanned=len(text), notes=["a note"])
    res.findings = engine.scan_text(ScanText(text.encode(), "conf/app.cfg"))
    return res, secrets


def test_json(engine: Engine) -> None:
    res, secrets = result(engine)
    out = to_json(res, res.findings)
    doc = json.loads(out)
    assert len(doc["findings"]) == 3 and doc["notes"] == ["a note"]
    assert {"rule_id", "path", "line", "secret", "fingerprint", "severity"} <= set(
        doc["findings"][0]
    )
    assert all(s not in out for s in secrets)


def test_sarif_required_fields(engine: Engine) -> None:
    res, secrets = result(engine)
    out = to_sarif(res, res.findings, "1.2.3")
    assert all(s not in out for s in secrets)
    doc = json.loads(out)
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    [run] = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "sealbox" and driver["version"] == "1.2.3"
    rule_ids = [r["id"] for r in driver["rules"]]
    for r in driver["rules"]:
        assert r["shortDescription"]["text"]
    for item in run["results"]:
        assert item["message"]["text"]
        assert item["level"] in ("error", "warning", "note")
        assert rule_ids[item["ruleIndex"]] == item["ruleId"]
        loc = item["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "conf/app.cfg"
        assert loc["region"]["startLine"] >= 1
        assert len(item["partialFingerprints"]["sealbox/v1"]) == 64


def test_table(engine: Engine) -> None:
    res, secrets = result(engine)
    buf = io.StringIO()
    write_table(res, res.findings, buf)
    out = buf.getvalue()
    assert "github-pat" in out and "conf/app.cfg:1" in out and "3 finding(s)" in out
    assert all(s not in out for s in secrets)
    empty = io.StringIO()
    write_table(ScanResult(files_scanned=2), [], empty)
    assert "no leaks found" in empty.getvalue()
