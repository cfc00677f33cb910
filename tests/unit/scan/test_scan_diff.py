"""Unified diff parsing: added lines and their new-side line numbers."""

from __future__ import annotations

import difflib

from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.scan.diff import FileDiff, looks_like_diff, parse_diff


def added(fd: FileDiff) -> list[tuple[int, str]]:
    text = fd.to_text()
    out = []
    pos = 0
    data = text.data
    while pos < len(data):
        nl = data.find(b"\n", pos)
        nl = len(data) if nl < 0 else nl
        out.append((text.line_of(pos), data[pos:nl].decode()))
        pos = nl + 1
    return out


GIT_DIFF = b"""diff --git a/app.py b/app.py
index 1111111..2222222 100644
--- a/app.py
+++ b/app.py
@@ -1,4 +1,5 @@
 import os
-old = 1
+new = 2
+--- not a header
 x = 1
--- removed line that looks like a header
@@ -10,0 +12,1 @@ def f():
+tail = 3
\\ No newline at end of file
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git "a/sp ace\\tx.txt" "b/sp ace\\tx.txt"
new file mode 100644
--- /dev/null
+++ "b/sp ace\\tx.txt"
@@ -0,0 +1,2 @@
+one
+two
"""


def test_git_diff() -> None:
    files = list(parse_diff(GIT_DIFF))
    assert [f.path for f in files] == ["app.py", "sp ace\tx.txt"]
    assert added(files[0]) == [(2, "new = 2"), (3, "--- not a header"), (12, "tail = 3")]
    assert added(files[1]) == [(1, "one"), (2, "two")]
    assert looks_like_diff(GIT_DIFF)
    assert not looks_like_diff(b"just a log line\n+++ not a header\n")


def test_malformed_does_not_raise() -> None:
    assert list(parse_diff(b"+++ b/x\n@@ -1,2 +1,5 @@\n+a\n?junk\n")) != []
    assert list(parse_diff(b"@@ garbage\n+++\n")) == []
    assert list(parse_diff(b"")) == []


line = st.text(
    alphabet=st.characters(blacklist_characters="\n\r", max_codepoint=0x2FF), max_size=12
)


@settings(max_examples=200, deadline=None)
@given(st.lists(line, max_size=15), st.lists(line, max_size=15), st.integers(0, 3))
def test_roundtrip_against_difflib(old: list[str], new: list[str], context: int) -> None:
    diff = "\n".join(difflib.unified_diff(old, new, "a/f.txt", "b/f.txt", n=context, lineterm=""))
    files = list(parse_diff((diff + "\n").encode()))
    sm = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    expected = [
        (j + 1, new[j])
        for tag, _i1, _i2, j1, j2 in sm.get_opcodes()
        if tag in ("insert", "replace")
        for j in range(j1, j2)
    ]
    got = added(files[0]) if files else []
    assert got == expected
