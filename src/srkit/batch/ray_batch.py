"""Batch upscaling on Ray Data: many machines, one `Upscaler` per worker, the same outputs as `srkit upscale`.

The driver plans the work exactly as `srkit upscale` does (`srkit.cli.upscale.plan_jobs`: the same output names and
folder layout, the same refusals), drops outputs that exist already (unless overwriting), and hands the
(input, output) pairs to Ray Data, which shards them into blocks and streams them through a pool of actors
(`UpscaleWorker`). Each actor loads the model once and runs `srkit.infer.files.upscale_file` (the one file-to-file
path) on each pair.

Exactly once:

* outputs are written atomically (temp file + rename), so no partial file ever has a final name;
* a rerun skips outputs that exist; an actor skips an output that appeared after planning (a retried task whose
  first attempt finished it);
* a killed actor's temp files (`.<name>.<hex>.tmp`) are removed before its files are redone (by Ray's task retry
  on a restarted actor, or by the next run);
* a file that fails is listed with its reason at the end, and the run exits 1.

Multi-node: every node must see the inputs and the output folder at the same paths (NFS, a cluster file system
or a mounted bucket), and have srkit installed; see README "Batch on Ray".
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BatchOutcome", "BatchSettings", "UpscaleWorker", "process_one", "run_ray"]


@dataclass(frozen=True)
class BatchSettings:
    """What every worker does to each file: `upscale_file`'s options, and the worker's torch threads."""

    model: str = "balanced-x4"
    scale: int | None = None
    tile: Any = "auto"
    dtype: str = "auto"
    device: str = "cpu"
    backend: str | None = None
    tta: bool = False
    alpha: str = "bicubic"
    format: str | None = None
    quality: int = 95
    stream: bool | None = None
    overwrite: bool = False
    threads: int = 1


@dataclass
class BatchOutcome:
    """What a batch did: counts, and (input, reason) for each failed file."""

    written: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def process_one(up: Any, src: Path, dst: Path, s: BatchSettings) -> tuple[str, str]:
    """Upscale one file as `srkit upscale` does: ("written" | "skipped" | "failed", reason)."""
    from srkit.cli.jobs import reason as _reason, remove_stale_temps
    from srkit.infer.files import upscale_file

    if not s.overwrite and dst.exists():
        return "skipped", ""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(dst)
        upscale_file(src, dst, up, format=s.format, quality=s.quality, alpha=s.alpha,  # type: ignore[arg-type]
                     tta=s.tta, stream=s.stream)
        return "written", ""
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
        return "failed", _reason(exc, src)


class UpscaleWorker:
    """A Ray Data actor: holds one Upscaler; takes batches of {"src", "dst"} rows, returns their outcomes."""

    def __init__(self, settings: dict):
        import torch

        from srkit.infer.api import load_upscaler

        self.settings = BatchSettings(**settings)
        s = self.settings
        torch.set_num_threads(max(1, s.threads))
        self.up = load_upscaler(s.model, scale=s.scale, tile=s.tile, dtype=s.dtype,  # type: ignore[arg-type]
                                device=s.device, tta=s.tta, backend=s.backend)  # type: ignore[arg-type]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list] = {"src": [], "status": [], "reason": [], "seconds": [], "host": []}
        host = os.uname().nodename
        for src, dst in zip(batch["src"], batch["dst"]):
            t0 = time.perf_counter()
            status, reason = process_one(self.up, Path(str(src)), Path(str(dst)), self.settings)
            out["src"].append(str(src))
            out["status"].append(status)
            out["reason"].append(reason)
            out["seconds"].append(time.perf_counter() - t0)
            out["host"].append(host)
        return {k: np.asarray(v) for k, v in out.items()}


def _blocks(n: int, workers: int) -> int:
    """Blocks to shard `n` files into: small enough (<= 16 files) for a balanced tail, at least 4 per worker."""
    return max(1, min(n, max(4 * workers, math.ceil(n / 16)), 20_000))


def run_ray(
    pairs: Sequence[tuple[Path, Path]],
    settings: BatchSettings,
    *,
    address: str | None = None,
    num_workers: int | None = None,
    num_cpus: int | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> BatchOutcome:
    """Upscale (src, dst) pairs on Ray Data; the caller has dropped existing outputs (or asked to overwrite).

    Args:
        address: a Ray cluster ("auto", "ray://head:10001", ...); None: reuse the Ray this process has started, or
            start a local one with `num_cpus` CPUs (default: all).
        num_workers: actors (each holds one Upscaler); default: the cluster's CPUs / `settings.threads`.
        on_result: called on the driver with each file's outcome row as it arrives.
    """
    import ray
    import ray.data

    outcome = BatchOutcome()
    t0 = time.perf_counter()
    if not pairs:
        return outcome
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if address is None:
            kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
        ray.init(address=address, **kwargs)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # srkit reports per file; Ray's bars and notes would bury that
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ctx.print_on_execution_start = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        threads = max(1, settings.threads)
        workers = num_workers or max(1, cpus // threads)
        workers = min(workers, len(pairs))
        items = [{"src": str(src), "dst": str(dst)} for src, dst in pairs]
        files = ray.data.from_items(items, override_num_blocks=_blocks(len(items), workers))
        # Ray Data's actor pools restart a killed actor and retry its unfinished blocks on it (max_restarts and
        # max_task_retries default to -1 there): with the existence check above, each output is written once.
        results = files.map_batches(
            UpscaleWorker,
            fn_constructor_kwargs={"settings": asdict(settings)},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=threads,
        )
        for row in results.iter_rows():
            status = str(row["status"])
            if status == "written":
                outcome.written += 1
            elif status == "skipped":
                outcome.skipped += 1
            else:
                outcome.failures.append((str(row["src"]), str(row["reason"])))
            if on_result is not None:
                on_result(row)
    finally:
        if started:
            ray.shutdown()
    outcome.seconds = time.perf_counter() - t0
    return outcome
