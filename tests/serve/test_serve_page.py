"""The web page at / in a real browser: Debian's Chromium driven by Playwright (system Chromium through
`executable_path`; never `playwright install`). Upload a generated image, wait for the result, check its size,
move the before/after slider, zoom, download it, and save a screenshot for the docs (docs/serve.png)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")

from serve_util import LevelsUpsampler, StrengthUpsampler, input_model, levels_model, running_server  # noqa: E402

import srkit.serve.app as app_module  # noqa: E402
from srkit.serve.app import ServeConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TOKEN = "page-token"


def _chromium() -> str:
    for name in (os.environ.get("SRKIT_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name) if name else None
        if path:
            return path
    pytest.skip("no Chromium on this machine (apt-get install chromium, or set SRKIT_CHROMIUM)")


def _picture(path: Path, w: int = 160, h: int = 100) -> None:
    """A small colourful test picture: gradients, rings and a checker corner."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(x - w * 0.6, y - h * 0.45)
    img = np.stack([x / w, y / h, 0.5 + 0.5 * np.cos(r / 2.2)], axis=-1)
    img[: h // 4, : w // 4] = ((x[: h // 4, : w // 4] // 4 + y[: h // 4, : w // 4] // 4) % 2)[..., None]
    Image.fromarray((img * 255).round().astype(np.uint8)).save(path)


def test_page_upscales_compares_and_downloads(tmp_path):
    exe = _chromium()
    src = tmp_path / "generated.png"
    _picture(src)
    cfg = ServeConfig(models={"bicubic": "bicubic", "strength-x2": input_model(StrengthUpsampler(), "strength",
                                                                                "strength")},
                      workers=2, token=TOKEN, workdir=str(tmp_path / "work"))
    t0 = time.perf_counter()
    with running_server(cfg) as base, playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 820}, accept_downloads=True)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/#token={TOKEN}")  # the fragment never reaches the server
            page.wait_for_function("document.querySelectorAll('#model option').length === 2")
            assert "#token" not in page.url  # removed from the address bar
            # the controls a model declares are shown for it
            page.select_option("#model", "strength-x2")
            assert page.locator("#input-strength").is_visible()
            page.select_option("#model", "bicubic")
            assert page.locator("#input-strength").count() == 0
            page.select_option("#scale", "4")
            page.set_input_files("#file", str(src))  # starts the upscale
            page.wait_for_function("document.getElementById('result-size').textContent === '640 x 400'",
                                   timeout=30_000)
            assert page.evaluate("[document.getElementById('after').naturalWidth,"
                                 " document.getElementById('after').naturalHeight]") == [640, 400]
            assert "Done" in page.inner_text("#status")
            # the before/after slider: by its range input, then by dragging on the picture
            page.locator("#slider").fill("20")
            assert page.evaluate("document.getElementById('before').style.clipPath") == "inset(0px 80% 0px 0px)"
            box = page.locator("#stage").bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2, steps=4)
            page.mouse.up()
            assert abs(float(page.input_value("#slider")) - 75) < 2
            width1 = page.locator("#stage").bounding_box()["width"]  # type: ignore[index]
            page.locator("#zoom").fill("2")
            assert abs(page.locator("#stage").bounding_box()["width"] - 2 * width1) < 2  # type: ignore[index]
            page.locator("#zoom").fill("1")
            page.locator("#slider").fill("50")
            page.check("#pixelated")  # the original's pixels, as they were, against the upscale
            with page.expect_download() as dl:
                page.click("#download")
            download = dl.value
            assert download.suggested_filename == "generated_x4.png"
            saved = tmp_path / "download.png"
            download.save_as(saved)
            with Image.open(saved) as im:
                assert im.size == (640, 400)
            # The docs' screenshot: `SRKIT_SCREENSHOTS=docs python -m pytest tests/serve/test_serve_page.py`
            # refreshes docs/serve.png; a plain test run keeps its screenshot in the test's folder, so running the
            # tests never modifies the checkout.
            folder = os.environ.get("SRKIT_SCREENSHOTS")
            shot = (REPO / folder if folder else tmp_path) / "serve.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert not errors, errors
        finally:
            browser.close()
    assert time.perf_counter() - t0 < 60


