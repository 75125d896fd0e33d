"""`srkit upscale`: upscale image files and folders with one shared model.

Policies:

* INPUT is a file, a folder (walked recursively) or a glob (expanded here when the shell did not, `**` included).
  Folders and globs give image files (by suffix) and every file srkit routes by content (videos, DICOM, NIfTI,
  GeoTIFF: `srkit.cli.jobs`); a DICOM series folder inside is one input; hidden files and folders, and anything
  else (text, JSON, ...), are skipped.
* `-o OUT` is the output file for a single input file when OUT has a suffix and is not a folder; otherwise it is
  a folder (created if needed). A folder's images keep their path relative to that folder, a glob's matches their
  path relative to the glob's fixed leading folders; single files go to the top of OUT. Output names: the
  input's stem + `--suffix` + `.<--format>` (default: the input's suffix; the read-only GIF, PSD, PNM, QOI and
  JPEG XL become PNG, or TIFF when 16-bit or float: `srkit.io.output_suffix`). Put outputs in their
  own folder: a folder that is both input and output is read again on the next run.
* Existing outputs are skipped by default (`--skip-existing`), so rerunning a killed or failed batch finishes
  exactly what is missing; `--overwrite` replaces them. Writes are atomic (temp file + rename), so no partial file
  ever exists under a final name; stale temp files (`.<name>.<hex>.tmp`) of an output about to be written are
  removed first.
* An output path that is one of the inputs is refused, as are two inputs mapping to the same output.
* The model is loaded once, when there is something to write, and one Upscaler serves every file.
* A failing file does not stop the batch: it prints one line `srkit: error: <file>: <reason>` on stderr. The run
  ends with a summary line (written, skipped, failed, wall time) and exits 1 if any file failed.
* Animated and multi-page images (APNG, animated WebP/GIF, multi-page TIFF) are refused: extract the frames first.
* Alpha is kept (JPEG/BMP output of an image with alpha fails: use PNG, WebP or TIFF); gray stays gray; 16-bit
  stays 16-bit where the format stores it; ICC profile and EXIF are copied, DPI is multiplied by the scale.
* Big outputs are streamed in bounded memory (`--stream/--no-stream`, automatic by default; the rule is
  `srkit.infer.api.upscale_file`'s): same pixels and metadata as the whole-image path.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from enum import Enum
from typing import TYPE_CHECKING, Optional

import typer

from srkit.cli.jobs import Job, plan_jobs, reason, remove_stale_temps, stderr_lines

if TYPE_CHECKING:  # not imported at run time: `srkit --help` does not load torch
    from srkit.infer.engine import TileSetting

# Same as srkit.infer.api.DEFAULT_MODEL, not imported from there so that `srkit --help` does not load torch.
DEFAULT_MODEL = "balanced-x4"

HELP = """Upscale images: files, folders (recursive, layout kept under OUT) or globs.

Existing outputs are skipped, so a rerun finishes a killed batch; --overwrite replaces them.

ICC, EXIF, alpha, gray and 16-bit survive; DPI is scaled so the printed size stays the same.

Animated and multi-page images are refused: extract the frames first.

A failed file prints one line on stderr; the run ends with a summary and exits 1 if any file failed.

Memory: big outputs are streamed (--stream): built strip by strip, never whole in memory, with the same pixels
and metadata. By default a file is streamed when the whole-image path would need more than half the available
memory (MemAvailable) or 1 GiB, estimated as 4.5 float32 copies of the output. TIFF is written tiled; PNG and
JPEG go through a temporary uncompressed TIFF next to the output (needs that much disk) and libvips (pyvips).
WebP, BMP, HEIC, AVIF and JPEG 2000 cannot be streamed (WebP is also limited to 16383 px a side, HEIC and AVIF to
16384): write TIFF or PNG.

Formats: reads PNG, JPEG, WebP, BMP, TIFF, GIF, HEIC/HEIF, AVIF, JPEG 2000, JPEG XL, QOI, PSD and PNM (HEIC and
JPEG XL need `pip install 'srkit[formats]'`); writes the input's format, or --format. GIF, PSD, PNM, QOI and JPEG XL
inputs are written as PNG (TIFF when 16-bit or float).

Video (MP4, MKV, MOV, WebM, AVI, MPEG-TS; `pip install 'srkit[video]'`): frames are upscaled in batches and encoded
with --video-codec (h264, h265, or lossless ffv1) at --crf; audio and subtitle streams are copied untouched;
timestamps, rotation and colour tags are kept; the output keeps the input's container suffix. A killed run resumes
at its last finished segment (kept in a hidden folder next to the output).

