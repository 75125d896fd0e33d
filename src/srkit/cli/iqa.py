"""`srkit iqa`: no-reference image quality: score images (NIQE, KLT index) and fit srkit's NIQE pristine model.

Inputs are files, folders (walked recursively like `srkit upscale`: hidden entries and non-image suffixes
skipped) or globs. Nothing here imports torch at module level, so `srkit --help` stays fast.
"""

from __future__ import annotations

import json
import os
import time
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from srkit.cli.iqa_fit import FIT_HELP as OPINION_FIT_HELP
from srkit.cli.iqa_fit import fit_command
from srkit.cli.jobs import find_images, stderr_lines
from srkit.io.uint8 import read_uint8

HELP = """No-reference image quality: score images (NIQE, KLT index) and fit srkit's NIQE model.

Scores from different NIQE models are not comparable: the output names the model used (srkit's own by default,
--params official for LIVE's, or a file).
"""

SCORE_HELP = """Score images (one line per image, then the mean): no-reference metrics, and full-reference ones
(psnr, ssim, lpips) when --ref DIR holds a reference of the same name (any image suffix) for every image.

IMAGE_OR_DIR: files, folders (recursive) or globs. Put --metrics after them (it takes several values).
Full-reference scores use the BasicSR protocol as srkit eval does (Y channel; --crop-border pixels dropped).
--params selects the NIQE model: a .npz/.mat file, or 'official' (LIVE's, found in $SRKIT_REFERENCE,
$SRKIT_DATA/../reference or ../shared/reference). A failing image prints one line; the exit code is then 1.
"""

FIT_HELP = """Fit a NIQE pristine model on high-quality images with the LIVE recipe (sharp 96x96 blocks).

HR_DIR: folders (recursive), files or globs of training images. Benchmark sets (Set5, Set14, B100, ...) are
refused: a model fitted on them would leak the test set. The model is written atomically as .npz.
"""

app = typer.Typer(name="iqa", help=HELP, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)


class Color(str, Enum):
    y = "y"
    gray = "gray"


def collect_images(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]], list[str]]:
    """Image files of INPUTs (files, folders walked recursively, globs), in order, each once.

    Returns:
        (images, failures as (input, reason), notes).
    """
    pairs, failures, notes = find_images(inputs)
    found = [f for f, _ in pairs]
    seen: set[str] = set()
    unique = []
    for f in found:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, failures, notes


def _progress(console, interactive):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not interactive)


