"""``sealbox incident``: who received a suspected-leaked secret (or an exact value), who
else holds the value, whom to tell and redeploy — through the CLI, never printing a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli_harness import Cli

OLD = "sk_live_old_4f1e2d3c"
NEW = "sk_live_new_9a8b7c6d"


def _setup(cli: Cli) -> None:
    assert cli("secret", "set", "STRIPE_KEY", "-e", "prod", stdin=OLD).status == 0
    assert cli("secret", "get", "STRIPE_KEY", "-e", "prod").status == 0  # v1 read
    assert cli("secret", "set", "STRIPE_KEY", "-e", "prod", stdin=NEW).status == 0
    assert cli("secret", "set", "COPY", "-e", "dev", stdin=OLD).status == 0  # same value
    assert (
        cli(
            "secret",
            "meta",
            "STRIPE_KEY",
            "-e",
            "prod",
            "--owner",
            "payments-team",
            "--contact",
            "oncall@example.com",
            "--upstream",
            "stripe",
            "--depends-on",
            "checkout-api",
            "--depends-on",
            "billing-worker",
        ).status
        == 0
    )


def test_the_report_names_readers_contact_and_the_redeploy_list(
    keyfile_vault: Path, cli: Cli
) -> None:
    _setup(cli)
    r = cli("incident", "payments/prod/STRIPE_KEY", "--reason", "INC-42 key in a log", "--json")
    assert r.status == 0, r.err
    report = json.loads(r.out)
    assert report["secret"] == "payments/prod/STRIPE_KEY"
    assert report["affected_versions"] == [1, 2]
    assert report["value_matched"] is None
    assert report["contact"] == "oncall@example.com" and report["owner"] == "payments-team"
    assert report["redeploy"][:2] == ["checkout-api", "billing-worker"]
    readers = report["readers"]
    assert len(readers) == 1 and readers[0]["versions"] == [1] and readers[0]["reads"] == 1
    assert readers[0]["identity"] in report["redeploy"]
    assert OLD not in r.out + r.err and NEW not in r.out + r.err

    text = cli("incident", "payments/prod/STRIPE_KEY", "--reason", "INC-42")
    assert text.status == 0
    assert "oncall@example.com" in text.out and "checkout-api, billing-worker" in text.out
    assert OLD not in text.out + text.err


def test_an_exact_leaked_value_finds_its_version_and_every_holder(
    keyfile_vault: Path, cli: Cli
) -> None:
    _setup(cli)
    r = cli(
        "incident",
        "payments/prod/STRIPE_KEY",
        "--value",
        "-",
        "--reason",
        "INC-43",
        "--json",
        stdin=OLD + "\n",
    )
    assert r.status == 0, r.err
    report = json.loads(r.out)
    assert report["value_matched"] is True and report["affected_versions"] == [1]
    assert report["also_holding"] == [{"secret": "payments/dev/COPY", "version": 1}]
    # The one read of version 1 handed out exactly this value.
    assert [x["reads"] for x in report["readers"]] == [1]
    assert OLD not in r.out + r.err

    other = cli(
        "incident",
        "payments/prod/STRIPE_KEY",
        "--value",
        "-",
        "--reason",
        "INC-44",
        "--json",
        stdin="not-a-stored-value\n",
    )
    report = json.loads(other.out)
    assert report["value_matched"] is False and report["affected_versions"] == []
    assert report["readers"] == [] and report["also_holding"] == []


def test_the_assessment_is_audited_with_its_reason(keyfile_vault: Path, cli: Cli) -> None:
    _setup(cli)
    assert cli("incident", "payments/prod/STRIPE_KEY", "--reason", "INC-45 pastebin").status == 0
    log = json.loads(cli("audit", "log", "--json", "--limit", "20").out)
    events = [e for e in log if e["operation"] == "incident.assess"]
    assert events and events[0]["reason"] == "INC-45 pastebin"
    assert events[0]["path"] == "payments/prod/STRIPE_KEY"


def test_bad_input_is_refused(keyfile_vault: Path, cli: Cli) -> None:
    _setup(cli)
    leaked = cli("incident", "payments/prod/STRIPE_KEY", "--value", OLD, "--reason", "x")
    assert leaked.status == 2 and "never the value" in leaked.err and OLD not in leaked.err
    assert cli("incident", "payments/prod/STRIPE_KEY", "--reason", "  ").status == 2
    assert cli("incident", "payments/prod/MISSING", "--reason", "x").status == 3
    assert cli("incident", "not a path", "--reason", "x").status == 2
    assert cli("incident", "payments/prod/STRIPE_KEY").status == 2  # --reason is required


def test_rotate_rotates_now_and_revokes_every_older_version(keyfile_vault: Path, cli: Cli) -> None:
    _setup(cli)
    assert (
        cli("rotation", "configure", "STRIPE_KEY", "-e", "prod", "--method", "random").status == 0
    )
    r = cli("incident", "payments/prod/STRIPE_KEY", "--rotate", "--reason", "INC-46", "--json")
    assert r.status == 0, r.err
    report = json.loads(r.out)
    assert report["actions"][0].startswith("rotated: version 3 is current (rot_")
    assert report["actions"][1] == "revoked versions 1, 2"
    assert report["redeploy"][:2] == ["checkout-api", "billing-worker"]
    for version in ("1", "2"):
        old = cli("secret", "get", "STRIPE_KEY", "-e", "prod", "--version", version)
        assert old.status == 3 and "revoked" in old.err
    assert cli("secret", "get", "STRIPE_KEY", "-e", "prod", "--stage", "previous").status == 3
    new = cli("secret", "get", "STRIPE_KEY", "-e", "prod").out.strip()
    assert new not in (OLD, NEW) and new not in r.out
    log = json.loads(cli("audit", "log", "--json", "--limit", "40").out)
    responded = [e for e in log if e["operation"] == "incident.respond"]
    assert responded and "revoked versions 1, 2" in responded[0]["reason"]


def test_rotate_without_a_rotation_changes_nothing(keyfile_vault: Path, cli: Cli) -> None:
    _setup(cli)
    r = cli("incident", "payments/prod/STRIPE_KEY", "--rotate", "--reason", "INC-47")
    assert r.status == 2 and "no rotation configured" in r.err
    assert "sealbox rotation configure payments/prod/STRIPE_KEY" in r.err
    assert cli("secret", "get", "STRIPE_KEY", "-e", "prod", "--version", "1").status == 0


def test_a_failed_rotation_revokes_nothing(
    keyfile_vault: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox.rotation import registry

    monkeypatch.setitem(registry.BUILTIN, "file", "tests.file_rotator:FileRotator")
    _setup(cli)
    upstream, control = tmp_path / "upstream.json", tmp_path / "control.json"
    upstream.write_text(json.dumps({"password": NEW}))
    control.write_text(json.dumps({"refuse_test": "1"}))
    assert cli(
        "rotation", "configure", "STRIPE_KEY", "-e", "prod", "--method", "file",
        "--option", f"upstream={upstream}", "--option", f"control={control}",
    ).status == 0  # fmt: skip
    r = cli("incident", "payments/prod/STRIPE_KEY", "--rotate", "--reason", "INC-48")
    assert r.status == 12 and "no version was revoked" in r.err
    assert cli("secret", "get", "STRIPE_KEY", "-e", "prod", "--version", "1").status == 0
    assert cli("secret", "get", "STRIPE_KEY", "-e", "prod").out.strip() == NEW
