"""Checkpoint on notice: turn SIGTERM into "finish this epoch, checkpoint, exit 143".

Kubernetes sends SIGTERM to a pod's containers when its node is drained (a spot interruption
warning handled by the termination handler, a scale-down, an upgrade) and SIGKILL once the pod's
``terminationGracePeriodSeconds`` have passed. Training listens for SIGTERM through
:class:`StopSignal`: the handler only sets a flag, the training loop checks it at its safe point
(after the current epoch's update, never inside it), writes a checkpoint at once, and raises
:class:`TrainingInterrupted`. The entry points turn that into exit status 143 (128 + SIGTERM), the
status a process killed by SIGTERM reports, so orchestrators count the attempt as failed and retry
it; the retry resumes from the checkpoint.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Final

EXIT_ON_SIGTERM: Final = 128 + signal.SIGTERM
"""Exit status after a SIGTERM-triggered checkpoint: 143, as for a process killed by SIGTERM."""
CHECKPOINT_GRACE_SECONDS: Final = 90
"""``terminationGracePeriodSeconds`` of GPU training pods: time from SIGTERM to SIGKILL to finish
the epoch and write the checkpoint. Under the two minutes an EC2 spot warning gives (the EKS
handler drains at once); an Azure Preempt notice gives at least 30 s, so there a checkpoint is
only safe when an epoch plus the write fits in what is left of it."""


class TrainingInterrupted(Exception):  # noqa: N818 - it is a stop, not a failure of the code
    """Training stopped on notice after writing a checkpoint.

    Attributes:
        epoch: The last completed epoch, saved in the checkpoint.
        checkpointed: Whether a checkpoint was written (False when training had no store).
    """

    def __init__(self, epoch: int, checkpointed: bool) -> None:
        where = "checkpoint written" if checkpointed else "no checkpoint store"
        super().__init__(f"stopped on SIGTERM after epoch {epoch} ({where})")
        self.epoch = epoch
        self.checkpointed = checkpointed


class StopSignal:
    """A flag set by a signal handler (or by hand) and polled by the training loop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_number: int | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop was requested."""
        return self._event.is_set()

    def request(self, signal_number: int | None = None) -> None:
        """Ask the training loop to stop at its next safe point."""
        self.signal_number = signal_number
        self._event.set()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on a stop request; True if one was requested."""
        deadline = time.monotonic() + seconds
        # Short slices: a signal handler runs between them, so a stop is seen within ~50 ms.
        while not self._event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._event.wait(min(left, 0.05))
        return self._event.is_set()


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[StopSignal]:
    """Install a SIGTERM handler that requests a stop; restore the previous handler on exit.

    Signal handlers can only be installed from the main thread; elsewhere the returned flag is
    never set by a signal (it still works when set by hand).
    """
    stop = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.request(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)
