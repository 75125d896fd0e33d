"""Every config in configs/ validates, and the ablation configs differ from their baseline in one aspect only."""

from pathlib import Path

import pytest

from srkit.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _load(path: Path, tmp_path):
    return load_config(path, [f"data.root={tmp_path}"])


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_validates_and_builds(path, tmp_path):
    from srkit.archs import build

    cfg = _load(path, tmp_path)
    build(cfg.model.arch, cfg.model.scale, **cfg.model.options)


def test_ablations_change_one_thing_each(tmp_path):
    base = _load(CONFIGS / "ablations" / "baseline.yaml", tmp_path).model_dump()
    others = sorted(p for p in (CONFIGS / "ablations").glob("*.yaml") if p.stem != "baseline")
    assert len(others) >= 6
    for p in others:
        cfg = _load(p, tmp_path).model_dump()
        diff = {(sec, k) for sec in base for k in (base[sec] if isinstance(base[sec], dict) else {})
                if base[sec][k] != cfg[sec][k]}
        assert len(diff) == 1, (p.name, diff)  # model.options or data.sampler: same steps, data, seed, optimiser
        assert cfg["train"] == base["train"] and cfg["optim"] == base["optim"]
