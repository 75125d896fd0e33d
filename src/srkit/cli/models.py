"""`srkit models`: what models srkit can run, and the third-party model catalogue."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

HELP = """List the models srkit runs: shipped models (scale, MACs per output pixel, what each is for), classical
upsamplers and architectures.

--catalog lists third-party models from srkit's catalogue (facts from OpenModelDB) that srkit or spandrel can run,
with their licence: `srkit pull NAME` downloads one into the cache ($SRKIT_CACHE, else ~/.cache/srkit), then
`srkit upscale --model NAME` uses it. --refresh updates the cache's copy of the catalogue from OpenModelDB's
published data."""

# What each shipped model is for (one line each; the model card in srkit/weights/MODEL_CARD.md has the details).
PURPOSE: dict[str, str] = {
    "tiny-x2": "fastest x2 for clean images; Y channel, chroma bicubic",
    "tiny-x3": "fastest x3 for clean images; Y channel, chroma bicubic",
    "tiny-x4": "fastest x4 for clean images; Y channel, chroma bicubic",
    "balanced-x2": "x2 for clean images, quality and speed balanced; Y channel",
    "balanced-x3": "x3 for clean images, quality and speed balanced; Y channel",
    "balanced-x4": "x4 for clean images, quality and speed balanced; Y channel (default of srkit upscale)",
    "real-x4": "x4 for real photos (noise, blur, JPEG), fidelity-oriented; RGB",
    "real-x4-gan": "x4 for real photos, GAN-tuned for natural texture; RGB",
    "real-x4-ctrl": "x4 for real photos with a strength you set (--strength, --noise/--jpeg); RGB",
    "diffusion-x4": "x4 for real photos by residual-shifting diffusion: generated detail (--steps 1..15, --seed); RGB",
    "video-x4": "x4 for video: each frame with what its neighbours saw (recurrent, flow-aligned); RGB",
}

CLASSICAL_PURPOSE = "baseline; MATLAB imresize, any integer scale"


def _console():
    """stdout console: the terminal's width, or 160 columns when piped (a file has no width to fit)."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 160))


def _matches(text: str | None, *haystack: Any) -> bool:
    if not text:
        return True
    needle = text.lower()
    return any(needle in str(h).lower() for h in haystack if h)


def _shipped_rows(arch: Optional[str], scale: Optional[int], search: Optional[str]) -> list[dict[str, Any]]:
    from srkit.archs.profile import describe
    from srkit.models import builtin_weights, load_model

    rows: list[dict[str, Any]] = []
    for name in builtin_weights():
        d = describe(load_model(name))
        row = {
            "name": name, "scale": d["scale"], "arch": d["arch"], "color_space": d["color_space"],
            "params": d["params"], "macs_per_output_pixel": d["macs_per_output_pixel"],
            "purpose": PURPOSE.get(name, ""),
        }
        if (arch is None or arch.lower() in str(row["arch"]).lower()) and (scale is None or scale == row["scale"]) \
                and _matches(search, name, row["arch"], row["purpose"]):
            rows.append(row)
    return rows


def _classical_rows(arch: Optional[str], search: Optional[str]) -> list[dict[str, Any]]:
    from srkit.models import CLASSICAL_KERNELS

    return [{"name": n, "kernel": k, "scales": "any", "purpose": CLASSICAL_PURPOSE}
            for n, k in CLASSICAL_KERNELS.items()
            if (arch is None or arch.lower() in n) and _matches(search, n, k, CLASSICAL_PURPOSE)]


def _arch_rows(arch: Optional[str], scale: Optional[int], search: Optional[str]) -> list[dict[str, Any]]:
    from srkit.archs import ARCHS

    rows: list[dict[str, Any]] = []
    for name, spec in ARCHS.items():
        if spec.kind != "generator":
            continue
        if (arch is None or arch.lower() in name) and (scale is None or scale in spec.scales) \
                and _matches(search, name, spec.family, spec.paper):
            rows.append({"name": name, "family": spec.family, "scales": list(spec.scales),
                         "license": spec.license, "paper": spec.paper, "repo": spec.repo})
    return rows


def _list_builtin(arch: Optional[str], scale: Optional[int], search: Optional[str], json_out: bool) -> None:
    import json

    from rich.table import Table

    from srkit.catalog import spandrel_installed

    shipped = _shipped_rows(arch, scale, search)
    classical = _classical_rows(arch, search)
    archs = _arch_rows(arch, scale, search)
    if json_out:
        typer.echo(json.dumps({"shipped": shipped, "classical": classical, "architectures": archs}, indent=2))
        return
    console = _console()
    t = Table(title="Shipped models (srkit upscale --model NAME)", title_justify="left")
    for col, kw in (("name", {"no_wrap": True}), ("scale", {"justify": "right"}), ("architecture", {}),
                    ("params", {"justify": "right"}), ("MACs / output px", {"justify": "right"}), ("for", {})):
        t.add_column(col, **kw)
    for r in shipped:
        macs = r["macs_per_output_pixel"]
        t.add_row(r["name"], f"x{r['scale']}", r["arch"], f"{r['params']:,}", "-" if macs is None else f"{macs:,.0f}",
                  r["purpose"])
    console.print(t)
    t = Table(title="Classical upsamplers (NAME or NAME-x<scale>)", title_justify="left")
    for col in ("name", "kernel", "scales", "for"):
        t.add_column(col, no_wrap=col == "name")
    for r in classical:
        t.add_row(r["name"], r["kernel"], r["scales"], r["purpose"])
    console.print(t)
    t = Table(title="Architectures (their authors' checkpoints load with --model FILE)", title_justify="left")
    for col in ("name", "scales", "licence"):
        t.add_column(col, no_wrap=col == "name")
    for r in archs:
        t.add_row(r["name"], ", ".join(f"x{s}" for s in r["scales"]), r["license"])
    console.print(t)
    spandrel = "installed" if spandrel_installed() else "not installed: pip install 'srkit[models]'"
    console.print(f"Other checkpoints load through spandrel ({spandrel}). Third-party models to download: "
                  "srkit models --catalog", highlight=False, markup=False)


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.1f} MB"


