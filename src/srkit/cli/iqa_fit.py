"""`srkit iqa fit`: learn a head from an index's features to the user's opinion scores, with the fair protocol.

The command is registered on `srkit iqa` (`srkit.cli.iqa.app`). Nothing here imports torch at module level.
"""

from __future__ import annotations

import csv
import json
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

FIT_HELP = """Fit an opinion head: image features -> your mean opinion scores (MOS).

--scores is a CSV with a header holding `image` (a path, relative to --images, or a file name found under it),
`score` (higher = better, or your own convention) and optionally `reference` (the scene each distorted image was
made from). The head is first cross-validated with the fair protocol - random splits by reference image (every
version of a scene on one side), --splits times - and the median SROCC / KROCC / PLCC / RMSE (PLCC and RMSE after
the VQEG 4-parameter logistic) are printed; then it is fitted on all images and written as .npz (plain arrays).
Without a `reference` column every image counts as its own scene, which overstates agreement when several images
share a scene.
"""


class Head(str, Enum):
    svr = "svr"
    rank = "rank"


def _features(name: str):
    """name -> feature function (uint8 image -> 1-D vector)."""
    from srkit.errors import ConfigError

    if name == "klt":
        from srkit.metrics.klt import klt_features

        return klt_features
    raise ConfigError(f"unknown feature set {name!r}; known: klt")


def read_scores(path: Path, images_dir: Path) -> tuple[list[Path], list[float], list[str]]:
    """(image paths, scores, reference labels) from the CSV; every problem is a one-line ConfigError."""
    from srkit.errors import ConfigError

    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    if not rows or not {"image", "score"} <= set(rows[0]):
        raise ConfigError(f"{path}: needs a header with 'image' and 'score' columns (and optionally 'reference')")
    by_name: dict[str, list[Path]] = {}
    for p in images_dir.rglob("*"):
        if p.is_file():
            by_name.setdefault(p.name, []).append(p)
    files, scores, refs = [], [], []
    for i, row in enumerate(rows, start=2):
        name = (row.get("image") or "").strip()
        direct = images_dir / name
        if direct.is_file():
            file = direct
        elif len(by_name.get(Path(name).name, [])) == 1:
            file = by_name[Path(name).name][0]
        else:
            raise ConfigError(f"{path}:{i}: image {name!r} not found under {images_dir} (or found more than once)")
        try:
            score = float(row["score"])
        except (TypeError, ValueError):
            raise ConfigError(f"{path}:{i}: score {row['score']!r} is not a number") from None
        files.append(file)
        scores.append(score)
        refs.append((row.get("reference") or "").strip() or str(file))
    return files, scores, refs


def fit_command(
    images: Path = typer.Option(..., "--images", help="Folder holding the scored images.", show_default=False),
    scores: Path = typer.Option(..., "--scores", help="CSV: image, score[, reference].", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Head file to write (.npz)."),
    feature: str = typer.Option("klt", "--feature", help="Feature set: klt."),
    head: Head = typer.Option(Head.svr, "--head", help="svr (RBF epsilon-SVR) or rank (pairwise ranking)."),
    splits: int = typer.Option(100, "--splits", min=0, help="Random splits by reference (0: skip the protocol)."),
    test_share: float = typer.Option(0.2, "--test-share", min=0.05, max=0.95, help="Share of scenes tested."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the splits."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the protocol's results as JSON."),
) -> None:
    import numpy as np

    from srkit.cli.eval import _write_atomic
    from srkit.io.uint8 import read_uint8
    from srkit.errors import ConfigError
    from srkit.metrics.opinion import cross_validate, fit_head, save_head

    t0 = time.perf_counter()
    if output.suffix.lower() != ".npz":
        raise typer.BadParameter("the head is written as .npz", param_hint="'-o'")
    if not images.is_dir():
        raise ConfigError(f"--images {images}: not a folder")
    extract = _features(feature)
    files, mos, refs = read_scores(scores, images)
    if len(files) < 3:
        raise ConfigError(f"{scores}: {len(files)} scored image(s); a head needs at least 3")
    feats = np.stack([np.asarray(extract(read_uint8(f)), np.float64) for f in files])
    result = None
    if splits > 0:
        if len(set(refs)) < 2:
            raise ConfigError("all images share one reference: the protocol needs >= 2 scenes (or --splits 0)")
        result = cross_validate(feats, mos, refs, head.value, n_splits=splits, test_share=test_share, seed=seed)
        med, sd = result["median"], result["std"]
        typer.echo(f"{splits} splits by reference ({len(set(refs))} scenes, {test_share:.0%} tested): median "
                   + ", ".join(f"{k.upper()} {med[k]:.4f} (sd {sd[k]:.4f})"
                               for k in ("srocc", "krocc", "plcc", "rmse")))
    fitted = fit_head(feats, mos, head.value, feature=feature)
    save_head(fitted, output)
    typer.echo(f"srkit iqa fit: {head.value} head on {len(files)} images x {feats.shape[1]} {feature} features -> "
               f"{output} in {time.perf_counter() - t0:.1f} s")
    if json_path is not None:
        doc = {"feature": feature, "head": head.value, "images": len(files), "scenes": len(set(refs)),
               "protocol": None if result is None else {k: v for k, v in result.items() if k != "per_split"}}
        _write_atomic(json_path, json.dumps(doc, indent=2) + "\n")
