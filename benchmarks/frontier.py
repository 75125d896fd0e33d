"""Quality-cost frontier at x4: Set5 and B100 PSNR against MACs per output pixel, srkit's models beside papers'.

    python benchmarks/frontier.py --data ../shared/datasets --threads 1 [--extra runs/NAME/best.safetensors]

srkit points are measured here, in-process, by `srkit.evaluate.evaluate` - the `srkit eval` protocol (Y channel,
border = scale, the MATLAB-made LR of `<Set>/LR_bicubic/X4` read from disk, as `srkit eval --lr-from-disk`) - and
costed by `srkit.archs.profile.describe` (the counter behind `srkit info` and `benchmarks/model_table.py`: hooks on
every conv of the deployed network). By default every shipped x4 model is drawn; the blind real-world ones (real-*,
trained on synthetically degraded LR) are drawn hollow, to show where they stand on clean bicubic inputs. `--extra
[LABEL=]PATH` adds any x4 checkpoint `srkit.load_model` reads (e.g. a new training run) as a candidate.

Published points come from `published_sr_results.csv` (default: `<data>/../reference/`): MACs per output pixel =
macs_720p_G * 1e9 / (1280 * 720). Rows without a MACs figure cannot be placed on the x axis: they are listed in a
table of the Markdown file written beside the PNG (`--out docs/frontier.png` -> `docs/frontier.md`, which also
embeds the plot and records the command); the bicubic row is drawn as a dashed line.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import shlex
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

SCALE = 4
SETS = ("Set5", "B100")
OUTPUT_PIXELS_720P = 1280 * 720
FIGSIZE = (13.0, 8.4)  # inches
DPI = 150  # the PNG is FIGSIZE * DPI pixels exactly (no tight bounding box)
#: Shipped models trained on degraded LR for real photos, not on clean bicubic LR.
BLIND_PREFIX = "real-"
#: Image counts of the training sets srkit's model metadata names without one.
KNOWN_IMAGE_COUNTS = {"T91+BSDS200+BSDS500test+General100": 541, "T91+BSDS200": 291}
SRKIT_COLORS = ("#d62728", "#7f0000", "#ff9896")  # srkit's training data first, then candidates' other data
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f")


class Point(NamedTuple):
    """One model: its cost, its PSNR per set (NaN where unknown) and where it comes from.

    (A NamedTuple rather than a dataclass: benchmark scripts are also imported by file path, outside sys.modules.)
    """

    name: str
    kind: str  # "srkit" (clean bicubic training), "srkit-blind" (real-world), "candidate", "published"
    macs_per_px: float | None
    train_data: str
    psnr: Mapping[str, float]
    ssim: Mapping[str, float] = MappingProxyType({})
    params: int | None = None
    source: str = ""
    seconds: float = 0.0


# --- published rows ------------------------------------------------------------------------------------------


def macs_per_output_pixel(macs_720p_g: float) -> float:
    """MACs per output pixel from GMACs for a 1280x720 output (the figure SR papers quote)."""
    return macs_720p_g * 1e9 / OUTPUT_PIXELS_720P


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_published(path: Path, scale: int = SCALE, sets: Sequence[str] = SETS) -> tuple[list[Point], list[Point]]:
    """The CSV's rows at `scale`, split into (rows with a MACs figure: plotted, rows without one: tabled)."""
    plotted: list[Point] = []
    missing: list[Point] = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if _float(row.get("scale")) != scale:
                continue
            macs = _float(row.get("macs_720p_G"))
            params = _float(row.get("params"))
            p = Point(
                name=row["model"], kind="published",
                macs_per_px=None if math.isnan(macs) else macs_per_output_pixel(macs),
                train_data=(row.get("train_data") or "").strip() or "not stated",
                psnr={s: _float(row.get(f"{s.lower()}_psnr")) for s in sets},
                ssim={s: _float(row.get(f"{s.lower()}_ssim")) for s in sets},
                params=None if math.isnan(params) else int(params), source=(row.get("source") or "").strip(),
            )
            (missing if p.macs_per_px is None else plotted).append(p)
    return plotted, missing


# --- srkit models ----------------------------------------------------------------------------------------------


def shipped_x4() -> list[str]:
    """Names of the shipped models (`srkit/weights/`) whose scale is x4."""
    from srkit.models import builtin_weights, load_model

    return [name for name in builtin_weights() if load_model(name).info.scale == SCALE]


