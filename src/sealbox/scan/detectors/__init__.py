"""Detectors: each finds candidate secrets in a :class:`~sealbox.scan.text.ScanText`.

``interface`` defines the protocol; ``rule`` runs the provider rules, ``generic`` scores
``key = value`` assignments, and ``known`` looks for the exact values the vault manages.
"""
