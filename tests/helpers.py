"""Helpers shared by test modules (importable because pyproject sets pytest's pythonpath to tests/)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from srkit.archs import build


def rand_model(name: str, scale: int, **options):
    """`srkit.archs.build(name, scale, **options)` with weights nudged by a fixed-seed N(0, 0.02) so outputs are
    not trivially smooth; eval mode."""
    m = build(name, scale=scale, **options)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return m.eval()


SRC = Path(__file__).resolve().parents[1] / "src"


def subprocess_env() -> dict[str, str]:
    """Environment for `python -m srkit` children: this checkout first, one thread each (2-core CI)."""
    path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def write_tiny_images(root: Path, n: int = 6, side: int = 64, seed: int = 0) -> Path:
    """`n` smooth random RGB images (side x side) in root/A; returns root."""
    rng = np.random.default_rng(seed)
    folder = root / "A"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = Image.fromarray((rng.random((side // 6, side // 6, 3)) * 255).astype(np.uint8))
        small.resize((side, side), Image.BICUBIC).save(folder / f"img{i}.png")
    return root


def randomise(m: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    """Add fixed-seed N(0, std) noise to every parameter of a bare module; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(std * torch.randn(p.shape, generator=g))
    return m.eval()


def run_padded(m: torch.nn.Module, x: torch.Tensor, scale: int, multiple: int) -> torch.Tensor:
    """Reflect-pad (B, C, H, W) to a multiple, run, crop the output back to (H, W) x scale."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return m(x)[..., : h * scale, : w * scale]


@dataclass
class CliResult:
    """What an in-process `srkit` command gave back (the `srkit_cli` fixture), named as `subprocess.run`'s result."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run `srkit ARGS` in this process through the app object: (exit code, stdout, stderr)."""
    from srkit.cli.app import main

    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = 0 if e.code is None else e.code  # sys.exit() / sys.exit(None) is success
    out = capsys.readouterr()
    return code, out.out, out.err


def load_script(path):
    """A benchmark or script file imported as a module (they are not packages)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def textured(side: int, seed: int) -> np.ndarray:
    """A natural-looking (side, side, 3) uint8 test image: smooth random colour fields plus fine texture."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize((side, side), Image.BICUBIC)
    fine = Image.fromarray((rng.random((side // 3, side // 3, 3)) * 255).astype(np.uint8)).resize(
        (side, side), Image.BICUBIC)
    return (0.7 * np.asarray(coarse, np.float64) + 0.3 * np.asarray(fine, np.float64)).astype(np.uint8)


def srgb_icc() -> bytes:
    """An sRGB ICC profile made by littleCMS (Pillow's ImageCms)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_bytes(orientation: int | None = None) -> bytes:
    """EXIF bytes (b"Exif\\0\\0" + TIFF block) with a camera make and, if given, an orientation tag."""
    e = Image.Exif()
    e[0x010F] = "srkit-test"
    if orientation is not None:
        e[0x0112] = orientation
    return e.tobytes()
