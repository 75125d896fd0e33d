"""LPIPS options reach the metric through srkit.evaluate and srkit eval (--lpips-net, --lpips-backbone)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_cli as cli

from srkit.errors import ConfigError
from srkit.evaluate import evaluate
from srkit.io import write_image
from srkit.ops import imresize_matlab


@pytest.fixture()
def bench(tmp_path):
    rng = np.random.default_rng(0)
    img = imresize_matlab(rng.random((8, 8, 3)), output_shape=(64, 64))
    (tmp_path / "Set5" / "HR").mkdir(parents=True)
    write_image(tmp_path / "Set5" / "HR" / "a.png", np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8))
    return tmp_path


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_evaluate_passes_lpips_options(bench, net):
    opts = {"lpips": {"net": net, "backbone": "random"}}
    rep = evaluate("bicubic", bench, ["Set5"], [4], metrics=["psnr", "lpips"], metric_options=opts)
    score = rep.summary[0].scores["lpips"]
    assert 0 < score < 1
    other = "vgg" if net == "alex" else "alex"
    rep2 = evaluate("bicubic", bench, ["Set5"], [4], metrics=["lpips"],
                    metric_options={"lpips": {"net": other, "backbone": "random"}})
    assert rep2.summary[0].scores["lpips"] != score  # the option really selected the network
    with pytest.raises(ConfigError, match="not computed"):
        evaluate("bicubic", bench, ["Set5"], [4], metrics=["psnr"], metric_options=opts)


def test_cli_lpips_backbone_errors_are_one_line(bench, tmp_path, capsys):
    missing = tmp_path / "nowhere.pth"
    code, _, err = cli(capsys, "eval", "--model", "bicubic", "--data", str(bench), "--sets", "Set5", "--scales", "4",
                       "--metrics", "lpips", "--lpips-backbone", str(missing))
    assert code != 0 and "nowhere.pth" in err and "Traceback" not in err
    code, _, err = cli(capsys, "eval", "--model", "bicubic", "--data", str(bench), "--sets", "Set5", "--scales", "4",
                       "--lpips-net", "vgg")
    assert code != 0 and "--metrics lpips" in err

