"""The private names of torch that the engine uses, in one place.

torch does not promise to keep them; ``tests/test_compat.py`` checks each, so a
release that changes one fails there first.
"""

from __future__ import annotations

import functools

# A torch LRScheduler wraps its optimizer's step() to warn when step() is
# called in the wrong order: the wrapper carries this attribute and sets this
# one on the optimizer. Neither survives pickling of the optimizer.
SCHEDULER_WRAP_MARK = "_wrapped_by_lr_sched"
OPTIMIZER_CALLED_MARK = "_opt_called"


def remark_scheduler_step(scheduler) -> None:
    """Wrap ``scheduler.optimizer.step`` again as its scheduler did when built,
    after an unpickling that dropped the wrapper (a no-op where it is there)."""
    optimizer = getattr(scheduler, "optimizer", None)
    if optimizer is None or hasattr(optimizer.step, SCHEDULER_WRAP_MARK):
        return
    step = optimizer.step

    @functools.wraps(step)
    def marked(*args, **kwargs):
        setattr(optimizer, OPTIMIZER_CALLED_MARK, True)
        return step(*args, **kwargs)

    setattr(marked, SCHEDULER_WRAP_MARK, True)
    optimizer.step = marked


__all__ = ["remark_scheduler_step"]
