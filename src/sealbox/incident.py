"""The incident view of a secret (``sealbox incident``): if a leak is suspected, exactly
what to disable, replace and redeploy.

:meth:`Incident.assess` answers from the vault alone, changing nothing: which versions
are affected (all, or those equal to a leaked value given by the caller), who received
them and from where (the audit trail; for an exact value, by the HMAC every read event
carries), which other secrets hold the same value, and the secret's owner, contact,
upstream system and dependents from its metadata. The redeploy list is every dependent
named in the metadata and every identity that received an affected version: each holds
the old value until it fetches the new one.

:meth:`Incident.respond` then acts: it revokes the live leases of every credentials role
whose admin login is the secret (their users were made with its authority), rotates the
secret now (its configured rotator), revokes every older version (unreadable by any stage or
number from then on), and reports what it did. A step that
cannot be done stops the response there and says so; what was done stays done and listed.
"""

from __future__ import annotations

from typing import Any

from sealbox.auth.policy import Capability
from sealbox.context import CoreService
from sealbox.errors import InvalidInput, RotationFailed

# IncidentReport and Reader live in the model (the SDK decodes them); re-exported here.
from sealbox.model import IncidentReport, Reader, RotationState, SecretRef, SecretValue, Stage

__all__ = ["Incident", "IncidentReport", "Reader"]


def _readers(events: list[dict[str, Any]], path: str | None) -> tuple[Reader, ...]:
    """Reads grouped by identity and place, oldest first."""
    groups: dict[tuple[str, str, str | None, str | None], dict[str, Any]] = {}
    for event in events:
        key = (event["identity"], event["source"], event["hostname"], event["remote_addr"])
        group = groups.setdefault(key, {"reads": 0, "first": event["at"], "versions": set()})
        group["reads"] += 1
        group["last"] = event["at"]
        for v in event["versions"]:
            if path is None or v.get("path") == path:
                group["versions"].add(int(v.get("version") or 0))
    return tuple(
        Reader(
            identity,
            source,
            host,
            addr,
            g["reads"],
            g["first"],
            g["last"],
            tuple(sorted(g["versions"])),
        )
        for (identity, source, host, addr), g in groups.items()
    )


