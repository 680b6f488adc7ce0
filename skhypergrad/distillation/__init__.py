"""Dataset distillation: a resampler that learns a few synthetic training rows
per class for a skorch net (not a search: it sits outside ``model_selection``)."""

from ._distill import DatasetDistiller

__all__ = ["DatasetDistiller"]
