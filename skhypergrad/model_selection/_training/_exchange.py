"""How the splits of one candidate share what each of them computed.

The splits of a candidate train in lock-step: at every hyper-step the shared
hyperparameters follow the mean of the splits' hypergradients. The outer loop
only ever asks an :class:`Exchange` to ``gather`` one vector per split (its
status and hypergradient); every split then takes the same step.

- :class:`LocalExchange`: all the splits live in this process (``n_jobs=1``,
  or a worker running a whole candidate).
- :class:`GlooExchange`: one split per worker process; the vectors travel
  through ``torch.distributed``'s gloo backend (an ``allgather`` on the
  loopback interface, or over TCP between the hosts of a cluster). The store
  that lets the workers find each other lives in the search's own process
  (:class:`Rendezvous`), at an address the workers can reach: the loopback
  for workers on this machine, this host's address for a cluster's workers,
  or the ``SKHYPERGRAD_EXCHANGE_ADDR`` / ``SKHYPERGRAD_EXCHANGE_PORT`` of the
  environment (a multi-host cluster whose workers reach the client under
  another name, or through one open port).

Both give the same vectors in the same order, so a candidate's results do not
depend on where its splits ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import itertools
import os
import socket

import torch

from ...exceptions import ParallelWorkerError

# A stuck peer (a worker killed by the system) is only waited for this long;
# joblib kills the remaining workers of a failed search well before.
TIMEOUT = datetime.timedelta(hours=6)
# The splits of a candidate start together: one that cannot reach the store or
# its siblings within this time will not.
MEET_TIMEOUT = datetime.timedelta(minutes=10)
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
        self.rank, self.n_splits = rank, n_splits
        try:
            store = dist.TCPStore(host, port, is_master=False, timeout=MEET_TIMEOUT)
        except (RuntimeError, ConnectionError) as exc:
            raise ParallelWorkerError(
                f"Split {rank} of a candidate could not reach the search's exchange "
                f"store at {host}:{port} ({type(exc).__name__}: {exc}). Its worker "
                "must reach the client's process there: on a cluster whose workers "
                "know the client under another address, set SKHYPERGRAD_EXCHANGE_ADDR "
                "(and SKHYPERGRAD_EXCHANGE_PORT to a port they can reach) in the "
                "client's environment, or use n_jobs=1."
            ) from exc
        with self._lost("meeting"):
            self.group = dist.ProcessGroupGloo(
                dist.PrefixStore(key, store), rank, n_splits, TIMEOUT
            )

    def gather(self, vectors: dict) -> dict:
        """``{rank: vector}`` -> ``{split: vector}`` for every split."""
        (mine,) = vectors.values()
        mine = mine.to(torch.float64).contiguous()
        out = [torch.empty_like(mine) for _ in range(self.n_splits)]
        with self._lost("exchanging hypergradients with"):
            self.group.allgather([out], [mine]).wait()
        return dict(enumerate(out))

    @contextlib.contextmanager
    def _lost(self, doing):
        """A failed connection: another split's worker died, or the search
        ended (its store closed); say which split saw it."""
        try:
            yield
        except (RuntimeError, ConnectionError) as exc:
            raise ParallelWorkerError(
                f"Split {self.rank} of a candidate lost contact while {doing} the "
                f"other {self.n_splits - 1} split(s), each in a worker of its own "
                f"({type(exc).__name__}: {exc}). A parallel worker was lost: the "
                "worker running another split died or was stopped, or the search "
                "ended. Nothing was fitted. Re-run fit (the same random_state gives "
                "the same result), or use n_jobs=1."
            ) from exc

    def close(self) -> None:
        """Drop the process group (the workers are reused by joblib)."""
        self.group = None


class Rendezvous:
    """The store through which a candidate's split workers find each other.

    Lives in the search's process for one ``fit``; each candidate gets its
    own key, so that candidates running side by side never mix.

    Parameters
    ----------
    local : bool, default=True
        Whether every worker runs on this machine (the loopback is used);
        otherwise this host's address, as the workers must reach it.
        ``SKHYPERGRAD_EXCHANGE_ADDR`` and ``SKHYPERGRAD_EXCHANGE_PORT`` in
        the environment override the host and the port (0: a free one).
    """

    def __init__(self, local: bool = True):
        import torch.distributed as dist

        self.host = os.environ.get("SKHYPERGRAD_EXCHANGE_ADDR") or (
            HOST if local else _this_host()
        )
        port = os.environ.get("SKHYPERGRAD_EXCHANGE_PORT", "0")
        try:
            self.store = dist.TCPStore(
                self.host,
                int(port),
                is_master=True,
                timeout=MEET_TIMEOUT,
                wait_for_workers=False,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ParallelWorkerError(
                f"The search could not open its exchange store at {self.host}:{port} "
                f"({type(exc).__name__}: {exc}), through which the splits of a "
                "candidate in workers of their own meet. Set SKHYPERGRAD_EXCHANGE_ADDR "
                "to an address of this machine and SKHYPERGRAD_EXCHANGE_PORT to a free "
                "port (0: any), or use n_jobs=1."
            ) from exc
        self._keys = itertools.count()

    def address(self) -> tuple:
        """A fresh ``(host, port, key)`` for one candidate's splits."""
        return self.host, self.store.port, f"candidate{next(self._keys)}/"

    def close(self) -> None:
        """Stop the store: a split still waiting on it (its sibling failed)
        gets a connection error at once instead of waiting for the timeout."""
        self.store = None


def _this_host() -> str:
    """This machine's address as other hosts reach it."""
    address = socket.gethostbyname(socket.gethostname())
    if not address.startswith("127."):
        return address
    # Debian and Ubuntu map the host name to 127.0.1.1: take the address of
    # the interface that routes outward instead (a UDP connect sends nothing).
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1, never reached
            return probe.getsockname()[0]
    except OSError:
        return address


def pack(*parts) -> torch.Tensor:
    """Numbers and tensors flattened into one float64 vector."""
    return torch.cat(
        [torch.as_tensor(p, dtype=torch.float64).detach().reshape(-1) for p in parts]
    )


def gather_values(exchange, values: dict) -> dict:
    """Every split's value of a message, from the local splits' values.

    Parameters
    ----------
    exchange : LocalExchange or GlooExchange
    values : dict
        ``{split: message}`` of the splits in this process. A message is a
        dataclass whose fields hold a number or a tuple of 1-D tensors; every
        split's message has the same tensor sizes.

    Returns
    -------
    values : dict
        ``{split: message}`` of every split of the candidate, in split order,
        the numbers as floats and the tensors as float64. The flattening into
        one vector per split is this function's alone.
    """
    like = next(iter(values.values()))
    layout = {
        f.name: None
        if not isinstance(getattr(like, f.name), tuple)
        else [t.numel() for t in getattr(like, f.name)]
        for f in dataclasses.fields(like)
    }
    vectors = {
        i: pack(
            *[
                part
                for name, sizes in layout.items()
                for part in ([getattr(v, name)] if sizes is None else getattr(v, name))
            ],
            torch.zeros(0, dtype=torch.float64),
        )
        for i, v in values.items()
    }
    flat = [n for sizes in layout.values() for n in ([1] if sizes is None else sizes)]
    out = {}
    for i, vector in exchange.gather(vectors).items():
        pieces = iter(vector.split(flat))
        fields = {
            name: float(next(pieces))
            if sizes is None
            else tuple(next(pieces) for _ in sizes)
            for name, sizes in layout.items()
        }
        out[i] = type(like)(**fields)
    return out


__all__ = ["GlooExchange", "LocalExchange", "Rendezvous", "gather_values"]
