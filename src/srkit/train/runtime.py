"""The process around a training run: Ctrl-C / SIGTERM handling, DDP process-group set-up, loader-worker signals.

Kept apart from the training loop (`srkit.train.loop`) so the loop reads as the steps of training.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch

__all__ = ["Dist", "StopRequest", "init_distributed", "worker_ignore_signals"]


def worker_ignore_signals(_worker_id: int) -> None:
    # Ctrl-C reaches the whole process group: workers must outlive it so the main process can finish its step
    # and write the checkpoint; the loader shuts them down afterwards.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(use_cuda: bool) -> Dist:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo")
        here = True
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, here)


# What signal.signal accepts and signal.getsignal returns.
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopRequest:
    """SIGINT/SIGTERM -> finish the current step, checkpoint, return.

    A second SIGINT more than a second after the first stops at once (KeyboardInterrupt): a user who insists.
    Closer repeats are ignored, because one Ctrl-C often arrives twice - from the terminal to the whole process
    group and again forwarded by torchrun.
    """

    def __init__(self):
        self.reason: str | None = None
        self._first: float | None = None
        self._old: dict[int, _Handler] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread; a caller's thread keeps its own
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        now = time.monotonic()
        if self.reason is None:
            self.reason, self._first = signal.Signals(signum).name, now
        elif signum == signal.SIGINT and self._first is not None and now - self._first > 1.0:
            raise KeyboardInterrupt

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()
