"""`srkit batch`: upscale many files on a Ray cluster (`srkit.batch.ray_batch`), same outputs as `srkit upscale`."""

from __future__ import annotations

import os
import time
from enum import Enum
from typing import Optional

import typer

from srkit.cli.upscale import DEFAULT_MODEL, AlphaMode, Backend, DType, OutFormat

HELP = """Upscale files, folders or globs on Ray Data, for more images than one machine should do: the same output
names and layout as `srkit upscale`, one model per Ray worker.

Exactly once: outputs are written atomically; a rerun skips finished outputs and redoes the rest (a killed worker's
temp files are removed first); failed files are listed at the end and the run exits 1.

--address auto (or ray://HEAD:10001) joins a running cluster, whose nodes must all see INPUT and -o at the same paths;
without it a local Ray is started. --engine local runs `srkit upscale` instead (no Ray). Needs
`pip install 'srkit[ray]'`."""


class Engine(str, Enum):
    ray = "ray"
    local = "local"


def batch_command(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or globs.", show_default=False),
    output: str = typer.Option(..., "--output", "-o", help="Output folder (or file, for one input file)."),
    engine: Engine = typer.Option(Engine.ray, "--engine", help="ray (Ray Data) or local (srkit upscale)."),
    address: Optional[str] = typer.Option(None, "--address",
                                          help="Ray cluster: auto, ray://HEAD:10001 ... (default: a local Ray)."),
    num_workers: Optional[int] = typer.Option(None, "--num-workers", min=1,
                                              help="Ray workers, each holding one model (default: CPUs / threads)."),
    threads: int = typer.Option(1, "--threads", min=1, help="CPUs (torch threads) per Ray worker."),
    num_cpus: Optional[int] = typer.Option(None, "--num-cpus", min=1, help="CPUs of a local Ray (default: all)."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model name or weights file."),
    scale: Optional[int] = typer.Option(None, "--scale", "-s", min=1, help="Expected scale."),
    tile: str = typer.Option("auto", "--tile", help="LR tile side, 'auto' or 'none'."),
    dtype: DType = typer.Option(DType.auto, "--dtype", help="Compute dtype."),
    tta: bool = typer.Option(False, "--tta", help="8-fold flip/rotate self-ensemble (8x slower)."),
    format: Optional[OutFormat] = typer.Option(None, "--format", "-f", help="Output format (default: the input's)."),
    quality: int = typer.Option(95, "--quality", "-q", min=1, max=100, help="JPEG/WebP/HEIC/AVIF/JPEG 2000 quality."),
    overwrite: bool = typer.Option(False, "--overwrite/--skip-existing", help="Replace existing outputs, or skip."),
    backend: Backend = typer.Option(Backend.torch, "--backend", help="Inference backend."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
    alpha: AlphaMode = typer.Option(AlphaMode.bicubic, "--alpha", help="How the alpha channel is upscaled."),
    suffix: str = typer.Option("", "--suffix", help="Appended to output file names in folder mode, e.g. _x4."),
    stream: Optional[bool] = typer.Option(None, "--stream/--no-stream", show_default=False,
                                          help="Stream big outputs (default: automatic, as srkit upscale)."),
) -> None:
    from srkit.cli.jobs import plan_jobs, stderr_lines
    from srkit.cli.upscale import parse_tile, upscale_command

    if engine == Engine.local:
        upscale_command(inputs=inputs, output=output, model=model, scale=scale, tile=tile, dtype=dtype, tta=tta,
                        format=format, quality=quality, overwrite=overwrite, backend=backend, device=device,
                        alpha=alpha, suffix=suffix, stream=stream)
        return
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        typer.echo("srkit: error: srkit batch --engine ray needs Ray Data: pip install 'srkit[ray]'", err=True)
        raise typer.Exit(1) from None
    from srkit.batch.ray_batch import BatchSettings, run_ray
    from srkit.infer.api import load_upscaler

    t0 = time.perf_counter()
    tile_v = parse_tile(tile)
    fmt = format.value if format is not None else None
    if "/" in suffix or os.sep in suffix:
        raise typer.BadParameter("must not contain a path separator", param_hint="'--suffix'")
    jobs, failures, notes = plan_jobs(inputs, output, fmt, suffix, domains=True)
    _err, _interactive, say = stderr_lines()
    for n in notes:
        say(f"srkit: note: {n}")
    todo = [(j.src, j.dst) for j in jobs if overwrite or not j.dst.exists()]
    skipped = len(jobs) - len(todo)
    settings = BatchSettings(model=model, scale=scale, tile=tile_v, dtype=dtype.value, device=device,
                             backend=None if backend == Backend.torch else backend.value, tta=tta, alpha=alpha.value,
                             format=fmt, quality=quality, stream=stream, overwrite=overwrite, threads=threads)
    written = 0
    failed = list(failures)
    if todo:
        # Fail fast, with one line, on a model that cannot load, before any Ray worker starts.
        load_upscaler(model, scale=scale, tile=tile_v, dtype=dtype.value, device=device,
                      backend=settings.backend)  # type: ignore[arg-type]
        outcome = run_ray(todo, settings, address=address, num_workers=num_workers, num_cpus=num_cpus)
        written, skipped = outcome.written, skipped + outcome.skipped
        failed += outcome.failures
    for f, reason in failed:
        say(f"srkit: error: {f}: {reason}")
    note = " (existing outputs are skipped; --overwrite replaces them)" if skipped else ""
    typer.echo(f"srkit batch: {written} written, {skipped} skipped, {len(failed)} failed in "
               f"{time.perf_counter() - t0:.1f} s on Ray{note}")
    if failed:
        raise typer.Exit(1)