Remote sensing and medical images (`pip install 'srkit[geo]'`, `'srkit[medical]'`), recognised by content:
GeoTIFF/COG (-> .tif: CRS kept, pixel size / scale, nodata kept; --bands, --cog), DICOM files (-> .dcm) and series
folders (one input -> a folder of files; spacing, UIDs, slope/intercept kept true), NIfTI volumes (same suffix;
affine and scaling kept; --through-plane). Physical values keep their range (--value-range LOW HIGH to choose it).
Without its extra, such a file is refused with one line naming the extra.
"""


class DType(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class OutFormat(str, Enum):
    png = "png"
    jpg = "jpg"
    webp = "webp"
    tif = "tif"
    bmp = "bmp"
    heic = "heic"
    avif = "avif"
    jp2 = "jp2"


class VideoCodec(str, Enum):
    h264 = "h264"
    h265 = "h265"
    ffv1 = "ffv1"


class Backend(str, Enum):
    torch = "torch"
    onnxruntime = "onnxruntime"


class AlphaMode(str, Enum):
    bicubic = "bicubic"
    model = "model"


def parse_tile(value: str) -> TileSetting:
    """`--tile`: "auto", "none"/"0" (whole image) or an LR tile side >= 8."""
    v = str(value).strip().lower()
    if v == "auto":
        return "auto"
    if v in ("none", "0"):
        return None
    try:
        side = int(v)
    except ValueError:
        raise typer.BadParameter(f"expected 'auto', 'none' or an integer >= 8, got {value!r}") from None
    if side < 8:
        raise typer.BadParameter(f"tile side must be >= 8 (or 'auto' / 'none'), got {side}")
    return side


def upscale_command(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or globs.", show_default=False),
    output: str = typer.Option(..., "--output", "-o", help="Output file (one input file) or folder."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model name or weights file."),
    scale: Optional[int] = typer.Option(
        None, "--scale", "-s", min=1, help="Expected scale (checked against the model; picks bicubic & co's)."
    ),
    tile: str = typer.Option("auto", "--tile", help="LR tile side, 'auto' (from free memory) or 'none'."),
    dtype: DType = typer.Option(DType.auto, "--dtype", help="Compute dtype."),
    tta: bool = typer.Option(False, "--tta", help="8-fold flip/rotate self-ensemble (8x slower)."),
    format: Optional[OutFormat] = typer.Option(None, "--format", "-f", help="Output format (default: the input's)."),
    quality: int = typer.Option(
        95, "--quality", "-q", min=1, max=100,
        help="JPEG/WebP/HEIC/AVIF/JPEG 2000 quality (100 = lossless WebP, HEIC and JPEG 2000)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite/--skip-existing", help="Replace existing outputs, or skip them (default)."
    ),
    backend: Backend = typer.Option(Backend.torch, "--backend", help="Inference backend."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    alpha: AlphaMode = typer.Option(AlphaMode.bicubic, "--alpha", help="How the alpha channel is upscaled."),
    suffix: str = typer.Option("", "--suffix", help="Appended to output file names in folder mode, e.g. _x4."),
    stream: Optional[bool] = typer.Option(
        None, "--stream/--no-stream", show_default=False,
        help="Build outputs strip by strip in bounded memory, or whole in memory. Default: stream when the "
             "whole-image path would need > min(1/2 of available memory, 1 GiB).",
    ),
    video_codec: VideoCodec = typer.Option(
        VideoCodec.h264, "--video-codec", help="Video encoder (ffv1: lossless; needs .mkv, .mov or .avi)."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="H.264/H.265 constant rate factor (lower: better)."),
    bands: Optional[list[int]] = typer.Option(
        None, "--bands", show_default=False, metavar="BAND...",
        help="GeoTIFF: the bands to upscale (1-based), in output order; several values: --bands 4 3 2 feeds an RGB "
             "model. Default: every band (one at a time through a Y/1-channel model)."),
    value_range: Optional[tuple[float, float]] = typer.Option(
        None, "--value-range", show_default=False, metavar="LOW HIGH",
        help="GeoTIFF/DICOM/NIfTI: LOW HIGH, the physical values (e.g. Hounsfield units) mapped to [0, 1] for the "
             "model; values outside are clipped. Default: the data's own range (recorded in the output)."),
    cog: bool = typer.Option(False, "--cog", help="GeoTIFF: write a Cloud-Optimized GeoTIFF with overviews."),
    through_plane: bool = typer.Option(False, "--through-plane", help="NIfTI: also upscale across slices."),
    strength: Optional[float] = typer.Option(
        None, "--strength", show_default=False,
        help="How much a conditioned model (real-x4-ctrl) cleans: 0 (keep every grain) .. 1 (noise sigma 50, "
             "JPEG quality 10). Default: estimated from each image."),
    noise: Optional[float] = typer.Option(
        None, "--noise", show_default=False,
        help="The input's noise sigma (0-255 scale, >= 0) for a conditioned model, instead of --strength."),
    jpeg: Optional[float] = typer.Option(
        None, "--jpeg", show_default=False,
        help="The input's JPEG quality (1..100, 100 = none) for a conditioned model, instead of --strength."),
    outscale: Optional[float] = typer.Option(
        None, "--outscale", show_default=False, min=0.01,
        help="Any output scale, e.g. 2 or 3 with an x4 model, or 8 (two passes): the model, then MATLAB bicubic "
             "to the exact size (--scale still checks the model's own scale)."),
    denoise: Optional[float] = typer.Option(
        None, "--denoise", show_default=False,
        help="Denoising 0..1 for models that ship as a pair (Real-ESRGAN general / wdn): their weights "
             "interpolated (DNI)."),
    steps: Optional[int] = typer.Option(
        None, "--steps", show_default=False, min=1,
        help="Sampling steps of a diffusion model (diffusion-x4): 1 .. the chain it was trained with (15); fewer "
             "is faster, more is more detailed. Default: the model's (4)."),
    seed: Optional[int] = typer.Option(
        None, "--seed", show_default=False,
        help="Seeds a diffusion model's sampler (nothing else): the same seed gives the same output. Default: a "
             "new random seed per file."),
) -> None:
    t0 = time.perf_counter()
    tile_v = parse_tile(tile)
    levels = {"strength": strength, "noise": noise, "jpeg": jpeg}
    _check_levels(levels, denoise, model)
    fmt = format.value if format is not None else None
    if "/" in suffix or os.sep in suffix:
        raise typer.BadParameter("must not contain a path separator", param_hint="'--suffix'")
    jobs, failures, notes = plan_jobs(inputs, output, fmt, suffix, domains=True)

    err, interactive, say = stderr_lines()
    for n in notes:
        say(f"srkit: note: {n}")
    for f, why in failures:
        say(f"srkit: error: {f}: {why}")

    written = skipped = redone = 0
    failed = len(failures)
    if jobs:
        from srkit.infer.api import load_upscaler

        # The model is loaded once; one Upscaler serves every file.
        from srkit.interpolation import denoise_model  # --denoise: the pair's weights interpolated (DNI)

        up = load_upscaler(
            model if denoise is None else denoise_model(model, denoise), scale=scale, tile=tile_v,
            dtype=dtype.value, device=device, tta=tta, backend=None if backend == Backend.torch else backend.value,
        )
        if any(v is not None for v in levels.values()):
            from srkit.infer.conditioning import level_inputs

            # a model without levels refuses them once, not once per file
            level_inputs(up.model.info, strength=strength, noise=noise, jpeg=jpeg)
        if steps is not None:
            from srkit.infer.sampling import step_inputs

            step_inputs(up.model, steps=steps)  # a model that takes no steps, or too many: once, not per file
        if scale is None and up.model.info.channel_agnostic and "-x" not in model:
            say(f"srkit: note: {model} upscales x{up.scale} (the default; --scale chooses another)")
        from srkit.domains import DomainOptions
        from srkit.infer.provenance import matches, request_record

        domain = DomainOptions(codec=video_codec.value, crf=crf, bands=tuple(bands) if bands else None,
                               value_range=value_range, cog=cog, through_plane=through_plane)
        # What decides the outputs: an existing output is skipped only when the same request made it.
        rec = request_record(
            model, arch=up.model.info.name, scale=up.scale, fmt=fmt, quality=quality, alpha=alpha.value, tta=tta,
            dtype=up.compute_dtype, receptive_field=up.model.info.receptive_field, tile=tile_v, denoise=denoise,
            **levels, bands=list(bands) if bands else None, value_range=list(value_range) if value_range else None,
            cog=cog or None, through_plane=through_plane or None, video=[video_codec.value, crf], outscale=outscale,
            steps=steps, seed=seed)
        todo: list[Job] = []
        for j in jobs:
            made_by = matches(j.dst, rec) if not overwrite else False
            if made_by is False and j.dst.exists() and not overwrite:
                redone += 1  # made by another request (model, scale, format, ...): stale
            if made_by is None and j.dst.exists():
                skipped += 1  # no record of what made it (another tool, or an older srkit): left alone
            elif made_by:
                skipped += 1
            else:
                todo.append(j)
        if todo:
            written, n_failed = _run(up, todo, fmt=fmt, quality=quality, alpha=alpha.value, tta=tta, say=say,
                                     console=err, interactive=interactive, stream=stream, domain_options=domain,
                                     levels=levels, record=rec, outscale=outscale, steps=steps, seed=seed)
            failed += n_failed
    note = " (existing outputs are skipped; --overwrite replaces them)" if skipped else ""
    if redone:
        note += f" ({redone} existing made by another model or settings: redone)"
    typer.echo(f"srkit upscale: {written} written, {skipped} skipped, {failed} failed in "
               f"{time.perf_counter() - t0:.1f} s{note}")
    if failed:
        raise typer.Exit(1)


def _check_levels(levels: dict, denoise: float | None, model: str) -> None:
    """--strength / --noise / --jpeg values and --denoise's pair, checked before any file is read (exit 2)."""
    from srkit.errors import ConfigError

    if any(v is not None for v in levels.values()):
        from srkit.infer.conditioning import check_levels

        try:
            check_levels(**levels)
        except ConfigError as e:
            names = [f"'--{k}'" for k, v in levels.items() if v is not None]
            raise typer.BadParameter(str(e), param_hint=" / ".join(names)) from None
    if denoise is not None:
        from srkit.interpolation import denoise_pair

        if not 0.0 <= denoise <= 1.0:
            raise typer.BadParameter(f"must be in [0, 1], got {denoise:g}", param_hint="'--denoise'")
        try:
            denoise_pair(model)
        except ConfigError as e:
            raise typer.BadParameter(str(e), param_hint="'--denoise'") from None