def _list_catalogue(arch: Optional[str], scale: Optional[int], search: Optional[str], show_all: bool,
                    json_out: bool) -> None:
    import json

    from rich import box
    from rich.table import Table

    from srkit.catalog import find_pulled, load_catalogue, runner, spandrel_installed

    cat = load_catalogue(on_ignored=lambda msg: print(f"srkit: warning: {msg}", file=sys.stderr))
    have_spandrel = spandrel_installed()
    rows: list[dict[str, Any]] = []
    for e in cat.models:
        runs = runner(e)
        if runs is None and not show_all:
            continue
        if arch is not None and arch.lower() != e.architecture:
            continue
        if scale is not None and scale != e.scale:
            continue
        if not _matches(search, e.id, e.name, e.author, e.architecture, " ".join(e.tags)):
            continue
        res = e.resource
        pulled = find_pulled(e.id)
        rows.append({
            "id": e.id, "name": e.name, "author": e.author, "license": e.license, "architecture": e.architecture,
            "scale": e.scale, "size": e.size, "runs_with": runs, "pullable": e.pull_problem is None,
            "not_pullable_because": e.pull_problem, "url": res.direct_url if res else e.where,
            "sha256": res.sha256 if res else None, "pulled": str(pulled) if pulled else None, "tags": list(e.tags),
        })
    if json_out:
        typer.echo(json.dumps({"source": cat.source, "date": cat.date, "retrieved": cat.retrieved,
                               "catalogue": cat.origin, "models": rows}, indent=2))
        return
    console = _console()
    t = Table(title=f"Model catalogue: {len(rows)} of {len(cat.models)} models (srkit pull ID)", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("id", overflow="fold", min_width=16)
    t.add_column("arch", overflow="fold")
    t.add_column("scale", justify="right", no_wrap=True)
    t.add_column("licence", overflow="fold")
    t.add_column("size", justify="right", no_wrap=True)
    t.add_column("runs", overflow="fold")
    t.add_column("pull", overflow="fold")
    for r in rows:
        runs = r["runs_with"] or "no"
        if runs == "spandrel" and not have_spandrel:
            runs = "spandrel (not installed)"
        state = "pulled" if r["pulled"] else "yes" if r["pullable"] else f"no: {r['not_pullable_because']}"
        t.add_row(r["id"], r["architecture"], f"x{r['scale']}", r["license"] or "unknown", _size(r["size"]), runs,
                  state)
    console.print(t)
    console.print(f"Source: {cat.source}; catalogue {cat.origin}. Each model's licence applies to its use.",
                  highlight=False, markup=False)


def _refresh(url: str, timeout: float, quiet_stdout: bool) -> None:
    from datetime import datetime, timezone

    from srkit.catalog import catalogue_from_records, user_catalogue_path, write_catalogue
    from srkit.catalog.download import fetch_json

    data = fetch_json(url, timeout=timeout)
    now = datetime.now(timezone.utc)
    catalogue, skipped = catalogue_from_records(
        data, source=f"OpenModelDB published data, {url}, retrieved {now:%Y-%m-%d %H:%M} UTC",
        date=f"{now:%Y-%m-%d}", retrieved=now.isoformat(timespec="seconds"))
    path = write_catalogue(catalogue, user_catalogue_path())
    pullable = sum(e.pull_problem is None for e in catalogue.models)
    note = f"; {skipped} records skipped (invalid)" if skipped else ""
    typer.echo(f"catalogue refreshed: {len(catalogue.models)} models, {pullable} pullable{note} -> {path}",
               err=quiet_stdout)


def models_command(
    catalog: bool = typer.Option(False, "--catalog", help="List the third-party model catalogue instead."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Only this architecture (catalogue: e.g. esrgan, span)."),
    scale: Optional[int] = typer.Option(None, "--scale", "-s", min=1, help="Only models of this scale."),
    search: Optional[str] = typer.Option(None, "--search", help="Only models whose name, author or tags hold TEXT."),
    show_all: bool = typer.Option(False, "--all", help="With --catalog: also models neither srkit nor spandrel runs."),
    refresh: bool = typer.Option(False, "--refresh", help="Update the catalogue from OpenModelDB first (online)."),
    url: Optional[str] = typer.Option(None, "--url", help="Where --refresh reads [default: OpenModelDB's data]."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="Network timeout of --refresh, in seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    from srkit.catalog import OPENMODELDB_URL

    if url is not None and not refresh:
        raise typer.BadParameter("--url needs --refresh", param_hint="--url")
    if refresh:
        _refresh(url or OPENMODELDB_URL, timeout, quiet_stdout=catalog and json_out)
        if not catalog:
            return
    if catalog:
        _list_catalogue(arch, scale, search, show_all, json_out)
    else:
        _list_builtin(arch, scale, search, json_out)
