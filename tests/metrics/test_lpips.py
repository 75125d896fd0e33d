"""LPIPS: the published formula, the lpips package's linear weights, input handling and missing-backbone errors.

Every test uses the seeded random backbone (``backbone="random"``); ImageNet weights are not available here.
"""

import importlib

import numpy as np
import pytest
import torch

from srkit.errors import ConfigError, ShapeError
from srkit.io import write_image
from srkit.metrics import METRICS, lpips
from srkit.ops import imresize_matlab

lp = importlib.import_module("srkit.metrics.lpips")  # the module (srkit.metrics.lpips is the function)

pytest.importorskip("lpips", reason="LPIPS linear weights come from the 'lpips' package (srkit[metrics])")


def _texture(h=96, w=96, seed=0):
    """A seeded textured uint8 RGB image (smooth shapes plus grain)."""
    rng = np.random.default_rng(seed)
    base = imresize_matlab(rng.random((h // 8, w // 8, 3)), output_shape=(h, w))
    img = base + rng.normal(0, 0.03, (h, w, 3))
    return np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)


def _noisy(img, sigma, seed=1):
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)


@pytest.fixture()
def no_hub(tmp_path, monkeypatch):
    """torch.hub's folder points at an empty directory, so the default backbone file is missing."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def test_identical_images_score_zero():
    img = _texture()
    assert lpips(img, img, backbone="random") == 0.0
    assert lpips(img, img, net="vgg", backbone="random") == 0.0
    # the network itself (no shortcut) also gives exactly zero
    model = lp.lpips_model("alex", "random")
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.inference_mode():
        assert float(model(x, x.clone()).sum()) == 0.0


def test_symmetric_and_input_forms_agree():
    a, b = _texture(seed=0), _noisy(_texture(seed=0), 20)
    ab, ba = lpips(a, b, backbone="random"), lpips(b, a, backbone="random")
    assert ab > 0 and ab == pytest.approx(ba, rel=1e-6, abs=1e-9)
    # float [0, 1] arrays and (C, H, W) tensors score like the uint8 array
    af = a.astype(np.float64) / 255
    bt = torch.from_numpy(b).permute(2, 0, 1).float() / 255
    assert lpips(af, bt, backbone="random") == pytest.approx(ab, rel=1e-6)


def test_gray_is_repeated_to_rgb():
    a, b = _texture()[..., 0], _noisy(_texture(), 20)[..., 0]
    rgb = lpips(np.repeat(a[..., None], 3, 2), np.repeat(b[..., None], 3, 2), backbone="random")
    assert lpips(a, b, backbone="random") == pytest.approx(rgb, rel=1e-6)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_grows_with_noise(net):
    img = _texture(seed=3)
    scores = [lpips(_noisy(img, s), img, net=net, backbone="random") for s in (5, 20, 50)]
    assert 0 < scores[0] < scores[1] < scores[2], scores


def test_published_formula_by_hand():
    """Recompute LPIPS from the backbone features and the lin weights, stage by stage, without the module's
    distance code: scaling layer, unit-normalised channels, squared difference, 1x1 weights, spatial mean."""
    a, b = _texture(seed=5), _noisy(_texture(seed=5), 30)
    model = lp.lpips_model("alex", "random")
    lins = lp.load_lin_weights("alex")
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def stages(img):
        x = torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255 * 2 - 1
        h = ((x - shift) / scale).float()
        out = []
        for stage in model.stages:
            h = stage(h)
            out.append(h.double())
        return out

    total = 0.0
    with torch.inference_mode():
        for i, (fa, fb) in enumerate(zip(stages(a), stages(b))):
            ua = fa / (torch.sqrt((fa ** 2).sum(1, keepdim=True)) + 1e-10)
            ub = fb / (torch.sqrt((fb ** 2).sum(1, keepdim=True)) + 1e-10)
            diff = (ua - ub) ** 2  # (1, C, H, W)
            conv = torch.nn.functional.conv2d(diff, lins[i].double().view(1, -1, 1, 1))  # the 1x1 layer, no bias
            stage_value = float(conv.mean())
            if i == 0:  # one stage spelled out with explicit loops over channels
                c = diff.shape[1]
                manual = sum(float(lins[0][k]) * float(diff[0, k].mean()) for k in range(c))
                assert stage_value == pytest.approx(manual, rel=1e-9)
                assert stage_value > 0
            total += stage_value
    assert lpips(a, b, backbone="random") == pytest.approx(total, rel=1e-5)


@pytest.mark.parametrize("net, channels", [("alex", (64, 192, 384, 256, 256)), ("vgg", (64, 128, 256, 512, 512))])
def test_linear_weights_from_lpips_package(net, channels):
    path = lp.lin_weights_path(net)
    assert path.name == f"{net}.pth" and path.parent.name == "v0.1" and path.parent.parent.name == "weights"
    lins = lp.load_lin_weights(net)
    assert tuple(w.shape[0] for w in lins) == channels
    assert all(bool((w >= 0).all()) for w in lins)
    assert all(float(w.sum()) > 0 for w in lins)


def test_missing_backbone_is_one_line_config_error(no_hub, tmp_path):
    img = _texture()
    with pytest.raises(ConfigError) as e:
        lpips(img, img)
    msg = str(e.value)
    assert "\n" not in msg
    assert "alexnet-owt-7be5be79.pth" in msg and "torch.hub" in msg and str(no_hub) in msg and "backbone=" in msg
    with pytest.raises(ConfigError, match="vgg16-397923af.pth"):
        lpips(img, img, net="vgg")
    with pytest.raises(ConfigError, match="nowhere.pth"):
        lpips(img, img, backbone=tmp_path / "nowhere.pth")


def test_backbone_from_path_and_bad_file(tmp_path):
    """A torchvision-format state dict at a path is used; a file of the wrong kind is a one-line ConfigError."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = {f"features.{k}": v for k, v in lp._features("alex").state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(2, 2)  # extra keys (the classifier) are ignored
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    a, b = _texture(), _noisy(_texture(), 20)
    assert lpips(a, b, backbone=path) == pytest.approx(lpips(a, b, backbone="random"), rel=1e-6)
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ConfigError) as e:
        lpips(a, b, backbone=bad)
    assert "\n" not in str(e.value)


