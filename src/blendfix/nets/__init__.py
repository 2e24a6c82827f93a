"""Networks: tensor in -> tensor out, deterministic, no training logic."""

from .maresunet import MAResUNet

__all__ = ["MAResUNet"]
