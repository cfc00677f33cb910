"""Spread scanning over processes: files in batches, diff pieces in batches.

Workers are forked (on platforms that fork) after the engine is built, so compiled rules and
the known-value matcher are inherited, never pickled: secret bytes do not cross a pipe. Only
redacted findings come back. Tasks are submitted with a bound on how many are in flight, so a
long ``git log`` stream is never buffered whole.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TypeVar

from sealbox.scan.diff import parse_diff
from sealbox.scan.engine import Engine
from sealbox.scan.findings import ScanResult
from sealbox.scan.text import ScanText
from sealbox.scan.walk import FileEntry, read_file

T = TypeVar("T")
R = TypeVar("R")

#: Files per task; about 0.5 MB of source on average.
FILES_PER_TASK = 48
#: Below this many bytes in total a pool costs more than it saves.
MIN_PARALLEL_BYTES = 2 << 20

# NOTE: process-local state of a forked worker, set once by _init_worker; the parent never
# reads it. This is the one way to hand a worker the engine without pickling secret bytes.
_WORKER: dict[str, object] = {}


def _init_worker(engine: Engine, max_size: int) -> None:
    _WORKER["engine"] = engine
    _WORKER["max_size"] = max_size


def _engine() -> Engine:
    engine = _WORKER["engine"]
    assert isinstance(engine, Engine)
    return engine


def default_jobs() -> int:
    """All cores."""
    return max(1, os.cpu_count() or 1)


def scan_file_batch(batch: Sequence[FileEntry]) -> ScanResult:
    """Worker: read and scan a batch of files."""
    engine = _engine()
    max_size = _WORKER["max_size"]
    assert isinstance(max_size, int)
    res = ScanResult()
    for entry in batch:
        rr = read_file(entry.abspath, entry.relpath, max_size)
        if rr.data is None:
            if rr.skip == "binary":
                res.skipped_binary += 1
            elif rr.skip == "large":
                res.skipped_large += 1
            else:
                res.skipped_unreadable += 1
            if rr.note:
                res.notes.append(rr.note)
            continue
        res.files_scanned += 1
        res.bytes_scanned += len(rr.data)
        res.findings.extend(engine.scan_text(ScanText(rr.data, entry.relpath), res.notes))
    return res


def scan_diff_batch(batch: Sequence[tuple[bytes, bytes]]) -> ScanResult:
    """Worker: scan pieces of a diff; each piece is (commit header, diff bytes).

    The header is ``hash NUL iso-date NUL author`` (empty for a plain diff)."""
    engine = _engine()
    res = ScanResult()
    for header, diff in batch:
        commit = date = author = None
        if header:
            parts = header.decode("utf-8", "replace").split("\0")
            commit, date, author = [*parts, "", "", ""][:3]
        for fd in parse_diff(diff):
            if engine.config.path_allowed(fd.path):
                res.skipped_allowed += 1
                continue
            text = fd.to_text()
            res.files_scanned += 1
            res.bytes_scanned += len(text.data)
            found = engine.scan_text(text, res.notes)
            if commit is not None:
                found = [replace(f, commit=commit, author=author, date=date) for f in found]
            res.findings.extend(found)
    return res


def _bounded_imap(
    pool: multiprocessing.pool.Pool, fn: Callable[[T], R], items: Iterable[T], pending: int
) -> Iterator[R]:
    queue: deque[multiprocessing.pool.AsyncResult[R]] = deque()
    for item in items:
        queue.append(pool.apply_async(fn, (item,)))
        if len(queue) >= pending:
            yield queue.popleft().get()
    while queue:
        yield queue.popleft().get()


def run_batches(
    engine: Engine,
    fn: Callable[[T], ScanResult],
    batches: Iterable[T],
    *,
    jobs: int,
    max_size: int,
    parallel: bool = True,
) -> ScanResult:
    """Run ``fn`` over ``batches`` in ``jobs`` forked workers (or inline) and merge."""
    total = ScanResult()
    use_pool = parallel and jobs > 1 and "fork" in multiprocessing.get_all_start_methods()
    if not use_pool:
        _init_worker(engine, max_size)
        try:
            for batch in batches:
                total.merge(fn(batch))
        finally:
            _WORKER.clear()
        return total
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(engine, max_size)) as pool:
        for part in _bounded_imap(pool, fn, batches, pending=jobs * 4):
            total.merge(part)
    return total


def batch_files(
    entries: Iterable[FileEntry], size: int = FILES_PER_TASK
) -> Iterator[list[FileEntry]]:
    """Group entries into tasks."""
    batch: list[FileEntry] = []
    for e in entries:
        batch.append(e)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def scan_files(
    engine: Engine, entries: Sequence[FileEntry], *, jobs: int, max_size: int
) -> ScanResult:
    """Scan files (path allowlist applied here, before anything is read)."""
    todo: list[FileEntry] = []
    allowed = 0
    for e in entries:
        if engine.config.path_allowed(e.relpath):
            allowed += 1
        else:
            todo.append(e)
    approx = 0
    for e in todo[:2000]:
        with contextlib.suppress(OSError):
            approx += os.stat(e.abspath).st_size
        if approx >= MIN_PARALLEL_BYTES:
            break
    res = run_batches(
        engine,
        scan_file_batch,
        batch_files(todo),
        jobs=jobs,
        max_size=max_size,
        parallel=approx >= MIN_PARALLEL_BYTES,
    )
    res.skipped_allowed += allowed
    return res
