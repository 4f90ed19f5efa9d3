"""The ``server.optimizer`` entries, one module each (see :mod:`fedcmi.core.server_opt`)."""
