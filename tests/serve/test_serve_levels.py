"""The service's `strength` parameter for conditioned models (noise and JPEG levels, as real-x4-ctrl takes):
described in /v1/models, passed to the model as noise 50 s and JPEG quality 100 - 90 s, refused in one line (422)
for other models, out of range, or given with noise / JPEG levels."""

from __future__ import annotations

import json
import urllib.parse

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serve_util import LevelsUpsampler, call, levels_model, png_bytes, running_server  # noqa: E402

from srkit.serve.app import ServeConfig  # noqa: E402

RECORDER = LevelsUpsampler()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cfg = ServeConfig(models={"bicubic": "bicubic", "ctrl-x2": levels_model(RECORDER, "ctrl")}, workers=1,
                      workdir=str(tmp_path_factory.mktemp("serve-levels")))
    with running_server(cfg) as base:
        yield base


def _post(base: str, **query):
    return call(f"{base}/v1/upscale?{urllib.parse.urlencode(query)}", "POST", png_bytes(12, 16))


def _error(reply) -> str:
    assert reply.status == 422, (reply.status, reply.body[:300])
    msg = reply.json()["error"]
    assert "\n" not in msg
    return msg


def test_models_describe_the_levels(server):
    models = {m["name"]: m for m in call(f"{server}/v1/models").json()["models"]}
    assert models["bicubic"]["levels"] is None
    levels = models["ctrl-x2"]["levels"]
    assert levels["strength"]["min"] == 0 and levels["strength"]["max"] == 1
    assert (levels["noise"]["min"], levels["jpeg"]["min"], levels["jpeg"]["max"]) == (0, 1, 100)


def test_strength_reaches_the_model(server):
    RECORDER.calls.clear()
    r = _post(server, model="ctrl-x2", strength="0.5")
    assert r.status == 200, r.body[:300]
    assert RECORDER.calls and all(c == pytest.approx((25.0, 55.0)) for c in RECORDER.calls)
    RECORDER.calls.clear()
    r = _post(server, model="ctrl-x2", inputs=json.dumps({"noise": 5, "jpeg": 90}))
    assert r.status == 200 and all(c == pytest.approx((5.0, 90.0)) for c in RECORDER.calls)


def test_strength_refusals(server):
    assert "takes no strength" in _error(_post(server, model="bicubic", scale="2", strength="0.5"))
    assert "[0, 1]" in _error(_post(server, model="ctrl-x2", strength="1.5"))
    assert "[0, 1]" in _error(_post(server, model="ctrl-x2", strength="lots"))
    assert "not both" in _error(_post(server, model="ctrl-x2", strength="0.2", inputs=json.dumps({"noise": 3})))
