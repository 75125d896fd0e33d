"""`srkit info`: what a model is and what it costs."""

from __future__ import annotations

from typing import Optional

import typer

HELP = """Describe a model: parameters, MACs per output pixel and at 1280x720 output, receptive field, colour space,
input range and safe dtypes. MODEL is a shipped model, an architecture name (built untrained), a classical
upsampler or a weights file."""


def resolve_for_info(model: str, scale: Optional[int]):
    """Shipped/classical/file via load_model; a bare architecture name is built with default options."""
    from srkit.archs import ARCHS, build
    from srkit.models import load_model

    if model in ARCHS:
        spec = ARCHS[model]
        s = scale if scale is not None else (4 if 4 in spec.scales else spec.scales[-1])
        return build(model, scale=s)
    return load_model(model, scale=scale)


def info_command(
    model: str = typer.Argument(..., help="Model name, architecture name or weights file."),
    scale: Optional[int] = typer.Option(None, "--scale", "-s", help="Scale for architectures/classical models."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    from srkit.archs.profile import describe

    m = resolve_for_info(model, scale)
    d = describe(m)
    if json_out:
        typer.echo(json.dumps(d, indent=2))
        return
    t = Table(title=f"{model}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    fmt = {
        "params": lambda v: f"{v:,}",
        "params_training_form": lambda v: f"{v:,}",
        "macs_per_output_pixel": lambda v: f"{v:,.0f}",
        "macs_720p_G": lambda v: f"{v:,.2f} G",
    }
    for k, v in d.items():
        shown = fmt.get(k, str)(v) if v is not None else "whole image" if k == "receptive_field" else "-"
        t.add_row(k.replace("_", " "), shown)
    Console().print(t)
