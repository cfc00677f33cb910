"""Fault injection at every storage call, as SQLite's anomaly tests inject at every I/O.

:class:`FaultyStorage` wraps the Storage object the factory hands a Vault (and its audit
recorder, sinks, spool and unlocker), counts the calls made while its :class:`FaultPlan`
is armed, and at call N raises :class:`InjectedFault` or SIGKILLs its own process right
after the call returned. Nothing lists the write points: a counting run of an operation
finds how many calls it makes, and every N from 1 to that total is injected in turn, so a
new write point is covered as soon as the code makes it.

A :class:`Scenario` is an operation (a secret write, a metadata update, a delete, a
rollback, an audit append or batch, a spool drain, an unlock or lock) on a secret of its
own, with a preparation before it. :func:`check_after_fault` opens the vault again,
without the proxy, and checks what a crash at that instant may leave: the secret is in
exactly its state before or after the operation (after, when the operation was
acknowledged), every acknowledged value is readable at its version, nothing is half
written, and the audit trail verifies and holds every acknowledged read once.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealbox import factory
from sealbox.errors import NotFound, SealboxError
from sealbox.model import SecretRef, SecretValue
from sealbox.vault import Vault

PROJECT = "crash"
ENV = "dev"
V1 = b"crash-v1-\x00\xff-value"
V2 = "crash-v2-\u00e9\u2603-value".encode()
FOLLOW_UP = b"written after the fault, by the same process"


class InjectedFault(Exception):
    """Raised by :class:`FaultyStorage` right after the call it was told to fail at."""


class FaultPlan:
    """Numbers storage calls while armed; fails call ``fail_at``: right after it returned
    (``instead=False``: the call's work is done, its caller never learns), or in its
    place (``instead=True``: the storage failed)."""

    def __init__(self) -> None:
        self.armed = False
        self.calls: list[str] = []
        self.fail_at: int | None = None
        self.kill = False
        self.instead = False
        self.fired: str | None = None

    def arm(self, fail_at: int | None = None, *, kill: bool = False, instead: bool = False) -> None:
        self.calls, self.fail_at, self.fired = [], fail_at, None
        self.kill, self.instead = kill, instead
        self.armed = True

    def disarm(self) -> None:
        self.armed = False

    def enter(self, name: str) -> int:
        """A call starts: its number (0 when unarmed)."""
        if not self.armed:
            return 0
        self.calls.append(name)
        n = len(self.calls)
        if self.instead and n == self.fail_at:
            self._fire(name, n)
        return n

    def leave(self, n: int) -> None:
        """Call ``n`` returned."""
        if self.armed and not self.instead and n and n == self.fail_at:
            self._fire(self.calls[n - 1], n)

    def _fire(self, name: str, n: int) -> None:
        self.armed = False
        self.fired = name
        if self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        where = "instead of" if self.instead else "after"
        raise InjectedFault(f"{where} storage call {n} ({name})")


class FaultyStorage:
    """A Storage whose public calls a :class:`FaultPlan` numbers and fails.

    ``audit_batch`` is two points: its transaction opening, and its commit (failing
    "instead of" the commit raises inside the batch, which rolls it back).
    """

    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr
        plan = self._plan
        if name == "audit_batch":

            @contextmanager
            def batch(*args: Any, **kwargs: Any) -> Iterator[None]:
                n = plan.enter("audit_batch:open")
                with attr(*args, **kwargs):
                    plan.leave(n)
                    yield
                    n = plan.enter("audit_batch:commit")
                plan.leave(n)

            return batch

        def call(*args: Any, **kwargs: Any) -> Any:
            n = plan.enter(name)
            result = attr(*args, **kwargs)
            plan.leave(n)
            return result

        return call


def install(plan: FaultPlan, setattr_: Callable[[Any, str, Any], None]) -> None:
    """Make the factory wrap every storage it opens (``setattr_``: monkeypatch.setattr)."""
    real = factory.open_storage

    def open_storage(url: str, *, create: bool = False) -> Any:
        return FaultyStorage(real(url, create=create), plan)

    setattr_(factory, "open_storage", open_storage)


# -- acknowledgements -------------------------------------------------------------------------
@dataclass
class Acks:
    """What an operation acknowledged before the fault (as a caller would have seen it)."""

    done: bool = False
    reads: int = 0
    tokens: list[str] = field(default_factory=list)
    locked: bool = False
    #: A session the preparation opened (the lock scenario ends it).
    prepared: str | None = None
    #: Kill mode: each acknowledgement is also written to this pipe, as it happens.
    fd: int | None = None

    def ack(self, line: str) -> None:
        self.apply(line)
        if self.fd is not None:
            os.write(self.fd, (line + "\n").encode())

    def apply(self, line: str) -> None:
        kind, _, arg = line.partition(" ")
        if kind == "done":
            self.done = True
        elif kind == "read":
            self.reads += 1
        elif kind == "token":
            self.tokens.append(arg)
        elif kind == "locked":
            self.locked = True
        elif kind == "prepared":
            self.prepared = arg


# -- scenarios --------------------------------------------------------------------------------
Op = Callable[[Vault, SecretRef, Acks, dict[str, str]], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    prepare: Callable[[Vault, SecretRef, dict[str, str]], None]
    op: Op
    #: Server mode: "spool" (the audit spool, SQLite only) or "defer" (group commit).
    mode: str = ""
    #: Reads the operation attempts (each acknowledged read must be audited once).
    reads: int = 0
    sessions: bool = False
    #: The audit operation that must be in the trail once the change is visible.
    event: str = ""

    def __str__(self) -> str:
        return self.name


def _nothing(vault: Vault, ref: SecretRef, env: dict[str, str]) -> None:
    return None


def _one(vault: Vault, ref: SecretRef, env: dict[str, str]) -> None:
    vault.set(ref, SecretValue(V1))


def _two(vault: Vault, ref: SecretRef, env: dict[str, str]) -> None:
    vault.set(ref, SecretValue(V1))
    vault.set(ref, SecretValue(V2))


def _deleted(vault: Vault, ref: SecretRef, env: dict[str, str]) -> None:
    _one(vault, ref, env)
    vault.delete(ref)


def _unlocked(vault: Vault, ref: SecretRef, env: dict[str, str]) -> None:
    _one(vault, ref, env)
    token, _ = factory.unlock(env=env)
    env["SEALBOX_SESSION"] = token


def _set(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    vault.set(ref, SecretValue(V1))
    acks.ack("done")


def _cas(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    vault.set(ref, SecretValue(V2), if_version=1)
    acks.ack("done")


def _meta(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    vault.update_meta(ref, owner="team-crash", purpose="fault injection", tags=("a", "b"))
    acks.ack("done")


def _delete(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    vault.delete(ref)
    acks.ack("done")


def _undelete(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    vault.undelete(ref)
    acks.ack("done")


def _purge(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    vault.purge(ref)
    acks.ack("done")


def _rollback(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    vault.rollback(ref, 1)
    acks.ack("done")


def _read(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    assert vault.get(ref).value.reveal_bytes() == V1
    acks.ack("read")
    acks.ack("done")


def _batch(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    # Group commit: no answer leaves before the flush stored the batch's events.
    for _ in range(3):
        assert vault.get(ref).value.reveal_bytes() == V1
    vault.audit_commit.commit()
    for _ in range(3):
        acks.ack("read")
    acks.ack("done")


def _spooled(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    # A server answers a read once its event is in the spool file.
    for _ in range(3):
        assert vault.get(ref).value.reveal_bytes() == V1
        acks.ack("read")
    vault.audit_commit.store()
    acks.ack("done")


def _write_after_spooled(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    # A server's write stores the spooled reads first, then commits with its own event.
    for _ in range(2):
        assert vault.get(ref).value.reveal_bytes() == V1
        acks.ack("read")
    vault.set(ref, SecretValue(V2))
    acks.ack("done")


def _unlock(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    token, _ = factory.unlock(env=env)
    acks.ack(f"token {token}")
    acks.ack("done")


def _lock(vault: Vault, ref: SecretRef, acks: Acks, env: dict[str, str]) -> None:
    factory.lock(env=env)
    acks.ack("locked")
    acks.ack("done")


SCENARIOS = [
    Scenario("set-new", _nothing, _set),
    Scenario("set-cas", _one, _cas),
    Scenario("meta", _one, _meta, event="metadata.write"),
    Scenario("delete", _one, _delete, event="delete"),
    Scenario("undelete", _deleted, _undelete, event="undelete"),
    Scenario("purge", _two, _purge, event="purge"),
    Scenario("rollback", _two, _rollback),
    Scenario("audit-append", _one, _read, reads=1),
    Scenario("audit-batch", _one, _batch, mode="defer", reads=3),
    Scenario("spool-drain", _one, _spooled, mode="spool", reads=3),
    Scenario("spooled-then-write", _one, _write_after_spooled, mode="spool", reads=2),
    Scenario("unlock", _one, _unlock, sessions=True),
    Scenario("lock", _unlocked, _lock, sessions=True),
]


# -- running one ------------------------------------------------------------------------------
def open_for(scenario: Scenario, env: dict[str, str]) -> Vault:
    # A server's chain is its own (named after its address), apart from the CLI's.
    node = "crash-server" if scenario.mode else None
    vault = factory.open_vault(env=env, audit_node=node)
    if scenario.mode == "spool":
        vault.serve()
    elif scenario.mode == "defer":
        vault.serve(spool=False)
    return vault


def run_scenario(
    scenario: Scenario,
    ref: SecretRef,
    env: dict[str, str],
    plan: FaultPlan,
    acks: Acks,
    fail_at: int | None,
    *,
    kill: bool = False,
    instead: bool = False,
) -> BaseException | None:
    """Prepare (unarmed), run the operation armed; then, in the same process and with the
    same vault, a follow-up write. Returns what the operation raised."""
    env = dict(env)  # the preparation may add a session to it
    vault = open_for(scenario, env)
    raised: BaseException | None = None
    try:
        scenario.prepare(vault, ref, env)
        if "SEALBOX_SESSION" in env:
            acks.ack(f"prepared {env['SEALBOX_SESSION']}")
        plan.arm(fail_at, kill=kill, instead=instead)
        try:
            scenario.op(vault, ref, acks, env)
        except (InjectedFault, SealboxError) as exc:
            raised = exc
        finally:
            plan.disarm()
        # The process goes on after an exception: the vault it holds still works.
        follow = SecretRef(ref.project, ref.env, ref.name + "_FOLLOW")
        vault.set(follow, SecretValue(FOLLOW_UP))
        if scenario.mode == "defer":
            vault.audit_commit.commit()
    finally:
        vault.close()
    return raised


# -- what a fault may leave -------------------------------------------------------------------
Snapshot = tuple[Any, ...] | None


def snapshot(vault: Vault, ref: SecretRef) -> Snapshot:
    """The secret's state, independent of its name and of the clock."""
    try:
        info = vault.info(ref)
    except NotFound:
        return None
    history = vault.history(ref)
    values = {
        k.version: k.value.reveal_bytes()
        for k in vault.inventory.known_values()
        if k.path == ref.path
    }
    meta = {k: v for k, v in info.meta.to_dict().items() if k != "expires"}
    return (
        info.current_version,
        info.deleted_at is not None,
        tuple(sorted(meta.items(), key=lambda kv: kv[0])),
        tuple(
            (h.version, h.stage.value if h.stage else None, h.rollback_of, values.get(h.version))
            for h in history
        ),
    )


def structural_problems(vault: Vault, project: str, env: str) -> list[str]:
    """Half-written state anywhere in the environment: a version without its value, a
    secret without a current version, a version without the audit event of its write."""
    problems = list(vault.inventory.verify())  # opens every version
    written = {
        (e["path"], e["version"])
        for e in vault.audit.log(operations=("write", "rollback"), limit=None)
        if e["outcome"] == "allowed"
    }
    for info in vault.list_secrets(project, env, include_deleted=True):
        ref = info.ref
        history = vault.history(ref)
        versions = [h.version for h in history]
        current = [h.version for h in history if h.stage and h.stage.value == "current"]
        if not versions:
            problems.append(f"{ref}: a secret without versions")
        if current != [info.current_version]:
            problems.append(f"{ref}: current version {info.current_version}, stages {current}")
        if versions != list(range(1, len(versions) + 1)):
            problems.append(f"{ref}: versions {versions}")
        for v in versions:
            if (ref.path, v) not in written:
                problems.append(f"{ref} v{v}: a version without its write event")
    return problems


def audit_problems(vault: Vault) -> list[str]:
    """Findings of ``audit verify`` other than a torn tail (which it may name)."""
    result = vault.audit.verify()
    return [f for f in result.findings if "spool" not in f and "tail" not in f]


def reads_audited(vault: Vault, ref: SecretRef) -> int:
    return sum(
        1
        for e in vault.audit.log(secret=ref, operations=("read",), limit=None)
        if e["outcome"] == "allowed" and e["path"] == ref.path
    )


def session_opens(env: dict[str, str], token: str, ref: SecretRef) -> bool:
    try:
        vault = factory.open_vault(env={**env, "SEALBOX_SESSION": token})
    except SealboxError:
        return False
    try:
        vault.get(ref)
    except SealboxError:
        return False
    finally:
        vault.close()
    return True


@dataclass(frozen=True)
class Expected:
    before: Snapshot
    after: Snapshot


def check_after_fault(
    scenario: Scenario,
    ref: SecretRef,
    env: dict[str, str],
    expected: Expected,
    acks: Acks,
    *,
    followed_up: bool,
) -> int:
    """Reopen the vault and check what the fault left; returns acknowledged writes checked."""
    clean = {k: v for k, v in env.items() if k != "SEALBOX_SESSION"}
    vault = factory.open_vault(env=clean)
    checked = 0
    try:
        if scenario.mode == "spool":
            vault.serve()  # a server start stores what a stopped process spooled
        state = snapshot(vault, ref)
        where = f"{scenario} {ref.name}"
        if acks.done:
            assert state == expected.after, f"{where}: acknowledged, but {state}"
        else:
            assert state in (expected.before, expected.after), f"{where}: half applied: {state}"
        if state is not None:
            checked += len(state[3])  # every version of it, read back by value
        follow = snapshot(vault, SecretRef(ref.project, ref.env, ref.name + "_FOLLOW"))
        if followed_up:  # exception mode: the process went on and wrote again
            assert follow is not None and follow[3][-1][3] == FOLLOW_UP, where
            checked += 1
        problems = structural_problems(vault, ref.project, ref.env)
        assert problems == [], f"{where}: {problems}"
        if scenario.event and state == expected.after:
            events = vault.audit.log(secret=ref, operations=(scenario.event,), limit=None)
            assert any(e["path"] == ref.path and e["outcome"] == "allowed" for e in events), (
                f"{where}: the change is stored without its {scenario.event} event"
            )
        if scenario.reads:
            audited = reads_audited(vault, ref)
            assert acks.reads <= audited <= scenario.reads, (
                f"{where}: {acks.reads} reads acknowledged, {audited} audited"
            )
        found = audit_problems(vault)
        assert found == [], f"{where}: audit verify: {found}"
    finally:
        vault.close()
    if scenario.sessions:
        for token in acks.tokens:
            assert session_opens(clean, token, ref), f"{scenario}: acknowledged session lost"
            checked += 1
        if acks.locked and acks.prepared is not None:
            assert not session_opens(clean, acks.prepared, ref), f"{scenario}: lock undone"
            checked += 1
    return checked


def home_of(env: dict[str, str]) -> Path:
    return Path(env["SEALBOX_HOME"])
