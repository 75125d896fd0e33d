"""Shipped weights load offline by name, are small, and reproduce their model card."""

import json
import os
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
        assert m.info.scale == int(re.search(r"x(\d+)", name).group(1))


def _card_section(name: str) -> str:
    """The MODEL_CARD.md section of one shipped model (from its '## name' heading to the next heading)."""
    card = (WEIGHTS_DIR / "MODEL_CARD.md").read_text()
    m = re.search(rf"^## {re.escape(name)}(?![\w-]).*?(?=^## |\Z)", card, flags=re.S | re.M)
    assert m, f"no section for {name} in MODEL_CARD.md"
    return m.group(0)


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(builtin_weights()))
def test_shipped_model_reproduces_its_model_card(name, data_dir, tmp_path, srkit_cli, monkeypatch):
    section = _card_section(name)
    scale = re.search(r"x(\d+)", name).group(1)
    out = tmp_path / "r.json"
    # Blind models (real-world and diffusion) are carded on degraded Set14 (realesrgan preset, seed 0; a diffusion
    # model samples with `srkit eval`'s fixed seed); the others on bicubic Set5 + Set14.
    real = name.startswith(("real-", "diffusion-"))
    sets = ["Set14"] if real else ["Set5", "Set14"]
    extra = ["--degradation", "realesrgan", "--degradation-seed", "0"] if real else []
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))  # read when the degraded LR is cached, not at start
    r = srkit_cli("eval", "--model", name, "--data", data_dir, "--sets", *sets, "--scales", scale, "--json", out,
                  *extra)
    assert r.returncode == 0, r.stderr
    for row in json.loads(out.read_text())["summary"]:
        label = f"{row['set']} \\(realesrgan, seed 0\\)" if real else row["set"]
        m = re.search(rf"\| {label} \| ([\d.]+) / ([\d.]+) \|", section)
        assert m, row["set"]
        assert abs(row["psnr"] - float(m.group(1))) < 1e-3 and abs(row["ssim"] - float(m.group(2))) < 1e-3


def _flat_noise(img, s: int) -> float:
    """Mean per-channel std inside the flat 8x8-LR-pixel blocks of the test photo (margins of 2 LR px dropped)."""
    import numpy as np

    b, m = 8 * s, 2 * s
    return float(np.mean([img[i * b + m : (i + 1) * b - m, j * b + m : (j + 1) * b - m].reshape(-1, 3).std(0).mean()
                          for i in range(6) for j in range(8)]))


@pytest.mark.parametrize("name", [n for n in sorted(builtin_weights()) if n.startswith("real-")])
def test_real_models_upscale_a_jpeg_photo_offline(name, tmp_path):
    """`srkit upscale --model real-x4-gan photo.jpg`: a noisy JPEG in, a 4x PNG out, nothing downloaded; in flat
    areas the blind model leaves less noise than bicubic does."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    base = np.kron(rng.random((6, 8, 3)), np.ones((8, 8, 1))) * 200 + 20  # flat 8x8 patches of random colour
    noisy = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / "photo.jpg", quality=40)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "no-cache")}
    outs = {}
    for model in (name, "bicubic"):
        dst = tmp_path / f"{model}.png"
        r = subprocess.run([sys.executable, "-m", "srkit", "upscale", str(tmp_path / "photo.jpg"), "-o", str(dst),
                            "--model", model, "--scale", "4"], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        outs[model] = np.asarray(Image.open(dst)).astype(np.float64)
    assert outs[name].shape == (192, 256, 3)
    assert _flat_noise(outs[name], 4) < 0.97 * _flat_noise(outs["bicubic"], 4)
