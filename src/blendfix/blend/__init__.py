"""Fusion and Poisson (seamless) blending."""

from .fuse import fuse
from .seamless import seamless_clone

__all__ = ["fuse", "seamless_clone"]
