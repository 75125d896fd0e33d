"""`srkit degrade`: make LR images with a degradation pipeline, with a JSON record of every parameter.

Inputs are files, folders or globs, as for `srkit upscale`; outputs go to the folder `-o OUT` as PNG (the JPEG
artefacts a pipeline made are kept losslessly), layout kept, plus `OUT/degradations.json`:
`{"preset" | "steps", "scale", "seed", "images": {"<relative path>": {"source", "seed", "steps": [...]}}}`.
Each image's generator seed comes from `--seed` and its relative path, so an image gets the same LR whatever
else is in the batch. `--sheet` draws what the pipeline does to one image: an HR crop and `--variants`
degraded versions (nearest-neighbour enlarged to the HR crop's size) with their parameters as captions.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

HELP = """Degrade images (blur, resize, noise, JPEG, ...) into LR images plus a JSON record of every parameter.

Presets: bicubic, bsrgan, realesrgan, camera; or --config FILE with {preset: ...} or {steps: [...]}.

--sheet sheet.png shows an HR crop and N degraded variants of the first image, parameters as captions.
"""


def _load_degradation(preset: Optional[str], config: Optional[Path]):
    from srkit.degrade.pipeline import Degradation, parse_degradation
    from srkit.errors import ConfigError

    if preset is not None and config is not None:
        raise typer.BadParameter("give --preset or --config, not both", param_hint="'--config'")
    if config is None:
        return Degradation(parse_degradation(preset or "realesrgan", where="--preset"))
    import yaml

    from srkit.train.config import load_yaml

    try:
        spec = load_yaml(config.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read {str(config)!r}: {' '.join(str(e).split())}") from None
    spec = spec.get("degradation", spec) if isinstance(spec, dict) else spec
    return Degradation(parse_degradation(spec, where=str(config)))


def _write_json(path: Path, obj: object) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def degrade_command(
    inputs: list[str] = typer.Argument(..., help="HR image files, folders or globs.", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (LR PNGs + degradations.json)."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="bicubic, bsrgan, realesrgan (default), camera."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with {preset: ...} or {steps: [...]}."),
    scale: int = typer.Option(4, "--scale", "-s", min=1, max=16, help="Downscaling factor."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed; each image's generator also depends on its path."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="Also write a contact sheet (PNG) of the first image."),
    variants: int = typer.Option(5, "--variants", min=1, max=32, help="Degraded variants on the sheet."),
    crop: int = typer.Option(192, "--crop", min=16, help="Side of the HR crop shown on the sheet."),
) -> None:
    from srkit.cli.jobs import plan_jobs
    from srkit.data.folders import read_rgb8
    from srkit.degrade.pipeline import degrade_image, image_seed
    from srkit.io import write_image

    t0 = time.perf_counter()
    degradation = _load_degradation(preset, config)
    jobs, failures, notes = plan_jobs(inputs, str(output) + os.sep, "png", "")
    for n in notes:
        print(f"srkit: note: {n}", file=sys.stderr)
    for f, reason in failures:
        print(f"srkit: error: {f}: {reason}", file=sys.stderr)
    output.mkdir(parents=True, exist_ok=True)
    cfg = degradation.cfg
    summary: dict[str, object] = {"preset": cfg.preset} if cfg.preset else {
        "steps": [s.model_dump() for s in cfg.resolved_steps()]}
    summary.update(scale=scale, seed=seed, images={})
    record_path = output / "degradations.json"
    if record_path.is_file():
        # A rerun into the same folder adds to its record; other settings there would mix two degradations.
        from srkit.errors import ConfigError

        try:
            before = json.loads(record_path.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read {str(record_path)!r}: {' '.join(str(e).split())}") from None
        settings = json.loads(json.dumps({k: v for k, v in summary.items() if k != "images"}))
        if {k: v for k, v in before.items() if k != "images"} != settings:
            raise ConfigError(f"{str(record_path)!r} records other settings (preset/steps, scale or seed): "
                              "use another -o folder")
        summary["images"] = before.get("images", {})
    images: dict[str, object] = summary["images"]  # type: ignore[assignment]
    failed = len(failures)
    written = 0
    first = None
    for job in jobs:
        rel = job.dst.relative_to(output).as_posix()
        try:
            hr = read_rgb8(job.src)
            s = image_seed(seed, rel)
            lr, record = degrade_image(hr, degradation, scale, s)
            job.dst.parent.mkdir(parents=True, exist_ok=True)
            write_image(job.dst, lr)
        except Exception as e:  # noqa: BLE001 - one line per failed file, the batch goes on
            failed += 1
            print(f"srkit: error: {job.src}: {' '.join(str(e).split()) or type(e).__name__}", file=sys.stderr)
            continue
        images[rel] = {"source": str(job.src), "seed": s, "steps": record}
        written += 1
        if first is None:
            first = hr
    if images:
        _write_json(record_path, summary)
    if sheet is not None and first is not None:
        from srkit.degrade.sheet import contact_sheet

        write_image(sheet, contact_sheet(first, degradation, scale, seed=seed, variants=variants, crop=crop))
    typer.echo(f"srkit degrade: {written} written, {failed} failed in {time.perf_counter() - t0:.1f} s "
               f"(records in {output / 'degradations.json'})")
    if failed:
        raise typer.Exit(1)
