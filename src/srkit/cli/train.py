"""`srkit train`: train a model from a YAML run config, or resume a run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

HELP = (
    "Train an SR model from a YAML run config (see configs/tiny-x4.yaml).\n\n"
    "Writes RUN_DIR/config.yaml, log.csv, checkpoints/last.pt, best.safetensors and final.safetensors. "
    "Ctrl-C (or SIGTERM) finishes the current step, writes the checkpoint and exits; "
    "`srkit train --resume RUN_DIR` continues exactly where it stopped. "
    "Under torchrun (--nproc-per-node N) the global data.batch_size is split over the N processes."
)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train_command(
    config: Optional[Path] = typer.Argument(
        None, help="Run config (YAML). With --resume it defaults to RUN_DIR/config.yaml.", show_default=False
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config value, e.g. --set train.steps=2000 (repeatable).", show_default=False
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: runs/<config name>)."),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue the run in this folder from checkpoints/last.pt.", show_default=False
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    from srkit.errors import ConfigError
    from srkit.train import fit, load_config

    if resume is not None:
        if out is not None and out.resolve() != resume.resolve():
            raise ConfigError("--out and --resume name different folders; --resume continues in its own folder")
        run_dir = resume
        if config is None:
            config = resume / "config.yaml"
            if not config.is_file():
                raise ConfigError(f"{str(resume)!r} has no config.yaml: is it a run folder?")
    else:
        if config is None:
            raise ConfigError("give a run config (srkit train CONFIG.yaml) or --resume RUN_DIR")
        run_dir = out if out is not None else Path("runs") / config.stem
    cfg = load_config(config, overrides)
    result = fit(cfg, run_dir, resume=resume is not None, progress=progress)
    main = _is_main_process()
    # Plain echo, not rich: these lines hold paths that must not be wrapped at the terminal width.
    if result.interrupted:
        if main:
            typer.echo(
                f"srkit train: stopped ({result.stopped_by}) after step {result.final_step}; checkpoint "
                f"{result.checkpoint}; continue with: srkit train --resume {run_dir}",
                err=True,
            )
        # Every rank exits with the same code, so torchrun sees one outcome.
        raise typer.Exit({"SIGINT": 130, "SIGTERM": 143}.get(result.stopped_by or "", 1))
    if not main:
        return
    if result.best_psnr is not None:
        typer.echo(f"best validation PSNR {result.best_psnr:.3f} dB (Y) at step {result.best_step}: "
                   f"{result.best_weights}")
    else:
        typer.echo("no validation images (data.val_count = 0)")
    typer.echo(f"{result.final_step} steps, {result.wall_seconds:.1f} s; final weights: {result.final_weights}")
