"""Flower adapter (the only place that imports ``flwr``).

:mod:`fedcmi.flower.app` holds the ``ClientApp`` and ``ServerApp`` for ``flwr run`` and
deployments; :mod:`fedcmi.flower.strategy` the ``Strategy``; both call the same core
functions as the embedded engine (``ClientTrainer``, the algorithm's aggregation,
``Evaluator``, ``RunWriter``), so no algorithm logic is written twice.
"""
