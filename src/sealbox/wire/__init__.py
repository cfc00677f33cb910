"""The native API's bodies, as both ends read and write them: one codec per body.

The server's routes answer with the ``encode_*`` functions and the SDK (``client/``) reads
those answers with the matching ``decode_*``, so the JSON a route sends and the value the
SDK returns are defined once. Each module covers one area of the API (:mod:`.secrets`,
:mod:`.accounts`, :mod:`.policies`, :mod:`.audit`, :mod:`.events`, :mod:`.errors`).

A leaf: it imports only :mod:`sealbox.model`, :mod:`sealbox.errors` and the standard
library. A decoder given a body the API does not send raises :class:`~.fields.WireError`
(a ``ValueError`` naming the field), never a bare ``KeyError``; the SDK reports it as
``BadReply``.
"""
