"""Exceptions with messages meant for users: each names the file and the fix."""

from __future__ import annotations


class BlendfixError(Exception):
    """A problem with the user's input or set-up; the CLI prints it without a traceback."""


class ImageReadError(BlendfixError, ValueError):
    """An image file could not be read (corrupt, truncated, unsupported, too small or too large)."""


class SizeMismatchError(BlendfixError, ValueError):
    """Two inputs that must have the same size do not."""


class MissingWeightsError(BlendfixError, FileNotFoundError):
    """A pretrained checkpoint is not on disk; the message says what to place where."""


class ChecksumError(BlendfixError, ValueError):
    """A checkpoint file does not have the sha256 the registry records."""


class NoFaceError(BlendfixError, ValueError):
    """No face was found in an image."""


class ShownWarning(UserWarning):
    """A warning its code has already printed loudly to stderr; the CLI does not print it a second time."""