def test_bad_input():
    a = _texture()
    with pytest.raises(ShapeError, match="shapes differ"):
        lpips(a, a[:80], backbone="random")
    with pytest.raises(ShapeError):
        lpips(np.zeros((32, 32, 4), np.uint8), np.zeros((32, 32, 4), np.uint8), backbone="random")
    nan = a.astype(np.float64) / 255
    nan[0, 0, 0] = np.nan
    with pytest.raises(ShapeError, match="NaN"):
        lpips(nan, a, backbone="random")
    with pytest.raises(ConfigError, match="net"):
        lpips(a, a, net="squeeze", backbone="random")
    with pytest.raises(ConfigError, match="version"):
        lpips(a, a, backbone="random", version="0.0")


def test_metrics_table_and_eval_contract():
    info = METRICS["lpips"]
    assert info.fn is lpips and info.needs_reference and not info.higher_is_better
    a, b = _texture(), _noisy(_texture(), 20)
    # the evaluation's call: border cropped, y_channel accepted and ignored (LPIPS is RGB)
    cropped = lpips(a[4:-4, 4:-4], b[4:-4, 4:-4], backbone="random")
    assert lpips(a, b, 4, True, backbone="random") == pytest.approx(cropped, rel=1e-6)  # the METRICS contract
    assert info.fn(a, b, border=4, y_channel=True, backbone="random") == pytest.approx(cropped, rel=1e-6)
    assert info.fn(a, b, border=4, y_channel=False, backbone="random") == pytest.approx(cropped, rel=1e-6)


def test_eval_without_backbone_is_one_line_config_error(no_hub, tmp_path):
    from srkit.evaluate import evaluate

    hr = tmp_path / "data" / "Tiny" / "HR"
    hr.mkdir(parents=True)
    write_image(hr / "t.png", _texture(48, 48))
    seen = []
    with pytest.raises(ConfigError) as e:
        evaluate("bicubic", tmp_path / "data", ["Tiny"], [2], metrics=("psnr", "lpips"), cache=False,
                 on_image=seen.append)
    assert "\n" not in str(e.value) and "alexnet-owt-7be5be79.pth" in str(e.value)
    assert seen == []  # refused before the first image was upscaled