class Incident(CoreService):
    """The incident view and response for one caller (admin on the secret and sys/audit)."""

    __slots__ = ()

    def __call__(
        self,
        ref: SecretRef,
        *,
        reason: str,
        value: SecretValue | None = None,
        rotate: bool = False,
    ) -> IncidentReport:
        """:meth:`respond` with ``rotate``, else :meth:`assess`: the call shape of the
        SDK's ``Client.incident``, so a command makes one call in either mode."""
        if rotate:
            return self.respond(ref, reason=reason, value=value)
        return self.assess(ref, reason=reason, value=value)

    def assess(
        self, ref: SecretRef, *, reason: str, value: SecretValue | None = None
    ) -> IncidentReport:
        """Who received the affected versions, who else holds the value, whom to tell and
        redeploy. Changes nothing; recorded as ``incident.assess`` with ``reason``."""
        from sealbox.audit_view import AuditView
        from sealbox.inventory import Inventory
        from sealbox.secret_ops import SecretOps

        self._authorize(Capability.ADMIN, ref.path, "incident.assess")
        secrets = SecretOps(self._state, self._caller)
        audit = AuditView(self._state, self._caller)
        info = secrets.info(ref)
        versions = tuple(
            (v.version, v.stage.value if v.stage else None) for v in secrets.history(ref)
        )
        value_matched: bool | None = None
        also: tuple[tuple[str, int], ...] = ()
        if value is None:
            affected = tuple(v for v, _ in versions)
            events = audit.who_read(ref)
            readers = _readers(events, ref.path)
        else:
            matches = Inventory(self._state, self._caller).find_values([value.reveal()])
            mine = tuple(sorted(m.version for m in matches if m.path == ref.path))
            also = tuple(sorted((m.path, m.version) for m in matches if m.path != ref.path))
            value_matched = bool(mine)
            affected = mine
            # Every event that handed out this exact value, whichever secret held it.
            events = audit.who_read(value_hmac=audit.value_hmac(value))
            readers = _readers(events, None)
        redeploy = list(dict.fromkeys(info.meta.depends_on))
        for reader in readers:
            if reader.identity not in redeploy:
                redeploy.append(reader.identity)
        self._record("incident.assess", ref.path, reason=reason[:500])
        return IncidentReport(
            ref=ref,
            reason=reason,
            at=self._clock(),
            current_version=info.current_version,
            versions=versions,
            affected=affected,
            value_matched=value_matched,
            also_holding=also,
            readers=readers,
            meta=info.meta,
            redeploy=tuple(redeploy),
        )

    def respond(
        self, ref: SecretRef, *, reason: str, value: SecretValue | None = None
    ) -> IncidentReport:
        """Assess, then rotate ``ref`` now, revoke its older versions and the leases its
        credentials issued; the report lists each action. Refused before anything changes
        when ``ref`` has no rotation configured (the hint names the command)."""
        from sealbox.rotation_ops import RotationOps

        rotations = RotationOps(self._state, self._caller)
        if rotations.config(ref) is None:
            # Denied or missing before "not configured": a caller without admin learns
            # nothing more, and a missing secret is a 404 like everywhere else.
            self._authorize(Capability.ADMIN, ref.path, "incident.respond")
            self._storage.get_secret(ref.project, ref.env, ref.name)
            raise InvalidInput(
                f"{ref} has no rotation configured, so it cannot be rotated now",
                hint="configure its rotation (or write a new value), then respond again",
                hint_key="incident_configure",
                hint_args={"path": ref.path},
            )
        report = self.assess(ref, reason=reason, value=value)
        # NOTE: leases first, while the admin login they were made with still works
        # (a rotation of that login may leave the vault holding a value its users'
        # revocation cannot log in with until the rotation is finished everywhere).
        actions = self._revoke_leases(ref)
        rotation = rotations.start(ref)
        if rotation.state is not RotationState.SUCCEEDED:
            self._record("incident.respond", ref.path, outcome="error", reason=rotation.id)
            raise RotationFailed(
                f"the rotation of {ref} ({rotation.id}) is {rotation.state}: {rotation.error}"
                " — no version was revoked",
                hint="resume or cancel the rotation, then respond again",
                hint_key="incident_rotation",
                hint_args={"rotation": rotation.id, "path": ref.path},
            )
        actions.append(f"rotated: version {rotation.pending_version} is current ({rotation.id})")
        revoked = []
        for number, stage in self._versions(ref):
            if stage in (Stage.CURRENT, Stage.REVOKED, Stage.PENDING):
                continue
            rotations.revoke(ref, number)
            revoked.append(number)
        if revoked:
            actions.append(f"revoked versions {', '.join(map(str, sorted(revoked)))}")
        self._record("incident.respond", ref.path, reason="; ".join(actions)[:500])
        return report._replace(actions=tuple(actions))

    def _revoke_leases(self, ref: SecretRef) -> list[str]:
        """Revoke the live leases of every credentials role whose admin login is ``ref``:
        their database users were made with the leaked login's authority. A role whose
        leases cannot all be revoked now is reported (the reaper retries them)."""
        from sealbox.errors import SealboxError
        from sealbox.lease_ops import LeaseOps

        leases = LeaseOps(self._state, self._caller)
        done: list[str] = []
        for role in leases.list_roles():
            if role.admin != ref.path:
                continue
            try:
                live = leases.list_leases(role.path)
                left = leases.revoke_prefix(role.path)
            except SealboxError as exc:
                done.append(f"leases of {role.path} not revoked: {exc.message}")
                continue
            line = f"revoked {len(live) - len(left)} lease(s) of {role.path}"
            if left:
                line += f"; {len(left)} not yet (the reaper retries them)"
            done.append(line)
        return done

    def _versions(self, ref: SecretRef) -> list[tuple[int, Stage | None]]:
        """(version, stage) of every version of ``ref`` (no event of its own: the
        assessment before it recorded the history read)."""
        return [
            (int(r.version), Stage(r.stage) if r.stage else None)
            for r in self._storage.history(ref.project, ref.env, ref.name)
        ]
