"""Bodies of ``/v1/policies``: policies (as :meth:`Policy.to_dict` writes them) and decisions.

The server parses what a person writes with :func:`sealbox.auth.policy.parse_policy` (every
problem named for its author); the SDK decodes what the server wrote, so here a malformed
body is only a :class:`~.fields.WireError`.
"""

from __future__ import annotations

from typing import Any

from sealbox.model import DENY, GRANTS, Capability, Decision, Policy, Rule
from sealbox.wire.fields import WireError, field, flag, items, obj, opt_text, text, text_list


def encode_policy(policy: Policy) -> dict[str, Any]:
    return policy.to_dict()


def _rule(data: dict[str, Any]) -> Rule:
    raw = text_list(data, "capabilities")
    deny = DENY in raw
    try:
        caps = frozenset(Capability(c) for c in raw if c != DENY)
    except ValueError:
        raise WireError("field 'capabilities' names an unknown capability") from None
    # A rule that lists only "deny" refuses everything (parse_policy reads it so too).
    return Rule(text(data, "path"), caps if caps or not deny else GRANTS, deny)


def decode_policy(data: Any) -> Policy:
    body = obj(data, "a policy")
    rules = tuple(_rule(r) for r in items(body, "rules"))
    return Policy(text(body, "name"), rules, opt_text(body, "description") or "")


def encode_policies(policies: list[Policy]) -> dict[str, Any]:
    return {"policies": [p.to_dict() for p in policies]}


def decode_policies(data: Any) -> list[Policy]:
    return [decode_policy(p) for p in items(obj(data), "policies")]


def encode_decision(decision: Decision) -> dict[str, Any]:
    """What ``explain`` answers (the question's path and capability are the caller's own)."""
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "policy": decision.policy,
        "rule": decision.rule.to_dict() if decision.rule else None,
    }


def decode_decision(data: Any, path: str, capability: str) -> Decision:
    body = obj(data, "a decision")
    field(body, "allowed")
    try:
        cap = Capability(capability)
    except ValueError:
        raise WireError("the capability asked about is not one") from None
    raw_rule = body.get("rule")
    return Decision(
        allowed=flag(body, "allowed"),
        capability=cap,
        path=path,
        policy=opt_text(body, "policy"),
        rule=_rule(obj(raw_rule, "rule")) if raw_rule else None,
        reason=text(body, "reason"),
    )
