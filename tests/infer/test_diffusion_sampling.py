"""A diffusion model through the public surface (issue 18): `srkit.upscale(..., steps=, seed=)`, `upscale_file` and
`srkit upscale --steps --seed`; bad steps and seeds are one-line errors before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import srkit
from srkit.archs import build
from srkit.errors import ConfigError
from srkit.models import save_model


@pytest.fixture(scope="module")
def diffusion_file(tmp_path_factory) -> Path:
    """A small random x2 diffusion model whose samples depend on the noise, saved as srkit safetensors."""
    m = build("resshift-unet", 2, channels=[16, 24], prior="bicubic", timesteps=8, sample_steps=2)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.module.unet.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return save_model(m, tmp_path_factory.mktemp("w") / "diffusion-x2.safetensors")


def _img(side: int = 24) -> np.ndarray:
    return (np.random.default_rng(0).random((side, side, 3)) * 255).astype(np.uint8)


def test_api_steps_and_seed(diffusion_file):
    a = srkit.upscale(_img(), model=diffusion_file, steps=3, seed=4)
    b = srkit.upscale(_img(), model=diffusion_file, steps=3, seed=np.int64(4))  # numpy integers are integers
    c = srkit.upscale(_img(), model=diffusion_file, steps=3, seed=5)
    d = srkit.upscale(_img(), model=diffusion_file, seed=4)  # the model's default: 2 steps
    assert a.shape == (48, 48, 3) and np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert np.array_equal(d, srkit.upscale(_img(), model=diffusion_file, steps=2, seed=4))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"steps": 9}, r"steps must be an integer in 1\.\.8 \(the model's trained chain\), got 9"),
    ({"steps": 0}, r"steps must be an integer >= 1"),
    ({"steps": 2.5}, r"steps must be an integer >= 1"),
    ({"seed": 1.5}, r"seed must be an integer, got 1\.5"),
    ({"seed": "7"}, r"seed must be an integer, got '7'"),
])
def test_api_bad_steps_and_seeds(diffusion_file, kwargs, message):
    with pytest.raises(ConfigError, match=message) as e:
        srkit.upscale(_img(), model=diffusion_file, **kwargs)
    assert "\n" not in str(e.value)


def test_steps_for_a_model_without_them():
    with pytest.raises(ConfigError, match="not a diffusion model: steps is for diffusion models"):
        srkit.upscale(_img(8), model="bicubic", steps=4)


def test_upscale_file_and_cli(diffusion_file, tmp_path, srkit_cli):
    from srkit.io import read_image, write_image

    src = tmp_path / "in.png"
    write_image(src, _img())
    out = srkit.upscale_file(src, tmp_path / "api.png", diffusion_file, steps=3, seed=1)
    r = srkit_cli("upscale", src, "-o", tmp_path / "cli.png", "--model", diffusion_file, "--steps", 3, "--seed", 1)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(read_image(out)[0], read_image(tmp_path / "cli.png")[0])
    # another seed is another request: the existing output is redone, not skipped
    r = srkit_cli("upscale", src, "-o", tmp_path / "cli.png", "--model", diffusion_file, "--steps", 3, "--seed", 2)
    assert r.returncode == 0 and "1 written" in r.stdout, r.stdout
    assert not np.array_equal(read_image(out)[0], read_image(tmp_path / "cli.png")[0])


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--steps", "20"], 1, "steps must be an integer in 1..8"),
    (["--steps", "0"], 2, "--steps"),
    (["--seed", "1.5"], 2, "Invalid value for '--seed'"),
])
def test_cli_bad_steps_and_seed_are_one_line(diffusion_file, tmp_path, srkit_cli, args, code, message):
    from srkit.io import write_image

    src = tmp_path / "in.png"
    write_image(src, _img(8))
    r = srkit_cli("upscale", src, "-o", tmp_path / "out.png", "--model", diffusion_file, *args)
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "out.png").exists()
