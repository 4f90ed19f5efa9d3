"""Model forwards: infiltration-projector filling for unimodal clients, zero-fill baselines."""

import pytest
import torch

from fedcmi.models import FedCMIModel, LateFusionModel
from fedcmi.models.encoders import ENCODERS


def fedcmi_model(**kwargs) -> FedCMIModel:
    torch.manual_seed(0)
    enc_a, enc_v = ENCODERS.get("mlp")((6,), 8), ENCODERS.get("mlp")((5,), 8)
    return FedCMIModel(enc_a, enc_v, 8, 3, **kwargs).eval()


X_A, X_V = torch.randn(4, 6), torch.randn(4, 5)


def test_a_only_forward_fills_v_slot_with_a_infiltration_projection():
    model = fedcmi_model()
    f = model.enc_a(X_A)
    expected = model.fusion(torch.cat([model.self_a(f), model.inf_a(f)], 1))
    assert torch.allclose(model(X_A, None, "a"), expected)


def test_v_only_forward_fills_a_slot_with_v_infiltration_projection():
    model = fedcmi_model()
    f = model.enc_v(X_V)
    expected = model.fusion(torch.cat([model.inf_v(f), model.self_v(f)], 1))
    assert torch.allclose(model(None, X_V, "v"), expected)


def test_evaluation_heads_follow_the_spec():
    model = fedcmi_model()
    out = model.evaluation_logits(X_A, X_V)
    assert set(out) == {"acc", "acc_a", "acc_v", "acc_av", "acc_va", "acc_a_head", "acc_v_head"}
    aa, vv = model.self_a(model.enc_a(X_A)), model.self_v(model.enc_v(X_V))
    zeros = torch.zeros_like(aa)
    assert torch.allclose(out["acc_a"], model.fusion(torch.cat([aa, zeros], 1)))
    assert torch.allclose(out["acc_v"], model.fusion(torch.cat([zeros, vv], 1)))
    assert torch.allclose(out["acc_a_head"], model.head_a(aa))
    assert torch.allclose(out["acc"], model(X_A, X_V, "av"))


def test_no_infiltration_projector_zero_fills_and_drops_ip_heads():
    model = fedcmi_model(infiltration=False)
    assert not hasattr(model, "inf_a")
    aa = model.self_a(model.enc_a(X_A))
    assert torch.allclose(
        model(X_A, None, "a"), model.fusion(torch.cat([aa, torch.zeros_like(aa)], 1))
    )
    assert "acc_av" not in model.evaluation_logits(X_A, X_V)


def test_separate_infiltration_head_when_not_shared():
    model = fedcmi_model(shared_classifier=False)
    assert model.infiltration_head("a") is model.inf_head_a
    shared = fedcmi_model()
    assert shared.infiltration_head("v") is shared.head_v


def test_mlp_projector_has_three_layers():
    model = fedcmi_model(projector="mlp")
    assert sum(isinstance(m, torch.nn.Linear) for m in model.self_a.modules()) == 3


def test_late_fusion_zero_fills_missing_modality():
    torch.manual_seed(0)
    model = LateFusionModel(ENCODERS.get("mlp")((6,), 8), ENCODERS.get("mlp")((5,), 8), 8, 3)
    f = model.enc_a(X_A)
    expected = model.fusion(torch.cat([f, torch.zeros_like(f)], 1))
    assert torch.allclose(model(X_A, None, "a"), expected)
    with pytest.raises(ValueError):
        model.fuse(None, None)


@pytest.mark.parametrize(
    ("name", "shape"), [("conv1d-audio", (40, 121)), ("cnn-image", (1, 28, 28)), ("mlp", (7,))]
)
def test_encoders_map_inputs_to_feature_dim(name, shape):
    enc = ENCODERS.get(name)(shape, 32)
    assert enc(torch.randn(3, *shape)).shape == (3, 32)


def test_encoders_built_for_a_dataset_upcast_float16_inputs():
    from fedcmi.config import ModelConfig
    from fedcmi.data.base import MultimodalData, Split
    from fedcmi.models.base import build_encoders

    x_a = torch.randn(4, 40, 21).half()  # a float16 spectrogram, as prepared caches store
    split = Split(x_a, torch.randn(4, 7), torch.tensor([0, 1, 0, 1]))
    data = MultimodalData("t", split, split, split, ["x", "y"], ("a", "v"), ("conv1d-audio", "mlp"))
    torch.manual_seed(0)
    enc_a, _ = build_encoders(data, ModelConfig(feature_dim=8))
    enc_a.eval()
    # The half batch runs in float32 and gives what its float32 copy gives.
    assert torch.equal(enc_a(x_a), enc_a(x_a.float()))
    assert enc_a(x_a).dtype == torch.float32
