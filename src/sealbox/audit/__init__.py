"""Audit events: every operation through Vault leaves one (issue 4 adds the hash chain)."""
