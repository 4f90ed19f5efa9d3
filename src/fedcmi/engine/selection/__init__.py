"""The ``federation.selection`` entries, one module each (see
:class:`fedcmi.engine.federation.Selection`)."""
