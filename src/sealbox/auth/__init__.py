"""Identities, tokens and policies: who may do what to which secret (default deny)."""
