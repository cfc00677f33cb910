"""The leak scanner: find secrets in files, git history and logs.

Layout (one module per concern, see ``docs/scanner.md``):

- :mod:`.rules` loads and validates the rule data (``rules.toml``) and compiles it.
- :mod:`.detectors` holds the detectors: provider rules, generic assignments, known values.
- :mod:`.engine` runs the detectors over one text and applies inline and path allowlists.
- :mod:`.walk` lists files, :mod:`.diff` parses unified diffs, :mod:`.git` drives git.
- :mod:`.runner` spreads the work over processes; :mod:`.allow` holds config and baseline;
  :mod:`.report` renders table, JSON and SARIF.
- :mod:`.scanner` is the entry point: ``Scanner(ScanOptions(...)).run()`` chooses what to
  read, builds the engine and returns a report (imported from there, not from this package,
  so that importing a value type does not load RE2 and the rules).

Library code here never prints or exits; the CLI adapter is :mod:`sealbox.cli.scan`.
"""

from __future__ import annotations

from sealbox.scan.findings import Finding, ScanResult, Severity

__all__ = ["Finding", "ScanResult", "Severity"]
