"""Run configs: validation errors are one line naming the key; overrides; schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from srkit.errors import ConfigError
from srkit.train.config import RunConfig, ScheduleCfg, apply_overrides, dump_config, load_config, parse_config
from srkit.train.loop import lr_at

BASE = {
    "model": {"arch": "ecbsr-m4c16", "scale": 4},
    "data": {"root": "/data"},
    "train": {"steps": 100},
}


def write(tmp_path: Path, data) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def config_error(tmp_path: Path, data, overrides=()) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, data), list(overrides))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_minimal_config_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert isinstance(cfg, RunConfig)
    assert cfg.data.train_sets == ["T91", "BSDS200", "BSDS500test", "General100"]  # the 541 training images
    assert cfg.data.val_count == 10 and cfg.data.color is None
    assert [t.name for t in cfg.loss] == ["l1"] and cfg.optim.name == "adam" and cfg.schedule.name == "cosine"
    assert cfg.train.ema_decay == 0.999 and cfg.distill is None
    with pytest.raises(Exception):  # frozen
        cfg.train.steps = 3  # type: ignore[misc]
    assert load_config(write(tmp_path, yaml.safe_load(dump_config(cfg)))) == cfg


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.stepz=3", "train.stepz: unknown key (known: steps, seed,"),
        ("bogus=1", "bogus: unknown key (known: model, data,"),
        ("train.steps=ten", "train.steps: Input should be a valid integer"),
        ("train.steps=0", "train.steps: Input should be greater than 0"),
        ("model.arch=nope", "model.arch: unknown architecture 'nope'"),
        ("model.arch=vgg-discriminator", "model.arch: vgg-discriminator is a discriminator"),
        ("model.scale=5", "ecbsr-m4c16 supports scales 2, 3, 4, not 5"),
        ("data.sampler=grid", "data.sampler: Input should be 'random', 'content' or 'sliding'"),
        ("loss=[{name: l3}]", "loss[0].name: Input should be"),
        ("loss=[]", "loss: List should have at least 1 item"),
        ("optim.betas=[0.9, 1.5]", "optim.betas: betas must be in [0, 1)"),
        ("schedule.milestones=[10, 5]", "schedule.milestones: milestones must be positive and strictly increasing"),
        ("schedule.warmup_steps=1000", "warmup_steps (1000) is longer than train.steps (100)"),
        ("distill.feature_weight=1", "distill.teacher: Field required"),
    ],
)
def test_problems_are_one_line_naming_the_key(tmp_path, override, expected):
    assert expected in config_error(tmp_path, BASE, [override])


@pytest.mark.parametrize("name", ["Set5", "set14", "B100", "Urban100", "sub/Set5"])
def test_benchmark_sets_are_refused(tmp_path, name):
    msg = config_error(tmp_path, BASE, [f"data.train_sets=[T91, {name}]"])
    assert msg.startswith("data.train_sets:") and "benchmark set" in msg and name in msg


def test_overrides(tmp_path):
    cfg = load_config(write(tmp_path, BASE), [
        "train.steps=7", "data.train_sets=[X, Y]", "model.options.channel_nums=8", "optim.grad_clip=0.5",
        "loss=[{name: l1}, {name: fft, weight: 0.1}]", "loss.1.weight=0.05", "train.ema_decay=null",
        "distill.teacher=teacher.safetensors", "data.root=/elsewhere",
    ])
    assert cfg.train.steps == 7 and cfg.data.train_sets == ["X", "Y"] and cfg.model.options == {"channel_nums": 8}
    assert cfg.optim.grad_clip == 0.5 and cfg.loss[1].name == "fft" and cfg.loss[1].weight == 0.05
    assert cfg.train.ema_decay is None and cfg.distill.teacher == "teacher.safetensors"
    assert cfg.data.root == Path("/elsewhere")
    # Overrides act on the dict before validation and never modify the caller's data.
    base = {"train": {"steps": 1}}
    assert apply_overrides(base, ["train.steps=2"]) == {"train": {"steps": 2}} and base["train"]["steps"] == 1
    # A config may come entirely from overrides.
    assert load_config(None, ["model.arch=fsrcnn-s", "model.scale=2", "train.steps=1", "data.root=/d"]).model.scale == 2


@pytest.mark.parametrize(
    ("override", "expected"),
    [("train.steps", "expected key.sub=value"), ("=3", "expected key.sub=value"),
     ("train..steps=3", "expected key.sub=value"), ("train.steps.x=3", "train.steps.x: cannot set a key inside"),
     ("loss.5.weight=1", "loss.5: no item 5 in a list of 1")],
)
def test_bad_overrides(tmp_path, override, expected):
    assert expected in config_error(tmp_path, {**BASE, "loss": [{"name": "l1"}]}, [override])


def test_data_root_from_environment(tmp_path, monkeypatch):
    no_root = {**BASE, "data": {}}
    monkeypatch.delenv("SRKIT_DATA", raising=False)
    assert config_error(tmp_path, no_root).startswith("data.root: no data folder")
    monkeypatch.setenv("SRKIT_DATA", str(tmp_path))
    assert load_config(write(tmp_path, no_root)).data.root == tmp_path


def test_file_problems(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    assert "cfg.yaml: invalid YAML (line 3)" in config_error(tmp_path, "model:\n  arch: [unclosed\n")
    assert "expected a mapping" in config_error(tmp_path, "- 1\n- 2\n")
    assert config_error(tmp_path, {"train": {"steps": 1}}).startswith("model: Field required")
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config([1])


def test_example_config_is_valid(monkeypatch):
    monkeypatch.setenv("SRKIT_DATA", "/data")
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "tiny-x4.yaml")
    assert cfg.model.arch == "ecbsr-m4c16" and cfg.model.scale == 4
    assert cfg.data.train_sets == ["T91", "BSDS200", "BSDS500test", "General100"]


def test_lr_schedule_is_a_pure_function_of_the_step():
    cos = ScheduleCfg(name="cosine", warmup_steps=10, min_lr=1e-6)
    lrs = [lr_at(t, 1e-3, cos, 110) for t in range(110)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3) and lrs[10] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-6) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[60] == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5 * (1 + math.cos(math.pi * 50 / 99)))
    ms = ScheduleCfg(name="multistep", milestones=[5, 8], gamma=0.1)
    assert [lr_at(t, 1.0, ms, 10) for t in (0, 4, 5, 7, 8, 9)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_at(99, 0.5, ScheduleCfg(name="constant"), 100) == 0.5


def test_time_fraction_moves_the_cosine_to_min_lr():
    cos = ScheduleCfg(name="cosine", warmup_steps=10, min_lr=1e-6)
    # Step 20 of 1000 is early by steps, but with the budget spent the rate is min_lr; half spent: the midpoint.
    assert lr_at(20, 1e-3, cos, 1000, time_fraction=1.0) == pytest.approx(1e-6)
    assert lr_at(20, 1e-3, cos, 1000, time_fraction=0.5) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5)
    # The step count wins when it is further along; warm-up is by steps only.
    assert lr_at(900, 1e-3, cos, 1000, time_fraction=0.1) == lr_at(900, 1e-3, cos, 1000)
    assert lr_at(4, 1e-3, cos, 1000, time_fraction=0.9) == pytest.approx(5e-4)


def test_max_minutes_must_be_positive():
    with pytest.raises(ConfigError, match="max_minutes"):
        parse_config({"model": {"arch": "ecbsr-m4c16", "scale": 4}, "data": {"root": "/d", "train_sets": ["A"]},
                      "train": {"steps": 10, "max_minutes": 0}})


def test_yaml_on_key_of_a_degradation_is_read_as_on(tmp_path):
    # PyYAML reads `on:` as the boolean True; the config must still mean `on: batch`.
    text = ("model: {arch: ecbsr-m4c16, scale: 4}\n"
            "data: {root: /d, train_sets: [A], degradation: {preset: realesrgan, on: batch}}\n"
            "train: {steps: 10}\n")
    (tmp_path / "c.yaml").write_text(text)
    assert load_config(tmp_path / "c.yaml").data.degradation.on == "batch"


def test_gpu_configs_are_valid(monkeypatch):
    monkeypatch.setenv("SRKIT_DATA", "/data")
    for path in sorted((Path(__file__).resolve().parents[2] / "configs" / "gpu").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.train.max_minutes is not None and len(cfg.data.train_sets) == 4, path.name
        if cfg.data.degradation is not None:
            assert cfg.data.degradation.preset == "realesrgan", path.name