def short_training_data(text: str) -> str:
    """A legend-sized form of a model's `training_data` metadata: sets joined by '+', with the image count."""
    first = text.split(";")[0].strip()
    count = re.search(r"\((\d[\d,]*) images?", first)
    base = re.sub(r"\s*\+\s*", "+", re.sub(r"\s*\([^)]*\)", "", first)).strip()
    if not base:
        return "not stated"
    n = count.group(1) if count else KNOWN_IMAGE_COUNTS.get(base)
    return f"{base} ({n} images)" if n else base


def _metadata(path: Path) -> dict[str, str]:
    if path.suffix.lower() != ".safetensors":
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # a file load_model reads some other way: no metadata to show
        return {}


def _extra_spec(spec: str) -> tuple[str, Path]:
    """`PATH` or `LABEL=PATH` -> (label, path); the label defaults to the file's stem, or its run folder's name
    for the usual `best` / `last` checkpoint names."""
    if not Path(spec).exists() and "=" in spec:
        label, _, path = spec.partition("=")
        return label, Path(path)
    p = Path(spec)
    generic = p.stem in ("best", "last", "latest", "final", "ema", "model") and p.parent.name
    return (p.parent.name if generic else p.stem), p


def measure(name: str, path: str | Path, kind: str, data: Path, sets: Sequence[str] = SETS) -> Point:
    """PSNR/SSIM of one x4 model on `sets` by `srkit.evaluate.evaluate` (lr_from_disk, Y, border 4) and its MACs
    per output pixel by `srkit.archs.profile.describe`."""
    from srkit.archs.profile import describe
    from srkit.evaluate import evaluate
    from srkit.models import builtin_weights, load_model

    t0 = time.perf_counter()
    model = load_model(path, scale=SCALE)
    facts = describe(model)
    report = evaluate(model, data, sets, (SCALE,), metrics=("psnr", "ssim"), lr_from_disk=True, y_channel=True)
    weights = builtin_weights().get(str(path), Path(path))
    return Point(
        name=name, kind=kind, macs_per_px=facts["macs_per_output_pixel"],
        train_data=short_training_data(_metadata(weights).get("training_data", "")),
        psnr={r.set: r.scores["psnr"] for r in report.summary},
        ssim={r.set: r.scores["ssim"] for r in report.summary},
        params=facts["params"], source="measured here", seconds=time.perf_counter() - t0,
    )


# --- drawing -----------------------------------------------------------------------------------------------------


