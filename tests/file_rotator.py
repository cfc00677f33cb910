"""A rotator for tests whose "upstream system" is a JSON file (one password, as a database
with a single user would hold it), steered by a control file the test edits.

Options: ``upstream`` (the file) and ``control`` (a JSON object, read at every step):
``unreachable`` (a step that raises UpstreamError), ``refuse_test`` (test raises
RotationFailed), ``raise_in`` (a step that raises a plain exception, a bug), and ``block``
(a point ``STEP:start`` or ``STEP:end`` where the step writes ``reached`` — the file named
by the control's ``reached`` — and sleeps until it is killed; once: when ``reached`` exists
it no longer blocks). The crash test registers it through a real entry point; the unit
tests through the registry's table.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from sealbox.errors import InvalidInput, RotationFailed, UpstreamError
from sealbox.model import SecretValue
from sealbox.rotation.interface import RotationContext


def upstream_password(path: Path) -> str | None:
    if not path.exists():
        return None
    value = json.loads(path.read_text()).get("password")
    return str(value) if value is not None else None


class FileRotator:
    name = "file"

    def check(self, options: Mapping[str, str]) -> None:
        if "upstream" not in options or "control" not in options:
            raise InvalidInput("the file rotator needs options upstream and control")

    @staticmethod
    def _control(ctx: RotationContext) -> dict[str, str]:
        path = Path(ctx.options["control"])
        return json.loads(path.read_text()) if path.exists() else {}

    def _point(self, ctx: RotationContext, step: str, where: str) -> None:
        control = self._control(ctx)
        if where == "start":
            if control.get("unreachable") == step:
                raise UpstreamError(f"upstream {Path(ctx.options['upstream']).name} unreachable")
            if control.get("raise_in") == step:
                raise KeyError("a bug in the rotator")
        if control.get("block") == f"{step}:{where}":
            reached = Path(control["reached"])
            if not reached.exists():
                reached.write_text(f"{step}:{where}")
                while True:  # until the test kills this process
                    time.sleep(1)

    def _write(self, ctx: RotationContext, value: SecretValue | None) -> None:
        path = Path(ctx.options["upstream"])
        path.write_text(json.dumps({"password": value.reveal() if value else None}))

    def create(self, ctx: RotationContext) -> SecretValue:
        self._point(ctx, "create", "start")
        value = SecretValue("pw-" + secrets.token_hex(12))
        self._point(ctx, "create", "end")
        return value

    def set(self, ctx: RotationContext) -> None:
        self._point(ctx, "set", "start")
        self._write(ctx, ctx.pending)
        ctx.note("upstream password changed")
        ctx.state["user"] = "app"
        self._point(ctx, "set", "end")

    def test(self, ctx: RotationContext) -> None:
        self._point(ctx, "test", "start")
        if self._control(ctx).get("refuse_test"):
            raise RotationFailed("upstream refused the new password (login failed)")
        if upstream_password(Path(ctx.options["upstream"])) != ctx.pending.reveal():
            raise RotationFailed("upstream does not accept the pending password")
        self._point(ctx, "test", "end")

    def finish(self, ctx: RotationContext) -> None:
        self._point(ctx, "finish", "start")
        self._point(ctx, "finish", "end")

    def undo(self, ctx: RotationContext) -> None:
        self._point(ctx, "undo", "start")
        self._write(ctx, ctx.current)
        self._point(ctx, "undo", "end")