def _launch(pw, exe: str):
    return pw.chromium.launch(executable_path=exe, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])


def _upload_and_wait(page, action, received: list[dict]) -> dict:
    """Run `action` (it starts an upscale), wait until the page says Done; the parameters the server received."""
    page.evaluate("document.getElementById('status').textContent = ''")
    received.clear()
    action()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Done')", timeout=30_000)
    assert len(received) == 1
    return received[0]


def test_page_strength_control_reaches_a_conditioned_model(tmp_path, monkeypatch):
    """A conditioned model (it takes noise and JPEG levels, as real-x4-ctrl does) gets a strength control: the
    strength set on the page is sent as `strength` and the model gets noise 50 s and JPEG quality 100 - 90 s; noise
    and JPEG typed instead go as the model's inputs; "estimate" sends neither. A model without inputs shows none."""
    exe = _chromium()
    src = tmp_path / "small.png"
    _picture(src, 24, 16)
    recorder = LevelsUpsampler()
    received: list[dict] = []  # the parameters of each upload, as the server parsed them from the request
    real_parse = app_module.parse_params

    def parse_params(fields, *args, **kwargs):
        received.append(dict(fields))
        return real_parse(fields, *args, **kwargs)

    monkeypatch.setattr(app_module, "parse_params", parse_params)
    cfg = ServeConfig(models={"bicubic": "bicubic", "ctrl-x2": levels_model(recorder, "ctrl")}, workers=1,
                      workdir=str(tmp_path / "work"))
    with running_server(cfg) as base, playwright_sync.sync_playwright() as pw:
        browser = _launch(pw, exe)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/")
            page.wait_for_function("document.querySelectorAll('#model option').length === 2")
            assert page.input_value("#model") == "bicubic"  # the default: no inputs, so no controls
            assert page.locator("#levels").count() == 0 and page.locator("#input-strength").count() == 0
            page.select_option("#model", "ctrl-x2")
            assert page.locator("#input-strength").is_visible() and page.locator("#strength-auto").is_checked()
            assert page.inner_text("#strength-value") == "auto"
            assert not page.locator("#input-noise").is_visible()  # folded under "noise and JPEG levels instead"

            page.locator("#input-strength").fill("0.3")  # moving the slider leaves "estimate"
            assert not page.locator("#strength-auto").is_checked()
            assert page.inner_text("#strength-value") == "0.30"
            recorder.calls.clear()
            got = _upload_and_wait(page, lambda: page.set_input_files("#file", str(src)), received)
            assert got["model"] == "ctrl-x2" and got["strength"] == "0.3" and "inputs" not in got
            assert recorder.calls and all(c == pytest.approx((15.0, 73.0), abs=1e-4) for c in recorder.calls)
            assert page.inner_text("#result-size") == "48 x 32"

            page.click("#levels-more summary")
            page.fill("#input-noise", "10")
            page.fill("#input-jpeg", "60")
            assert page.locator("#input-strength").is_disabled()
            recorder.calls.clear()
            got = _upload_and_wait(page, lambda: page.click("#go"), received)
            assert "strength" not in got and json.loads(got["inputs"]) == {"noise": 10, "jpeg": 60}
            assert recorder.calls and all(c == pytest.approx((10.0, 60.0)) for c in recorder.calls)

            page.fill("#input-noise", "")
            page.fill("#input-jpeg", "")
            page.check("#strength-auto")
            assert page.inner_text("#strength-value") == "auto"
            recorder.calls.clear()
            got = _upload_and_wait(page, lambda: page.click("#go"), received)
            assert "strength" not in got and "inputs" not in got  # the levels are estimated by the server
            assert recorder.calls and all(0.0 <= n <= 50.0 and 1.0 <= q <= 100.0 for n, q in recorder.calls)

            page.select_option("#model", "bicubic")  # and hidden again for a model without inputs
            assert page.locator("#levels").count() == 0 and page.locator("#input-strength").count() == 0
            assert not errors, errors
        finally:
            browser.close()