def _run(
    up, todo: list[Job], *, fmt, quality, alpha, tta, say, console, interactive, stream=None, domain_options=None,
    levels: dict | None = None, record: dict | None = None, outscale: float | None = None, steps: int | None = None,
    seed: int | None = None,
) -> tuple[int, int]:
    """Upscale each job with the shared Upscaler `up`; returns (written, failed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from srkit.infer import provenance
    from srkit.infer.files import upscale_file

    written = failed = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not interactive,
    ) as progress:
        task = progress.add_task("upscale", total=len(todo))
        frames = progress.add_task("frames", total=None, visible=False)

        def frame_progress(done: int, total: int) -> None:  # videos report their frames
            progress.update(frames, completed=done, total=total, visible=True)

        tiles = progress.add_task("tiles", total=1.0, visible=False)

        def tile_progress(fraction: float) -> None:  # one big image: its tiles / strips
            progress.update(tiles, completed=fraction, visible=True)

        if domain_options is not None:
            extra = {**domain_options.extra, "progress": frame_progress}
            domain_options = dataclasses.replace(domain_options, extra=extra)
        for j in todo:
            progress.update(task, description=f"upscale {j.src.name}")
            try:
                j.dst.parent.mkdir(parents=True, exist_ok=True)
                remove_stale_temps(j.dst)
                provenance.remove_record(j.dst)  # a rewrite killed halfway leaves no record claiming it
                with warnings.catch_warnings(record=True) as caught:  # one line each, naming the file
                    warnings.simplefilter("always")
                    try:
                        lv = levels or {}
                        upscale_file(j.src, j.dst, up, format=fmt, quality=quality, alpha=alpha, tta=tta,
                                     stream=stream, domain_options=domain_options, strength=lv.get("strength"),
                                     noise=lv.get("noise"), jpeg=lv.get("jpeg"), progress=tile_progress,
                                     outscale=outscale, steps=steps, seed=seed)
                    finally:
                        for msg in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
                            say(f"srkit: warning: {j.src}: {msg}")
                if record is not None:
                    provenance.record(j.dst, record)
                written += 1
                progress.update(tiles, visible=False, completed=0)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # noqa: BLE001 - one bad file must not stop the batch
                failed += 1
                say(f"srkit: error: {j.src}: {reason(e, j.src)}")
            progress.update(frames, visible=False)
            progress.advance(task)
    return written, failed
