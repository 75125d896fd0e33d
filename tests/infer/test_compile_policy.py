"""When the prepared network runs compiled: compile="auto" (the default) only after a shape has run eagerly for a
while, `warmup` at once, True from each shape's first call; failures fall back to eager. `torch.compile` is
replaced by a recorder here (a real compilation takes 10+ s on the CI's CPU); the compiled form's equality with
eager is a matter of Inductor, checked by benchmarks/small_images.py."""

import warnings

import numpy as np
import pytest
import torch

from srkit.errors import ConfigError
from srkit.infer import Upscaler
from srkit.infer import network
from srkit.models import load_model
from helpers import rand_model


class FakeCompile:
    """Stands in for `torch.compile`: the "compiled" module is the module itself; records what it is given."""

    def __init__(self):
        self.compiled = []  # modules given to torch.compile
        self.calls = []  # input shapes the compiled form ran on

    def __call__(self, module, **kw):
        self.compiled.append(module)
        assert kw.get("dynamic") is False

        def run(x, **inputs):
            self.calls.append(tuple(x.shape))
            return module(x, **inputs)

        return run


@pytest.fixture()
def fake(monkeypatch):
    f = FakeCompile()
    monkeypatch.setattr(torch, "compile", f)
    return f


def _model():
    return rand_model("ecbsr-m4c16", 2)  # deployed copy + bf16: an own copy, so "auto" applies


def _img(h=12, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_auto_is_the_default_and_compiles_a_shape_only_after_enough_eager_time(fake, monkeypatch):
    up = Upscaler(_model(), dtype="bf16")
    assert up.settings()["compiled"] == "auto" and not up.prepared.compiled
    monkeypatch.setattr(network, "AUTO_COMPILE_AFTER_S", 3600.0)
    eager = up.upscale(_img())
    assert fake.compiled == [] and fake.calls == []  # one-off calls never compile
    monkeypatch.setattr(network, "AUTO_COMPILE_AFTER_S", 0.0)
    assert np.array_equal(up.upscale(_img()), eager)  # due now: this call compiles its shape and runs compiled
    assert len(fake.compiled) == 1 and fake.compiled[0] is up.network and len(fake.calls) == 1
    assert up.prepared.compiled and up.prepared.compiled_shapes == 1
    up.upscale(_img())  # the same shape: compiled
    up.upscale(_img(14, 10))  # another shape: also due (threshold 0), compiled on this call
    assert len(fake.calls) == 3 and up.prepared.compiled_shapes == 2 and len(fake.compiled) == 1
    assert up.settings()["compiled"] == "auto"  # the setting, stable over the Upscaler's life


def test_eager_time_counts_per_shape(fake, monkeypatch):
    up = Upscaler(_model(), dtype="bf16")
    monkeypatch.setattr(network, "AUTO_COMPILE_AFTER_S", 3600.0)
    for _ in range(3):
        up.upscale(_img())
    up.upscale(_img(16, 8))
    seconds = up.prepared._eager_seconds
    assert len(seconds) == 2 and all(v > 0 for v in seconds.values())


def test_warmup_compiles_the_shapes_of_one_call_at_once(fake):
    up = Upscaler(_model(), dtype="bf16", tta=True)
    img = _img(12, 10)
    seconds = up.warmup(img)
    assert seconds > 0
    # TTA runs the 8 dihedral transforms: (12, 10) and its transpose (10, 12) are the two shapes.
    assert up.prepared.compiled_shapes == 2 and len(fake.compiled) == 1
    n = len(fake.calls)
    up.upscale(img)
    assert len(fake.calls) == n + 8  # all eight run compiled, no new compilation
    assert up.prepared.compiled_shapes == 2


def test_compiled_shapes_are_capped(fake, monkeypatch):
    monkeypatch.setattr(network, "MAX_COMPILED_SHAPES", 2)
    up = Upscaler(_model(), dtype="bf16")
    for h in (8, 9, 10):
        up.warmup(_img(h, 8))
    assert up.prepared.compiled_shapes == 2
    n = len(fake.calls)
    up.upscale(_img(10, 8))  # the third shape stays eager
    assert len(fake.calls) == n


def test_true_compiles_each_shape_on_its_first_call(fake):
    up = Upscaler(_model(), dtype="bf16", compile=True)
    assert up.settings()["compiled"] is True and len(fake.compiled) == 1
    up.upscale(_img())
    assert up.prepared.compiled_shapes == 1 and len(fake.calls) == 1


def test_auto_falls_back_silently_and_for_good(monkeypatch):
    def broken(module, **kw):
        def run(x, **inputs):
            raise RuntimeError("no compiler here")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    m = _model()
    up = Upscaler(m, dtype="bf16")
    ref = Upscaler(m, dtype="bf16", compile=False).upscale(_img())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" was not asked for: no warning
        up.warmup(_img())
        assert np.array_equal(up.upscale(_img()), ref)
    assert up.settings()["compiled"] is False and not up.prepared.compiled


def test_auto_applies_only_where_it_pays_and_is_safe(fake):
    assert Upscaler(_model(), dtype="bf16").settings()["compiled"] == "auto"
    # A model that runs as given (fp32, nothing to fold): its owner may change its weights; frozen ones would not
    # follow.
    fsrcnn = rand_model("fsrcnn-s", 2)
    assert Upscaler(fsrcnn, dtype="fp32").settings()["compiled"] is False
    # Classical resizers.
    assert Upscaler(load_model("bicubic", scale=2)).settings()["compiled"] is False
    with pytest.raises(ConfigError):
        Upscaler(_model(), compile="sometimes")  # type: ignore[arg-type]


def test_onnxruntime_takes_auto_but_not_true():
    pytest.importorskip("onnxruntime")
    m = rand_model("fsrcnn-s", 2)
    assert Upscaler(m, backend="onnxruntime").settings()["compiled"] is False
    with pytest.raises(ConfigError):
        Upscaler(m, backend="onnxruntime", compile=True)
