"""``seacat``: the SeaCat PKI's command line over the admin API (docs/cli.md).

Each command is one module of ``seacat_cli.commands`` with ``NAME``, ``HELP`` and ``register(parser)``;
adding one (the profile or EST commands) is adding that module.
"""
