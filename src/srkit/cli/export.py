"""`srkit export`: write a model as ONNX or TorchScript, checked against PyTorch."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

HELP = """Export MODEL (a shipped model, a classical upsampler or a weights file) to ONNX or TorchScript.

The model is deployed first (re-parameterised blocks folded). The graph takes (B, C, H, W) float32 in [0, 1] with
any batch, height and width and returns (B, C, sH, sW); Y-only models and classical upsamplers take RGB (C = 3)
unless --channels says otherwise. The file is checked against PyTorch on an input size other than the trace size
(onnxruntime for ONNX) and written only if max |diff| <= --atol.
"""


class Format(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"


_SUFFIX_FORMATS = {".onnx": Format.onnx, ".pt": Format.torchscript, ".pth": Format.torchscript,
                   ".ts": Format.torchscript, ".torchscript": Format.torchscript}


def export_command(
    model: str = typer.Argument(..., help="Model name, classical upsampler or weights file."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (.onnx, .pt)."),
    fmt: Optional[Format] = typer.Option(
        None, "--format", "-f", help="onnx or torchscript [default: from the output suffix, else onnx]."
    ),
    scale: Optional[int] = typer.Option(None, "--scale", "-s", min=1,
                                        help="Scale for classical upsamplers / scale-free weights."),
    opset: int = typer.Option(17, "--opset", min=7, help="ONNX opset version."),
    channels: Optional[int] = typer.Option(None, "--channels", min=1,
                                           help="Graph input channels [default: 3, or the model's]."),
    atol: float = typer.Option(1e-4, "--atol", min=0.0, help="Largest |export - PyTorch| accepted."),
    no_check: bool = typer.Option(False, "--no-check", help="Skip the check against PyTorch."),
) -> None:
    from srkit.errors import ConfigError
    from srkit.models import load_model

    by_suffix = _SUFFIX_FORMATS.get(output.suffix.lower())
    if fmt is None:
        fmt = by_suffix or Format.onnx
    elif by_suffix is not None and by_suffix != fmt:
        raise ConfigError(f"--format {fmt.value} does not match the output name {output.name!r} "
                          f"({output.suffix} is {by_suffix.value}); change one of them")
    if output.exists() and output.is_dir():
        raise ConfigError(f"output {str(output)!r} is a folder; give a file name")
    try:  # the same rule as `srkit upscale`: a missing output folder is created
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the output folder {str(output.parent)!r}: {e.strerror or e}") from None
    m = load_model(model, scale=scale)
    if fmt == Format.onnx:
        from srkit.export.onnx import export_onnx

        rep = export_onnx(m, output, opset=opset, check=not no_check, channels=channels, atol=atol)
        what = f"ONNX opset {rep['opset']} ({rep['exporter']} exporter)"
        against = "onnxruntime vs PyTorch"
    else:
        from srkit.export.torchscript import export_torchscript

        rep = export_torchscript(m, output, check=not no_check, channels=channels, atol=atol)
        what = "TorchScript (traced)"
        against = "TorchScript vs eager PyTorch"
    c = rep["channels"]
    typer.echo(f"wrote {rep['path']}: {what}, {rep['size_bytes'] / 1e6:.2f} MB, "
               f"input (B, {c}, H, W) -> (B, {c}, {m.info.scale}H, {m.info.scale}W)")
    if rep["max_abs_diff"] is None:
        typer.echo("check: skipped (--no-check)")
    else:
        shape = "x".join(map(str, rep["check_shape"]))
        typer.echo(f"check: {against} on a {shape} input: max |diff| = {rep['max_abs_diff']:.3g} (<= {atol:g}) ok")
