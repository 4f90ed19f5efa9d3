"""Preparation of the paper's datasets from a user's disk (CREMA-D, AVE, CrisisMMD).

Work in progress (issue 4): the recipe functions and index parsers live here; the
``fedcmi data prepare`` command, frame extraction and the caches come next.
"""
