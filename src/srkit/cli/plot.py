"""`srkit plot`: training curves (loss and validation PSNR) of a run folder as a PNG."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Optional

import typer

HELP = ("Plot the training loss, the D/G losses of GAN runs and the validation PSNR of a run (from RUN_DIR/log.csv) "
        "into a PNG.")

# log.csv columns that are not loss terms.
_NOT_TERMS = ("step", "loss", "lr", "val_psnr", "val_ssim", "seconds")
# Columns of GAN runs (srkit.train.gan) drawn in their own panel: D's two loss parts and G's adversarial term.
_GAN_TERMS = ("d_real", "d_fake", "g_adv")


def _num(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_log(run_dir: Path) -> tuple[list[str], list[dict[str, float]]]:
    """(column names, rows as floats; NaN where empty) of `run_dir/log.csv`.

    Raises:
        SrkitError: no log, or a log without rows.
    """
    from srkit.errors import SrkitError

    path = run_dir / "log.csv"
    if not path.is_file():
        raise SrkitError(f"{str(run_dir)!r} has no log.csv: not a training run folder (or nothing logged yet)")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = [{k: _num(v) for k, v in r.items() if k is not None} for r in reader]
            fields = list(reader.fieldnames or [])
    except (OSError, csv.Error, UnicodeDecodeError) as e:
        raise SrkitError(f"cannot read {str(path)!r}: {e}") from None
    if "step" not in fields or not rows:
        raise SrkitError(f"{str(path)!r} has no logged steps yet")
    return fields, rows


def plot_command(
    run_dir: Path = typer.Argument(..., help="Run folder (holds log.csv)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="PNG to write (default: RUN_DIR/curves.png)."),
) -> None:
    from srkit.errors import SrkitError

    fields, rows = read_log(run_dir)
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        raise SrkitError("srkit plot needs matplotlib (pip install matplotlib)") from None
    output = output if output is not None else run_dir / "curves.png"
    steps = [r["step"] for r in rows]
    terms = [f for f in fields if f not in _NOT_TERMS and f not in _GAN_TERMS]
    gan = [f for f in _GAN_TERMS if f in fields]
    if gan:
        fig, (ax_loss, ax_gan, ax_psnr) = plt.subplots(3, 1, sharex=True, figsize=(8, 9))
        for t in gan:
            ax_gan.plot(steps, [r.get(t, math.nan) for r in rows], label=t, linewidth=1.0)
        d_total = [r.get("d_real", math.nan) + r.get("d_fake", math.nan) for r in rows]
        ax_gan.plot(steps, d_total, label="D total", color="black", linewidth=0.8, linestyle="--")
        ax_gan.set_ylabel("GAN losses (D / G)")
        ax_gan.legend(loc="upper right", fontsize="small")
        ax_gan.grid(True, alpha=0.3)
    else:
        fig, (ax_loss, ax_psnr) = plt.subplots(2, 1, sharex=True, figsize=(8, 6.5))
    ax_loss.plot(steps, [r.get("loss", math.nan) for r in rows], label="loss (total)", color="black")
    if len(terms) > 1:
        for t in terms:
            ax_loss.plot(steps, [r.get(t, math.nan) for r in rows], label=t, linewidth=0.8, linestyle="--")
    losses = [r.get("loss", math.nan) for r in rows]
    if all(v > 0 for v in losses if not math.isnan(v)):
        ax_loss.set_yscale("log")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(loc="upper right", fontsize="small")
    ax_loss.grid(True, alpha=0.3)
    val = [(r["step"], r["val_psnr"]) for r in rows if not math.isnan(r.get("val_psnr", math.nan))]
    if val:
        xs, ys = zip(*val)
        ax_psnr.plot(xs, ys, marker="o", markersize=3, color="tab:blue")
        best = max(val, key=lambda v: v[1])
        ax_psnr.annotate(f"best {best[1]:.2f} dB @ {int(best[0])}", best, textcoords="offset points",
                         xytext=(-10, -14), ha="right", fontsize="small")
        ax_psnr.scatter([best[0]], [best[1]], color="tab:red", zorder=3)
    else:
        ax_psnr.text(0.5, 0.5, "no validation yet", ha="center", va="center", transform=ax_psnr.transAxes)
    ax_psnr.set_ylabel("validation PSNR (dB, Y)")
    ax_psnr.set_xlabel("step")
    ax_psnr.grid(True, alpha=0.3)
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=120, format=(output.suffix.lstrip(".") or "png").lower())
        os.replace(tmp, output)
    except (OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise SrkitError(f"cannot write {str(output)!r}: {e}") from None
    finally:
        plt.close(fig)
    typer.echo(str(output))
