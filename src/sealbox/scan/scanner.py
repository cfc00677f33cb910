"""The scanner as a library: :class:`ScanOptions` say what to scan and how, a
:class:`Scanner` runs the scan and returns a :class:`ScanReport`::

    scanner = Scanner(ScanOptions(paths=("src",), min_confidence=Confidence.LOW))
    report = scanner.run(known_values=vault.inventory.known_values())
    for finding in report:
        ...

A Scanner never prints, exits or reads stdin: input it cannot use raises
:class:`~sealbox.errors.InvalidInput` (at construction for options, config and rules; in
:meth:`Scanner.run` for missing paths, baselines and git), and what a scan could not do
(a ``git log`` that failed, a file it could not read) is in the report's notes and errors.
The CLI (:mod:`sealbox.cli.scan`) only parses flags into options and formats the report.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, assert_never

from sealbox.errors import InvalidInput, SealboxError
from sealbox.scan import allow, git, runner, walk
from sealbox.scan.detectors.generic import RULE_ID as GENERIC_RULE_ID
from sealbox.scan.detectors.known import RULE_ID as KNOWN_RULE_ID
from sealbox.scan.detectors.known import KnownValue, KnownValuesDetector
from sealbox.scan.diff import looks_like_diff
from sealbox.scan.engine import Engine, EngineOptions
from sealbox.scan.findings import Confidence, Finding, ScanResult
from sealbox.scan.rules import RuleSet, load_rules
from sealbox.scan.text import ScanText

#: The name findings in a scanned stream carry as their path.
STREAM_PATH = "<stdin>"


class Target(enum.Enum):
    """What a scan reads."""

    #: files and directories (``paths``; the current directory when empty)
    FILES = "files"
    #: every commit of every branch of ``repo``
    HISTORY = "history"
    #: the changes staged for the next commit in ``repo``
    STAGED = "staged"
    #: the stream handed to :meth:`Scanner.run`: a diff's added lines, or any text (logs)
    STREAM = "stream"


@dataclass(frozen=True)
class ScanOptions:
    """Everything that chooses what a scan reads and reports (the CLI's flags)."""

    target: Target = Target.FILES
    #: files and directories for ``Target.FILES``; a single directory is the scan root
    paths: tuple[str, ...] = ()
    #: a path inside the repository for ``HISTORY`` and ``STAGED`` (default: the current dir)
    repo: Path | None = None
    #: also scan files that ``.gitignore`` excludes
    no_ignore: bool = False
    #: the scan config (default: ``.sealbox-scan.toml`` at the scan root, if any)
    config_path: Path | None = None
    #: a rules file instead of the built-in rules
    rules_path: Path | None = None
    #: rule ids not to run, on top of the config's ``disable_rules``
    disable_rules: frozenset[str] = frozenset()
    #: skip larger files: bytes or a size text (``10MiB``); default: the config's, or 10 MiB
    max_file_size: int | str | None = None
    #: worker processes (0 = one per core)
    jobs: int = 0
    #: report only findings at least this sure
    min_confidence: Confidence = Confidence.MEDIUM
    #: report only findings that are not in this baseline file
    baseline: Path | None = None


@dataclass(frozen=True)
class ScanReport:
    """The outcome of one scan: findings in report order (path, line, column, rule) after
    the baseline, and the counters, notes and errors in ``result``. Iterating a report
    yields its findings."""

    findings: tuple[Finding, ...]
    #: counters, notes and errors; ``result.findings`` holds every finding, before the baseline
    result: ScanResult = field(repr=False)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    @property
    def failed(self) -> bool:
        """Whether part of the scan could not be done (``result.errors``)."""
        return bool(self.result.errors)


class Scanner:
    """One scan's rules, config and targets, checked when built; :meth:`run` scans."""

    def __init__(self, options: ScanOptions) -> None:
        self.options = options
        self.root = _root(options)
        config = (
            allow.load_config(options.config_path)
            if options.config_path
            else allow.find_config(self.root)
        )
        self.rules: RuleSet = load_rules(options.rules_path)
        known_ids = self.rules.ids() | {GENERIC_RULE_ID, KNOWN_RULE_ID}
        unknown = (options.disable_rules | config.disable_rules) - known_ids
        if unknown:
            raise InvalidInput(f"cannot disable unknown rule(s): {', '.join(sorted(unknown))}")
        self.config = dataclasses.replace(
            config, disable_rules=config.disable_rules | options.disable_rules
        )
        if options.max_file_size is not None:
            self.max_size = allow.parse_size(options.max_file_size)
        else:
            self.max_size = self.config.max_file_size or walk.DEFAULT_MAX_FILE_SIZE
        self.jobs = options.jobs or runner.default_jobs()

    def run(
        self,
        known_values: Iterable[KnownValue] | None = None,
        *,
        stream: IO[bytes] | bytes | None = None,
        notes: Sequence[str] = (),
    ) -> ScanReport:
        """Scan. ``known_values``: secrets to look for as they are and encoded (each version
        of each secret; consumed once, before the scan); ``stream``: what a
        ``Target.STREAM`` scan reads; ``notes``: the caller's own notes on this scan (why it
        has no known values), reported first."""
        pre_notes = list(notes)
        engine = self._engine(known_values, pre_notes)
        result = self._scan(engine, stream)
        result.notes[:0] = pre_notes
        result.findings.sort(key=Finding.sort_key)
        findings: Sequence[Finding] = result.findings
        if self.options.baseline is not None:
            findings = allow.load_baseline(self.options.baseline).filter(findings)
        return ScanReport(tuple(findings), result)

    def _engine(self, known_values: Iterable[KnownValue] | None, notes: list[str]) -> Engine:
        known = None
        if known_values is not None:
            try:
                known = KnownValuesDetector(known_values)
            except SealboxError as exc:
                # A scan without known values still finds every rule's secrets.
                notes.append(f"known-value detection skipped: {exc.message}")
        return Engine(
            self.rules,
            config=self.config,
            known=known,
            options=EngineOptions(min_confidence=self.options.min_confidence),
        )

    def _scan(self, engine: Engine, stream: IO[bytes] | bytes | None) -> ScanResult:
        target = self.options.target
        if target is Target.HISTORY:
            return git.scan_history(engine, self.root, jobs=self.jobs, max_size=self.max_size)
        if target is Target.STAGED:
            _, diff = git.staged_diff(self.root)
            return self._scan_diff(engine, diff)
        if target is Target.STREAM:
            if stream is None:
                raise ValueError("a Target.STREAM scan needs the stream to read")
            data = stream if isinstance(stream, bytes) else stream.read()
            if looks_like_diff(data):
                return self._scan_diff(engine, data)
            result = ScanResult(files_scanned=1, bytes_scanned=len(data))
            result.findings = engine.scan_text(ScanText(data, STREAM_PATH), result.notes)
            return result
        if target is Target.FILES:
            return self._scan_files(engine)
        assert_never(target)

    def _scan_diff(self, engine: Engine, diff: bytes) -> ScanResult:
        batches = [[(b"", diff)]]
        return runner.run_batches(
            engine, runner.scan_diff_batch, batches, jobs=1, max_size=self.max_size
        )

    def _scan_files(self, engine: Engine) -> ScanResult:
        notes: list[str] = []
        entries = list(self._entries(notes))
        result = runner.scan_files(engine, entries, jobs=self.jobs, max_size=self.max_size)
        result.notes[:0] = notes
        return result

    def _entries(self, notes: list[str]) -> Iterator[walk.FileEntry]:
        """The files under every path, named relative to the scan root."""
        for p in self.options.paths or (".",):
            target = Path(p)
            if not os.path.lexists(target):
                raise InvalidInput(f"{p}: no such file or directory")
            is_root = target.is_dir() and target.resolve() == self.root.resolve()
            for e in walk.walk(target, no_ignore=self.options.no_ignore, notes=notes):
                if is_root:
                    yield e
                elif target.is_dir():
                    yield dataclasses.replace(e, relpath=os.path.join(p, e.relpath))
                else:
                    yield dataclasses.replace(e, relpath=os.path.normpath(p))


def _root(options: ScanOptions) -> Path:
    """The directory config is found in and finding paths are relative to."""
    if options.target in (Target.HISTORY, Target.STAGED):
        return git.repo_root(options.repo or Path.cwd())
    paths = options.paths
    if options.target is Target.FILES and len(paths) == 1 and Path(paths[0]).is_dir():
        return Path(paths[0])
    return Path.cwd()
