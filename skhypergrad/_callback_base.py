"""The base of skhypergrad's skorch callbacks, apart so that every callback
module can import it."""

from __future__ import annotations

from skorch.callbacks import Callback


class SearchCallback(Callback):
    """Base of skhypergrad's training callbacks: what the search asks of them.

    The search (``HypergradSearchCV`` and the single-fit estimators) treats
    any callback of this kind, and no other, through these two points, so
    that it names no callback or family itself:

    - it reads no validation scores, so a split net whose only callbacks are
      of this kind skips skorch's validation pass;
    - :meth:`select_rows` gives it a CV split's training rows before the split
      trains (a callback holding one value per row of ``X`` keeps the split's
      own), and :meth:`restore_rows` undoes that on a net that is handed back.
    """

    def select_rows(self, rows, n_samples: int) -> None:
        """Keep what belongs to ``rows`` of an ``X`` of ``n_samples`` rows.

        Parameters
        ----------
        rows : ndarray of int
            The split's training rows, positions in ``X``.
        n_samples : int
            Rows of ``X``.
        """

    def restore_rows(self) -> None:
        """Undo :meth:`select_rows` (values for every row of ``X`` again)."""


__all__ = ["SearchCallback"]
