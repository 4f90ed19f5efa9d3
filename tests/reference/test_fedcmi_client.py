"""FedCMI's client against its authors' code: the class-wise temperatures and the
cross-modal distillation, transcribed in :mod:`tests.reference.fedcmi_code` (which cites
``client/FedCMI.py`` of the authors' repository, file and lines)."""

import math

import pytest
import torch

from fedcmi.algorithms.fedcmi import class_wise_temperatures, infiltration_loss

from .fedcmi_code import reference_distillation, reference_temperatures


def test_temperatures_equal_the_reference_code():
    # Class means of the true-class probability for 4 classes, class 3 absent (0).
    for p_a, p_v in (
        ([0.9, 0.5, 0.6, 0.0], [0.3, 0.4, 0.5, 0.0]),  # audio dominant
        ([0.2, 0.05, 0.3, 0.0], [0.6, 0.7, 0.4, 0.0]),
    ):  # visual dominant
        labels = torch.tensor([0, 1, 2])
        ours = class_wise_temperatures(torch.tensor(p_a[:3]), torch.tensor(p_v[:3]), labels, 4)
        assert ours.tolist() == pytest.approx(reference_temperatures(p_a, p_v), abs=1e-6)


def test_distillation_equals_the_reference_code_where_it_is_finite():
    gen = torch.Generator().manual_seed(0)
    teacher, student = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    temps = [0.4, 1.0, 0.7, 1.0, 0.25]
    ours = infiltration_loss(teacher, student, torch.tensor(temps), labels)
    reference = reference_distillation(teacher, student, temps, labels)
    assert float(ours) == pytest.approx(float(reference), rel=1e-6)


def test_reference_code_overflows_where_the_log_softmax_form_stays_finite():
    # A student logit 30 below its maximum at T = 0.237: exp(-30 / 0.237) underflows in
    # float32, so the reference's log(softmax) is -inf; log_softmax gives -126.6 exactly.
    teacher = torch.tensor([[10.0, 0.0]])
    student = torch.tensor([[0.0, 30.0]])
    labels = torch.tensor([0])
    temps = [0.237, 1.0]
    assert math.isinf(float(reference_distillation(teacher, student, temps, labels)))
    ours = float(infiltration_loss(teacher, student, torch.tensor(temps), labels))
    assert ours == pytest.approx(30 / 0.237, rel=1e-3)
