"""FedProto's server against its official code.

Transcribed from github.com/yuetan031/FedProto (commit cb3c41f), ``lib/utils.py``,
``proto_aggregation``: per label, the plain mean of the prototypes of the clients that
hold it. The paper's Eq. (6) weighs each client by its sample count of the class; the
project offers both (``server_mean = "weighted"``, the default, or ``"unweighted"``).
The project applies the rule per modality and keeps a class nobody reported at its
previous prototype (the official dict simply lacks it), checked at the end.
"""

from __future__ import annotations

import torch

from fedcmi.algorithms.fedproto import average_prototypes


def official_proto_aggregation(local_protos_list):
    agg_protos_label = dict()
    for idx in local_protos_list:
        local_protos = local_protos_list[idx]
        for label in local_protos.keys():  # noqa: SIM118 (as the official code)
            if label in agg_protos_label:
                agg_protos_label[label].append(local_protos[label])
            else:
                agg_protos_label[label] = [local_protos[label]]
    for [label, proto_list] in agg_protos_label.items():
        if len(proto_list) > 1:
            proto = 0 * proto_list[0].data
            for i in proto_list:
                proto += i.data
            agg_protos_label[label] = [proto / len(proto_list)]
        else:
            agg_protos_label[label] = [proto_list[0].data]
    return agg_protos_label


def test_unweighted_server_mean_is_the_official_aggregation():
    g = torch.Generator().manual_seed(0)
    classes, d = 4, 3
    counts = [torch.tensor([5, 0, 2, 0]), torch.tensor([1, 3, 0, 0]), torch.tensor([9, 1, 0, 0])]
    protos = [torch.randn(classes, d, generator=g) * (n > 0)[:, None] for n in counts]
    official = official_proto_aggregation(
        {
            client: {c: protos[client][c] for c in range(classes) if counts[client][c] > 0}
            for client in range(len(counts))
        }
    )
    previous = torch.full((classes, d), 7.0)
    ours, count = average_prototypes(
        previous, torch.zeros(classes), list(zip(protos, counts)), weighted=False
    )
    for label, (proto,) in official.items():
        assert torch.allclose(ours[label], proto, atol=1e-6), label
    assert set(official) == {0, 1, 2}
    assert torch.equal(ours[3], previous[3])  # nobody holds class 3: kept
    # the paper's weighted mean differs where the counts differ: class 0 is
    # (5 P_0 + 1 P_1 + 9 P_2) / 15
    weighted, _ = average_prototypes(previous, torch.zeros(classes), list(zip(protos, counts)))
    expected = (5 * protos[0][0] + protos[1][0] + 9 * protos[2][0]) / 15
    assert torch.allclose(weighted[0], expected, atol=1e-6)
