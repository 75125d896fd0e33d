"""Run logging: the append-only `log.csv`, optional TensorBoard events, and the rich progress bar."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

__all__ = ["CsvLog", "ProgressBar", "tensorboard_writer"]


class CsvLog:
    """log.csv: append-only rows; the header is fixed by the first row (or by the existing file)."""

    def __init__(self, path: Path, keep_until: int | None):
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file() and keep_until is None:
            path.unlink()  # a fresh run: the old log (of a run that never checkpointed) is void
        elif path.is_file() and keep_until is not None:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or []) or None
                rows = [r for r in reader if _int(r.get("step")) <= keep_until]
            # Rows after the resumed step belong to steps that will be run again: drop them first.
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "w", newline="") as f:
                if self.fields:
                    w = csv.DictWriter(f, fieldnames=self.fields)
                    w.writeheader()
                    w.writerows(rows)
            os.replace(tmp, path)

    def write(self, row: dict) -> None:
        fields = self.fields
        new = fields is None
        if fields is None:
            fields = self.fields = list(row)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore", restval="")
            if new:
                w.writeheader()
            w.writerow(row)


def _int(v) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return -1


def tensorboard_writer(run_dir: Path, purge_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)


class ProgressBar:
    """rich progress bar on stderr: step, loss, last validation PSNR, ETA."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("PSNR {task.fields[psnr]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task = self.bar.add_task("train", total=total, completed=start, loss="-", psnr="-")
        self.bar.start()

    def update(self, step: int, loss: float | None = None, psnr: float | None = None) -> None:
        if self.bar is None:
            return
        fields: dict[str, Any] = {}  # rich's extra task fields (typed Any there)
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
        if psnr is not None:
            fields["psnr"] = f"{psnr:.2f} dB"
        self.bar.update(self.task, completed=step, **fields)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
