"""Random sequences of rotations, failures, rehearsals, resumes and cancels keep the
invariants a reader and the upstream system rely on (Hypothesis)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.file_rotator import upstream_password

from sealbox import factory
from sealbox.errors import Conflict, NotFound
from sealbox.kms.master import UnlockMethod
from sealbox.model import SecretRef, SecretValue
from sealbox.rotation import registry

REF = SecretRef("payments", "dev", "DB_PASSWORD")
STEPS = ("create", "set", "test", "finish", "undo")
FAULTS = st.one_of(
    st.just({}),
    st.builds(lambda s: {"unreachable": s}, st.sampled_from(STEPS)),
    st.builds(lambda s: {"raise_in": s}, st.sampled_from(STEPS)),
    st.just({"refuse_test": "1"}),
)
ACTIONS = st.lists(
    st.tuples(st.sampled_from(["start", "rehearse", "resume", "cancel"]), FAULTS),
    min_size=1,
    max_size=8,
)


def _check(vault: factory.Vault, upstream: Path) -> None:
    history = vault.history(REF)
    stages = [v.stage for v in history]
    assert stages.count("current") == 1
    current = next(v.version for v in history if v.stage == "current")
    assert vault.info(REF).current_version == current
    assert stages.count("pending") <= 1
    open_ = [r for r in vault.rotations.status() if r.open]
    assert len(open_) <= 1
    if not open_:
        assert "pending" not in stages
        assert upstream_password(upstream) == vault.get(REF).value.reveal()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS)
def test_any_sequence_keeps_one_current_and_upstream_in_step(
    actions: list[tuple[str, dict[str, str]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp)
        mp.setitem(registry.BUILTIN, "file", "tests.file_rotator:FileRotator")
        home = root / "home"
        factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=root / "k.key")
        vault = factory.open_vault(home=home)
        try:
            vault.create_project("payments")
            vault.set(REF, SecretValue("initial-password-0001"))
            upstream, control = root / "upstream.json", root / "control.json"
            upstream.write_text(json.dumps({"password": "initial-password-0001"}))
            control.write_text("{}")
            vault.rotations.configure(
                REF, "file", options={"upstream": str(upstream), "control": str(control)}
            )
            for action, fault in actions:
                control.write_text(json.dumps(fault))
                try:
                    if action in ("start", "rehearse"):
                        vault.rotations.start(REF, dry_run=action == "rehearse")
                    elif action == "resume":
                        vault.rotations.resume(REF)
                    else:
                        vault.rotations.cancel(REF)
                except (Conflict, NotFound):
                    pass  # a second rotation, nothing to resume or cancel: refused, fine
                _check(vault, upstream)
            # Whatever happened, with the faults gone it can be finished and agrees.
            control.write_text("{}")
            for r in vault.rotations.status():
                if r.open:
                    vault.rotations.resume(r.id)
            _check(vault, upstream)
        finally:
            vault.close()
