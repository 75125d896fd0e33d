"""DNI for pairs that ship together (`srkit.interpolation.denoise_model`, `srkit upscale --denoise A`).

The real pair (Real-ESRGAN general-x4v3 / general-wdn-x4v3) comes from the catalogue; here two small models of one
architecture stand in for it in a temporary cache under the pair's names, as `srkit pull` would leave them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.errors import ConfigError
from srkit.interpolation import DENOISE_PAIRS, denoise_model, denoise_pair, interpolate
from srkit.models import load_model, save_model

WEAK, STRONG = "4x-realesr-general-wdn-x4v3", "4x-realesr-general-x4v3"


@pytest.fixture()
def pulled_pair(tmp_path, monkeypatch):
    from helpers import rand_model

    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True)
    for seed, name in enumerate((WEAK, STRONG)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            m = rand_model("srvggnet-compact", 4, num_feat=8, num_conv=2)
        save_model(m, models / f"{name}.safetensors")
    return models


def test_pair_table_and_lookup():
    assert DENOISE_PAIRS[STRONG] == DENOISE_PAIRS[WEAK] == (WEAK, STRONG)
    assert denoise_pair(STRONG) == (WEAK, STRONG)


@pytest.mark.parametrize("model", ["real-x4", "real-x4-gan", "real-x4-ctrl", "balanced-x4", "no/such/file.pth"])
def test_models_without_a_pair_are_refused_with_one_line(model):
    with pytest.raises(ConfigError, match="has no denoising pair") as e:
        denoise_pair(model)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="has no denoising pair"):
        denoise_model(load_model("tiny-x4"), 0.5)


def test_denoise_model_interpolates_the_pair(pulled_pair):
    weak, strong = load_model(WEAK), load_model(STRONG)
    x = torch.rand(1, 3, 9, 8)
    with torch.no_grad():
        assert torch.allclose(denoise_model(STRONG, 0.0)(x), weak(x), atol=1e-6)
        assert torch.allclose(denoise_model(WEAK, 1.0)(x), strong(x), atol=1e-6)
        mid = denoise_model(STRONG, 0.3)
        assert torch.allclose(mid(x), interpolate(weak, strong, 0.3)(x))
    for bad in (-0.1, 1.5, float("nan"), True):
        with pytest.raises(ConfigError, match="denoise strength must be a number in \\[0, 1\\]"):
            denoise_model(STRONG, bad)


def test_cli_denoise(srkit_cli, tmp_path, pulled_pair):
    src = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(0).random((10, 12, 3)) * 255).astype(np.uint8)).save(src)
    r = srkit_cli("upscale", src, "-o", tmp_path / "o.png", "--model", STRONG, "--denoise", "0.3", "--dtype", "fp32")
    assert r.returncode == 0, r.stderr
    import srkit

    want = srkit.upscale(src, model=interpolate(WEAK, STRONG, 0.3), dtype="fp32")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), want)
    for args, match in ((["--model", "real-x4", "--denoise", "0.5"], "has no denoising pair"),
                        (["--model", STRONG, "--denoise", "1.5"], "must be in [0, 1]")):
        r = srkit_cli("upscale", src, "-o", tmp_path / "p.png", *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert match in r.stderr and not (tmp_path / "p.png").exists()
