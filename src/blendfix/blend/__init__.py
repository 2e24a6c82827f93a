"""Fusion and Poisson (seamless) blending."""

from .fuse import fuse

__all__ = ["fuse"]
