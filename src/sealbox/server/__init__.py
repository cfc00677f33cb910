"""The sealbox HTTP server: an adapter over :class:`~sealbox.vault.Vault`.

Native REST API under ``/v1`` and a Vault KV v2 compatible API. Starlette and uvicorn are
imported only inside this package (never on the CLI's hot path). Build the app with
:func:`sealbox.server.app.create_app`; run it with :func:`sealbox.server.run.serve`.
"""
