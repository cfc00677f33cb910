"""Storage backends: where sealbox keeps ciphertext, metadata and sessions at rest."""
