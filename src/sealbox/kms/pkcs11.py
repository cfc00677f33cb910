"""The ``pkcs11`` key provider family: an AES key inside an HSM (any PKCS#11 token,
through python-pkcs11), which wraps the vault's KEKs without ever leaving the token.

Registered as ``pkcs11`` (:mod:`sealbox.kms.registry`; the SDK is imported only when a
vault uses it). Its stored config is ``{"library": path, "token_label": …,
"key_label": …, "pin_env": env var name}``: the token is found by its label (slot numbers
change when tokens are added), and the user PIN is never stored — it is read from the
environment variable ``pin_env`` names (``SEALBOX_PKCS11_PIN`` by default).

A wrapping is AES-256-GCM computed inside the token: ``version (1 byte) || IV (12 bytes)
|| ciphertext || tag (16 bytes)``, with the caller's context as associated data.

Sessions. A PKCS#11 login belongs to the whole process, not to one session, and logging
out of one session logs out every session of the token (the spec's rule). So each
process keeps one login per (library, token) shared by every provider on that token
(reference-counted, its PIN compared in constant time), while each provider works in its
own session. python-pkcs11 initialises the library without locking arguments, which
lets a library assume it is called by one thread at a time: every call into one library
is serialised by that library's lock (the server is multithreaded). A library call
cannot be timed out from here; a caller waiting for the lock gives up after the
provider's timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.mechanisms import GCMParams

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError
from sealbox.kms.interface import NewProvider
from sealbox.kms.registry import ProviderContext

if TYPE_CHECKING:
    from pkcs11.types import Session, Token

    class _AesKey(Protocol):
        """What sealbox uses of a token's AES key (python-pkcs11's Key + its mixins)."""

        def encrypt(self, data: bytes, **kwargs: Any) -> bytes: ...

        def decrypt(self, data: bytes, **kwargs: Any) -> bytes: ...


KIND = "pkcs11"
DEFAULT_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
DEFAULT_PIN_ENV = "SEALBOX_PKCS11_PIN"
#: The wrapping format's version byte (AES-GCM inside the token, 96-bit IV, 128-bit tag).
VERSION = 1
IV_BYTES = 12
TAG_BYTES = 16
OPTIONS = frozenset({"library", "token_label", "key_label", "pin_env", "generate"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_LABEL_MAX = 32  # CKA_LABEL of a token is 32 bytes; key labels are kept as short
_TRUE, _FALSE = frozenset({"true", "yes", "1", "on"}), frozenset({"false", "no", "0", "off", ""})

#: The token said the PIN is wrong (or locked, expired …).
_PIN_ERRORS = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinExpired, p11.PinLocked)
#: The session or the token went away: reopen once and retry.
_SESSION_ERRORS = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.UserNotLoggedIn,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.KeyHandleInvalid,
    p11.ObjectHandleInvalid,
)
#: Of those, the ones that leave the login alone (a stale key handle).
_OBJECT_ERRORS = (p11.KeyHandleInvalid, p11.ObjectHandleInvalid)
#: What a decrypt of an altered blob or under another context raises (SoftHSM2 and
#: python-pkcs11 0.10 report a failed GCM tag check as a plain GeneralError).
_DECRYPT_REFUSED = (
    p11.GeneralError,
    p11.EncryptedDataInvalid,
    p11.EncryptedDataLenRange,
    p11.DataInvalid,
    p11.DataLenRange,
    p11.FunctionFailed,
    p11.MechanismParamInvalid,
    p11.ArgumentsBad,
)

T = TypeVar("T")


# -- the process's libraries and logins ----------------------------------------------------------
class _Login:
    """The one logged-in session on a token in this process, and who relies on it."""

    def __init__(self, session: Session, pin: str) -> None:
        self.session = session
        self.digest = _pin_digest(pin)
        self.users = 0


class _Library:
    """One PKCS#11 library in this process: its lock and its tokens' logins."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.logins: dict[str, _Login] = {}

    def load(self) -> Any:
        if not Path(self.path).is_file():
            raise KeyProviderError(
                f"the PKCS#11 library {self.path} does not exist",
                hint="install the HSM's PKCS#11 module (SoftHSM2: the softhsm2 package) or"
                " give its path in the provider's library option",
            )
        try:
            return pkcs11.lib(self.path)
        except p11.PKCS11Error as exc:
            raise KeyProviderError(
                f"the PKCS#11 library {self.path} cannot be loaded ({type(exc).__name__})"
            ) from None

    def token(self, label: str) -> Token:
        lib = self.load()
        try:
            found: Token = lib.get_token(token_label=label)
        except p11.NoSuchToken:
            raise KeyProviderError(
                f"no PKCS#11 token labelled {label!r} in {self.path}",
                hint="check the token label (tokens are found by label, not by slot)",
            ) from None
        except p11.MultipleTokensReturned:
            raise KeyProviderError(
                f"several PKCS#11 tokens are labelled {label!r} in {self.path}"
            ) from None
        except p11.PKCS11Error as exc:
            raise KeyProviderError(
                f"the PKCS#11 library {self.path} failed listing its tokens ({type(exc).__name__})"
            ) from None
        return found

    def login(self, token: Token, label: str, pin: str) -> _Login:
        """Log in to ``token`` (or check ``pin`` against this process's login)."""
        login = self.logins.get(label)
        if login is not None:
            if not hmac.compare_digest(login.digest, _pin_digest(pin)):
                raise _pin_refused(label)
            login.users += 1
            return login
        try:
            session = token.open(rw=True, user_pin=pin)
        except _PIN_ERRORS as exc:
            raise _pin_refused(label, type(exc).__name__) from None
        except p11.UserAlreadyLoggedIn:
            raise KeyProviderError(
                f"PKCS#11 token {label!r} is already logged in by other code in this process"
            ) from None
        except p11.PKCS11Error as exc:
            raise KeyProviderError(
                f"PKCS#11 token {label!r} could not be logged in to ({type(exc).__name__})"
            ) from None
        login = _Login(session, pin)
        login.users = 1
        self.logins[label] = login
        return login

    def logout(self, label: str, login: _Login) -> None:
        """``login``'s user is done with it: the last one out logs out."""
        login.users -= 1
        if login.users <= 0:
            self.forget(label, login)

    def forget(self, label: str, login: _Login) -> None:
        """Drop ``login`` (the token lost it: removed, restarted); the next user logs in."""
        if self.logins.get(label) is login:
            del self.logins[label]
        _close_quietly(login.session)  # C_Logout + C_CloseSession


