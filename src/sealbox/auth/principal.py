"""Who is acting: an identity, its policies, and how it authenticated."""

from __future__ import annotations

from typing import NamedTuple

from sealbox.auth.policy import ROOT_POLICY, Capability, Decision, Policy, decide


class Principal(NamedTuple):
    identity_id: str
    name: str
    kind: str  # local | person | machine
    auth_method: str  # local | password | approle | token
    policies: tuple[Policy, ...]
    token_accessor: str | None = None
    #: The accessors of the token's ancestors, parent first (the token tree): revoking
    #: any of them revokes this token too, so a cache drops it with them.
    token_parents: tuple[str, ...] = ()

    def decide(self, path: str, capability: Capability) -> Decision:
        return decide(self.policies, path, capability)

    def can(self, path: str, capability: Capability) -> bool:
        return self.decide(path, capability).allowed


def local_owner(name: str) -> Principal:
    """The embedded vault's user: whoever holds the master key owns the vault."""
    return Principal("local", name, "local", "local", (ROOT_POLICY,))
