"""Rotation: the rotators (one module each) and what a rotator is (``interface.py``)."""
