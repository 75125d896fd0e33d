"""Loading and saving models: srkit safetensors, authors' checkpoints in every wrapper, spandrel, errors."""

import pytest
import torch

from srkit.archs import ARCHS, build
from srkit.errors import ModelLoadError
from srkit.models import load_model, save_model


def _randomised(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def _x(c=3, h=12, w=10):
    return torch.rand(1, c, h, w, generator=torch.Generator().manual_seed(1))


def test_srkit_safetensors_round_trip(tmp_path):
    m = _randomised(build("edsr-baseline", scale=2, num_block=2))
    p = save_model(m, tmp_path / "m.safetensors", training_data="unit test")
    m2 = load_model(p)
    assert m2.info.arch == "edsr-baseline" and m2.info.scale == 2 and m2.info.options == {"num_block": 2}
    with torch.no_grad():
        assert torch.equal(m(_x()), m2(_x()))
    with pytest.raises(ModelLoadError, match="x2"):
        load_model(p, scale=4)
    assert [f.name for f in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


@pytest.mark.parametrize("wrapper", ["plain", "params", "params_ema", "state_dict", "module_prefix", "legacy_pickle"])
def test_authors_checkpoint_wrappers(tmp_path, wrapper):
    m = _randomised(build("edsr-baseline", scale=3, rgb_range=255))
    sd = m.module.state_dict()
    obj = {
        "plain": sd,
        "params": {"params": sd},
        "params_ema": {"params": {k: v * 0 for k, v in sd.items()}, "params_ema": sd},
        "state_dict": {"state_dict": sd, "epoch": 3},
        "module_prefix": {f"module.{k}": v for k, v in sd.items()},
        "legacy_pickle": sd,
    }[wrapper]
    path = tmp_path / "edsr_baseline_x3.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=(wrapper != "legacy_pickle"))
    loaded = load_model(path)
    assert loaded.info.arch == "edsr-baseline" and loaded.info.scale == 3 and loaded.info.input_range == 255
    with torch.no_grad():
        torch.testing.assert_close(loaded(_x()), m(_x()))


def test_plain_safetensors_state_dict(tmp_path):
    from safetensors.torch import save_file

    m = _randomised(build("rlfn", scale=2))
    save_file({k: v.contiguous() for k, v in m.module.state_dict().items()}, str(tmp_path / "rlfn.safetensors"))
    loaded = load_model(tmp_path / "rlfn.safetensors")
    assert loaded.info.arch == "rlfn" and loaded.info.scale == 2


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"params": Evil()}, path)
    with pytest.raises(ModelLoadError, match="weights_only"):
        load_model(path)


def test_unknown_layout_lists_what_was_tried(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"foo.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ModelLoadError) as e:
        load_model(path)
    msg = str(e.value)
    assert "tried" in msg and "edsr" in msg and "spandrel" in msg


def test_bad_files(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "text.safetensors").write_text("hello")
    for name in ("empty.pth", "text.safetensors", "missing.pth"):
        with pytest.raises(ModelLoadError):
            load_model(tmp_path / name)
    with pytest.raises(ModelLoadError, match="architecture without shipped weights"):
        load_model("edsr")


def test_spandrel_fallback_for_an_architecture_srkit_lacks(tmp_path):
    pytest.importorskip("spandrel")
    from spandrel.architectures.PLKSR import PLKSR

    net = PLKSR(dim=32, n_blocks=2, upscaling_factor=2).eval()
    path = tmp_path / "plksr.pth"
    torch.save({"params": net.state_dict()}, path)
    loaded = load_model(path)
    assert loaded.info.arch.startswith("spandrel:") and loaded.info.scale == 2
    x = _x(h=16, w=16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))


def test_spandrel_agrees_with_srkit_on_esrgan_layout():
    spandrel = pytest.importorskip("spandrel")
    m = _randomised(build("rrdbnet", scale=4, num_block=2), seed=3)
    desc = spandrel.ModelLoader().load_from_state_dict(m.module.state_dict())
    assert desc.scale == 4
    x = _x(h=8, w=8)
    with torch.no_grad():
        torch.testing.assert_close(desc.model.eval()(x), m(x), atol=1e-5, rtol=1e-5)


def test_every_detector_recognises_its_own_layout():
    from srkit.models import model_from_state_dict

    small = {
        "edsr": dict(num_block=2), "rcan": dict(num_group=2, num_block=2),
        "rrdbnet": dict(num_block=1), "swinir": dict(depths=(2, 2), num_heads=(2, 2), embed_dim=24),
    }
    for name, spec in ARCHS.items():
        if spec.kind != "generator":
            continue
        scale = 4 if 4 in spec.scales else spec.scales[-1]
        m = _randomised(build(name, scale=scale, **small.get(name, {})))
        loaded = model_from_state_dict(m.module.state_dict(), scale=scale)
        assert loaded.info.arch == name, (name, loaded.info.arch)
        x = _x(c=m.info.in_channels, h=16, w=16)
        # Compare the bare modules: detectors also set the input range the authors' weights expect (0..255 for
        # RLFN/ECBSR/EDSR official files), which is a property of the file, not of the layout.
        with torch.no_grad():
            torch.testing.assert_close(loaded.module(x), m.module(x), msg=name)
