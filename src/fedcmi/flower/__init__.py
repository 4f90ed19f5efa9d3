"""Flower adapter (the only place that imports ``flwr``).

:mod:`fedcmi.flower.app` holds the ``ClientApp`` and the ``ServerApp`` main for
``flwr run`` and deployments; the ServerApp runs the engine's own loop
(:func:`fedcmi.engine.loop.run_rounds` over :func:`fedcmi.engine.rounds.run_round`) with
:class:`fedcmi.flower.grid_clients.GridClients` as the transport to the clients, so the
round, resume and Ctrl-C are written once for both engines.
"""
