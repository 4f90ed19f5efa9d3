"""The ``faults.attack`` entries, one module each (see :class:`fedcmi.engine.faults.Attack`)."""
