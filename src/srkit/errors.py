"""Exceptions that srkit raises on bad input. Users catch these; everything else is a bug."""

from __future__ import annotations


class SrkitError(Exception):
    """Base class of every error srkit raises on purpose."""


class ImageReadError(SrkitError):
    """An image file could not be read (missing, truncated, unsupported, too large, ...)."""


class ImageWriteError(SrkitError):
    """An image could not be written (bad path, unsupported format/depth combination, ...)."""


class ImageTooLargeError(ImageReadError):
    """The image header claims more pixels than the configured cap allows."""


class ShapeError(SrkitError, ValueError):
    """An array or tensor has a shape, dtype or range the function does not accept."""


class ModelLoadError(SrkitError):
    """A model name or weights file could not be resolved to a model."""


class ConfigError(SrkitError):
    """A configuration value or option is invalid."""


class DatasetError(SrkitError):
    """A dataset folder is missing or not laid out as expected."""


class TrainingError(SrkitError):
    """Training cannot go on (the loss became NaN or infinite)."""


class DownloadError(SrkitError):
    """A download failed: unreachable, an HTTP error, a timeout, or a checksum that does not match."""
