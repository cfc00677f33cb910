"""Key providers: who holds the key-encryption keys that wrap each version's data key."""
