"""The ``federation.partitioner`` entries, one module each (see
:class:`fedcmi.engine.federation.Partitioner`)."""
