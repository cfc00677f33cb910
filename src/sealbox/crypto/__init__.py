"""The only package that touches cryptographic primitives. It does no I/O.

Everything goes through ``cryptography``; nothing here implements a primitive.
"""
