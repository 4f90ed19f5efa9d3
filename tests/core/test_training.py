"""Batching: every sample exactly once per epoch, single-sample tails merged."""

import pytest
import torch

from fedcmi.core.training import batch_indices


@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 128, 129, 130, 193, 200])
def test_batches_cover_every_sample_once(n):
    chunks = batch_indices(n, 64, torch.Generator().manual_seed(0))
    joined = torch.cat(chunks)
    assert sorted(joined.tolist()) == list(range(n))
    assert all(len(c) >= 2 for c in chunks) or n == 1
    assert all(len(c) <= 65 for c in chunks)


def test_single_sample_tail_joins_the_previous_batch():
    sizes = [len(c) for c in batch_indices(129, 64, torch.Generator().manual_seed(0))]
    assert sizes == [64, 65]
