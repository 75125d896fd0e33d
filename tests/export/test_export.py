"""ONNX / TorchScript export: deployed graphs with dynamic size that match PyTorch; `srkit export`."""

import warnings

import numpy as np
import pytest
import torch

from srkit.errors import ConfigError
from srkit.models import load_model

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from srkit.export import export_onnx, export_torchscript  # noqa: E402
from srkit.export.graph import MatlabUpsample  # noqa: E402
from helpers import rand_model as _rand_model  # noqa: E402


CASES = [
    ("fsrcnn-s", 2, {}),
    ("edsr-baseline", 2, dict(num_block=2)),
    ("ecbsr-m4c16", 4, {}),
]


def _eager(model, x):
    with torch.inference_mode():
        return model(x).numpy()


def _sizes(c):
    return [torch.rand(1, c, 19, 31, generator=torch.Generator().manual_seed(5)),
            torch.rand(3, c, 33, 24, generator=torch.Generator().manual_seed(6))]


@pytest.mark.parametrize("name,scale,opt", CASES)
def test_onnx_export_dynamic_size_matches_torch(tmp_path, name, scale, opt):
    m = _rand_model(name, scale, **opt)
    path = tmp_path / f"{name}.onnx"
    rep = export_onnx(m, path)
    assert rep["max_abs_diff"] <= 1e-4 and rep["opset"] == 17 and rep["size_bytes"] == path.stat().st_size
    assert rep["channels"] == 3  # Y-only models take and return RGB, chroma inside the graph
    assert not list(tmp_path.glob(".*.tmp"))
    proto = onnx.load(str(path))
    if name.startswith("ecbsr"):
        # Deployed: one 3x3 conv per block + head/tail (+ the chroma resize conv), no 1x1/Sobel/Laplacian branches.
        assert sum(n.op_type == "Conv" for n in proto.graph.node) <= m.info.options.get("module_nums", 4) + 3
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x in _sizes(3):
        y = sess.run(None, {"input": x.numpy()})[0]
        assert y.shape == (x.shape[0], 3, x.shape[2] * scale, x.shape[3] * scale)
        assert np.abs(y - _eager(m, x)).max() <= 1e-4


@pytest.mark.parametrize("name,scale,opt", CASES)
def test_torchscript_export_dynamic_size_matches_eager(tmp_path, name, scale, opt):
    m = _rand_model(name, scale, **opt)
    path = tmp_path / f"{name}.pt"
    rep = export_torchscript(m, path)
    assert rep["max_abs_diff"] <= 1e-4 and rep["format"] == "torchscript"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        loaded = torch.jit.load(str(path))
    for x in _sizes(3):
        with torch.inference_mode():
            y = loaded(x).numpy()
        assert np.abs(y - _eager(m, x)).max() <= 1e-4


def test_classical_bicubic_exports_and_equals_imresize(tmp_path):
    m = load_model("bicubic", scale=3)
    rep = export_onnx(m, tmp_path / "bicubic.onnx")
    sess = ort.InferenceSession(rep["path"], providers=["CPUExecutionProvider"])
    for x in _sizes(3):
        assert np.abs(sess.run(None, {"input": x.numpy()})[0] - _eager(m, x)).max() <= 1e-5


@pytest.mark.parametrize("kernel", ["cubic", "linear", "nearest", "lanczos3"])
def test_matlab_upsample_equals_imresize(kernel):
    from srkit.ops import imresize_matlab

    x = torch.rand(2, 1, 9, 14, generator=torch.Generator().manual_seed(0))
    for s in (2, 3, 4):
        assert (MatlabUpsample(s, kernel)(x) - imresize_matlab(x, float(s), kernel=kernel)).abs().max() <= 1e-6


def test_failed_check_writes_nothing(tmp_path):
    m = _rand_model("fsrcnn-s", 2)
    target = tmp_path / "m.onnx"
    with pytest.raises(ConfigError, match="differs"):
        export_onnx(m, target, atol=-1.0, exporter="legacy")  # the check, not the exporter, is under test
    with pytest.raises(ConfigError, match="differs"):
        export_torchscript(m, tmp_path / "m.pt", atol=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_unexportable_model_is_a_config_error(tmp_path, monkeypatch):
    import srkit.export.onnx as eo

    def boom(*a, **k):
        raise RuntimeError("unsupported operator aten::weird")

    monkeypatch.setattr(eo, "_export_dynamo", boom)
    monkeypatch.setattr(eo, "_export_legacy", boom)
    with pytest.raises(ConfigError, match="does not export to ONNX.*aten::weird"):
        export_onnx(_rand_model("fsrcnn-s", 2), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def _cli(capsys, *args):
    from srkit.cli.app import main

    with pytest.raises(SystemExit) as e:
        main([*args])
        raise SystemExit(0)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_cli_export(tmp_path, capsys):
    from srkit.models import save_model

    weights = tmp_path / "w.safetensors"
    save_model(_rand_model("edsr-baseline", 2, num_block=1), weights)
    code, out, err = _cli(capsys, "export", str(weights), "-o", str(tmp_path / "m.ts"), "--format", "torchscript")
    assert code == 0, err
    assert "max |diff|" in out and (tmp_path / "m.ts").exists()
    code, out, err = _cli(capsys, "export", "bicubic", "--scale", "2", "-o", str(tmp_path / "b.onnx"), "--opset", "18")
    assert code == 0, err
    assert "opset 18" in out and "max |diff|" in out
    code, _, err = _cli(capsys, "export", "no-such-model", "-o", str(tmp_path / "x.onnx"))
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    code, _, err = _cli(capsys, "export", "bicubic", "-o", str(tmp_path / "x.onnx"), "--format", "tflite")
    assert code == 2 and "Traceback" not in err
    code, _, err = _cli(capsys, "export", "bicubic", "-o", str(tmp_path / "missing" / "x.onnx"))
    assert code == 0 and (tmp_path / "missing" / "x.onnx").is_file()  # created, as srkit upscale does
