"""The ``transit`` key provider: an existing Vault or OpenBao Transit engine as the KMS.

The vault's KEKs are encrypted by a Transit key (``POST /v1/<mount>/encrypt/<key>``) and
the blob stored is Transit's own ciphertext (``vault:v<N>:…``, which names the key
version that made it, so a Transit key rotation leaves old blobs readable). The KEK's
context (:func:`~sealbox.kms.local.kek_context`) is bound as AES-GCM associated data
(``associated_data``, which Transit enforces for its AEAD key types): a blob moved to
another vault or KEK fails to decrypt. A server that ignores the parameter (older than
Vault 1.13) says so in its warnings, and the wrap is refused rather than stored unbound.

Stored config (never secret): ``address``, ``mount``, ``key``, and optionally
``namespace``, ``cacert``, ``token_env``, ``insecure_http``. The token is never stored: it
is read from the environment variable ``token_env`` names, else ``SEALBOX_TRANSIT_TOKEN``,
``VAULT_TOKEN``, ``BAO_TOKEN``.

Only the standard library is used (``http.client`` with a timeout, ``ssl``); each call
opens its own connection, so one provider may be used from several threads.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import socket
import ssl
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError
from sealbox.kms.interface import KeyProvider, NewProvider
from sealbox.kms.registry import DEFAULT_TIMEOUT, ProviderContext

KIND = "transit"
#: Where the token is looked for when the config names no ``token_env``.
TOKEN_ENVS = ("SEALBOX_TRANSIT_TOKEN", "VAULT_TOKEN", "BAO_TOKEN")
#: Transit key types that are AEAD ciphers (``associated_data`` is bound).
AEAD_TYPES = frozenset({"aes256-gcm96", "aes128-gcm96", "chacha20-poly1305"})
NEW_KEY_TYPE = "aes256-gcm96"
#: The most of an answer read (a key's metadata, a ciphertext: a few kB).
MAX_ANSWER = 1 << 20

_CIPHERTEXT = re.compile(rb"vault:v[1-9][0-9]{0,9}:[A-Za-z0-9+/]+={0,2}")
_SEGMENT = r"[A-Za-z0-9_.-]{1,128}"
_KEY = re.compile(_SEGMENT)
_PATH = re.compile(rf"{_SEGMENT}(/{_SEGMENT}){{0,7}}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_OPTIONS = frozenset(
    {"address", "mount", "key", "namespace", "cacert", "token_env", "create_key", "insecure_http"}
)
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off", ""})


class TransitConfig(NamedTuple):
    """A checked provider config (what is stored, plus nothing secret)."""

    address: str
    mount: str
    key: str
    namespace: str | None = None
    cacert: str | None = None
    token_env: str | None = None
    insecure_http: bool = False

    def stored(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address, "mount": self.mount, "key": self.key}
        for field in ("namespace", "cacert", "token_env"):
            value = getattr(self, field)
            if value:
                out[field] = value
        if self.insecure_http:
            out["insecure_http"] = True
        return out


def _path_ok(value: str, pattern: re.Pattern[str]) -> bool:
    return bool(pattern.fullmatch(value)) and not {".", ".."} & set(value.split("/"))


def _flag(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"transit option {what} is true or false (not {str(value)[:20]!r})")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_config(raw: Mapping[str, Any]) -> TransitConfig:
    """Check a config (``kms add`` options or a stored config): InvalidInput naming what
    is wrong."""
    address = str(raw.get("address") or "").strip().rstrip("/")
    if not address:
        raise InvalidInput("a transit key provider needs address=http(s)://host:port")
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or port == -1
        or parts.username is not None
        or parts.password is not None
        or parts.path not in {"", "/"}
        or parts.query
        or parts.fragment
    ):
        # NOTE: an address holding credentials is not echoed back (it would put them in
        # an error message).
        shown = "" if "@" in address else f" (not {address[:100]!r})"
        raise InvalidInput(
            f"transit address is http(s)://host[:port], with no path, query or credentials{shown}"
        )
    mount = str(raw.get("mount") or "transit").strip("/")
    if not _path_ok(mount, _PATH):
        raise InvalidInput(f"invalid transit mount {mount[:100]!r}")
    key = str(raw.get("key") or "")
    if not _path_ok(key, _KEY):
        raise InvalidInput(
            "a transit key provider needs key=NAME (letters, digits, '_', '-', '.')"
            if not key
            else f"invalid transit key name {key[:100]!r}"
        )
    namespace = str(raw.get("namespace") or "").strip("/") or None
    if namespace is not None and not _path_ok(namespace, _PATH):
        raise InvalidInput(f"invalid transit namespace {namespace[:100]!r}")
    token_env = str(raw.get("token_env") or "") or None
    if token_env is not None and not _ENV_NAME.fullmatch(token_env):
        raise InvalidInput(
            f"transit token_env names an environment variable, not {token_env[:60]!r}"
        )
    cacert = str(raw.get("cacert") or "") or None
    insecure_http = _flag(raw.get("insecure_http", False), "insecure_http")
    if parts.scheme == "http" and not insecure_http and not _loopback(parts.hostname):
        raise InvalidInput(
            f"transit address {address[:100]} is plain http to another host: the token and"
            " the keys would cross the network in the clear",
            hint="use https (cacert=… for a private CA), or insecure_http=true if you must",
        )
    return TransitConfig(address, mount, key, namespace, cacert, token_env, insecure_http)


def token_from(config: TransitConfig, env: Mapping[str, str]) -> str:
    """The Transit token from the environment (never stored): KeyProviderError if none."""
    names = (config.token_env,) if config.token_env else TOKEN_ENVS
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    raise KeyProviderError(
        f"no token for the Transit engine at {config.address}: set {' or '.join(names)}",
        hint="the token needs encrypt, decrypt and read on the Transit key",
    )


def _ssl_context(config: TransitConfig) -> ssl.SSLContext | None:
    if not config.address.startswith("https:"):
        return None
    try:
        return ssl.create_default_context(cafile=config.cacert)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(
            f"cannot use transit cacert {config.cacert}: {getattr(exc, 'strerror', None) or exc}"
        ) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Answer(NamedTuple):
    status: int
    body: dict[str, Any]

    def errors(self) -> str:
        found = self.body.get("errors")
        if isinstance(found, list) and found:
            return "; ".join(str(e) for e in found)[:200]
        return ""

    def warnings(self) -> list[str]:
        found = self.body.get("warnings")
        return [str(w) for w in found] if isinstance(found, list) else []

    def data(self) -> dict[str, Any]:
        found = self.body.get("data")
        return found if isinstance(found, dict) else {}


class TransitProvider:
    """A Transit key as a :class:`~sealbox.kms.interface.KeyProvider`."""

    kind = KIND

    def __init__(
        self, name: str, config: TransitConfig, token: str, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self._name, self.config, self._token, self.timeout = name, config, token, timeout
        parts = urlsplit(config.address)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._ssl = _ssl_context(config)
        base = f"/v1/{quote(config.mount)}"
        self._paths = {op: f"{base}/{op}/{quote(config.key)}" for op in ("encrypt", "decrypt")}
        self._paths["keys"] = f"{base}/keys/{quote(config.key)}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def where(self) -> str:
        """``[namespace/]mount/key``: which Transit key, in messages and :meth:`key_id`."""
        found = f"{self.config.mount}/{self.config.key}"
        return f"{self.config.namespace}/{found}" if self.config.namespace else found

    # -- HTTP ---------------------------------------------------------------------------------
    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> _Answer:
        """One request on its own connection, bounded by the timeout at every step (a
        peer that accepts and never answers fails after ``timeout`` seconds)."""
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        headers = {"X-Vault-Token": self._token, "Accept": "application/json"}
        if self.config.namespace:
            headers["X-Vault-Namespace"] = self.config.namespace
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read(MAX_ANSWER + 1)
            status = response.status
        except TimeoutError:
            raise KeyProviderError(
                f"the Transit engine at {self.config.address} did not answer within"
                f" {self.timeout:g} s"
            ) from None
        except ssl.SSLError as exc:
            raise KeyProviderError(
                f"TLS with the Transit engine at {self.config.address} failed"
                f" ({exc.reason or type(exc).__name__})",
                hint="check the address and the CA certificate (cacert=…)",
            ) from None
        except socket.gaierror:
            raise KeyProviderError(
                f"cannot resolve the Transit engine's host ({self.config.address})"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise KeyProviderError(
                f"cannot reach the Transit engine at {self.config.address} ({reason})"
            ) from None
        finally:
            conn.close()
        if len(raw) > MAX_ANSWER:
            raise KeyProviderError(f"the Transit engine at {self.config.address} answered too much")
        try:
            parsed = json.loads(raw) if raw.strip() else {}
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise KeyProviderError(
                f"{self.config.address} answered HTTP {status} with something that is not a"
                " Transit engine's JSON"
            )
        return _Answer(status, parsed)

    def _refused(self, answer: _Answer, what: str) -> KeyProviderError:
        """The error for an answer that is not a success (never quoting the request)."""
        if answer.status == 403:
            return KeyProviderError(
                f"the Transit engine refused the token ({self.config.address}, {what} on"
                f" {self.where})",
                hint="the token needs encrypt, decrypt and read on the Transit key; is it"
                " expired or revoked?",
            )
        if answer.status == 404:
            return KeyProviderError(
                f"Transit key {self.where} does not exist at {self.config.address} (or no"
                f" Transit engine is mounted at {self.config.mount!r})",
                hint="create it in the Transit engine, or add the provider with create_key=true",
            )
        if answer.status in {429, 503} or answer.status >= 500:
            return KeyProviderError(
                f"the Transit engine at {self.config.address} is unavailable (HTTP"
                f" {answer.status}{': ' + answer.errors() if answer.errors() else ''})"
            )
        if 300 <= answer.status < 400:
            return KeyProviderError(
                f"the Transit engine at {self.config.address} redirected ({answer.status}):"
                " point the provider at the active node"
            )
        return KeyProviderError(
            f"the Transit engine at {self.config.address} refused {what} on {self.where}"
            f" (HTTP {answer.status})"
        )

    # -- the key ------------------------------------------------------------------------------
    def read_key(self) -> dict[str, Any]:
        """The Transit key's metadata (an authenticated call); KeyProviderError unless it
        exists and is an AEAD key sealbox can bind a context to."""
        answer = self._call("GET", self._paths["keys"])
        if answer.status != 200:
            raise self._refused(answer, "read")
        data = answer.data()
        key_type = str(data.get("type") or "")
        if key_type not in AEAD_TYPES:
            raise KeyProviderError(
                f"Transit key {self.where} is of type {key_type[:40]!r}: sealbox needs an AEAD"
                f" key ({', '.join(sorted(AEAD_TYPES))})"
            )
        if data.get("derived"):
            raise KeyProviderError(
                f"Transit key {self.where} is a derived key (it needs a per-call context):"
                " use a key made without derivation"
            )
        return data

    def create_key(self) -> None:
        """Make the Transit key (aes256-gcm96); an existing key is left as it is (Transit
        answers success) and then must be of an AEAD type."""
        answer = self._call("POST", self._paths["keys"], {"type": NEW_KEY_TYPE})
        if answer.status not in {200, 204}:
            raise self._refused(answer, "create")

    def key_id(self) -> str:
        version = self.read_key().get("latest_version")
        return f"transit:{self.where} v{version}"

    def check(self) -> None:
        self.read_key()

    # -- wrapping -----------------------------------------------------------------------------
    def wrap(self, key: bytes, context: bytes) -> bytes:
        answer = self._call(
            "POST",
            self._paths["encrypt"],
            {"plaintext": _b64(key), "associated_data": _b64(context)},
        )
        if answer.status != 200:
            raise self._refused(answer, "encrypt")
        self._refuse_ignored(answer)
        return self._ciphertext(answer)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if not _CIPHERTEXT.fullmatch(blob):
            raise IntegrityError("integrity check failed: not a Transit ciphertext")
        answer = self._call(
            "POST",
            self._paths["decrypt"],
            {"ciphertext": blob.decode("ascii"), "associated_data": _b64(context)},
        )
        if answer.status == 400:
            said = answer.errors().lower()
            if "not found" in said or "disallowed" in said or "archived" in said:
                # The key, or the key version the blob names, is not usable here: a
                # configuration matter, not tampering.
                raise KeyProviderError(
                    f"the Transit engine at {self.config.address} cannot decrypt with"
                    f" {self.where} ({answer.errors()})"
                )
            raise IntegrityError(
                "integrity check failed: the Transit engine could not decrypt the wrapped key"
                " (altered, another key's, or bound to another context)"
            )
        if answer.status != 200:
            raise self._refused(answer, "decrypt")
        self._refuse_ignored(answer)
        plaintext = answer.data().get("plaintext")
        try:
            if not isinstance(plaintext, str):
                raise ValueError
            return base64.b64decode(plaintext, validate=True)
        except ValueError:
            raise KeyProviderError(
                f"the Transit engine at {self.config.address} answered a decrypt without a key"
            ) from None

    def rewrap(self, blob: bytes, context: bytes) -> bytes:
        """``blob`` re-encrypted under the Transit key's latest version (after a rotation
        in Transit), bound to the same ``context``.

        NOTE: a decrypt then an encrypt, not Transit's ``rewrap`` endpoint: that endpoint
        takes no ``associated_data`` (OpenBao 2.7, Vault: hashicorp/vault#29532), so it
        cannot re-wrap a context-bound blob. The KEK is in this process's memory anyway
        (the key ring holds it); it is never written anywhere.
        """
        return self.wrap(self.unwrap(blob, context), context)

    def _ciphertext(self, answer: _Answer) -> bytes:
        found = str(answer.data().get("ciphertext") or "").encode("ascii", errors="replace")
        if not _CIPHERTEXT.fullmatch(found):
            raise KeyProviderError(
                f"the Transit engine at {self.config.address} answered without a ciphertext"
            )
        return found

    def _refuse_ignored(self, answer: _Answer) -> None:
        # NOTE: Vault before 1.13 ignores associated_data (with a warning only): a blob
        # it made would not be bound to its context, so it is refused, not stored.
        if any("associated_data" in w for w in answer.warnings()):
            raise KeyProviderError(
                f"the Transit engine at {self.config.address} ignores associated_data: it"
                " cannot bind a wrapped key to its vault (Vault 1.13+ or OpenBao is needed)"
            )

    def close(self) -> None:
        """Nothing held between calls (a connection per call)."""

    def __repr__(self) -> str:
        return (
            f"TransitProvider(name={self._name!r}, address={self.config.address!r},"
            f" key={self.where!r}, token='***')"
        )


class TransitKind:
    """The ``transit`` family. Implements :class:`~sealbox.kms.interface.ProviderKind`."""

    kind = KIND

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return False

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        try:
            checked = parse_config(config)
        except InvalidInput as exc:
            raise KeyProviderError(f"key provider {name!r}: {exc.message}") from None
        return TransitProvider(name, checked, token_from(checked, ctx.env), ctx.timeout)

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        """Options: ``address`` and ``key`` (required), ``mount`` (``transit``),
        ``namespace``, ``cacert``, ``token_env``, ``insecure_http``, and
        ``create_key=true`` to make the key (aes256-gcm96); otherwise it must exist."""
        unknown = set(options) - _OPTIONS
        if unknown:
            raise InvalidInput(
                f"unknown option(s) for a transit key provider: {sorted(unknown)} (known:"
                f" {', '.join(sorted(_OPTIONS))})"
            )
        config = parse_config(options)
        create = _flag(options.get("create_key", False), "create_key")
        provider = TransitProvider(name, config, token_from(config, ctx.env), ctx.timeout)
        if create:
            provider.create_key()
        provider.read_key()
        return NewProvider(config.stored(), provider)