def pareto_front(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both counts (fewer or equal MACs and higher PSNR), by MACs."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box, frame) -> float:
    """Area of `box` outside `frame` (display units)."""
    inside = _overlap(box, frame)
    return box.width * box.height - inside


def _distance(box, point) -> float:
    """Distance (display units) from a box to a point; 0 inside."""
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return math.hypot(dx, dy)


def _candidates() -> list[tuple[float, float]]:
    """Label offsets (points), nearest first: 16 directions on rings of growing radius."""
    out = []
    for r in (5.0, 11.0, 18.0, 27.0, 38.0, 50.0):
        for k in range(16):
            a = 2 * math.pi * k / 16
            out.append((r * math.cos(a), r * math.sin(a)))
    return out


def _align(dx: float, dy: float) -> tuple[str, str]:
    """Text alignment that puts a label offset by (dx, dy) on the far side of its anchor."""
    r = 0.35 * math.hypot(dx, dy)
    ha = "left" if dx > r else "right" if dx < -r else "center"
    va = "bottom" if dy > r else "top" if dy < -r else "center"
    return ha, va


def place_labels(ax, labels: Sequence[tuple[float, float, str, dict]], renderer, obstacles: list) -> None:
    """Greedy label placement: each label (crowded ones first) takes the nearest offset whose text box overlaps
    the fewest already placed labels, markers (`obstacles`, display boxes) and the axes' edge; far ones get a
    leader line."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    frame = ax.get_window_extent(renderer)
    to_px = fig.dpi / 72.0
    pts = [ax.transData.transform((x, y)) for x, y, _, _ in labels]
    density = [sum(math.hypot(p[0] - q[0], p[1] - q[1]) < 70 * to_px for q in pts) for p in pts]
    order = sorted(range(len(labels)), key=lambda i: (not labels[i][3].get("priority", False), -density[i]))
    placed: list = []
    for i in order:
        x, y, text, style = labels[i]
        kw = {k: v for k, v in style.items() if k != "priority"}
        ann = ax.annotate(text, (x, y), xytext=(0, 0), textcoords="offset points", **kw)
        best = None
        for rank, (dx, dy) in enumerate(_candidates()):
            ha, va = _align(dx, dy)
            ann.set_ha(ha)
            ann.set_va(va)
            ann.xyann = (dx, dy)
            box = ann.get_window_extent(renderer)
            box = Bbox.from_extents(box.x0 - 5, box.y0 - 2, box.x1 + 5, box.y1 + 2)
            cost = 20 * _outside(box, frame)
            cost += 8 * sum(_overlap(box, b) for b in placed)
            cost += 4 * sum(_overlap(box, b) for b in obstacles)
            cost += 1.5 * math.hypot(dx, dy) * to_px + 0.01 * rank
            # A label nearer another point than its own reads as that point's: penalise the ambiguity.
            own = _distance(box, pts[i])
            cost += 60 * sum(max(0.0, own + 10 * to_px - _distance(box, q)) for j, q in enumerate(pts) if j != i)
            if best is None or cost < best[0]:
                best = (cost, dx, dy, ha, va, box)
        assert best is not None
        ann.remove()
        _, dx, dy, ha, va, box = best
        far = math.hypot(dx, dy) > 14
        arrow = {"arrowprops": {"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 0, "shrinkB": 4}} \
            if far else {}
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, **kw, **arrow)
        placed.append(box)


def _colors(points: Sequence[Point]) -> dict[str, str]:
    """Training data -> colour: shipped srkit models' data red (a candidate trained on other data: dark red), the
    papers' sets the palette in order of first use along the x axis."""
    colors: dict[str, str] = {}
    ours = iter(SRKIT_COLORS)
    for p in sorted((p for p in points if p.kind != "published"), key=lambda p: p.kind == "candidate"):
        if p.train_data not in colors:
            colors[p.train_data] = next(ours, SRKIT_COLORS[-1])
    it = iter(PALETTE)
    for p in sorted((p for p in points if p.kind == "published"), key=lambda p: p.macs_per_px or 0):
        if p.train_data not in colors:
            colors[p.train_data] = next(it, "#444444")
    return colors


MARKERS: dict[str, dict[str, Any]] = {
    "published": {"marker": "o", "s": 46, "edgecolors": "white", "linewidths": 0.6, "zorder": 3},
    "srkit": {"marker": "*", "s": 300, "edgecolors": "black", "linewidths": 0.8, "zorder": 5},
    "srkit-blind": {"marker": "D", "s": 70, "linewidths": 1.8, "zorder": 4},
    "candidate": {"marker": "P", "s": 170, "edgecolors": "black", "linewidths": 0.8, "zorder": 6},
}
LEGEND_KIND = {
    "published": "published (paper table)",
    "srkit": "srkit, shipped (measured here)",
    "srkit-blind": "srkit, blind real-world model on clean input (measured here)",
    "candidate": "candidate checkpoint (measured here)",
}


def draw(points: Sequence[Point], out: Path, *, sets: Sequence[str] = SETS, bicubic: Point | None = None,
         note: str = "") -> list[str]:
    """Draw one panel per set and write the PNG atomically (temp file + rename); returns the plotted names."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.transforms import Bbox

    pts = [p for p in points if p.macs_per_px is not None and p.macs_per_px > 0]
    colors = _colors(pts)
    fig, axes = plt.subplots(1, len(sets), figsize=FIGSIZE, squeeze=False)
    fig.subplots_adjust(left=0.055, right=0.99, top=0.88, bottom=0.215, wspace=0.13)
    xs = [p.macs_per_px for p in pts if p.macs_per_px]
    x_lo, x_hi = (min(xs) / 2.2, max(xs) * 2.2) if xs else (1e2, 1e7)
    for ax, s in zip(axes[0], sets):
        here = [p for p in pts if not math.isnan(p.psnr.get(s, math.nan))]
        ys = [p.psnr[s] for p in here]
        base = bicubic.psnr.get(s, math.nan) if bicubic is not None else math.nan
        lo = min(ys + ([base] if not math.isnan(base) else []), default=25.0)
        hi = max(ys, default=lo + 1)
        pad = 0.06 * (hi - lo or 1)
        ax.set_xscale("log")
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(lo - 2.2 * pad, hi + 1.6 * pad)
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", axis="x", alpha=0.12)
        front = pareto_front((p.macs_per_px, p.psnr[s]) for p in here if p.macs_per_px)
        if front:
            fx = [x for x, _ in front] + [x_hi]
            fy = [y for _, y in front] + [front[-1][1]]
            ax.step(fx, fy, where="post", color="0.6", lw=1.0, ls=":", zorder=1)
        if not math.isnan(base):
            ax.axhline(base, color="0.45", lw=1.0, ls="--", zorder=1)
            ax.annotate(f"bicubic ({base:.2f} dB)", (x_lo, base), xytext=(4, 3), textcoords="offset points",
                        fontsize=8.5, color="0.35", ha="left", va="bottom")
        for p in here:
            c = colors[p.train_data]
            kw = dict(MARKERS[p.kind])
            if p.kind == "srkit-blind":
                kw.update(facecolors="white", edgecolors=c)
            else:
                kw.update(color=c)
            ax.scatter([p.macs_per_px], [p.psnr[s]], **kw)
        ax.set_title(f"{s}  (x4)", fontsize=12, fontweight="bold")
        ax.set_xlabel("MACs per output pixel (log scale)")
        if ax is axes[0][0]:
            ax.set_ylabel("PSNR (dB, Y channel, border 4)")
        ax.tick_params(labelsize=9)
    fig.suptitle("Quality vs cost at x4: srkit's models beside published results", fontsize=14, y=0.985)
    if note:
        fig.text(0.5, 0.935, note, ha="center", va="center", fontsize=9.5, color="0.25")
    # Legend: colour = training data, marker = where the number comes from.
    data_handles = [Line2D([], [], marker="s", ls="", markersize=9, color=c,
                           label="training data not stated" if d == "not stated" else f"trained on {d}")
                    for d, c in colors.items()]
    kinds = [k for k in MARKERS if any(p.kind == k for p in pts)]
    kind_handles = []
    for k in kinds:
        m = MARKERS[k]
        size = math.sqrt(m["s"]) * (0.8 if k == "srkit" else 1.0)
        face = "white" if k == "srkit-blind" else "0.5"
        edge = "0.3" if k != "published" else "white"
        kind_handles.append(Line2D([], [], marker=m["marker"], ls="", markersize=size, markerfacecolor=face,
                                   markeredgecolor=edge, markeredgewidth=1.2, label=LEGEND_KIND[k]))
    kind_handles.append(Line2D([], [], color="0.6", ls=":", lw=1.2, label="Pareto front (no point has fewer MACs "
                                                                         "and more dB)"))
    if bicubic is not None:
        kind_handles.append(Line2D([], [], color="0.45", ls="--", lw=1.0, label="bicubic (published)"))
    leg1 = fig.legend(handles=data_handles, loc="lower left", bbox_to_anchor=(0.055, 0.005), ncol=2, fontsize=9,
                      title="colour: training data", title_fontsize=9.5, frameon=False, alignment="left")
    leg2 = fig.legend(handles=kind_handles, loc="lower right", bbox_to_anchor=(0.99, 0.005), ncol=1, fontsize=9,
                      title="marker: source", title_fontsize=9.5, frameon=False, alignment="left")
    # The axes end just above the taller legend (their x label included); labels are placed after that (text
    # extents need a renderer, not a drawn canvas: the limits are fixed above).
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    tall = max(leg.get_window_extent(renderer).y1 for leg in (leg1, leg2)) / fig.bbox.height
    fig.subplots_adjust(bottom=tall + 0.62 / FIGSIZE[1])
    r_px = 7 * fig.dpi / 72
    for ax, s in zip(axes[0], sets):
        here = [p for p in pts if not math.isnan(p.psnr.get(s, math.nan))]
        obstacles = []
        for p in here:
            cx, cy = ax.transData.transform((p.macs_per_px, p.psnr[s]))
            r = r_px * (2.0 if p.kind in ("srkit", "candidate") else 1.0)
            obstacles.append(Bbox.from_extents(cx - r, cy - r, cx + r, cy + r))
        front = pareto_front((p.macs_per_px, p.psnr[s]) for p in here if p.macs_per_px)
        ends = [*front[1:], (x_hi, front[-1][1])] if front else []
        for (xa, ya), (xb, yb) in zip(front, ends):  # the step line: one horizontal, one vertical run each
            (ax0, ay0), (ax1, ay1) = ax.transData.transform([(xa, ya), (xb, yb)])
            obstacles.append(Bbox.from_extents(ax0, ay0 - 1, ax1, ay0 + 1))
            obstacles.append(Bbox.from_extents(ax1 - 1, ay0, ax1 + 1, ay1))
        if bicubic is not None and not math.isnan(bicubic.psnr.get(s, math.nan)):
            _, by = ax.transData.transform((x_lo, bicubic.psnr[s]))
            x0, x1 = ax.get_window_extent(renderer).x0, ax.get_window_extent(renderer).x1
            obstacles.append(Bbox.from_extents(x0, by - 1, x1, by + 1))
            obstacles.append(Bbox.from_extents(x0, by, x0 + 130 * fig.dpi / 72, by + 14 * fig.dpi / 72))
        labels = []
        for p in here:
            ours = p.kind != "published"
            style = {"fontsize": 9.5 if ours else 8.5, "fontweight": "bold" if ours else "normal",
                     "color": "black" if ours else "0.15", "priority": ours, "zorder": 7}
            labels.append((float(p.macs_per_px or 0), p.psnr[s], p.name, style))
        place_labels(ax, labels, renderer, obstacles)
    write_figure(fig, out)
    plt.close(fig)
    return [p.name for p in pts]


def write_figure(fig, out: Path) -> None:
    """savefig to a temp file beside `out`, then rename: a reader never sees half a PNG."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=DPI, format=(out.suffix.lstrip(".") or "png").lower())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- report ------------------------------------------------------------------------------------------------------


def _fmt(v: float, digits: int) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def _params(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K" if n >= 1e3 else str(n)


def markdown(srkit: Sequence[Point], plotted: Sequence[Point], missing: Sequence[Point], png: Path, md: Path,
             command: str, seconds: float, sets: Sequence[str] = SETS) -> str:
    rel = os.path.relpath(png, md.parent)
    cols = " | ".join(f"{s} PSNR / SSIM" for s in sets)
    lines = [
        "# Quality vs cost at x4",
        "",
        f"![x4 PSNR on {' and '.join(sets)} against MACs per output pixel, srkit's models beside published "
        f"results]({rel})",
        "",
        f"Made by `{command}` ({seconds:.0f} s).",
        "",
        "srkit points are measured by `srkit.evaluate.evaluate` in the script's process (the `srkit eval "
        "--lr-from-disk` protocol: LR = `<Set>/LR_bicubic/X4`, PSNR / SSIM on the Y channel, border 4, averaged "
        "over the set's images); their MACs per output pixel come from srkit's counter (`srkit info`, "
        "`benchmarks/model_table.py`: hooks on every conv of the deployed network). Published points are the "
        "papers' numbers from `published_sr_results.csv`, with MACs per output pixel = macs_720p_G x 1e9 / "
        "(1280 x 720): the papers' own figures, which for some networks differ from srkit's count of the same "
        "architecture (`srkit info fsrcnn --scale 4`). The real-* models are blind real-world models (trained on "
        "synthetically degraded LR; "
        "real-x4-ctrl estimates the noise / JPEG level of each image): on clean bicubic LR they are expected to "
        "sit below the clean-trained models.",
        "",
        "## srkit models (measured)",
        "",
        f"| model | kind | training data | params | MACs / output px | {cols} |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in sets) + " |",
    ]
    for p in srkit:
        cells = " | ".join(f"{_fmt(p.psnr.get(s, math.nan), 4)} / {_fmt(p.ssim.get(s, math.nan), 4)}" for s in sets)
        kind = {"srkit": "shipped", "srkit-blind": "shipped, blind real-world", "candidate": "candidate"}[p.kind]
        macs = "—" if p.macs_per_px is None else f"{p.macs_per_px:,.0f}"
        lines.append(f"| {p.name} | {kind} | {p.train_data} | {_params(p.params)} | {macs} | {cells} |")
    lines += [
        "",
        "## Published x4 rows on the plot",
        "",
        f"| model | training data | params | MACs / output px | {cols} | source |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in sets) + " | --- |",
    ]
    for p in sorted(plotted, key=lambda p: p.macs_per_px or 0):
        cells = " | ".join(f"{_fmt(p.psnr.get(s, math.nan), 2)} / {_fmt(p.ssim.get(s, math.nan), 4)}" for s in sets)
        lines.append(f"| {p.name} | {p.train_data} | {_params(p.params)} | {p.macs_per_px:,.0f} | {cells} | "
                     f"{p.source} |")
    lines += [
        "",
        "## Published x4 rows without a MACs figure (not on the plot)",
        "",
        f"| model | training data | params | {cols} | source |",
        "| --- | --- | --- | " + " | ".join("---" for _ in sets) + " | --- |",
    ]
    for p in missing:
        cells = " | ".join(f"{_fmt(p.psnr.get(s, math.nan), 2)} / {_fmt(p.ssim.get(s, math.nan), 4)}" for s in sets)
        bicubic = p.name.lower() == "bicubic"
        name, data = (f"{p.name} (the dashed line)", "—") if bicubic else (p.name, p.train_data)
        lines.append(f"| {name} | {data} | {_params(p.params)} | {cells} | {p.source} |")
    if not missing:
        lines.append("| (none) | | | " + " | ".join("" for _ in sets) + " | |")
    return "\n".join(lines) + "\n"


# --- main --------------------------------------------------------------------------------------------------------


def _default_data() -> Path:
    from srkit.cli.eval import _data_dir

    return _data_dir(None)  # $SRKIT_DATA, else ../shared/datasets


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None,
                    help="folder of benchmark sets [default: $SRKIT_DATA, else ../shared/datasets]")
    ap.add_argument("--models", nargs="*", default=None,
                    help="shipped models to measure [default: every shipped x4 model]; give none for none")
    ap.add_argument("--extra", nargs="+", default=[], metavar="[LABEL=]PATH",
                    help="extra x4 checkpoints to measure and mark as candidates (e.g. runs/NAME/best.safetensors)")
    ap.add_argument("--published", type=Path, default=None,
                    help="published results CSV [default: DATA/../reference/published_sr_results.csv]")
    ap.add_argument("--sets", nargs="+", default=list(SETS), help="one panel per set [default: Set5 B100]")
    ap.add_argument("--out", type=Path, default=Path("docs/frontier.png"),
                    help="PNG to write; the Markdown table goes beside it (.md) [default: docs/frontier.png]")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads [default: 1]")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    t0 = time.perf_counter()
    data = args.data if args.data is not None else _default_data()
    csv_path = args.published if args.published is not None else data.parent / "reference" / \
        "published_sr_results.csv"
    plotted, missing = read_published(csv_path, SCALE, args.sets)
    bicubic = next((p for p in missing + plotted if p.name.lower() == "bicubic"), None)
    plotted = [p for p in plotted if p.name.lower() != "bicubic"]
    names = shipped_x4() if args.models is None else list(args.models)
    todo = [(n, n, "srkit-blind" if n.startswith(BLIND_PREFIX) else "srkit") for n in names]
    todo += [(label, str(path), "candidate") for label, path in map(_extra_spec, args.extra)]
    ours: list[Point] = []
    for label, path, kind in todo:
        p = measure(label, path, kind, data, args.sets)
        ours.append(p)
        scores = ", ".join(f"{s} {p.psnr[s]:.4f} dB / {p.ssim[s]:.4f}" for s in args.sets)
        macs = "—" if p.macs_per_px is None else f"{p.macs_per_px:,.0f}"
        print(f"{label}: {scores}; {macs} MACs / output px; trained on {p.train_data} ({p.seconds:.1f} s)",
              flush=True)
    for p in missing:
        print(f"not plotted (no MACs figure): {p.name}", flush=True)
    note = (f"x4, {' / '.join(args.sets)}, Y channel, border 4 · srkit: measured here with srkit's evaluation "
            "(LR_bicubic/X4 from disk) and MAC counter · published: paper tables, MACs = GMACs@720p / (1280x720)")
    draw([*plotted, *ours], args.out, sets=args.sets, bicubic=bicubic, note=note)
    md = args.out.with_suffix(".md")
    given = list(argv) if argv is not None else sys.argv[1:]
    command = shlex.join(["python", "benchmarks/frontier.py", *given])
    seconds = time.perf_counter() - t0
    _write_text(md, markdown(ours, plotted, missing, args.out, md, command, seconds, args.sets))
    print(f"wrote {args.out} and {md} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
