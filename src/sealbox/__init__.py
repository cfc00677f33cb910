"""sealbox: a secrets manager for developers.

The core API is :class:`sealbox.vault.Vault`; build one with :func:`sealbox.factory.open_vault`,
or get whichever the environment selects (embedded, or a server when ``SEALBOX_ADDR`` is
set) with :func:`sealbox.factory.connect`. :class:`sealbox.Client` is the remote SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sealbox.client import Client

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> Any:
    # NOTE: lazily, so `import sealbox` (and `sealbox run`) does not load the SDK.
    if name == "Client":
        from sealbox.client import Client

        return Client
    raise AttributeError(f"module 'sealbox' has no attribute {name!r}")
