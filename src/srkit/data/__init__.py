"""Datasets: benchmark sets, training/validation folders, patch samplers and synthetic clips (`srkit.data.clips`).

`srkit.data.benchmark` is imported eagerly (numpy only); the patch and folder modules (torch) on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from srkit.data.benchmark import BenchmarkSet, available_sets, find_set, modcrop

# Public name -> module that defines it; resolved lazily so `import srkit.data` does not import torch.
_LAZY = {
    "ContentSampler": "srkit.data.patches",
    "dihedral": "srkit.data.patches",
    "dihedral_inverse": "srkit.data.patches",
    "random_patch": "srkit.data.patches",
    "sliding_patches": "srkit.data.patches",
    "texture_energy": "srkit.data.patches",
    "HRFolder": "srkit.data.folders",
    "PairedFolder": "srkit.data.folders",
    "ValidationImages": "srkit.data.folders",
    "bicubic_lr": "srkit.data.folders",
    "list_images": "srkit.data.folders",
    "split_files": "srkit.data.folders",
    "ClipCfg": "srkit.data.clips",
    "ClipFolder": "srkit.data.clips",
    "ValidationClips": "srkit.data.clips",
    "benchmark_clip": "srkit.data.clips",
    "synthetic_clip": "srkit.data.clips",
}

__all__ = ["BenchmarkSet", "available_sets", "find_set", "modcrop", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'srkit.data' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
