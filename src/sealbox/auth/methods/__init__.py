"""Login methods: plug-ins that turn credentials into a token (password, AppRole, …).

:mod:`.interface` says what a method declares and receives, one module per built-in
method implements it, and :mod:`.registry` finds methods by name (entry points group
``sealbox.login_methods``). The server serves every method at ``/v1/auth/<name>/login``.
"""
