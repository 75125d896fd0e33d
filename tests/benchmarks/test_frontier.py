"""benchmarks/frontier.py on a tiny synthetic Set5/B100 with a copy of tiny-x4 as the candidate checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from helpers import load_script, textured
from PIL import Image

FRONTIER = Path(__file__).resolve().parents[2] / "benchmarks" / "frontier.py"

CSV = """model,scale,params,macs_720p_G,train_data,set5_psnr,set5_ssim,b100_psnr,b100_ssim,source
bicubic,4,0,,,28.42,0.8104,25.96,0.6675,paper
FSRCNN,2,12000,6,T91+General100,37.00,0.9558,31.53,0.8920,paper
FSRCNN,4,12000,5,T91+General100,30.71,0.8657,26.98,0.7150,paper
RRDB,4,16700000,,DF2K+OST,32.73,0.9011,27.85,0.7455,paper
"""


def _data(root: Path) -> Path:
    """Set5 and B100 with two 48x48 HR images each; the stored LR is MATLAB bicubic plus a fixed +6 offset, so a
    score from the disk LR differs from one made by imresize_matlab."""
    from srkit.evaluate import make_lr

    for k, s in enumerate(("Set5", "B100")):
        (root / s / "HR").mkdir(parents=True)
        (root / s / "LR_bicubic" / "X4").mkdir(parents=True)
        for i in range(2):
            hr = textured(48, 10 * k + i)
            Image.fromarray(hr).save(root / s / "HR" / f"im{i}.png")
            lr = np.clip(make_lr(hr, 4).astype(np.int16) + 6, 0, 255).astype(np.uint8)
            Image.fromarray(lr).save(root / s / "LR_bicubic" / "X4" / f"im{i}x4.png")
    return root


def test_frontier_end_to_end(tmp_path):
    from srkit.evaluate import evaluate
    from srkit.models import load_model, save_model

    f = load_script(FRONTIER)
    data = _data(tmp_path / "data")
    (tmp_path / "published.csv").write_text(CSV)
    # A trained model (tiny-x4's weights, 11.8K parameters): its score tells the stored LR from a remade one.
    ckpt = save_model(load_model("tiny-x4"), tmp_path / "best.safetensors",
                      training_data="T91 + BSDS200 (291 images, 10 held out); never Set5")

    # Published rows: only x4; MACs per output pixel from GMACs at 1280x720; rows without MACs to the table.
    plotted, missing = f.read_published(tmp_path / "published.csv")
    assert [p.name for p in plotted] == ["FSRCNN"] and [p.name for p in missing] == ["bicubic", "RRDB"]
    assert math.isclose(plotted[0].macs_per_px, 5e9 / (1280 * 720))  # 5,425.3
    assert plotted[0].psnr == {"Set5": 30.71, "B100": 26.98} and plotted[0].train_data == "T91+General100"

    out = tmp_path / "docs" / "frontier.png"
    argv = ["--data", str(data), "--published", str(tmp_path / "published.csv"), "--models",
            "--extra", f"cand={ckpt}", "--out", str(out), "--threads", "1"]
    assert f.main(argv) == 0

    # The PNG is whole, of the fixed size, and no temp file is left beside it.
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (round(f.FIGSIZE[0] * f.DPI), round(f.FIGSIZE[1] * f.DPI))
    assert sorted(p.name for p in out.parent.iterdir()) == ["frontier.md", "frontier.png"]

    # The candidate is scored by srkit's evaluation on the stored LR (not on LR made again), Y, border 4.
    disk = evaluate(ckpt, data, ("Set5", "B100"), (4,), metrics=("psnr",), lr_from_disk=True)
    made = evaluate(ckpt, data, ("Set5", "B100"), (4,), metrics=("psnr",))
    cand = f.measure("cand", ckpt, "candidate", data)
    assert {r.set: r.scores["psnr"] for r in disk.summary} == dict(cand.psnr)
    assert all(b.scores["psnr"] - a.scores["psnr"] > 1.0 for a, b in zip(disk.summary, made.summary))
    assert cand.macs_per_px == 729 and cand.train_data == "T91+BSDS200 (291 images)"  # ECBSR-M4C16 deployed

    md = out.with_suffix(".md").read_text()
    assert "![" in md and "](frontier.png)" in md and "python benchmarks/frontier.py --data" in md
    on_plot, _, no_macs = md.partition("without a MACs figure")
    assert "| FSRCNN | T91+General100 | 12.0K | 5,425 |" in on_plot and "RRDB" not in on_plot
    assert "| RRDB | DF2K+OST | 16.70M | 32.73 / 0.9011 | 27.85 / 0.7455 | paper |" in no_macs
    assert f"| cand | candidate | T91+BSDS200 (291 images) | 11.8K | 729 | {cand.psnr['Set5']:.4f} /" in md
