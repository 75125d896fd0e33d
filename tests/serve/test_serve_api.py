"""`srkit serve`'s HTTP API on a real uvicorn server (127.0.0.1, random port): results, every refusal with its
status and a one-line JSON error, the token, jobs, queue bound (429), deadline (503) and metrics."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serve_util import (  # noqa: E402
    DelayUpsampler,
    StrengthUpsampler,
    call,
    input_model,
    multipart,
    png_bomb,
    png_bytes,
    png_header_only,
    raw_post,
    running_server,
)

from srkit.serve.app import ServeConfig  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cfg = ServeConfig(models={"bicubic": "bicubic", "strength-x2": input_model(StrengthUpsampler(), "strength",
                                                                                "strength")},
                      workers=2, queue=4, timeout=30, token=TOKEN, max_upload_bytes=2_000_000, max_pixels=1_000_000,
                      workdir=str(tmp_path_factory.mktemp("serve-work")))
    with running_server(cfg) as base:
        yield base


def _error(reply, status):
    assert reply.status == status, (reply.status, reply.body[:300])
    body = reply.json()
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    assert "\n" not in body["error"] and len(body["error"]) < 400
    return body["error"]


def _image(reply):
    assert reply.status == 200, reply.body[:300]
    return Image.open(io.BytesIO(reply.body))


def test_bad_inputs_each_get_their_status_then_a_good_request_works(server):
    png = png_bytes(20, 30)
    up = f"{server}/v1/upscale"
    assert "empty" in _error(call(up + "?model=bicubic", "POST", b"", AUTH), 400)
    assert "not an image" in _error(call(up, "POST", b"just some text\nin a file\n", AUTH), 415)
    assert "truncated" in _error(call(up, "POST", png[: len(png) // 2], AUTH), 422)
    assert "unknown model 'no-such-model'" in _error(call(up + "?model=no-such-model", "POST", png, AUTH), 422)
    assert "scale" in _error(call(up + "?model=bicubic&scale=0", "POST", png, AUTH), 422)
    assert "scale 3" in _error(call(up + "?model=strength-x2&scale=3", "POST", png, AUTH), 422)
    assert "token" in _error(call(up, "POST", png, {"Authorization": "Bearer wrong"}), 401)
    assert "token" in _error(call(up, "POST", png), 401)
    assert "unknown parameter" in _error(call(up + "?modle=bicubic", "POST", png, AUTH), 422)
    one = _image(call(up + "?model=bicubic", "POST", png_bytes(1, 1), AUTH))  # 1 x 1 is an image: upscaled
    assert one.size == (4, 4)
    good = _image(call(up + "?model=bicubic", "POST", png, AUTH))
    assert good.size == (120, 80)


def test_raw_and_multipart_give_the_same_image_with_its_name(server):
    png = png_bytes(24, 16, seed=3)
    raw = call(f"{server}/v1/upscale?model=bicubic&scale=2", "POST", png, {**AUTH, "Content-Type": "image/png"})
    body, ctype = multipart({"model": "bicubic", "scale": "2"}, png, filename="../../etc/My Photo.png")
    form = call(f"{server}/v1/upscale", "POST", body, {**AUTH, "Content-Type": ctype})
    assert _image(raw).size == _image(form).size == (32, 48)
    assert np.array_equal(np.asarray(_image(raw)), np.asarray(_image(form)))
    # the client's name only suggests the download name, sanitised; never a path
    assert form.headers["content-disposition"] == 'attachment; filename="My_Photo_x2.png"'
    assert raw.headers["x-srkit-width"] == "32" and raw.headers["content-type"] == "image/png"
    jpg = call(f"{server}/v1/upscale?model=bicubic&format=jpg&quality=80", "POST", png, AUTH)
    assert _image(jpg).format == "JPEG" and jpg.headers["content-type"] == "image/jpeg"


def test_limits_refuse_before_decoding(server):
    up = f"{server}/v1/upscale?model=bicubic"
    big = b"\x89PNG" + b"\0" * 2_100_000
    path = "/v1/upscale?model=bicubic"
    assert "limit" in _error(raw_post(server, path, AUTH, big), 413)  # declared size: refused before reading
    assert "limit" in _error(raw_post(server, path, AUTH, big, chunked=True), 413)  # counted while reading
    assert "50000x50000" in _error(call(up, "POST", png_header_only(50000, 50000), AUTH), 413)  # header claim
    assert "cap" in _error(call(up, "POST", png_bomb(3000), AUTH), 413)  # 9 MP of zeros in ~10 KB
    assert _image(call(up, "POST", png_bytes(8, 8), AUTH)).size == (32, 32)


def test_models_health_metrics_and_no_cors(server):
    assert call(f"{server}/healthz").json() == {"status": "ok"}  # no token needed
    assert call(f"{server}/").status == 200  # the page shell: static, no data
    _error(call(f"{server}/v1/models"), 401)
    _error(call(f"{server}/metrics"), 401)
    models = call(f"{server}/v1/models", headers=AUTH).json()
    by_name = {m["name"]: m for m in models["models"]}
    assert by_name["bicubic"]["scales"] == list(range(1, 9)) and by_name["bicubic"]["license"]
    assert by_name["strength-x2"]["inputs"] == [{"name": "strength"}] and by_name["strength-x2"]["scale"] == 2
    for key in ("macs_per_output_pixel", "color_space", "license"):
        assert key in by_name["bicubic"]
    r = call(f"{server}/v1/models", headers={**AUTH, "Origin": "http://evil.example"})
    assert not any(k.startswith("access-control-") for k in r.headers)
    # one upscale of its own: under xdist this test may be the first of its module on its worker
    assert call(f"{server}/v1/upscale?model=bicubic&scale=2", "POST", png_bytes(8, 8, seed=9), AUTH).status == 200
    text = call(f"{server}/metrics", headers=AUTH).body.decode()
    assert 'srkit_requests_total{route="/v1/upscale",status="200"}' in text
    assert "srkit_queue_depth " in text and 'srkit_request_duration_seconds_bucket{route="/v1/upscale",le="+Inf"}' \
        in text and 'srkit_pixels_processed_total{side="input"}' in text
    _error(call(f"{server}/nowhere", headers=AUTH), 404)


def test_model_inputs_are_passed_and_checked(server):
    png = png_bytes(10, 10, seed=5, channels=1)
    url = f"{server}/v1/upscale?model=strength-x2"
    full = np.asarray(_image(call(url + "&inputs=" + '{"strength":1}'.replace('"', "%22"), "POST", png, AUTH)))
    assert full.shape == (20, 20) and np.all(np.abs(full.astype(int) - 128) <= 1)  # all mid-gray
    plain = np.asarray(_image(call(url, "POST", png, AUTH)))
    assert plain.std() > 5
    body, ctype = multipart({"model": "strength-x2", "inputs": json.dumps({"sharpness": 2})}, png)
    assert "strength" in _error(call(f"{server}/v1/upscale", "POST", body, {**AUTH, "Content-Type": ctype}), 422)


def test_jobs_progress_download_once_and_delete(server):
    body, ctype = multipart({"model": "bicubic"}, png_bytes(30, 40), filename="big.png")
    r = call(f"{server}/v1/jobs", "POST", body, {**AUTH, "Content-Type": ctype})
    assert r.status == 202, r.body
    job = r.json()
    assert job["state"] in ("queued", "running", "done") and 0 <= job["progress"] <= 1
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    for _ in range(200):
        job = call(f"{server}/v1/jobs/{job['id']}", headers=AUTH).json()
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert job["state"] == "done" and job["progress"] == 1.0 and (job["out_width"], job["out_height"]) == (160, 120)
    assert job["filename"] == "big_x4.png" and job["expires_in_s"] > 0
    assert _image(call(server + job["result"], headers=AUTH)).size == (160, 120)
    assert "downloadable once" in _error(call(server + job["result"], headers=AUTH), 410)
    _error(call(f"{server}/v1/jobs/{job['id']}", headers=AUTH), 410)
    _error(call(f"{server}/v1/jobs/not-a-job", headers=AUTH), 404)
    _error(call(f"{server}/v1/jobs/{job['id']}", headers={"Authorization": "Bearer nope"}), 401)
    job2 = call(f"{server}/v1/jobs?model=bicubic", "POST", png_bytes(8, 8), AUTH).json()
    assert call(f"{server}/v1/jobs/{job2['id']}", "DELETE", headers=AUTH).json()["deleted"] is True
    _error(call(f"{server}/v1/jobs/{job2['id']}/result", headers=AUTH), 410)


def test_full_queue_is_429_and_a_late_answer_503(tmp_path):
    slow = input_model(DelayUpsampler(), "delay", "delay")
    cfg = ServeConfig(models={"slow": slow}, workers=1, queue=1, timeout=1.5, job_ttl=0.5, workdir=str(tmp_path))
    png = png_bytes(8, 8)
    with running_server(cfg) as base:
        url = base + "/v1/upscale?model=slow&inputs=%7B%22delay%22%3A0.6%7D"
        replies: dict[int, object] = {}

        def send(i):
            replies[i] = call(url, "POST", png)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
        for t in threads:  # 1st runs, 2nd waits, 3rd finds the queue full
            t.start()
            time.sleep(0.2)
        for t in threads:
            t.join(30)
        statuses = sorted(r.status for r in replies.values())  # type: ignore[attr-defined]
        assert statuses == [200, 200, 429], statuses
        refused = next(r for r in replies.values() if r.status == 429)  # type: ignore[attr-defined]
        assert int(refused.headers["retry-after"]) >= 1 and "busy" in refused.json()["error"]
        late = call(base + "/v1/upscale?model=slow&inputs=%7B%22delay%22%3A2.5%7D", "POST", png)
        assert "1.5 s limit" in _error(late, 503) and int(late.headers["retry-after"]) >= 1
        time.sleep(1.2)  # the worker finishes the abandoned upscale (its result is discarded)
        assert _image(call(base + "/v1/upscale?model=slow", "POST", png)).size == (16, 16)  # still serving
        job = call(base + "/v1/jobs?model=slow", "POST", png).json()
        for _ in range(100):
            if call(f"{base}/v1/jobs/{job['id']}").json()["state"] == "done":
                break
            time.sleep(0.05)
        time.sleep(2.0)  # past the 0.5 s TTL, swept within a second
        assert "expired" in _error(call(f"{base}/v1/jobs/{job['id']}"), 410)
        metrics = call(base + "/metrics").body.decode()
        assert 'status="429"} 1' in metrics and 'status="503"} 1' in metrics
        assert list(tmp_path.iterdir()) == []  # uploads and results never outlive their request
