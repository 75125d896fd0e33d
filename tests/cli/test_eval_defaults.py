"""`srkit eval` defaults a new user relies on: the model's own scale, and the data folder found by itself."""

import json

import pytest

from srkit.cli import eval as eval_cli
from srkit.models import save_model
from helpers import rand_model


def test_default_scales_follow_the_model(tmp_path):
    assert eval_cli._default_scales("bicubic") == [2, 3, 4]
    assert eval_cli._default_scales("lanczos-x3") == [3]
    save_model(rand_model("fsrcnn-s", 2), tmp_path / "m.safetensors")
    assert eval_cli._default_scales(str(tmp_path / "m.safetensors")) == [2]


def test_data_folder_falls_back_to_shared_datasets(tmp_path, monkeypatch):
    monkeypatch.delenv("SRKIT_DATA", raising=False)
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert eval_cli._data_dir(None) == tmp_path / "shared" / "datasets"
    monkeypatch.setenv("SRKIT_DATA", str(tmp_path))
    assert eval_cli._data_dir(None) == tmp_path


@pytest.mark.data
def test_eval_shipped_model_without_scales(data_dir, tmp_path, srkit_cli, monkeypatch):
    monkeypatch.setenv("SRKIT_DATA", str(data_dir))
    out = tmp_path / "r.json"
    r = srkit_cli("eval", "--model", "tiny-x4", "--sets", "Set5", "--json", str(out))
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["summary"]
    assert {row["scale"] for row in rows} == {4}
