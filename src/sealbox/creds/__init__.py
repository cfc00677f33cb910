"""Dynamic database credentials: the upstream half (one module per database), used by the
core's lease service (:mod:`sealbox.lease_ops`), which owns roles, leases and audit."""
