"""Models: encoders (a registry), the FedCMI model and the late-fusion baseline model."""

from fedcmi.models.base import MultimodalModel, side_of
from fedcmi.models.encoders import ENCODERS
from fedcmi.models.fedcmi_model import FedCMIModel
from fedcmi.models.late_fusion import LateFusionModel
from fedcmi.models.unimodal import UnimodalModel

__all__ = [
    "ENCODERS",
    "FedCMIModel",
    "LateFusionModel",
    "MultimodalModel",
    "UnimodalModel",
    "side_of",
]
