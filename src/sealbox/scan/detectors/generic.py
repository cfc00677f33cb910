"""Generic assignments: ``password = "…"``, ``api_key: …``, ``SECRET=…`` in dotenv, YAML,
JSON (also with escaped quotes), properties, URL query strings, command lines and code,
judged by a context model (:mod:`sealbox.scan.context`, data in ``generic.toml``).

A candidate is kept when

* its key's **class** (from the key's last word: password, secret, token, key, nonce) accepts
  the value's length, entropy and alphabet — a password key takes ``hunter22``, a token key
  needs something random-looking;
* the value is a **literal**: quoted (or wrapped in an identity call such as ``Some("…")``), or
  unquoted in a config/dotenv/docs file and ending the line, or a URL query parameter; an
  unquoted right-hand side in program source or a call/expression in docs is code;
* it is the key's own value: a call's literal only as a setter's sole argument
  (``setPassword("…")``, not ``login_password("alice", pw)``), a tuple assignment's item of the
  key's position (``USER, PASSWORD = "bob", "…"``);
* it is not a placeholder or template (:mod:`sealbox.scan.placeholders`), a path, URL, hash of
  a password, dotted identifier or natural-language text.

Each hit gets a **confidence**: high for a strong value, medium for one that only passes its
class' floors, one step lower unquoted in docs and in templates, low for obvious fixtures
(``admin123``, ``0123…abc…`` runs, a value naming its own kind). A test path alone lowers
nothing: on the CredData tune part medium findings in test paths were 0.975 precise, elsewhere
0.949.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import re2

from sealbox.scan.context import FileKind, GenericModel, KeyClass, load_model, split_key
from sealbox.scan.detectors.interface import Hit
from sealbox.scan.findings import Confidence, DetectorKind, Severity
from sealbox.scan.placeholders import is_placeholder
from sealbox.scan.rules import shannon_entropy
from sealbox.scan.text import ScanText

RULE_ID = "generic-secret-assignment"
DESCRIPTION = "Secret-looking value assigned to a password, token, secret or key"
MAX_LENGTH = 256
MAX_HITS = 200
#: Candidates examined per text (most are rejected); a file past this is generated data.
MAX_CANDIDATES = 5000

#: Key fragments that may name a secret; the class is decided in Python from the last word.
KEYWORDS = (
    "pass", "pwd", "pw", "secret", "token", "key", "auth", "cred", "nonce", "salt", "seed",
    "verifier", "otp", "hmac", "psk", "cookie", "bearer", "session",
)  # fmt: skip
#: Starts AT a key word (a leading ``[\w.-]{0,40}`` before the words costs RE2 ten times the
#: time); the rest of the key is found by looking back from the match (``_KEY_HEAD``).
#: NOTE: no counted repetitions (``{0,40}``, ``{2,256}``): each multiplies the lazily built
#: DFA's states, and building them cost ~0.8 s per process; lengths are checked in Python.
_PATTERN = (
    r"(?m)((?i:" + "|".join(KEYWORDS) + r")[A-Za-z0-9_.\-]*)"  # 1: key from its word on
    r"[\\\"'\]]{0,3}[ \t]*"
    r"(===|!==|==|!=|=>|::=|:=|\?=|=|:|\()"  # 2: separator (longest first)
    r"[ \t]*"
    r"((?:new[ \t]+)?[A-Za-z_\[\]][A-Za-z0-9_.\[\]]*\()?"  # 3: wrapper call
    r"([rRbBuUfF]{0,2})"  # 4: string prefix letters (or the start of an unquoted value)
    r"(\\?[\"'`]?)"  # 5: opening quote
    r"([^\s\"'`\\&][^\s\"'`\\&]+)"  # 6: value (& ends a query parameter)
    r"(\\?[\"'`]?)"  # 7: closing quote
)
#: In program source only a quoted value can be a literal: the same pattern with the quote
#: required (8x fewer candidates on code) plus URL query parameters inside strings.
_CODE_PATTERN = _PATTERN.replace("(\\\\?[\\\"'`]?)([^", "(\\\\?[\\\"'`])([^", 1)
_QUERY_PATTERN = (
    r"[?&]([A-Za-z0-9_.\-]*(?i:" + "|".join(KEYWORDS) + r")[A-Za-z0-9_.\-]*)=([^\s\"'`\\&#]+)"
)
_KEY_HEAD = re.compile(rb"[A-Za-z0-9_.\-]{0,40}$")

_WORDISH = re.compile(r"[a-z]+|[A-Z]+|\d+(?:\.\d+)*|[A-Za-z]+(?:[_.\-:/][A-Za-z]+)+")
#: camelCase / PascalCase identifiers (a field name, an event name), by number of humps
_IDENTIFIER = re.compile(r"[A-Za-z][a-z]+(?:[A-Z][a-z]+)+\d{0,2}|[A-Z]+(?:_[A-Z]+)+\d{0,2}")
_HUMPS = re.compile(r"[A-Z]")
_PATHISH = re.compile(r"^(?:[./~]|[A-Za-z]:\\|[a-z][a-z0-9+.\-]*://|classpath:|file:)")
_FILE_EXT = re.compile(
    r"^[\w.\-/]*\.(?:md|html?|rst|txt|json|ya?ml|pem|key|crt|cer|csr|p12|pfx|jks|keystore|der|"
    r"pub|env|ini|conf|cfg|xml|js|ts|py|rb|go|java|sh|php|gpg|asc|enc|bin|dat|db|sqlite|log)"
    r"(?:#[\w.\-]*)?$",
    re.IGNORECASE,
)
_PATH_SEGMENTS = re.compile(r"^[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)+/?$")
_PATH_WITH_EXT = re.compile(r"^[\w.\-]*/[\w.\-/]*\.[a-z][a-z0-9]{1,7}$")
_PW_HASH = re.compile(r"^\$(?:2[abxy]?|1|5|6|apr1|argon2(?:id|i|d)?|pbkdf2[\w-]*|scrypt|sha\d*)\$")
_EXPRESSION = re.compile(r"\(|^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$|^[A-Za-z_$][\w$]*\[")
_SEQUENCES = ("0123456789", "9876543210", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl")
_FIXTURE = re.compile(
    r"^[A-Za-z][A-Za-z_\-@.!]*?(?:1|12|123|1234|12345|123456|321|4321|54321)!?$"
    r"|password|passwd|secret|token|apikey|api_key|sample|demo|mock|fake|dummy|example",
    re.IGNORECASE,
)
_LINE_END_OK = (b"#", b"//", b";", b",", b"\\", b")", b"}", b"]", b"&&", b"||", b"|", b"<!--", b"<")
_TRAILING = ",;)]}>"


#: (value start, value end, key class, quoted, key words)
_Candidate = tuple[int, int, KeyClass, bool, tuple[str, ...]]


class GenericDetector:
    """Scores ``key = value`` assignments whose key names a secret."""

    def __init__(
        self, model: GenericModel | None = None, provider_prefixes: Sequence[str] = ()
    ) -> None:
        options = re2.Options()
        options.max_mem = 64 << 20
        options.log_errors = False
        self._regex = re2.compile(_PATTERN.encode(), options)
        self._code_regex = re2.compile(_CODE_PATTERN.encode(), options)
        self._query_regex = re2.compile(_QUERY_PATTERN.encode(), options)
        assert self._code_regex.pattern != self._regex.pattern
        self._model = model or load_model()
        self._wrappers = frozenset(w.replace(" ", "") for w in self._model.wrappers)
        self._class_cache: dict[str, KeyClass | None] = {}
        self._prefixes = tuple(p.lower() for p in provider_prefixes)

    def keywords(self) -> dict[str, list[str]]:
        """Keyword -> the one generic check."""
        return {kw: [RULE_ID] for kw in KEYWORDS}

    def key_class(self, key: str) -> KeyClass | None:
        """The (cached) class of ``key``."""
        try:
            return self._class_cache[key]
        except KeyError:
            cls = self._class_cache[key] = self._model.key_class(key)
            if len(self._class_cache) > 4096:
                self._class_cache.clear()
            return cls

    def detect(self, text: ScanText, triggered: frozenset[str]) -> Iterator[Hit]:
        """Hits of secret-looking assignments."""
        if RULE_ID not in triggered:
            return
        kind = self._model.kind(text.path)
        if kind == FileKind.LOCKFILE:
            return
        test = self._model.is_test_path(text.path)
        data = text.data
        for n, (start, end, ent, conf) in enumerate(self._judged(data, kind, test)):
            if n >= MAX_HITS:
                break
            yield Hit(
                rule_id=RULE_ID,
                description=DESCRIPTION,
                severity=Severity.MEDIUM,
                kind=DetectorKind.GENERIC,
                start=start,
                end=end,
                secret=data[start:end],
                entropy=ent,
                confidence=conf,
            )

    def _judged(
        self, data: bytes, kind: str, test: bool
    ) -> Iterator[tuple[int, int, float, Confidence]]:
        """(start, end, entropy, confidence) of each reported value; at most
        :data:`MAX_CANDIDATES` matches examined per pattern."""
        code = kind == FileKind.CODE
        regex = self._code_regex if code else self._regex
        pos = 0
        for _ in range(MAX_CANDIDATES):
            m = regex.search(data, pos)
            if m is None:
                break
            cand = self._candidate(m, data, kind)
            judged = self._judge(data, cand, kind, test) if cand is not None else None
            if judged is not None:
                yield judged
                pos = m.end()
            else:
                # rejected: its "value" may be the next key (`key:"token1":"…"`), look again there
                pos = m.start(6)
        if code:
            for i, m in enumerate(self._query_regex.finditer(data)):
                if i >= MAX_CANDIDATES:
                    break
                key = m.group(1).decode("ascii", "replace")
                cls = self.key_class(key)
                start, end = m.span(2)
                if cls is not None and len(key) <= 48 and end - start <= MAX_LENGTH:
                    cand = (start, end, cls, True, tuple(split_key(key)))
                    judged = self._judge(data, cand, kind, test)
                    if judged is not None:
                        yield judged

    def _judge(
        self, data: bytes, cand: _Candidate, kind: str, test: bool
    ) -> tuple[int, int, float, Confidence] | None:
        start, end, cls, quoted, words = cand
        value = data[start:end].decode("utf-8", "replace")
        judged = judge(cls, value, kind=kind, test=test, quoted=quoted, key_words=words)
        if judged is None:
            return None
        ent, conf = judged
        if self._prefixes and value.lower().startswith(self._prefixes):
            conf = Confidence.LOW  # a provider's prefix its rule rejected: truncated or made up
        return start, end, ent, conf

    def _candidate(self, m: re2._Match[bytes], data: bytes, kind: str) -> _Candidate | None:
        """(value start, value end, key class, quoted, key words) of a literal assignment."""
        if m.end(1) - m.start(1) > 48 or m.end(6) - m.start(6) > MAX_LENGTH:
            return None
        kstart = m.start(1)
        head = _KEY_HEAD.search(data, max(0, kstart - 40), kstart)
        if head is not None:
            kstart = head.start()
        prefix = data[kstart - 1 : kstart] if kstart > 0 else b""
        if kind == FileKind.DOCS and prefix == b"[":
            return None  # a markdown link reference: [api-token]: api-token.md#setup
        key = data[kstart : m.end(1)].decode("ascii", "replace")
        cls = self.key_class(key)
        if cls is None:
            return None
        words = tuple(split_key(key))
        sep, wrapper, letters = m.group(2), m.group(3), m.group(4)
        quote, close = m.group(5), m.group(7)
        start, end = m.span(6)
        if quote:
            if close != quote:
                return None  # the value runs on past a space: a phrase or an expression
            if wrapper and wrapper[:-1].replace(b" ", b"").decode() not in self._wrappers:
                return None  # fetch_token("name"): a call, not a literal
            if sep == b"(" and self._not_a_setter(key, data, m.end(7)):
                return None
            before = data[max(0, kstart - 8) : kstart].rstrip(b" \t")
            if sep in (b"=", b":=") and before.endswith(b","):
                # the last of several targets: its value is the item at its position
                span = _unpacked_value(data, kstart, m.end(2), (start, end))
                if span is None:
                    return None
                start, end = span
            return start, end, cls, True, words
        if wrapper or sep in (b"(", b"==", b"===", b"!=", b"!=="):
            return None
        if letters:
            start -= len(letters)
        if close and prefix == close:
            return start, end, cls, True, words  # "SA_PASSWORD=…" quoted as a whole
        raw = data[start:end]
        if prefix in (b"?", b"&"):  # a URL query parameter: ?secret=…&next=…
            cut = min((x for x in (raw.find(b"&"), raw.find(b"#")) if x >= 0), default=-1)
            if cut >= 0:
                end = start + cut
            return (start, end, cls, True, words) if end > start else None
        if kind == FileKind.CODE:
            return None  # an unquoted right-hand side in source code is an expression
        stripped = raw.rstrip(_TRAILING.encode())
        end -= len(raw) - len(stripped)
        if not key.startswith("-") and not _ends_line(data, end + len(close)):
            return None  # more words follow: prose or an expression (flags: -Dx.password=…)
        return (start, end, cls, False, words) if end > start else None

    def _not_a_setter(self, key: str, data: bytes, after: int) -> bool:
        """Whether ``key("…"`` (the literal's closing quote ends at ``after``) is a call that
        does not set the secret: its name starts with a verb that reads or checks one
        (``getPassword("x")``, ``hash_password("x")``), or the literal is only the first of
        several arguments (``login_password("alice", pw)``: the user, not the password). A
        setter takes the value alone: ``setPassword("…")``, ``.clientSecret("…")``."""
        verbs = self._model.call_verbs
        if any(w in verbs for w in split_key(key.rsplit(".", 1)[-1])[:-1]):
            return True
        return data[after : after + 64].lstrip(b" \t")[:1] == b","


#: The line before the last of several assignment targets: `a, b.c, ` in `a, b.c, KEY = …`.
_TARGETS = re.compile(rb"(?:^|\n)[ \t]*((?:[A-Za-z_][\w.]*[ \t]*,[ \t]*)+)$")
#: One simple string literal of a tuple of them.
_ITEM = re.compile(rb"[ \t]*[rbuRBU]{0,2}([\"'])([^\"'\\\n]*)\1[ \t]*")


def _unpacked_value(
    data: bytes, kstart: int, rhs: int, span: tuple[int, int]
) -> tuple[int, int] | None:
    """The span of the literal a tuple assignment gives to the key at ``kstart`` (the right
    side starts at ``rhs``): its n-th item when the key is the n-th target, None when the items
    are not simple literals; ``span`` when the key is no such target (a keyword argument after
    another: `f(a=1, key="…")`)."""
    targets = _TARGETS.search(data, max(0, kstart - 200), kstart)
    if targets is None:
        return span
    pos = rhs
    for _ in range(targets.group(1).count(b",")):
        item = _ITEM.match(data, pos)
        if item is None or data[item.end() : item.end() + 1] != b",":
            return None
        pos = item.end() + 1
    item = _ITEM.match(data, pos)
    return item.span(2) if item is not None else None


def _ends_line(data: bytes, pos: int) -> bool:
    """Whether only blanks, a comment or a continuation follow ``pos`` on its line."""
    nl = data.find(b"\n", pos, pos + 512)
    rest = data[pos : nl if nl >= 0 else pos + 512].strip()
    return not rest or rest.startswith(_LINE_END_OK)


def _looks_like_path(value: str) -> bool:
    if _PATHISH.match(value) or _FILE_EXT.match(value) or _PATH_WITH_EXT.match(value):
        return True
    if _PATH_SEGMENTS.match(value):
        return all(not s or _WORDISH.fullmatch(s) for s in value.split("/"))
    return False


_LEET = str.maketrans("@0134$5!7", "aoieassit")
_FIXTURE_WORDS = ("pass", "secret", "token", "test", "bearer", "oauth", "admin", "user", "login")


def is_fixture(value: str, key_words: Sequence[str] = ()) -> bool:
    """Obvious test values: ``admin123``, ``access-token-123``, ``0123…abc…`` runs, repeats
    (``123123``), a value naming its own key (``refresh_token: refresh4321``) or a secret word
    (``knextest``, ``p@ss``, ``bearer``)."""
    if _FIXTURE.search(value):
        return True
    low = value.lower()
    plain = low.translate(_LEET)
    if any(w in plain for w in _FIXTURE_WORDS):
        return True
    if any(len(w) >= 4 and w[:4] in plain for w in key_words):
        return True
    if len(low) >= 3 and any(w.startswith(low) for w in key_words):
        return True
    for size in range(1, len(low) // 2 + 1):
        if len(low) % size == 0 and low == low[:size] * (len(low) // size):
            return True  # 123123, abcabc
    return any(seq[i : i + 6] in low for seq in _SEQUENCES for i in range(len(seq) - 5))


_UUID_SHAPE = re.compile(r"[A-Za-z0-9]{8}(?:-[A-Za-z0-9]{4}){3}-[A-Za-z0-9]{12}")


def _random_letters(value: str) -> bool:
    """A long letters-only value that reads as random (an API key), not as a word."""
    return len(value) >= 20 and shannon_entropy(value) >= 3.8


def judge(
    cls: KeyClass,
    value: str,
    *,
    kind: str,
    test: bool,
    quoted: bool,
    key_words: Sequence[str] = (),
) -> tuple[float, Confidence] | None:
    """(entropy, confidence) of ``value`` under a key of class ``cls`` (whose words are
    ``key_words``), or None to drop it."""
    n = len(value)
    if n < cls.min_length or n > MAX_LENGTH or not value.isascii():
        return None  # too short, or natural-language text (translations, prose)
    if value.isdigit():
        if not cls.digits_ok:
            return None
    elif value.isalpha():
        if not cls.letters_ok and not _random_letters(value):
            return None
    elif _UUID_SHAPE.fullmatch(value):
        if cls.name in {"password", "nonce"}:
            return None  # a GUID under a password key is an id; under an API key, the key
    elif _WORDISH.fullmatch(value):
        return None  # dotted or dashed identifiers: spring.datasource.password, my-app-key
    if _IDENTIFIER.fullmatch(value) and len(_HUMPS.findall(value)) >= (
        3 if cls.name == "password" else 1
    ):
        return None  # phoneNumber2, GitHubAppAuthorizationEvent, ThereCanBeOnlyOne
    if is_placeholder(value) or _looks_like_path(value) or _PW_HASH.match(value):
        return None
    if not quoted and kind == FileKind.DOCS and _EXPRESSION.search(value):
        return None
    ent = shannon_entropy(value)
    if ent < cls.min_entropy:
        return None
    strong = n >= cls.strong_length and ent >= cls.strong_entropy
    if key_words == ("key",) and not strong:
        return None  # a bare `key` (form field, map key) says too little: only strong values
    conf = Confidence.HIGH if strong else Confidence.MEDIUM
    if value.isdigit() and n > 10:
        conf = Confidence.LOW  # ids, phone numbers, timestamps
    if is_fixture(value, key_words):
        conf = Confidence.LOW
    if kind == FileKind.TEMPLATE or (kind == FileKind.DOCS and not quoted):
        conf = conf.lower()
    del test  # measured: test paths are no less precise (module docstring); kept for the model
    if conf.rank > cls.max_confidence.rank:
        conf = cls.max_confidence
    return ent, conf


def score_value(key: str, value: str, path: str = "conf/app.cfg") -> float | None:
    """Public for tests: the entropy of ``value`` if ``key = value`` would be reported."""
    model = load_model()
    cls = model.key_class(key)
    if cls is None:
        return None
    judged = judge(
        cls,
        value,
        kind=model.kind(path),
        test=model.is_test_path(path),
        quoted=True,
        key_words=tuple(split_key(key)),
    )
    if judged is None or judged[1] is Confidence.LOW:
        return None
    return judged[0]
