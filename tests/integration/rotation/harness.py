"""A small stand-in for the rotation engine: a RotationContext over a dict of secrets,
and a Rotation that runs a rotator's steps as the core does (create, set, test, finish;
undo), promoting pending to current at finish. It also remembers every value it saw, so a
test can check that no error and no note holds one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

import pytest

from sealbox.errors import InvalidInput, NotFound, SealboxError
from sealbox.model import SecretRef, SecretValue
from sealbox.rotation.interface import Rotator


class Ctx:
    """One rotation's context (the protocol in sealbox.rotation.interface)."""

    def __init__(
        self,
        ref: SecretRef,
        options: Mapping[str, str],
        secrets: Mapping[str, SecretValue],
        current: SecretValue | None,
        state: MutableMapping[str, str],
        *,
        rotation_id: str,
        dry_run: bool = False,
        previous: SecretValue | None = None,
    ) -> None:
        self.ref = ref
        self.rotation_id = rotation_id
        self.options = options
        self.dry_run = dry_run
        self.current = current
        self.previous = previous
        self._pending: SecretValue | None = None
        self.state = state
        self.notes: list[str] = []
        self._secrets = secrets

    @property
    def pending(self) -> SecretValue:
        if self._pending is None:
            raise InvalidInput(f"{self.ref} has no pending value yet")
        return self._pending

    def secret(self, path: str) -> SecretValue:
        if path == self.ref.path:
            if self.current is None:
                raise NotFound(f"secret {path} has no current value")
            return self.current
        try:
            return self._secrets[path]
        except KeyError:
            raise NotFound(f"secret {path} not found") from None

    def note(self, message: str) -> None:
        self.notes.append(message)


class Rotation:
    """Rotations of one secret, driven step by step."""

    def __init__(
        self,
        rotator: Rotator,
        options: Mapping[str, str],
        secrets: dict[str, SecretValue],
        *,
        ref: str = "app/prod/DB",
        current: SecretValue | None = None,
    ) -> None:
        rotator.check(options)
        self.rotator = rotator
        self.options = dict(options)
        self.secrets = secrets
        self.ref = SecretRef.parse(ref)
        self.current = current
        self.previous: SecretValue | None = None
        self.seen: list[SecretValue] = [v for v in (current, *secrets.values()) if v]
        self.ctx: Ctx | None = None

    def start(self, *, dry_run: bool = False) -> Ctx:
        """A new rotation: a context and ``create``'s pending value."""
        ctx = Ctx(
            self.ref,
            self.options,
            self.secrets,
            self.current,
            {},
            rotation_id=uuid.uuid4().hex,
            dry_run=dry_run,
            previous=self.previous,
        )
        ctx._pending = self.rotator.create(ctx)
        self.seen.append(ctx._pending)
        self.ctx = ctx
        return ctx

    def finish(self) -> None:
        assert self.ctx is not None
        self.rotator.finish(self.ctx)
        self.previous, self.current = self.current, self.ctx.pending
        self.ctx = None

    def rotate(self) -> Ctx:
        """A whole rotation; the context it ran with."""
        ctx = self.start()
        self.rotator.set(ctx)
        self.rotator.test(ctx)
        self.finish()
        self.assert_clean(*ctx.notes, *ctx.state.keys(), *ctx.state.values())
        return ctx

    def assert_clean(self, *texts: str) -> None:
        """No value this rotation saw (passwords, URLs) is in any of ``texts``."""
        for text in texts:
            for value in self.seen:
                for part in _secret_parts(value):
                    assert part not in text, f"a secret leaked into {text!r}"

    @contextmanager
    def raises(
        self, kind: type[SealboxError], match: str | None = None
    ) -> Iterator[pytest.ExceptionInfo[SealboxError]]:
        """Like pytest.raises, and the error (message and hint) holds no value."""
        with pytest.raises(kind, match=match) as info:
            yield info
        self.assert_clean(str(info.value), info.value.diagnostics())


def _secret_parts(value: SecretValue) -> list[str]:
    """The value, and the password inside it (URL or JSON), whatever the format."""
    import json
    from urllib.parse import unquote, urlsplit

    text = value.reveal()
    parts = [text]
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and isinstance(doc.get("password"), str):
            parts.append(doc["password"])
    except ValueError:
        pass
    if "://" in text:
        password = urlsplit(text).password
        if password:
            parts.append(unquote(password))
    return [p for p in parts if len(p) >= 6]
