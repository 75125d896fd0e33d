"""Upscaler fast paths: dtype policy, channels_last, deploy, TTA, batched tiles, onnxruntime, threads."""

import threading

import numpy as np
import pytest
import torch

from srkit.archs import build
from srkit.errors import ConfigError, ShapeError
from srkit.infer import Upscaler
from srkit.infer import network as upscaler_mod
from srkit.models import load_model
from helpers import rand_model as _rand_model


def _x(c, h, w, seed=1, b=1):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def edsr():
    return _rand_model("edsr-baseline", 2, num_block=2)


def _reference(model, x):
    """Plain eager fp32 NCHW forward of the model itself."""
    with torch.inference_mode():
        return model(x).float()


def test_dtype_policy(edsr, monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(upscaler_mod, "cpu_has_fast_bf16", lambda: True)
    assert upscaler_mod.resolve_dtype("auto", cpu, edsr) == "bf16"
    fp32_only = build("edsr-baseline", scale=2, num_block=1)
    object.__setattr__(fp32_only.info, "safe_dtypes", ("fp32",))
    assert upscaler_mod.resolve_dtype("auto", cpu, fp32_only) == "fp32"
    assert upscaler_mod.resolve_dtype("auto", cpu, load_model("bicubic", scale=2)) == "fp32"
    monkeypatch.setattr(upscaler_mod, "cpu_has_fast_bf16", lambda: False)
    assert upscaler_mod.resolve_dtype("auto", cpu, edsr) == "fp32"
    for name in ("fp32", "bf16", "fp16"):
        assert upscaler_mod.resolve_dtype(name, cpu, edsr) == name
    with pytest.raises(ConfigError):
        Upscaler(edsr, dtype="int8")


@pytest.mark.parametrize("dtype,tol", [("fp32", 1e-5), ("bf16", 0.05), ("fp16", 0.02)])
def test_dtypes_and_channels_last_match_fp32(edsr, dtype, tol):
    x = _x(3, 24, 20)
    ref = _reference(edsr, x)
    for cl in (True, False):
        y = Upscaler(edsr, dtype=dtype, channels_last=cl).upscale_tensor(x)
        assert y.dtype == torch.float32 and y.is_contiguous()
        assert (y - ref).abs().max().item() <= tol, (dtype, cl)


def test_deploy_runs_folded_copy_and_leaves_model_alone():
    m = _rand_model("ecbsr-m4c16", 2)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    up = Upscaler(m)
    assert up.settings()["deployed"] and up.network is not m
    assert not any(hasattr(mod, "conv1x1_3x3") for mod in up.network.modules())
    assert m.state_dict().keys() == before.keys()
    x = _x(1, 20, 18)
    assert (up.upscale_tensor(x) - _reference(m, x)).abs().max().item() <= 1e-4
    assert not Upscaler(m, deploy=False).settings()["deployed"]
    plain = _rand_model("fsrcnn-s", 2)
    assert Upscaler(plain).network is plain  # nothing to fold: no copy
    w = plain.module.first_part[0].weight
    low = Upscaler(plain, dtype="bf16").network.module.module
    assert low.first_part[0].weight.dtype == torch.bfloat16  # stored in the compute dtype ...
    assert plain.module.first_part[0].weight is w and w.dtype == torch.float32  # ... in a copy


def test_tta_equals_manual_ensemble_and_tiles_exactly(edsr):
    from srkit.data.patches import dihedral, dihedral_inverse

    x = _x(3, 18, 13)
    with torch.inference_mode():
        manual = sum(dihedral_inverse(edsr(dihedral(x, k)), k) for k in range(8)) / 8
    whole = Upscaler(edsr, tta=True).upscale_tensor(x)
    tiled = Upscaler(edsr, tta=True, tile=10, batch=2).upscale_tensor(x)
    assert (whole - manual).abs().max().item() <= 1e-5
    assert (tiled - whole).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name,scale,opt,tile,overlap", [
    ("fsrcnn-s", 3, {}, 16, None),
    ("imdn", 2, dict(num_modules=1), 24, 8),
])
def test_batched_tiles_equal_unbatched(name, scale, opt, tile, overlap):
    m = _rand_model(name, scale, **opt)
    x = _x(m.info.in_channels, 70, 53, b=2)
    one = Upscaler(m, tile=tile, overlap=overlap).upscale_tensor(x)
    many = Upscaler(m, tile=tile, overlap=overlap, batch=4).upscale_tensor(x)
    assert (one - many).abs().max().item() <= 1e-5
    with pytest.raises(ConfigError):
        Upscaler(m, batch=0)


def test_onnxruntime_backend_matches_torch(edsr):
    pytest.importorskip("onnxruntime")
    up = Upscaler(edsr, backend="onnxruntime", tile=16, batch=2)
    assert up.settings()["backend"] == "onnxruntime" and up.compute_dtype == "fp32"
    x = _x(3, 37, 29)
    ref = Upscaler(edsr, tile=16).upscale_tensor(x)
    assert (up.upscale_tensor(x) - ref).abs().max().item() <= 1e-4
    gray = _x(1, 20, 24)  # gray into an RGB model: replicated, averaged back, as SRModel does
    assert (up.upscale_tensor(gray) - Upscaler(edsr).upscale_tensor(gray)).abs().max().item() <= 1e-4
    with pytest.raises(ConfigError):
        Upscaler(edsr, backend="onnxruntime", dtype="bf16")
    with pytest.raises(ConfigError):
        Upscaler(edsr, backend="tensorrt")


def test_onnxruntime_y_model_rgb_and_gray():
    pytest.importorskip("onnxruntime")
    m = _rand_model("fsrcnn-s", 2)
    up = Upscaler(m, backend="onnxruntime")
    for c in (3, 1):
        x = _x(c, 21, 26, seed=c)
        assert (up.upscale_tensor(x) - _reference(m, x)).abs().max().item() <= 1e-4
    with pytest.raises(ShapeError):
        up.upscale_tensor(_x(2, 8, 8))


def test_compile_failure_falls_back_once(edsr, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        up = Upscaler(edsr, compile=True)
    x = _x(3, 12, 12)
    assert (up.upscale_tensor(x) - _reference(edsr, x)).abs().max().item() <= 1e-5
    assert not up.settings()["compiled"]

    def fails_when_run(module, **kw):
        def run(x):
            raise RuntimeError("inductor exploded")
        return run

    monkeypatch.setattr(torch, "compile", fails_when_run)
    up = Upscaler(edsr, compile=True)
    with pytest.warns(RuntimeWarning, match="inductor exploded"):
        y = up.upscale_tensor(x)
    assert (y - _reference(edsr, x)).abs().max().item() <= 1e-5
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        up.upscale_tensor(x)


def test_two_threads_share_one_upscaler(edsr):
    up = Upscaler(edsr, dtype="auto", tile=16, batch=2)
    images = [np.random.default_rng(i).integers(0, 256, (24 + 3 * i, 21, 3), dtype=np.uint8) for i in range(4)]
    sequential = [up.upscale(im) for im in images]
    results: dict[int, np.ndarray] = {}

    def work(ids):
        for _ in range(2):
            for i in ids:
                results[i] = up.upscale(images[i])

    threads = [threading.Thread(target=work, args=(ids,)) for ids in ([0, 2], [1, 3])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, ref in enumerate(sequential):
        assert np.array_equal(results[i], ref)
