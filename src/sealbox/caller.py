"""Who is calling the core: the identity and the front end it came through.

A leaf module: the core's services, the audit recorder and the adapters that build a caller
(the server per request, the CLI per process) all import it, and it imports nothing of sealbox.
"""

from __future__ import annotations

from typing import NamedTuple


class Actor(NamedTuple):
    """Who is acting and through which front end.

    ``Actor(identity, source)`` stays valid: every other field has a default.
    """

    identity: str
    source: str  # the kind of front end: cli | api | sdk | scheduler | ci
    identity_id: str = ""
    auth_method: str = ""
    token_accessor: str | None = None
    remote_addr: str | None = None
    user_agent: str | None = None
    hostname: str | None = None
    pid: int | None = None
    request_id: str | None = None
