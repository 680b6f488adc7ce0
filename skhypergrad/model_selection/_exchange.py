"""How the splits of one candidate share what each of them computed.

The splits of a candidate train in lock-step: at every hyper-step the shared
hyperparameters follow the mean of the splits' hypergradients. The outer loop
only ever asks an :class:`Exchange` to ``gather`` one vector per split (its
status and hypergradient); every split then takes the same step.

- :class:`LocalExchange`: all the splits live in this process (``n_jobs=1``,
  or a worker running a whole candidate).
- :class:`GlooExchange`: one split per worker process; the vectors travel
  through ``torch.distributed``'s gloo backend (an ``allgather`` on the
  loopback interface). The store that lets the workers find each other lives
  in the search's own process (:class:`Rendezvous`).

Both give the same vectors in the same order, so a candidate's results do not
depend on where its splits ran.
"""

from __future__ import annotations

import datetime
import itertools

import torch

# A stuck peer (a worker killed by the system) is only waited for this long;
# joblib kills the remaining workers of a failed search well before.
TIMEOUT = datetime.timedelta(hours=6)
HOST = "127.0.0.1"


class LocalExchange:
    """Every split of the candidate is in this process: nothing to send."""

    def gather(self, vectors: dict) -> dict:
        """``{split: 1-D tensor}`` of the local splits -> of all the splits."""
        return dict(sorted(vectors.items()))

    def close(self) -> None:
        """Nothing to release."""


class GlooExchange:
    """One split in this process, the others in workers of the same search.

    Parameters
    ----------
    address : tuple of (str, int, str)
        Host and port of the search's store, and the candidate's key.
    rank : int
        The split this process trains.
    n_splits : int
    """

    def __init__(self, address, rank: int, n_splits: int):
        import torch.distributed as dist

        host, port, key = address
        store = dist.TCPStore(host, port, is_master=False, timeout=TIMEOUT)
        self.group = dist.ProcessGroupGloo(
            dist.PrefixStore(key, store), rank, n_splits, TIMEOUT
        )
        self.rank, self.n_splits = rank, n_splits

    def gather(self, vectors: dict) -> dict:
        """``{rank: vector}`` -> ``{split: vector}`` for every split."""
        (mine,) = vectors.values()
        mine = mine.to(torch.float64).contiguous()
        out = [torch.empty_like(mine) for _ in range(self.n_splits)]
        self.group.allgather([out], [mine]).wait()
        return dict(enumerate(out))

    def close(self) -> None:
        """Drop the process group (the workers are reused by joblib)."""
        self.group = None


class Rendezvous:
    """The store through which a candidate's split workers find each other.

    Lives in the search's process for one ``fit``; each candidate gets its
    own key, so that candidates running side by side never mix.
    """

    def __init__(self):
        import torch.distributed as dist

        self.store = dist.TCPStore(
            HOST, 0, is_master=True, timeout=TIMEOUT, wait_for_workers=False
        )
        self._keys = itertools.count()

    def address(self) -> tuple:
        """A fresh ``(host, port, key)`` for one candidate's splits."""
        return HOST, self.store.port, f"candidate{next(self._keys)}/"


def pack(*parts) -> torch.Tensor:
    """Numbers and tensors flattened into one float64 vector."""
    return torch.cat(
        [torch.as_tensor(p, dtype=torch.float64).detach().reshape(-1) for p in parts]
    )


__all__ = ["GlooExchange", "LocalExchange", "Rendezvous", "pack"]
