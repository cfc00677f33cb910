"""The Python SDK: :class:`Client` speaks to a sealbox server like an embedded vault.

``from sealbox import Client`` (loaded lazily, so ``import sealbox`` stays cheap). Webhook
signatures (Standard Webhooks) for senders and receivers: :func:`sign_webhook`,
:func:`verify_webhook`, :class:`WebhookVerifier` (``sealbox.client.webhooks``).
"""

from sealbox.client.accounts import RemoteAccounts
from sealbox.client.client import Client
from sealbox.client.webhooks import (
    WebhookHeaders,
    WebhookVerifier,
    sign_webhook,
    verify_webhook,
    verify_webhook_headers,
)

__all__ = [
    "Client",
    "RemoteAccounts",
    "WebhookHeaders",
    "WebhookVerifier",
    "sign_webhook",
    "verify_webhook",
    "verify_webhook_headers",
]