_LIBRARIES: dict[str, _Library] = {}
_LIBRARIES_LOCK = threading.Lock()


def _library(path: str) -> _Library:
    with _LIBRARIES_LOCK:
        found = _LIBRARIES.get(path)
        if found is None:
            found = _LIBRARIES[path] = _Library(path)
        return found


def _pin_digest(pin: str) -> bytes:
    return hashlib.sha256(b"sealbox/pkcs11-pin\x00" + pin.encode()).digest()


def _pin_refused(label: str, why: str = "PinIncorrect") -> KeyProviderError:
    return KeyProviderError(
        f"the HSM refused the PIN for PKCS#11 token {label!r} ({why})",
        hint="check the user PIN in the environment variable the provider names (pin_env)",
    )


# -- the provider -----------------------------------------------------------------------------
class Pkcs11Provider:
    """An AES key in a PKCS#11 token. Implements :class:`~sealbox.kms.interface.KeyProvider`.

    One session per provider, opened on first use and reopened once if the token drops
    it; every call holds the library's lock (at most ``timeout`` seconds spent waiting).
    """

    kind = KIND

    def __init__(
        self,
        name: str,
        *,
        library: str,
        token_label: str,
        key_label: str,
        pin: str,
        timeout: float,
    ) -> None:
        self._name = name
        self.library, self.token_label, self.key_label = library, token_label, key_label
        self._pin = pin
        self._timeout = timeout
        self._lib = _library(library)
        self._session: Session | None = None
        self._key: _AesKey | None = None
        self._login: _Login | None = None
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    def key_id(self) -> str:
        return f"pkcs11:{self.token_label}/{self.key_label}"

    # -- sessions -----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self._lib.lock.acquire(timeout=self._timeout):
            raise KeyProviderError(
                f"the PKCS#11 library {self.library} stayed busy for {self._timeout:g} s"
            )
        try:
            yield
        finally:
            self._lib.lock.release()

    def _open(self, *, generate: bool = False) -> _AesKey:
        """The session and key (lock held)."""
        if self._closed:
            raise KeyProviderError(f"key provider {self._name!r} is closed")
        if self._session is not None and self._key is not None:
            return self._key
        token = self._lib.token(self.token_label)
        fresh = self._login is None
        if self._login is None:
            self._login = self._lib.login(token, self.token_label, self._pin)
        session = self._new_session(token)
        try:
            key = self._find_key(session, generate=generate)
            if key is None and not fresh and self._login is not None:
                # A private key is invisible to a token that lost this process's login (an
                # HSM restart): log in again and look once more before calling it missing.
                self._lib.forget(self.token_label, self._login)
                self._login = None
                self._login = self._lib.login(token, self.token_label, self._pin)
                key = self._find_key(session, generate=generate)
        except BaseException:
            _close_quietly(session)
            raise
        if key is None:
            _close_quietly(session)
            raise KeyProviderError(
                f"PKCS#11 token {self.token_label!r} holds no AES key labelled {self.key_label!r}",
                hint="check the key label, or let the provider generate the key"
                " (option generate=true) when adding it",
            )
        self._session, self._key = session, key
        return key

    def _new_session(self, token: Token) -> Session:
        try:
            # Logged in process-wide already: this session sees the token's private objects.
            session: Session = token.open(rw=True)
        except p11.PKCS11Error as exc:
            raise KeyProviderError(
                f"PKCS#11 token {self.token_label!r} refused a session ({type(exc).__name__})"
            ) from None
        return session

    def _find_key(self, session: Session, *, generate: bool) -> _AesKey | None:
        """The key, or None where there is none and ``generate`` is false."""
        where = f"PKCS#11 token {self.token_label!r}"
        try:
            found = cast(
                "_AesKey",
                session.get_key(
                    object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=self.key_label
                ),
            )
        except p11.NoSuchKey:
            if not generate:
                return None
        except _SESSION_ERRORS:
            raise
        except p11.MultipleObjectsReturned:
            raise KeyProviderError(
                f"{where} holds several AES keys labelled {self.key_label!r}"
            ) from None
        except p11.PKCS11Error as exc:
            raise KeyProviderError(
                f"{where} could not be searched for key {self.key_label!r} ({type(exc).__name__})"
            ) from None
        else:
            if generate:
                raise InvalidInput(
                    f"{where} already holds an AES key labelled {self.key_label!r}: leave out"
                    " generate to use it, or choose another key_label"
                )
            return found
        try:
            generated = session.generate_key(
                KeyType.AES,
                256,
                label=self.key_label,
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: True,
                    Attribute.DECRYPT: True,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                    Attribute.SIGN: False,
                    Attribute.VERIFY: False,
                    Attribute.DERIVE: False,
                },
            )
        except p11.PKCS11Error as exc:
            raise KeyProviderError(
                f"{where} could not generate AES key {self.key_label!r} ({type(exc).__name__})"
            ) from None
        return cast("_AesKey", generated)

    def _drop(self) -> None:
        """Forget the session (lock held)."""
        session, self._session, self._key = self._session, None, None
        if session is not None:
            _close_quietly(session)

    def _call(self, what: str, op: Callable[[_AesKey], T]) -> T:
        with self._locked():
            for attempt in (1, 2):
                try:
                    return op(self._open())
                except _SESSION_ERRORS as exc:
                    self._drop()
                    if self._login is not None and not isinstance(exc, _OBJECT_ERRORS):
                        self._lib.forget(self.token_label, self._login)
                        self._login = None
                    if attempt == 2:
                        raise KeyProviderError(
                            f"PKCS#11 token {self.token_label!r} failed to {what}"
                            f" ({type(exc).__name__})"
                        ) from None
            raise AssertionError("unreachable")  # pragma: no cover

    def open(self, *, generate: bool = False) -> None:
        """Open the session now (and generate the key if asked)."""
        with self._locked():
            try:
                self._open(generate=generate)
            except _SESSION_ERRORS as exc:
                self._drop()
                raise KeyProviderError(
                    f"PKCS#11 token {self.token_label!r} could not be opened ({type(exc).__name__})"
                ) from None

    # -- KeyProvider -----------------------------------------------------------------------
    def wrap(self, key: bytes, context: bytes) -> bytes:
        iv = os.urandom(IV_BYTES)

        def encrypt(aes: _AesKey) -> bytes:
            try:
                sealed: bytes = aes.encrypt(
                    key, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, context, 128)
                )
            except _SESSION_ERRORS:
                raise
            except p11.PKCS11Error as exc:
                raise KeyProviderError(
                    f"PKCS#11 token {self.token_label!r} refused to encrypt with key"
                    f" {self.key_label!r} ({type(exc).__name__})"
                ) from None
            return sealed

        return bytes([VERSION]) + iv + self._call("wrap a key", encrypt)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if len(blob) < 1 + IV_BYTES + TAG_BYTES:
            raise IntegrityError("integrity check failed: the PKCS#11 wrapping is too short")
        if blob[0] != VERSION:
            raise IntegrityError(
                f"integrity check failed: unknown PKCS#11 wrapping version {blob[0]}"
            )
        iv, sealed = blob[1 : 1 + IV_BYTES], blob[1 + IV_BYTES :]

        def decrypt(aes: _AesKey) -> bytes:
            try:
                opened: bytes = aes.decrypt(
                    sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, context, 128)
                )
            except _SESSION_ERRORS:
                raise
            except _DECRYPT_REFUSED:
                raise IntegrityError(
                    f"integrity check failed: PKCS#11 key {self.key_label!r} did not open this"
                    " wrapping (altered, another context, or another key's)"
                ) from None
            except p11.PKCS11Error as exc:
                raise KeyProviderError(
                    f"PKCS#11 token {self.token_label!r} refused to decrypt with key"
                    f" {self.key_label!r} ({type(exc).__name__})"
                ) from None
            return opened

        return self._call("unwrap a key", decrypt)

    def check(self) -> None:
        """A fresh session, and the key looked up again (it may have been deleted, the
        token restarted)."""

        def probe(aes: _AesKey) -> None:
            return None

        with self._locked():
            self._drop()
        self._call("find its key", probe)

    def close(self) -> None:
        with self._locked():
            self._drop()
            if self._login is not None:
                self._lib.logout(self.token_label, self._login)
                self._login = None
            self._closed = True

    def __repr__(self) -> str:
        return (
            f"Pkcs11Provider(name={self._name!r}, library={self.library!r},"
            f" token_label={self.token_label!r}, key_label={self.key_label!r}, pin='***')"
        )


