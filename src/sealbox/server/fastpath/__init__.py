"""The server's fast read path, fenced: everything that trades generality for speed.

What is in it:

* ``protocol.py``: the HTTP/1.1 protocol (uvicorn's httptools/llhttp implementation,
  subclassed for Vault's ``LIST`` verb, bounded request heads and client deadlines);
* ``hotpath.py``: the two hot reads (``GET /v1/secrets/{p}/{e}/{name}`` and
  ``GET /v1/<mount>/data/…``) served before Starlette's router;
* ``barrier.py``: the audit barrier every response waits at, over the vault's
  :class:`~sealbox.audit_commit.AuditCommit` (spool on SQLite, group commit otherwise).

What it may assume:

* the vault is open and served (``Vault.serve()`` returned the strategy the barrier is
  given) and every core call runs on this process's event loop, one at a time;
* uvicorn is the version range ``pyproject.toml`` pins: ``protocol.py`` subclasses the
  private ``HttpToolsProtocol`` and uses its attributes, which
  ``tests/unit/server/test_uvicorn_api.py`` checks explicitly (it fails when they change);
* ``RequestMiddleware`` wraps it: it maps errors, writes the access log and metrics.

What it guarantees:

* no response starts before the audit events of its request are durable by the
  strategy's rule (``pending`` is 0: spooled to a file, or committed in the group's
  transaction); if they cannot be, the request gets the error (503), never the value;
* the same responses as the Starlette path: the hot path calls the routes' own
  ``read_secret`` / ``read_kv``, answers only what they answer, and sets
  ``scope["route"]`` to the same route so logs and metrics name the same template; any
  other request, or any error, takes the ordinary path.

What was kept, and why (``benchmarks/server_bench.py``, interleaved runs; docs/server.md,
"The read hot path", has the table): worker processes, httptools, the audit spool and
group commit are the big wins, measured in issue 4 and before. The smaller tricks were
measured again by turning each off; those whose gain stayed inside the runs' spread were
removed (simpler code wins).
"""

from sealbox.server.fastpath.barrier import AuditBarrier
from sealbox.server.fastpath.hotpath import HotPath

__all__ = ["AuditBarrier", "HotPath"]
