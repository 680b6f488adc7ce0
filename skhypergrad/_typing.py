"""Type aliases shared across skhypergrad."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

TensorList = Sequence[torch.Tensor]
HVP = Callable[[TensorList], list[torch.Tensor]]
LossFn = Callable[[TensorList, TensorList], torch.Tensor]

__all__ = ["HVP", "LossFn", "TensorList"]