def _close_quietly(session: Session) -> None:
    with contextlib.suppress(p11.PKCS11Error):  # the session is gone already
        session.close()


# -- the family -------------------------------------------------------------------------------
def _text(options: Mapping[str, Any], name: str, default: str | None = None) -> str:
    raw = options.get(name, default)
    value = "" if raw is None else str(raw)
    if not value:
        raise InvalidInput(f"a pkcs11 key provider needs the option {name}")
    if any(ord(c) < 0x20 for c in value):
        raise InvalidInput(f"the pkcs11 option {name} holds control characters")
    return value


def checked_config(options: Mapping[str, Any]) -> dict[str, str]:
    """The stored config from ``options`` (InvalidInput naming a bad or missing one)."""
    unknown = set(options) - OPTIONS
    if unknown:
        raise InvalidInput(
            f"unknown option(s) for a pkcs11 key provider: {sorted(unknown)}"
            f" (known: {', '.join(sorted(OPTIONS))})"
        )
    library = _text(options, "library", DEFAULT_LIBRARY)
    if not Path(library).is_absolute():
        raise InvalidInput(f"the pkcs11 option library must be an absolute path, not {library!r}")
    config = {
        "library": library,
        "token_label": _text(options, "token_label"),
        "key_label": _text(options, "key_label"),
        "pin_env": _text(options, "pin_env", DEFAULT_PIN_ENV),
    }
    for name in ("token_label", "key_label"):
        if len(config[name].encode()) > _LABEL_MAX:
            raise InvalidInput(f"the pkcs11 option {name} is longer than {_LABEL_MAX} bytes")
    if not _ENV_NAME.fullmatch(config["pin_env"]):
        raise InvalidInput(
            f"the pkcs11 option pin_env must name an environment variable,"
            f" not {config['pin_env'][:40]!r}"
        )
    return config


