"""FedCMI's server (modality-aware aggregation) against the authors' code.

Transcribed from github.com/fanyunfeng-bit/Balanced-Modality-Selection-in-MFL (commit
14c762c), ``server/FedCMI.py`` lines 289-395 (``aggregate``: the audio modules, i.e.
``audio_net``, ``audio_a_branch``, ``audio_v_branch`` and ``av_classifier``, averaged over
the clients holding audio weighted by their data counts, the visual ones likewise, the
fusion module over every client) and lines 164-174 (a modality no client held keeps its
previous modules). The project names those modules ``enc_m``, ``self_m``, ``inf_m`` and
``head_m`` (``fedcmi.models.fedcmi_model``); its local loss is checked against the same
code in tests/reference/test_fedcmi_client.py (distillation).
"""

from __future__ import annotations

import torch
from torch import nn

from fedcmi.algorithms.fedcmi import FedCMI
from fedcmi.config import RobustnessConfig
from fedcmi.core.aggregation import ClientUpdate
from fedcmi.models import FedCMIModel

OFFICIAL_NAMES = {  # the authors' module -> the project's
    "audio_net": "enc_a",
    "audio_a_branch": "self_a",
    "audio_v_branch": "inf_a",
    "av_classifier": "head_a",
    "visual_net": "enc_v",
    "visual_v_branch": "self_v",
    "visual_a_branch": "inf_v",
    "va_classifier": "head_v",
    "fusion_module": "fusion",
}
AUDIO = ("audio_net", "audio_a_branch", "audio_v_branch", "av_classifier")
VISUAL = ("visual_net", "visual_a_branch", "visual_v_branch", "va_classifier")


def official_aggregate(client_modules, all_client_data_num, holds_audio, holds_visual):
    """``client_modules[i][module]`` is client i's state dict of that module."""
    weights_cache = list(all_client_data_num)
    weights = torch.tensor(weights_cache, dtype=torch.float64) / sum(weights_cache)
    weights_audio_cache = [w if a else 0 for w, a in zip(weights_cache, holds_audio)]
    weights_visual_cache = [w if v else 0 for w, v in zip(weights_cache, holds_visual)]
    audio_update = not all(w == 0 for w in weights_audio_cache)
    visual_update = not all(w == 0 for w in weights_visual_cache)
    weights_audio = (
        torch.tensor(weights_audio_cache, dtype=torch.float64) / sum(weights_audio_cache)
        if audio_update
        else torch.zeros_like(weights)
    )
    weights_visual = (
        torch.tensor(weights_visual_cache, dtype=torch.float64) / sum(weights_visual_cache)
        if visual_update
        else torch.zeros_like(weights)
    )

    def average(module, w):
        out = {}
        for key in client_modules[0][module]:
            for i in range(len(client_modules)):
                term = w[i] * client_modules[i][module][key].double()
                out[key] = term if i == 0 else out[key] + term
        return out

    result = {m: average(m, weights_audio) for m in AUDIO}
    result.update({m: average(m, weights_visual) for m in VISUAL})
    result["fusion_module"] = average("fusion_module", weights)
    return result, audio_update, visual_update


def model(seed: int) -> FedCMIModel:
    torch.manual_seed(seed)
    return FedCMIModel(nn.Linear(5, 4), nn.Linear(6, 4), 4, 3)


def modules_of(state, prefix_of):
    """A project state dict split into the authors' modules."""
    return {
        official: {k[len(ours) + 1 :]: v for k, v in state.items() if k.startswith(ours + ".")}
        for official, ours in prefix_of.items()
    }


def check(modalities, sizes):
    global_state = model(0).state_dict()
    states = [model(i + 1).state_dict() for i in range(len(modalities))]
    updates = [
        ClientUpdate(i, m, n, s) for i, (m, n, s) in enumerate(zip(modalities, sizes, states))
    ]
    ours = FedCMI(FedCMI.Params()).aggregate(global_state, updates, RobustnessConfig())
    expected, audio_update, visual_update = official_aggregate(
        [modules_of(s, OFFICIAL_NAMES) for s in states],
        sizes,
        ["a" in m for m in modalities],
        ["v" in m for m in modalities],
    )
    previous = modules_of(global_state, OFFICIAL_NAMES)
    ours_modules = modules_of(ours, OFFICIAL_NAMES)
    for module, params in expected.items():
        updated = audio_update if module in AUDIO else visual_update if module in VISUAL else True
        for key, value in params.items():
            want = value if updated else previous[module][key].double()
            assert torch.allclose(ours_modules[module][key].double(), want, atol=1e-6), (
                module,
                key,
            )


def test_modality_aware_aggregation_matches_the_authors_server():
    check(["av", "a", "v", "av"], [10, 20, 30, 40])


def test_a_modality_nobody_held_keeps_its_modules():
    check(["v", "v"], [7, 9])
