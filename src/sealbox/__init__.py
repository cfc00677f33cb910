"""sealbox: a secrets manager for developers.

The core API is :class:`sealbox.vault.Vault`; build one with :func:`sealbox.factory.open_vault`.
"""

__version__ = "0.1.0"
