"""The context model of the generic detector: what kind of file a text is, and how strong a
value a key's class needs. The data (key classes, word lists, file kinds) lives in
``generic.toml`` next to ``rules.toml``; this module loads and validates it once.

* **File kind** (:func:`file_kind`): code, config, docs, template, lockfile or other, from the
  base name and suffix; plus whether the path is a test fixture (:func:`is_test_path`).
* **Key class** (:meth:`GenericModel.key_class`): the last word of the key decides —
  ``DB_PASSWORD`` is a password key, ``api_token`` a token key, ``password_field`` is about a
  password and holds none. Each class has its own length and entropy floors.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sealbox.errors import InvalidInput
from sealbox.scan.findings import Confidence


class FileKind:
    """File kinds (plain strings, so they compare and print cheaply)."""

    CODE = "code"
    CONFIG = "config"
    DOCS = "docs"
    TEMPLATE = "template"
    LOCKFILE = "lockfile"
    OTHER = "other"


@dataclass(frozen=True)
class KeyClass:
    """How strong a value a key of this class needs (see ``generic.toml``)."""

    name: str
    words: frozenset[str]
    compound_ok: bool
    min_length: int
    min_entropy: float
    strong_length: int
    strong_entropy: float
    max_confidence: Confidence
    letters_ok: bool
    digits_ok: bool


@dataclass(frozen=True)
class GenericModel:
    """The loaded ``generic.toml``."""

    classes: tuple[KeyClass, ...]
    modifiers: frozenset[str]
    not_secret_key: frozenset[str]
    call_verbs: frozenset[str]
    wrappers: tuple[str, ...]
    ui_words: frozenset[str]
    code: frozenset[str]
    config: frozenset[str]
    docs: frozenset[str]
    template: frozenset[str]
    lockfile_names: frozenset[str]
    lockfile_suffixes: frozenset[str]
    test_dirs: frozenset[str]
    test_file_re: re.Pattern[str]

    @functools.cached_property
    def _by_word(self) -> dict[str, KeyClass]:
        return {w: c for c in self.classes for w in c.words}

    def key_class(self, key: str) -> KeyClass | None:
        """The class of ``key`` (decided by its last word), or None when it holds no secret."""
        words = split_key(key)
        if not words:
            return None
        last = words[-1]
        prev = words[-2] if len(words) > 1 else ""
        if any(w in self.ui_words for w in words[:-1]):
            return None  # LABEL_PASSWORD, forgot_password_title: text about a secret
        cls = self._by_word.get(last)
        if cls is None:
            cls = self._compound(last)
            if cls is None:
                return None
        if cls.name == "key" and last == "key":
            if prev in self.not_secret_key:
                return None  # public_key, primary_key, cache_key
            if not prev and key.strip("\"'[]$:@.-_").lower() != "key":
                return None  # `key` only as a whole field name (JSON/YAML), not `Key2x`
        return cls

    def _compound(self, word: str) -> KeyClass | None:
        for cls in self.classes:
            for w in cls.words:
                if len(word) > len(w) and word.endswith(w):
                    head = word[: -len(w)]
                    if head in self.modifiers or (cls.compound_ok and len(w) >= 6):
                        return cls
        return None

    def kind(self, path: str) -> str:
        """The :class:`FileKind` of ``path``."""
        base = path.rsplit("/", 1)[-1].lower()
        if base in self.lockfile_names:
            return FileKind.LOCKFILE
        dot = base.rfind(".")
        suffix = base[dot:] if dot > 0 else ""
        if suffix in self.lockfile_suffixes:
            return FileKind.LOCKFILE
        if suffix in self.template:
            return FileKind.TEMPLATE
        if suffix in self.code:
            return FileKind.CODE
        if suffix in self.docs:
            return FileKind.DOCS
        if suffix in self.config or base.startswith((".env", "dockerfile")):
            return FileKind.CONFIG
        return FileKind.OTHER

    def is_test_path(self, path: str) -> bool:
        """True when ``path`` lies in a test/fixture directory or names a test file."""
        parts = path.replace("\\", "/").split("/")
        if any(p.lower() in self.test_dirs for p in parts[:-1]):
            return True
        return self.test_file_re.search(parts[-1]) is not None


_HUMP = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def split_key(key: str) -> list[str]:
    """Lowercase words of a key: ``DB_PASSWORD`` -> [db, password], ``oauthToken`` -> [oauth,
    token], ``ds1.password`` -> [ds, 1, password] (digits dropped at the end: ``pass2``)."""
    words = [w.lower() for w in _HUMP.findall(key)]
    while words and words[-1].isdigit():
        words.pop()
    return words


def _fail(msg: str) -> InvalidInput:
    return InvalidInput(f"scan generic model: generic.toml: {msg}")


def _strs(table: dict[str, Any], key: str) -> list[str]:
    value = table.get(key)
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise _fail(f"'{key}' must be a list of non-empty strings")
    return value


def _num(table: dict[str, Any], key: str, where: str) -> float:
    value = table.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise _fail(f"{where}: '{key}' must be a non-negative number")
    return float(value)


def parse_model(text: str) -> GenericModel:
    """Parse and validate a ``generic.toml`` document."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(f"not valid TOML: {exc}") from exc
    if doc.get("version") != 1:
        raise _fail(f"version must be 1, got {doc.get('version')!r}")
    classes = []
    raw_classes = doc.get("class")
    if not isinstance(raw_classes, dict) or not raw_classes:
        raise _fail("no [class.<name>] tables")
    for name, raw in raw_classes.items():
        where = f"class {name!r}"
        if not isinstance(raw, dict):
            raise _fail(f"{where} must be a table")
        try:
            top = Confidence(raw.get("max_confidence", "high"))
        except ValueError:
            raise _fail(f"{where}: max_confidence must be low, medium or high") from None
        flags = {k: raw.get(k, False) for k in ("compound_ok", "letters_ok", "digits_ok")}
        if not all(isinstance(v, bool) for v in flags.values()):
            raise _fail(f"{where}: compound_ok, letters_ok and digits_ok must be booleans")
        classes.append(
            KeyClass(
                name=name,
                words=frozenset(w.lower() for w in _strs(raw, "words")),
                compound_ok=flags["compound_ok"],
                min_length=int(_num(raw, "min_length", where)),
                min_entropy=_num(raw, "min_entropy", where),
                strong_length=int(_num(raw, "strong_length", where)),
                strong_entropy=_num(raw, "strong_entropy", where),
                max_confidence=top,
                letters_ok=flags["letters_ok"],
                digits_ok=flags["digits_ok"],
            )
        )
    words, files = doc.get("words"), doc.get("files")
    if not isinstance(words, dict) or not isinstance(files, dict):
        raise _fail("[words] and [files] tables are required")
    try:
        test_re = re.compile("|".join(f"(?:{p})" for p in _strs(files, "test_file_patterns")))
    except re.error as exc:
        raise _fail(f"test_file_patterns: {exc}") from exc

    def low(table: dict[str, Any], key: str) -> frozenset[str]:
        return frozenset(x.lower() for x in _strs(table, key))

    return GenericModel(
        classes=tuple(classes),
        modifiers=low(words, "modifiers"),
        not_secret_key=low(words, "not_secret_key"),
        call_verbs=low(words, "call_verbs"),
        wrappers=tuple(sorted(_strs(words, "wrappers"), key=len, reverse=True)),
        ui_words=low(words, "ui_words"),
        code=low(files, "code"),
        config=low(files, "config"),
        docs=low(files, "docs"),
        template=low(files, "template"),
        lockfile_names=low(files, "lockfile_names"),
        lockfile_suffixes=low(files, "lockfile_suffixes"),
        test_dirs=low(files, "test_dirs"),
        test_file_re=test_re,
    )


@functools.cache
def load_model() -> GenericModel:
    """The model shipped with sealbox (package data), loaded once per process."""
    resource = resources.files("sealbox.scan").joinpath("generic.toml")
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidInput(
            "scan generic model: the built-in generic.toml is missing from this installation",
            hint="reinstall sealbox",
        ) from exc
    return parse_model(text)


def file_kind(path: str) -> str:
    """The :class:`FileKind` of ``path`` under the built-in model."""
    return load_model().kind(path)


def is_test_path(path: str) -> bool:
    """Whether ``path`` is a test or fixture path under the built-in model."""
    return load_model().is_test_path(path)
