"""The service's checks before decoding: header sizes of every format, the pixel cap, non-images; the metrics text;
the worker pool's queue bound and deadlines. No server, no model."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")

from serve_util import png_bomb, png_header_only  # noqa: E402

from srkit.serve.jobs import DeadlineExpired, QueueFull, WorkerPool  # noqa: E402
from srkit.serve.limits import ApiError, check_pixels, image_header  # noqa: E402
from srkit.serve.metrics import Metrics, route_label  # noqa: E402


def _encode(fmt: str, w: int = 37, h: int = 21, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("JPEG", {}), ("GIF", {}), ("BMP", {}), ("WEBP", {}),
                                    ("WEBP", {"lossless": True}), ("TIFF", {}), ("PPM", {}), ("QOI", {}),
                                    ("JPEG2000", {})])
def test_header_size_of_each_format(fmt, kw):
    if fmt == "QOI" and "QOI" not in Image.SAVE:
        pytest.skip("this Pillow cannot write QOI")
    hdr = image_header(_encode(fmt, **kw))
    assert (hdr.width, hdr.height) == (37, 21)


def test_jpeg_size_after_a_big_exif_segment():
    exif = Image.Exif()
    exif[0x010E] = "x" * 40000  # ImageDescription: pushes the frame header 40 KB in
    hdr = image_header(_encode("JPEG", exif=exif.tobytes()))
    assert (hdr.format, hdr.width, hdr.height) == ("JPEG", 37, 21)


def test_non_images_and_broken_headers():
    with pytest.raises(ApiError) as e:
        image_header(b"")
    assert e.value.status == 400
    for junk in (b"hello world, not an image", b"%PDF-1.7\n", b"\x00" * 100):
        with pytest.raises(ApiError) as e:
            image_header(junk)
        assert e.value.status == 415 and "\n" not in e.value.message
    with pytest.raises(ApiError) as e:
        image_header(_encode("PNG")[:20])  # the signature, then the IHDR cut off
    assert e.value.status == 422


def test_pixel_cap_from_the_header_alone():
    hdr = image_header(png_header_only(50000, 50000))
    assert (hdr.width, hdr.height) == (50000, 50000)
    with pytest.raises(ApiError) as e:
        check_pixels(hdr, 16_000_000)
    assert e.value.status == 413 and "50000x50000" in e.value.message
    bomb = png_bomb(5000)  # 25 MP of zeros in a few KB
    assert len(bomb) < 100_000
    with pytest.raises(ApiError) as e:
        check_pixels(image_header(bomb), 16_000_000)
    assert e.value.status == 413
    check_pixels(image_header(_encode("PNG")), 16_000_000)  # small: passes


def test_metrics_text():
    m = Metrics()
    m.request("/v1/upscale", 200, 0.2)
    m.request("/v1/upscale", 429, 0.001)
    m.image("ok", 100, 1600)
    m.gauges = lambda: {"queue_depth": 3, "workers_busy": 2, "workers": 2}
    text = m.render()
    assert 'srkit_requests_total{route="/v1/upscale",status="429"} 1' in text
    assert 'srkit_request_duration_seconds_bucket{route="/v1/upscale",le="0.25"} 2' in text
    assert 'srkit_request_duration_seconds_count{route="/v1/upscale"} 2' in text
    assert "srkit_queue_depth 3" in text and 'srkit_pixels_processed_total{side="output"} 1600' in text
    assert route_label("/v1/jobs/abc123/result") == "/v1/jobs/{id}/result" and route_label("/x/../etc") == "other"


def test_pool_bounds_its_queue_and_drops_expired_tasks():
    pool = WorkerPool(1, 1)
    try:
        slow = pool.submit(lambda t: time.sleep(0.3) or "a", deadline=time.monotonic() + 10)
        time.sleep(0.05)  # the worker has taken it
        late = pool.submit(lambda t: "never", deadline=time.monotonic() + 0.1)  # waits past its deadline
        with pytest.raises(QueueFull) as e:
            pool.submit(lambda t: "c", deadline=time.monotonic() + 10)
        assert e.value.retry_after >= 1
        assert slow.future.result(5) == "a"
        with pytest.raises(DeadlineExpired):
            late.future.result(5)
        assert pool.submit(lambda t: "d", deadline=time.monotonic() + 10).future.result(5) == "d"
    finally:
        pool.close()
