"""The Python SDK: :class:`Client` speaks to a sealbox server like an embedded vault.

``from sealbox import Client`` (loaded lazily, so ``import sealbox`` stays cheap).
"""

from sealbox.client.accounts import RemoteAccounts
from sealbox.client.client import Client

__all__ = ["Client", "RemoteAccounts"]
