"""Exported models load back: `load_model`, `srkit upscale` and `srkit info` run ONNX and TorchScript files."""

import json
import warnings

import numpy as np
import pytest
import torch

import srkit
from srkit.errors import ModelLoadError
from srkit.export.load import export_kind
from srkit.io import read_image, write_image
from helpers import rand_model

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from srkit.export import export_onnx, export_torchscript  # noqa: E402


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    d = tmp_path_factory.mktemp("exports")
    m = rand_model("fsrcnn-s", 2)  # Y-only: the graph takes RGB and does the colour handling inside
    export_onnx(m, d / "m.onnx")
    export_torchscript(m, d / "m.pt")
    return m, d


def _img(h=21, w=17, c=3):
    return (np.random.default_rng(1).random((h, w, c)) * 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["m.onnx", "m.pt"])
def test_export_loads_as_a_model_with_its_metadata(exports, name):
    m, d = exports
    loaded = srkit.load_model(d / name)
    info = loaded.info
    assert (info.scale, info.in_channels, info.receptive_field) == (2, 3, m.info.receptive_field)
    assert info.arch == "fsrcnn-s" and info.options["format"] == ("onnx" if name.endswith("onnx") else "torchscript")
    ref = srkit.upscale(_img(), model=m, dtype="fp32")
    for tile in (None, 8):  # exact tiling works: the receptive field came with the file
        out = srkit.upscale(_img(), model=str(d / name), tile=tile)
        assert np.abs(out.astype(int) - ref).max() <= 1
    gray = srkit.upscale(_img(c=1)[..., 0], model=str(d / name))  # gray through the RGB graph
    assert gray.shape == (42, 34)
    with pytest.raises(ModelLoadError, match="is x2, but scale 3"):
        srkit.load_model(d / name, scale=3)


def test_onnx_axes_are_named_and_batch_is_dynamic(exports):
    _, d = exports
    g = onnx.load(str(d / "m.onnx")).graph
    dims = [[x.dim_param or x.dim_value for x in v.type.tensor_type.shape.dim] for v in (g.input[0], g.output[0])]
    assert dims == [["batch", 3, "height", "width"], ["batch", 3, "out_height", "out_width"]]
    up = srkit.load_upscaler(str(d / "m.onnx"))
    y = up.upscale_tensor(torch.rand(3, 3, 10, 12))
    assert tuple(y.shape) == (3, 3, 20, 24)


def test_export_without_srkit_metadata_measures_its_scale(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 27, 3, padding=1), torch.nn.PixelShuffle(3)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net, torch.rand(1, 3, 8, 8)), str(tmp_path / "x3.pt"))
    m = srkit.load_model(tmp_path / "x3.pt")
    assert m.info.scale == 3 and m.info.receptive_field is None and m.info.arch == "torchscript"


def test_plain_checkpoints_and_garbage_are_not_exports(tmp_path):
    m = rand_model("fsrcnn-s", 2)
    torch.save(m.module.state_dict(), tmp_path / "sd.pt")
    assert export_kind(tmp_path / "sd.pt") is None
    assert srkit.load_model(tmp_path / "sd.pt", scale=2).info.arch.startswith("fsrcnn")
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelLoadError, match="cannot read .* as an ONNX model"):
        srkit.load_model(tmp_path / "bad.onnx")


def test_cli_upscale_and_info_run_exports(exports, tmp_path, srkit_cli):
    _, d = exports
    src = tmp_path / "a.png"
    write_image(src, _img())
    for name in ("m.onnx", "m.pt"):
        r = srkit_cli("upscale", str(src), "-o", str(tmp_path / f"{name}.png"), "--model", str(d / name))
        assert r.returncode == 0, r.stderr
        assert read_image(tmp_path / f"{name}.png")[0].shape == (42, 34, 3)
        r = srkit_cli("info", str(d / name), "--json")
        assert r.returncode == 0, r.stderr
        facts = json.loads(r.stdout)
        assert facts["scale"] == 2 and facts["arch"] == "fsrcnn-s" and facts["macs_per_output_pixel"] > 0
