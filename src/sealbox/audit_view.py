"""The audit trail's queries and checks (admin on ``sys/audit``): ``vault.audit``.

Listing, filtering and "who read this" queries, the value HMAC to search a leak by,
verification of every chain and stored version, and checkpoints. Each is authorised and
is itself audited; queries first store the events this process still holds, so an answer
includes the operations before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sealbox.auth.policy import Capability
from sealbox.context import CoreService
from sealbox.errors import InvalidInput
from sealbox.model import SecretRef, SecretValue, validate_scope

if TYPE_CHECKING:
    from sealbox.audit.query import Access, Reader
    from sealbox.audit.verify import SpoolReport, Verification
    from sealbox.storage.rows import CheckpointRow


class AuditView(CoreService):
    """Queries over one vault's audit trail, and its verification, for one caller."""

    __slots__ = ()

    def tail(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest events, oldest first."""
        from sealbox.audit.query import flat_event

        self._authorize(Capability.ADMIN, "sys/audit", "audit.read")
        self._audit.settle()
        return [flat_event(r) for r in self._storage.list_audit(limit)]

    def log(
        self,
        *,
        secret: SecretRef | None = None,
        identity: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        operations: Sequence[str] | None = None,
        denied: bool = False,
        source: str | None = None,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        """Events matching every filter given, newest first.

        ``secret`` matches events on that secret and environment-wide events (run, export)
        that handed it out.
        """
        from sealbox.audit.query import flat_event, touches
        from sealbox.storage.rows import AuditQuery

        self._authorize(Capability.ADMIN, "sys/audit", "audit.read")
        self._audit.settle()
        query = AuditQuery(
            paths=(secret.path, f"{secret.project}/{secret.env}") if secret else None,
            identity=identity,
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            operations=tuple(operations) if operations else None,
            outcomes=("denied",) if denied else None,
            source=source,
            limit=None if secret else limit,
        )
        events = [flat_event(r) for r in self._storage.query_audit(query)]
        if secret is not None:
            events = [
                e for e in events if e["path"] == secret.path or touches(e, secret.path, None)
            ]
            if limit is not None:
                events = events[:limit]
        self._record("audit.read", "sys/audit")
        return events

    def who_read(
        self,
        ref: SecretRef | None = None,
        *,
        version: int | None = None,
        value_hmac: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Allowed events that handed out a secret's value (a version, or an exact value
        given by its HMAC), oldest first: identity, source, time, versions."""
        from sealbox.audit.events import VALUE_READS
        from sealbox.audit.query import flat_event, touches
        from sealbox.storage.rows import AuditQuery

        if ref is None and value_hmac is None:
            raise InvalidInput("name a secret, a value HMAC, or both")
        if version is not None and ref is None:
            raise InvalidInput(
                "a version can only be asked for with a secret path",
                hint_key="version_needs_secret",
            )
        self._authorize(Capability.ADMIN, "sys/audit", "audit.read")
        self._audit.settle()
        query = AuditQuery(
            paths=(ref.path, f"{ref.project}/{ref.env}") if ref else None,
            operations=tuple(sorted(VALUE_READS)),
            outcomes=("allowed",),
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            limit=None,
            newest_first=False,
        )
        found = []
        for event in map(flat_event, self._storage.query_audit(query)):
            hits = [
                v
                for v in event["versions"]
                if (ref is None or touches({"versions": [v]}, ref.path, version))
                and (value_hmac is None or v.get("value_hmac") == value_hmac.lower())
            ]
            if hits:
                found.append({**event, "versions": hits})
        target = ref.path if ref else "a value HMAC"
        self._record("audit.read", "sys/audit", reason=f"who-read {target}")
        return found

    def value_hmac(self, value: SecretValue) -> str:
        """The HMAC audit events carry for this exact value (to search for a leaked one)."""
        self._authorize(Capability.ADMIN, "sys/audit", "audit.hash")
        self._key_provider()
        digest = self._audit.require_keys().value_hmac(value.reveal_bytes())
        self._record("audit.hash", "sys/audit")
        return digest

    def verify(self, files: Sequence[str] = ()) -> Verification:
        """Walk the database chains and the JSONL files (configured ones and ``files``),
        check every stored version against its write event, and account for the server
        spools (pending, rejected, missing: the last two until accepted)."""
        from pathlib import Path

        from sealbox.audit.keys import verify_key
        from sealbox.audit.sinks.jsonl import JsonlSink
        from sealbox.audit.verify import Verification, spool_findings, verify_database, verify_file

        self._authorize(Capability.ADMIN, "sys/audit", "audit.verify")
        self._audit.settle()
        self._key_provider()
        keys = self._audit.require_keys()
        public = verify_key(self._storage)
        has_db = any(s.name == "db" for s in self._audit.sinks)
        result = verify_database(self._storage, keys, public, self.vault_id, check_versions=has_db)
        paths = [s.path for s in self._audit.sinks if isinstance(s, JsonlSink)]
        paths.extend(Path(f) for f in files if Path(f) not in paths)
        for path in paths:
            one = verify_file(path, keys, public, self.vault_id)
            result = Verification(
                result.findings + one.findings,
                result.notices + one.notices,
                result.summary + one.summary,
            )
        findings, notices = spool_findings(self._spool_report())
        result.findings.extend(findings)
        result.notices.extend(notices)
        self._record("audit.verify", "sys/audit", reason=f"{len(result.findings)} findings")
        return result

    def _spool_report(self) -> SpoolReport:
        from sealbox.audit.verify import spool_report

        return spool_report(self._storage, self._audit.audit_keys(), self._storage.spool_dir())

    def spool_notices(self) -> list[str]:
        """Server audit spools that hold events no process is storing (a server stopped
        without storing them), and spools that failed their check or went missing and
        that no operator accepted yet (what `sealbox doctor` warns of)."""
        from sealbox.audit.verify import spool_findings

        if self._storage.spool_dir() is None:
            return []
        # NOTE: never unlocks (no passphrase prompt from a health check): spool records are
        # checked only when this process already holds the keys.
        findings, notices = spool_findings(self._spool_report())
        return findings + [n for n in notices if "accepted by" not in n]

    def accept_rejected(self, file: str) -> str:
        """An operator reviewed a rejected (or missing) audit spool: record that, in the
        chain (``audit.accept``, naming the file and its SHA-256), so verify passes again.
        Returns the file name accepted."""
        from pathlib import Path

        from sealbox.crypto import macs

        self._authorize(Capability.ADMIN, "sys/audit", "audit.accept")
        self._key_provider()
        name = Path(file).name
        report = self._spool_report()
        if name not in report.flagged:
            raise InvalidInput(
                f"{file!r} is not a rejected or missing audit spool that verify reports",
                hint="name a file that audit verification reports as rejected or missing",
                hint_key="accept_rejected",
            )
        if name in report.accepted:
            return name
        directory = self._storage.spool_dir()
        kept = directory / name if directory is not None else None
        digest = "-"
        if kept is not None and kept.is_file():
            digest = macs.sha256(kept.read_bytes()).hex()
        self._audit.settle()
        self._record(
            "audit.accept",
            "sys/audit",
            reason=f"accepted a rejected or missing audit spool [file: {name}] sha256 {digest}",
            immediate=True,
        )
        self._audit.after_write()
        return name

    def checkpoint(self) -> list[CheckpointRow]:
        """Sign every chain head now with the vault's checkpoint key."""
        self._authorize(Capability.ADMIN, "sys/audit", "audit.checkpoint")
        self._key_provider()
        self._record("audit.checkpoint", "sys/audit")
        return self._audit.checkpoint(self._now())

    def last_access(self, project: str, env: str) -> dict[str, Access]:
        """Each secret's last access (value reads and metadata views alike), by path."""
        from sealbox.audit.query import Access, flat_event
        from sealbox.storage.rows import AuditQuery

        validate_scope("project", project)
        validate_scope("environment", env)
        self._authorize(Capability.ADMIN, "sys/audit", "audit.read")
        self._audit.settle()
        names = [r.name for r in self._storage.list_secrets(project, env, include_deleted=True)]
        paths = tuple(f"{project}/{env}/{n}" for n in names)
        query = AuditQuery(paths=(*paths, f"{project}/{env}"), outcomes=("allowed",), limit=None)
        found: dict[str, Access] = {}
        for event in map(flat_event, self._storage.query_audit(query)):  # newest first
            hit = [event["path"]] if event["path"] in paths else []
            hit += [v["path"] for v in event["versions"] if v.get("path") in paths]
            for path in hit:
                if path not in found:
                    found[path] = Access(
                        path, event["time"], event["identity"], event["operation"], event["source"]
                    )
        self._record("audit.read", f"{project}/{env}", reason="last-access")
        return found

    def readers(
        self, ref: SecretRef, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[Reader]:
        """The identities that received a secret's value in a window, with how and when."""
        from sealbox.audit.query import Reader

        events = self.who_read(ref, since=since, until=until)
        by: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            by.setdefault(e["identity"], []).append(e)
        return [
            Reader(
                identity=name,
                sources=tuple(sorted({e["source"] for e in evs})),
                first=evs[0]["time"],
                last=evs[-1]["time"],
                count=len(evs),
                versions=tuple(sorted({v["version"] for e in evs for v in e["versions"]})),
            )
            for name, evs in sorted(by.items())
        ]
