"""`srkit eval`: PSNR/SSIM of a model on benchmark sets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional, get_args

import typer

if TYPE_CHECKING:  # not imported at run time: `srkit --help` does not load torch
    from srkit.infer.network import DtypePolicy

HELP = """Score a model on benchmark sets (PSNR/SSIM on Y, border = scale, MATLAB bicubic LR).

--metrics psnr ssim niqe adds columns (space-separated; no-reference metrics such as niqe and klt score the SR
output alone, border = scale).

Sets are found as DATA/<Set>/HR/*.png, so Set5, Set14, B100, Urban100, Manga109 or DIV2K-valid all work.

--degradation realesrgan scores on degraded LR instead (seeded per image by --degradation-seed, cached under
$SRKIT_CACHE/degraded, identical for every model); --paired DIR scores real pairs DIR/LR + DIR/HR (any scale).

--video CLIP scores temporal consistency instead: the warping error (mean |frame - previous frame warped by the
input's optical flow|, on [0, 1]; lower is steadier) of the upscaled clip beside the input's (needs
`pip install 'srkit[video]'`; the scale is the model's, or --scales S for a resizer).
"""


def _data_dir(data: Optional[Path]) -> Path:
    """--data, else $SRKIT_DATA, else the first `../shared/datasets` found next to the working folder or the
    checkout (the layout the tests and benchmarks use)."""
    from srkit.errors import DatasetError

    if data is not None:
        return data
    env = os.environ.get("SRKIT_DATA")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[3]
    for candidate in (Path.cwd().parent / "shared" / "datasets", checkout.parent / "shared" / "datasets"):
        if candidate.is_dir():
            return candidate
    raise DatasetError("no data folder: pass --data DIR or set SRKIT_DATA (../shared/datasets was not found either)")


def _default_scales(model: str) -> list[int]:
    """The model's own scale; 2, 3 and 4 for classical upsamplers (they take any scale)."""
    from srkit.models import CLASSICAL_KERNELS, load_model

    if model.partition("-x")[0] in CLASSICAL_KERNELS and "-x" not in model:
        return [2, 3, 4]
    return [load_model(model).info.scale]


def _write_atomic(path: Path, text: str) -> None:
    from srkit.errors import SrkitError

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SrkitError(f"cannot write {str(path)!r}: {e.strerror or e}") from None


def _dtype_policy(value: str) -> DtypePolicy:
    """`--dtype` as a policy name; ConfigError (the message `Upscaler` gives) when it is none."""
    from srkit.errors import ConfigError
    from srkit.infer import network

    policies = get_args(network.DtypePolicy)
    for policy in policies:
        if value == policy:
            return policy
    raise ConfigError(f"unknown dtype {value!r}; choose {', '.join(policies)}")


def eval_command(
    model: str = typer.Option("bicubic", "--model", "-m", help="Model name (bicubic, lanczos, ...) or weights file."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder of benchmark sets [default: $SRKIT_DATA]."),
    sets: list[str] = typer.Option(["Set5", "Set14", "B100"], "--sets", help="Sets to run (several values allowed)."),
    scales: Optional[list[int]] = typer.Option(
        None, "--scales", help="Scale factors (several values allowed) [default: the model's own scale; 2 3 4 for "
        "classical upsamplers].", show_default=False),
    lr_from_disk: bool = typer.Option(False, "--lr-from-disk", help="Read LR_bicubic/X<s>/ instead of making LR."),
    rgb: bool = typer.Option(False, "--rgb", help="Score RGB instead of the Y channel."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32, bf16, fp16 or auto."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write summary and per-image rows as JSON."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write per-image rows as CSV."),
    degradation: Optional[str] = typer.Option(
        None, "--degradation", help="Make LR with this degradation preset (bicubic, bsrgan, realesrgan, camera)."),
    degradation_seed: int = typer.Option(0, "--degradation-seed", min=0, help="Seed of --degradation."),
    paired: Optional[Path] = typer.Option(None, "--paired", help="Score real pairs in DIR/LR and DIR/HR instead."),
    metrics: list[str] = typer.Option(
        ["psnr", "ssim"], "--metrics", help="Metrics to compute: psnr ssim niqe klt lpips (several values allowed)."),
    lpips_net: str = typer.Option("alex", "--lpips-net", help="LPIPS backbone: alex or vgg."),
    lpips_backbone: Optional[Path] = typer.Option(
        None, "--lpips-backbone", help="LPIPS ImageNet backbone file (torchvision's alexnet-owt-7be5be79.pth / "
        "vgg16-397923af.pth) [default: torch.hub's checkpoints folder]; never downloaded.", show_default=False),
    video: Optional[Path] = typer.Option(
        None, "--video", help="Score the temporal consistency (warping error) of this clip upscaled, beside the "
        "input's.", show_default=False),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=2, help="--video: score the first N frames."),
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from srkit.data.benchmark import find_set
    from srkit.errors import ConfigError
    from srkit.evaluate import _check_metrics, evaluate

    if video is not None:
        _eval_video(video, model, scales or [], device, _dtype_policy(dtype), max_frames)
        return
    metrics = list(dict.fromkeys(metrics))  # a name given twice is one column
    lpips_given = lpips_net != "alex" or lpips_backbone is not None
    if lpips_given and "lpips" not in metrics:
        raise ConfigError("--lpips-net / --lpips-backbone apply to --metrics lpips, which is not asked for")
    options = {"lpips": {"net": lpips_net, "backbone": lpips_backbone}} if "lpips" in metrics else {}
    _check_metrics(metrics, options)
    if not scales:
        scales = _default_scales(model)
    bad = [s for s in scales if s < 1]
    if bad:
        raise ConfigError(f"scales must be positive integers, got {bad}")
    if degradation is not None and lr_from_disk:
        raise ConfigError("--degradation and --lr-from-disk exclude each other")
    if paired is not None and (degradation is not None or lr_from_disk):
        raise ConfigError("--paired scores the stored LR images: drop --degradation / --lr-from-disk")
    dtype_policy = _dtype_policy(dtype)  # a typo fails before any image is read
    if degradation is not None:
        from srkit.degrade.pipeline import parse_degradation

        parse_degradation(degradation, where="--degradation")  # a typo fails before any image is read
    if paired is not None:
        from srkit.evaluate import paired_images

        root, total = paired, len(paired_images(paired))
    else:
        root = _data_dir(data)
        total = sum(len(find_set(root, s).hr_paths()) for s in sets) * len(scales)
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as progress:
        task = progress.add_task(f"eval {model}", total=total)

        def tick(row) -> None:
            progress.update(task, advance=1, description=f"{row.set} x{row.scale} {row.image}")

        if paired is not None:
            from srkit.evaluate import evaluate_paired

            report = evaluate_paired(model, paired, metrics=metrics, metric_options=options, y_channel=not rgb,
                                     device=device, dtype=dtype_policy, on_image=tick)
        else:
            report = evaluate(
                model, root, sets, scales, metrics=metrics, metric_options=options, lr_from_disk=lr_from_disk,
                y_channel=not rgb,
                device=device, dtype=dtype_policy, on_image=tick, degradation=degradation,
                degradation_seed=degradation_seed,
            )
    table = Table(title=f"{report.model} — {'RGB' if rgb else 'Y'}, border = scale, LR: {report.lr_source}")
    labels = {"psnr": "PSNR (dB)", "ssim": "SSIM"}
    for col in ("set", "scale", *(labels.get(m, m.upper()) for m in metrics), "images", "ms / image"):
        table.add_column(col, justify="right" if col != "set" else "left")
    for r in report.summary:
        table.add_row(r.set, f"x{r.scale}", *(f"{r.scores[m]:.4f}" for m in metrics), str(r.images),
                      f"{1000 * r.seconds_per_image:.1f}")
    Console().print(table)
    if json_path is not None:
        _write_atomic(json_path, json.dumps(report.as_dict(), indent=2) + "\n")
    if csv_path is not None:
        import csv
        import io

        buf = io.StringIO()
        rows = [r.as_dict() for r in report.images]
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["set", "scale", "image"])
        writer.writeheader()
        writer.writerows(rows)
        _write_atomic(csv_path, buf.getvalue())


def _eval_video(clip: Path, model: str, scales: list[int], device: str, dtype: DtypePolicy,
                max_frames: int | None) -> None:
    """`srkit eval --video`: the warping errors of the upscaled clip and of the input, one line each."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from srkit.domains.video import evaluate_clip, import_av
    from srkit.errors import ImageReadError
    from srkit.infer.api import load_upscaler

    import_av()  # the missing extra is named before the model loads
    if not clip.is_file():
        raise ImageReadError(f"cannot read '{clip}': no such file")
    up = load_upscaler(model, scale=scales[0] if len(scales) == 1 else None, device=device, dtype=dtype)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"eval {clip.name}", total=None)
        scores = evaluate_clip(clip, up, up.request(), max_frames=max_frames,
                               progress=lambda done, total: progress.update(task, completed=done, total=total))
    name = up.model.info.name
    typer.echo(f"{clip.name}: {scores.frames} frames, x{up.scale} with {name}; warping error (mean |frame - warped "
               "previous frame| on [0, 1], lower is steadier):")
    typer.echo(f"  output: {scores.output:.5f}")
    typer.echo(f"  input:  {scores.input:.5f}")
