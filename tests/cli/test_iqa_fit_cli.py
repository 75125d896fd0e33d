"""`srkit iqa fit`: a head from KLT features to (synthetic) opinion scores, cross-validated by reference."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from helpers import run_cli as cli

from srkit.io import write_image
from srkit.metrics.opinion import load_head
from srkit.ops import imresize_matlab


def _scene(seed: int, side: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = imresize_matlab(rng.random((side // 8, side // 8, 3)), output_shape=(side, side))
    return np.rint(np.clip(base + rng.normal(0, 0.04, (side, side, 3)), 0, 1) * 255).astype(np.uint8)


@pytest.fixture()
def scored(tmp_path):
    """8 scenes x 4 blur levels; the synthetic 'opinion' falls with blur (5, 4, 3, 2)."""
    d = tmp_path / "imgs"
    d.mkdir()
    rows = []
    for s in range(8):
        img = _scene(s)
        for k, sigma in enumerate((0.0, 1.0, 2.0, 3.0)):
            out = img if sigma == 0 else cv2.GaussianBlur(img, (0, 0), sigma)
            name = f"s{s}_b{k}.png"
            write_image(d / name, out)
            rows.append({"image": name, "score": 5 - k, "reference": f"scene{s}"})
    csv_path = tmp_path / "mos.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "score", "reference"])
        w.writeheader()
        w.writerows(rows)
    return d, csv_path


def test_fit_reports_the_protocol_and_writes_a_head(scored, tmp_path, capsys):
    d, csv_path = scored
    out, js = tmp_path / "head.npz", tmp_path / "fit.json"
    code, stdout, stderr = cli(capsys, "iqa", "fit", "--images", str(d), "--scores", str(csv_path), "-o", str(out),
                               "--splits", "20", "--json", str(js))
    assert code == 0, stderr
    assert "20 splits by reference (8 scenes" in stdout and "SROCC" in stdout
    head = load_head(out)
    assert head.kind == "svr" and head.feature == "klt"
    doc = json.loads(js.read_text())
    assert doc["scenes"] == 8 and doc["images"] == 32
    # Blur is what the scores follow and what KLT features see: held-out scenes are ranked well.
    assert doc["protocol"]["median"]["srocc"] > 0.8


def test_fit_bad_inputs_are_one_line(scored, tmp_path, capsys):
    d, csv_path = scored
    bad = tmp_path / "bad.csv"
    bad.write_text("image,score\nmissing.png,3\ns0_b0.png,4\ns0_b1.png,2\n")
    code, _, err = cli(capsys, "iqa", "fit", "--images", str(d), "--scores", str(bad), "-o", str(tmp_path / "h.npz"))
    assert code != 0 and "missing.png" in err and "Traceback" not in err
    nohdr = tmp_path / "nohdr.csv"
    nohdr.write_text("a,b\n1,2\n")
    code, _, err = cli(capsys, "iqa", "fit", "--images", str(d), "--scores", str(nohdr), "-o", str(tmp_path / "h.npz"))
    assert code != 0 and "'image' and 'score'" in err
