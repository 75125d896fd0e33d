"""benchmarks/iqa_study.py runs end to end on a tiny subset and prints its tables."""

from __future__ import annotations

from helpers import load_script, textured

from pathlib import Path

import numpy as np
from PIL import Image

STUDY = Path(__file__).resolve().parents[2] / "benchmarks" / "iqa_study.py"


def _load_study():
    return load_script(STUDY)


def _textured(side: int, seed: int) -> np.ndarray:
    return textured(side, seed)


def test_study_prints_both_tables(tmp_path, capsys):
    for i, s in enumerate(("Set14", "B100")):
        (tmp_path / s / "HR").mkdir(parents=True)
        Image.fromarray(_textured(192, i)).save(tmp_path / s / "HR" / f"img{i}.png")
    out = tmp_path / "study.md"
    study = _load_study()
    assert study.main(["--data", str(tmp_path), "--limit", "1", "--metrics", "niqe", "psnr",
                       "--models", "bicubic", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| niqe |" in text and "| psnr |" in text and "| bicubic |" in text
    assert out.read_text() == text.rstrip("\n") + "\n"
    # PSNR against the pristine image falls with every ladder's level: its per-image correlation is exactly 1.
    row = next(line for line in text.splitlines() if line.startswith("| psnr |"))
    per_image = [float(cell.split("/")[0]) for cell in row.strip("|").split("|")[1:5]]
    assert per_image == [1.0, 1.0, 1.0, 1.0]


def test_distortions_follow_their_level():
    study = _load_study()
    img = _textured(96, 3)
    for kind, levels in study.LADDERS.items():
        errs = [np.abs(study.distort(img, kind, lv, seed=0).astype(float) - img).mean() for lv in levels]
        assert all(a < b for a, b in zip(errs, errs[1:])), kind
