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


# The shipped-model classes of issue 4: MACs per output pixel.
_BUDGETS = {"tiny": 1_000, "balanced": 20_000}


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.glob("*.yaml") if p.stem.split("-")[0] in _BUDGETS),
                         ids=lambda p: p.stem)
def test_shipped_model_configs_keep_their_mac_budget(path, tmp_path):
    from srkit.archs import build
    from srkit.archs.probe import count_macs

    cfg = _load(path, tmp_path)
    s = cfg.model.scale
    assert path.stem.endswith(f"-x{s}")
    m = build(cfg.model.arch, s, **{**cfg.model.options, "deploy": True})
    per_px = count_macs(m, (1, 1, 32, 32)) / (32 * s) ** 2
    assert per_px <= _BUDGETS[path.stem.split("-")[0]], per_px


@pytest.mark.parametrize("name", ["tiny-x4", "balanced-x4"])
def test_shipped_weights_keep_their_mac_budget(name):
    from srkit.archs.probe import count_macs
    from srkit.models import builtin_weights, load_model

    if name not in builtin_weights():
        pytest.skip(f"{name} not shipped")
    m = load_model(name)
    s = m.info.scale
    per_px = count_macs(m.module, (1, 1, 32, 32)) / (32 * s) ** 2
    assert per_px <= _BUDGETS[name.split("-")[0]], per_px
    assert builtin_weights()[name].stat().st_size <= 3 * 1024 * 1024