def _reason(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if type(exc).__module__.startswith("srkit") else f"{type(exc).__name__}: {msg}"


@app.command("score", help=SCORE_HELP, epilog="Example: srkit iqa score photos/ --metrics niqe --params official "
                                                "--json scores.json")
def score_command(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or globs.", show_default=False),
    metrics: list[str] = typer.Option(["niqe"], "--metrics",
                                      help="No-reference metrics: niqe, klt (several values allowed)."),
    params: Optional[str] = typer.Option(
        None, "--params", help="NIQE model: a .npz/.mat file or 'official' [default: srkit's own]."),
    color: Color = typer.Option(Color.y, "--color", help="Plane scored: rgb2ycbcr luma (y) or rgb2gray (gray)."),
    crop_border: int = typer.Option(0, "--crop-border", min=0, help="Pixels removed from each side first."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write per-image scores and means as JSON."),
    ref: Optional[Path] = typer.Option(
        None, "--ref", help="Folder of reference images (matched by file name stem) for psnr / ssim / lpips.",
        show_default=False),
) -> None:
    from srkit.cli.eval import _write_atomic
    from srkit.errors import ConfigError
    from srkit.metrics import METRICS, load_niqe_params

    t0 = time.perf_counter()
    metrics = list(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    full_ref = [m for m in metrics if METRICS[m].needs_reference]
    if full_ref and ref is None:
        no_ref = ", ".join(m for m, i in METRICS.items() if not i.needs_reference)
        raise ConfigError(f"{', '.join(full_ref)} need(s) a reference image: give --ref DIR, or use no-reference "
                          f"metrics ({no_ref})")
    references = _reference_index(ref) if ref is not None else None
    for m in full_ref:
        check = METRICS[m].check
        if check is not None:
            check()  # e.g. LPIPS's backbone file: fail before the first image
    niqe_params = load_niqe_params(params) if "niqe" in metrics else None  # a bad file fails before any image
    kwargs: dict[str, dict[str, Any]] = {
        m: {"border": crop_border} if METRICS[m].needs_reference else {"crop_border": crop_border} for m in metrics}
    if niqe_params is not None:
        kwargs["niqe"].update(params=niqe_params, color=color.value)
    models = {"niqe": niqe_params.name} if niqe_params is not None else {}
    if "klt" in metrics:
        from srkit.metrics import load_klt_model

        models["klt"] = load_klt_model().name  # srkit's shipped model; a missing file fails before any image

    images, failures, notes = collect_images(inputs)
    err, interactive, say = stderr_lines()
    for n in notes:
        say(f"srkit: note: {n}")
    for f, reason in failures:
        say(f"srkit: error: {f}: {reason}")
    rows: list[dict] = []
    failed = [{"image": f, "error": r} for f, r in failures]
    with _progress(err, interactive) as progress:
        task = progress.add_task("iqa", total=len(images))
        for path in images:
            progress.update(task, description=f"iqa {path.name}")
            try:
                img = read_uint8(path)
                target = read_uint8(_reference_for(path, references, ref)) if full_ref else None
                row = {"image": str(path), **{m: METRICS[m].fn(img, target, **kwargs[m]) if METRICS[m].needs_reference
                                               else METRICS[m].fn(img, **kwargs[m]) for m in metrics}}
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # noqa: BLE001 - one bad file must not stop the batch
                failed.append({"image": str(path), "error": _reason(e)})
                say(f"srkit: error: {path}: {_reason(e)}")
            else:
                rows.append(row)
                typer.echo(f"{path}\t" + "\t".join(f"{m} {row[m]:.4f}" for m in metrics))
            progress.advance(task)
    means = {m: (sum(r[m] for r in rows) / len(rows)) if rows else None for m in metrics}
    model_note = "; ".join(f"{m} model: {name}" for m, name in models.items())
    if rows:
        typer.echo(f"mean of {len(rows)} image(s)\t" + "\t".join(f"{m} {means[m]:.4f}" for m in metrics)
                   + (f"\t({model_note})" if model_note else ""))
    say(f"srkit iqa score: {len(rows)} scored, {len(failed)} failed in {time.perf_counter() - t0:.1f} s")
    if json_path is not None:
        doc = {"metrics": metrics, "models": models, "color": color.value, "crop_border": crop_border,
               "reference": None if ref is None else str(ref), "images": rows, "mean": means, "failed": failed}
        _write_atomic(json_path, json.dumps(doc, indent=2) + "\n")
    if failed or not rows:
        raise typer.Exit(1)


def _reference_index(folder: Path) -> dict[str, list[Path]]:
    """File-name stem -> reference images under `folder` (recursive)."""
    from srkit.errors import ConfigError

    if not folder.is_dir():
        raise ConfigError(f"--ref {folder}: not a folder")
    files, _, _ = collect_images([str(folder)])
    index: dict[str, list[Path]] = {}
    for f in files:
        index.setdefault(f.stem, []).append(f)
    return index


def _reference_for(path: Path, index: dict[str, list[Path]] | None, folder: Path | None) -> Path:
    from srkit.errors import ConfigError

    hits = (index or {}).get(path.stem, [])
    if len(hits) != 1:
        why = "no" if not hits else f"{len(hits)}"
        raise ConfigError(f"{why} reference named {path.stem}.* in {folder}")
    return hits[0]


def _eval_set_part(path: Path) -> str | None:
    """The benchmark-set folder name in a path (given or resolved), if any."""
    from srkit.train.config import EVAL_SETS

    banned = {s.lower() for s in EVAL_SETS}
    for parts in (path.parts, Path(os.path.realpath(path)).parts):
        for part in parts:
            if part.lower() in banned:
                return part
    return None


@app.command("fit-niqe", help=FIT_HELP,
             epilog="Example: srkit iqa fit-niqe ../shared/datasets/T91/HR ../shared/datasets/BSDS200/HR "
                    "../shared/datasets/General100/HR -o src/srkit/metrics/niqe_srkit_params.npz")
def fit_niqe_command(
    inputs: list[str] = typer.Argument(..., help="Folders, files or globs of pristine images.", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Model file to write (.npz)."),
    sharpness_threshold: float = typer.Option(
        0.75, "--sharpness-threshold", min=0.0, max=1.0, help="Keep blocks sharper than this x the image's sharpest."),
    block: int = typer.Option(96, "--block", min=8, help="Block size (even; 96 as LIVE)."),
    color: Color = typer.Option(Color.y, "--color", help="Plane fitted: rgb2ycbcr luma (y) or rgb2gray (gray)."),
) -> None:
    from srkit import __version__
    from srkit.errors import ConfigError
    from srkit.metrics import fit_niqe_params, save_niqe_params
    from srkit.train.config import EVAL_SETS

    t0 = time.perf_counter()
    if output.suffix.lower() != ".npz":
        raise typer.BadParameter("the model is written as .npz", param_hint="'-o'")
    for item in inputs:
        part = _eval_set_part(Path(item))
        if part is not None:
            raise ConfigError(f"{item!r} is in benchmark set {part!r}; fitting NIQE on it would leak the test set "
                              f"(never fit on {', '.join(EVAL_SETS)})")
    images, failures, notes = collect_images(inputs)
    if failures:
        f, reason = failures[0]
        raise ConfigError(f"{f}: {reason}")
    for img in images:
        part = _eval_set_part(img)
        if part is not None:
            raise ConfigError(f"{str(img)!r} is in benchmark set {part!r}; fitting NIQE on it would leak the test "
                              "set")
    if not images:
        raise ConfigError(f"no images in {', '.join(inputs)}")
    err, interactive, say = stderr_lines()
    for n in notes:
        say(f"srkit: note: {n}")
    with _progress(err, interactive) as progress:
        task = progress.add_task("fit-niqe", total=len(images))

        def stream():
            for path in images:
                progress.update(task, description=f"fit-niqe {path.name}")
                yield read_uint8(path)
                progress.advance(task)

        fit = fit_niqe_params(stream(), sharpness_threshold=sharpness_threshold, block=block, color=color.value)
    fit["sources"] = [str(i) for i in inputs]
    fit["srkit_version"] = __version__
    save_niqe_params(output, fit)
    typer.echo(f"srkit iqa fit-niqe: {fit['images']} images ({fit['skipped']} skipped: smaller than one "
               f"{block}x{block} block or constant), {fit['blocks']} sharp blocks -> {output} in "
               f"{time.perf_counter() - t0:.1f} s")


app.command("fit", help=OPINION_FIT_HELP,
            epilog="Example: srkit iqa fit --images my_study/ --scores my_study/mos.csv -o head.npz")(fit_command)
