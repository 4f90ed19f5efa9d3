"""FedCMI: balanced multimodal federated learning via cross-modal infiltration."""

__version__ = "0.1.0"
