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

What was kept, and why: worker processes, httptools, the audit spool and group commit
are the big wins (measured in issue 4 and before). Each smaller trick was turned off and
measured with ``benchmarks/server_bench.py`` (interleaved runs on a shared 2-core machine;
the sealbox/OpenBao ratio of each run, median [min-max]; docs/server.md has the setup):

====================================  ===========================  ========================
trick                                 native: with -> without      KV v2: with -> without
====================================  ===========================  ========================
hot path before the router (kept)     0.83 -> 0.58 [0.34-0.87]     0.82 -> 0.50 [0.33-0.76]
corked transport (dropped)            0.83 -> 0.74 [0.61-1.05]     0.82 -> 0.76 [0.61-1.57]
gc.freeze after start-up (dropped)    0.83 -> 0.79 [0.66-1.02]     0.82 -> 0.78 [0.74-1.06]
no ServerErrorMiddleware (dropped)    0.83 -> 0.79 [0.58-1.08]     0.82 -> 0.77 [0.52-1.09]
group commit's one-turn wait (drop.)  0.63 -> 0.70 [0.50-0.72]     0.63 -> 0.65 [0.53-0.74]
lone request flushes inline (drop.)   not shown (16 connections are never alone)
====================================  ===========================  ========================

With every trick on the ratios spread over [0.62-3.24] (native) and [0.66-1.46] (KV): only
the hot path's gain stands out of that, so the others went (simpler code wins).
"""

from sealbox.server.fastpath.barrier import AuditBarrier
from sealbox.server.fastpath.hotpath import HotPath

__all__ = ["AuditBarrier", "HotPath"]
