"""Shipped weights load offline by name, are small, and reproduce their model card."""

import json
import re
import subprocess
import sys

import pytest

from srkit.models import WEIGHTS_DIR, builtin_weights, load_model


def test_shipped_models_load_by_name_and_fit_the_budget():
    shipped = builtin_weights()
    assert "tiny-x4" in shipped
    for name, path in shipped.items():
        assert path.stat().st_size <= 3 * 1024 * 1024
        m = load_model(name)
        assert m.info.scale == int(re.search(r"x(\d)$", name).group(1))


@pytest.mark.data
def test_tiny_x4_reproduces_its_model_card(data_dir, tmp_path):
    card = (WEIGHTS_DIR / "MODEL_CARD.md").read_text()
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "srkit", "eval", "--model", "tiny-x4", "--data", str(data_dir),
                        "--sets", "Set5", "Set14", "--scales", "4", "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for row in json.loads(out.read_text())["summary"]:
        m = re.search(rf"\| {row['set']} \| ([\d.]+) / ([\d.]+) \|", card)
        assert m, row["set"]
        assert abs(row["psnr"] - float(m.group(1))) < 1e-3 and abs(row["ssim"] - float(m.group(2))) < 1e-3
