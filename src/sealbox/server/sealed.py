"""A server that starts sealed, and auto-unseal's retry.

:func:`sealed_start` opens the vault's keys when the app is built; when they cannot be
opened unattended and the vault can be unsealed some other way (its unseal shares over
``sys/unseal``; an unattended KMS that may come back), the server starts sealed instead
of refusing to start, with one clear log line. :class:`AutoUnseal` then retries the
unattended providers in a background thread, with backoff up to :data:`MAX_DELAY`
seconds, through a vault of its own (its own storage connection: the serving thread's is
never touched from another thread); the KEKs it opens are taken up by the serving thread
at its next request. Each attempt is bounded by the providers' timeout, and no request
ever waits on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sealbox.errors import KeyProviderError, SealboxError, Sealed
from sealbox.vault import Vault

LOG = logging.getLogger("sealbox.server.seal")
FIRST_DELAY, MAX_DELAY = 1.0, 30.0


def sealed_start(vault: Vault) -> bool:
    """Open the keys now; True when the server starts sealed (the error is raised when
    nothing could ever unseal it)."""
    ops = vault.unseal
    if ops.held:
        return True
    try:
        vault.open_keys()
    except (Sealed, KeyProviderError) as exc:
        if not ops.can_start_sealed():
            raise
        ops.hold_sealed()
        LOG.warning("%s", start_message(vault, exc))
        return True
    return False


def start_message(vault: Vault, exc: SealboxError) -> str:
    ops = vault.unseal
    how = []
    status = ops.status()
    if status.threshold:
        how.append(f"{status.threshold} of {status.shares} unseal shares (sys/unseal)")
    if ops.retryable():
        how.append(f"its unattended key providers, retried every {MAX_DELAY:.0f} s at most")
    return (
        f"sealbox is starting SEALED ({exc.message}); serving only sys/health, sys/ready,"
        f" sys/seal-status and sys/unseal until it is unsealed by {' or '.join(how)}"
    )


class AutoUnseal:
    """Retries a sealed vault's unattended providers until one opens its keys."""

    def __init__(
        self,
        vault: Vault,
        reopen: Callable[[], Vault],
        *,
        first: float = FIRST_DELAY,
        cap: float = MAX_DELAY,
    ) -> None:
        self.vault, self.reopen = vault, reopen
        self.first, self.cap = first, cap
        self.attempts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The helper vault whose opener backs the KEKs handed over (kept open).
        self.helper: Vault | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sealbox-auto-unseal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cap + 10)

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def _run(self) -> None:
        delay = self.first
        while not self._stop.is_set() and self.vault.sealed:
            self.attempts += 1
            if self._attempt():
                LOG.warning("sealbox auto-unseal: an unattended key provider opened the keys")
                return
            self._stop.wait(delay)
            delay = min(self.cap, delay * 2)

    def _attempt(self) -> bool:
        helper = None
        try:
            helper = self.reopen()
            ops = helper.unseal
            self.vault.unseal.note_probes(ops.probe())
            if ops.open_unattended(record=False):
                self.vault.unseal.offer(ops.ring())
                self.helper, helper = helper, None
                return True
        except SealboxError as exc:
            LOG.debug("auto-unseal attempt failed: %s", exc.code)
        except Exception as exc:  # a bug must not end the retries silently
            LOG.warning("auto-unseal attempt failed unexpectedly: %s", type(exc).__name__)
        finally:
            if helper is not None:
                helper.close()
        return False

    def close(self) -> None:
        self.stop()
        if self.helper is not None:
            self.helper.close()