def _generate(options: Mapping[str, Any]) -> bool:
    value = str(options.get("generate", "")).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput("the pkcs11 option generate must be true or false")


def _pin(config: Mapping[str, str], ctx: ProviderContext) -> str:
    pin = ctx.env.get(config["pin_env"], "")
    if not pin:
        raise KeyProviderError(
            f"the PIN of PKCS#11 token {config['token_label']!r} is not set: the environment"
            f" variable {config['pin_env']} is empty",
            hint=f"set {config['pin_env']} to the token's user PIN",
        )
    return pin


class Pkcs11Kind:
    """The ``pkcs11`` family. Implements :class:`~sealbox.kms.interface.ProviderKind`."""

    kind = KIND

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return False  # the PIN comes from the environment

    def _provider(
        self, name: str, config: Mapping[str, str], ctx: ProviderContext
    ) -> Pkcs11Provider:
        return Pkcs11Provider(
            name,
            library=config["library"],
            token_label=config["token_label"],
            key_label=config["key_label"],
            pin=_pin(config, ctx),
            timeout=ctx.timeout,
        )

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        """Options ``token_label``, ``key_label`` (required), ``library``, ``pin_env``,
        ``generate=true`` (make a non-extractable AES-256 key in the token)."""
        config = checked_config(options)
        generate = _generate(options)
        provider = self._provider(name, config, ctx)
        try:
            provider.open(generate=generate)
        except BaseException:
            provider.close()
            raise
        return NewProvider(dict(config), provider)

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> Pkcs11Provider:
        try:
            stored = checked_config(config)
        except InvalidInput as exc:
            raise KeyProviderError(
                f"key provider {name!r} has an unusable config: {exc.message}"
            ) from None
        provider = self._provider(name, stored, ctx)
        try:
            provider.open()
        except BaseException:
            provider.close()
            raise
        return provider
