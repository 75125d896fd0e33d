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


def _card_section(name: str) -> str:
    """The MODEL_CARD.md section of one shipped model (from its '## name' heading to the next heading)."""
    card = (WEIGHTS_DIR / "MODEL_CARD.md").read_text()
    m = re.search(rf"^## {re.escape(name)}\b.*?(?=^## |\Z)", card, flags=re.S | re.M)
    assert m, f"no section for {name} in MODEL_CARD.md"
    return m.group(0)


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(builtin_weights()))
def test_shipped_model_reproduces_its_model_card(name, data_dir, tmp_path):
    section = _card_section(name)
    scale = name.rsplit("x", 1)[1]
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "srkit", "eval", "--model", name, "--data", str(data_dir),
                        "--sets", "Set5", "Set14", "--scales", scale, "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for row in json.loads(out.read_text())["summary"]:
        m = re.search(rf"\| {row['set']} \| ([\d.]+) / ([\d.]+) \|", section)
        assert m, row["set"]
        assert abs(row["psnr"] - float(m.group(1))) < 1e-3 and abs(row["ssim"] - float(m.group(2))) < 1e-3
