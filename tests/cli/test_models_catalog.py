"""`srkit models`, the model catalogue, `srkit pull` and catalogue names in `load_model`.

Every download goes to an HTTP server on 127.0.0.1 started here (never the internet): success with the checksum,
resume after a dropped connection (in one run, and by the next run), checksum mismatch, 404, timeouts, refresh.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srkit.catalog import (
    SHIPPED_CATALOGUE,
    SPANDREL_RUNS,
    SRKIT_RUNS,
    Catalogue,
    catalogue_from_records,
    is_direct_url,
    load_catalogue,
    read_catalogue,
    user_catalogue_path,
    write_catalogue,
)
from srkit.errors import ModelLoadError

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, recognisable at every offset


# ----------------------------------------------------------------------------------------------- local server


class _Server:
    """A file server on 127.0.0.1: honours Range; `drops` paths close mid-body on their first request; `stall`
    paths never answer (until the test ends); records (path, Range header) of every request."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.drops: set[str] = set()
        self.stall: dict[str, str] = {}  # path -> "headers" (before the status line) or "body" (after half)
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                if server.stall.get(path) == "headers":
                    server.release.wait(30)
                    return
                body = server.files.get(path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                part = body[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(part)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if path in server.drops:
                    server.drops.discard(path)
                    self.wfile.write(part[: len(part) // 3])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if server.stall.get(path) == "body":
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    server.release.wait(30)
                    return
                self.wfile.write(part)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """An empty srkit cache ($SRKIT_CACHE) for this test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("SRKIT_CACHE", str(root))
    return root


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _record(url: str, body: bytes | None = None, *, sha: str | None = None, arch: str = "esrgan", scale: int = 4,
            type_: str = "pth", license: str | None = "CC0-1.0") -> dict:
    """An OpenModelDB-shaped model record (camelCase fields, extra fields the catalogue drops)."""
    return {
        "name": "Local test model", "author": ["someone", "else"], "license": license, "tags": ["general"],
        "description": "not kept", "date": "2026-01-02", "architecture": arch, "size": ["64nf"], "scale": scale,
        "inputChannels": 3, "outputChannels": 3, "images": [],
        "resources": [{"platform": "onnx" if type_ == "onnx" else "pytorch", "type": type_,
                       "size": None if body is None else len(body),
                       "sha256": sha if sha is not None else (_sha(body) if body is not None else None),
                       "urls": [url]}],
    }


def _use_catalogue(records: dict[str, dict]) -> Catalogue:
    """Write `records` as the refreshed catalogue of the test's cache (newer than the shipped one)."""
    cat, skipped = catalogue_from_records(records, source="test", date="2099-01-01")
    assert skipped == 0
    write_catalogue(cat, user_catalogue_path())
    return cat


def _one_line(r) -> bool:
    return len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------------------------- pull


def test_pull_verifies_and_prints_licence(srkit_cli, server, cache):
    server.files["/m/model.pth"] = PAYLOAD
    _use_catalogue({"4x-Local": _record(server.url("/m/model.pth"), PAYLOAD, license="MIT")})
    r = srkit_cli("pull", "4x-Local")  # with the progress bar (on stderr)
    assert r.returncode == 0, r.stderr
    dest = cache / "models" / "4x-Local.pth"
    assert dest.read_bytes() == PAYLOAD and (dest.stat().st_mode & 0o777) == 0o644
    assert "licence: MIT" in r.stdout and "SHA-256 verified" in r.stdout
    assert not list((cache / "models").glob("*.part"))
    r = srkit_cli("pull", "4x-local", "--no-progress")  # any case; already there: no second download
    assert r.returncode == 0 and "already pulled" in r.stdout and len(server.requests) == 1
    listed = json.loads(srkit_cli("models", "--catalog", "--json").stdout)["models"]
    assert [m["pulled"] for m in listed] == [str(dest)]


def test_pull_resumes_after_dropped_connection(srkit_cli, server, cache):
    """The server closes mid-body: the next try asks for the rest (Range) and the file is whole."""
    server.files["/m/model.pth"] = PAYLOAD
    server.drops.add("/m/model.pth")
    _use_catalogue({"4x-Local": _record(server.url("/m/model.pth"), PAYLOAD)})
    r = srkit_cli("pull", "4x-Local", "--no-progress", "--retries", "1")
    assert r.returncode == 0, r.stderr
    assert (cache / "models" / "4x-Local.pth").read_bytes() == PAYLOAD
    assert server.requests == [("/m/model.pth", None), ("/m/model.pth", f"bytes={len(PAYLOAD) // 3}-")]


def test_interrupted_pull_resumes_on_the_next_run(srkit_cli, server, cache):
    server.files["/m/model.pth"] = PAYLOAD
    server.drops.add("/m/model.pth")
    _use_catalogue({"4x-Local": _record(server.url("/m/model.pth"), PAYLOAD)})
    r = srkit_cli("pull", "4x-Local", "--no-progress", "--retries", "0")
    assert r.returncode == 1 and _one_line(r) and "run again to resume" in r.stderr
    part = cache / "models" / "4x-Local.pth.part"
    assert part.stat().st_size == len(PAYLOAD) // 3 and not (cache / "models" / "4x-Local.pth").exists()
    r = srkit_cli("pull", "4x-Local", "--no-progress", "--retries", "0")
    assert r.returncode == 0, r.stderr
    assert (cache / "models" / "4x-Local.pth").read_bytes() == PAYLOAD and not part.exists()
    assert server.requests[-1] == ("/m/model.pth", f"bytes={len(PAYLOAD) // 3}-")


def test_checksum_mismatch_deletes_the_download(srkit_cli, server, cache):
    server.files["/m/model.pth"] = PAYLOAD
    _use_catalogue({"4x-Local": _record(server.url("/m/model.pth"), PAYLOAD, sha=_sha(b"something else"))})
    r = srkit_cli("pull", "4x-Local", "--no-progress")
    assert r.returncode == 1 and _one_line(r) and "SHA-256 mismatch" in r.stderr
    assert not list((cache / "models").iterdir())


def test_404_is_one_line(srkit_cli, server, cache):
    _use_catalogue({"4x-Local": _record(server.url("/m/gone.pth"), PAYLOAD)})
    r = srkit_cli("pull", "4x-Local", "--no-progress")
    assert r.returncode == 1 and _one_line(r) and "HTTP 404" in r.stderr
    assert len(server.requests) == 1  # a 404 is not retried
    assert not list((cache / "models").iterdir())


@pytest.mark.parametrize("where", ["headers", "body"])
def test_stalled_server_times_out(srkit_cli, server, cache, where):
    server.files["/m/model.pth"] = PAYLOAD
    server.stall["/m/model.pth"] = where
    _use_catalogue({"4x-Local": _record(server.url("/m/model.pth"), PAYLOAD)})
    r = srkit_cli("pull", "4x-Local", "--no-progress", "--timeout", "0.3", "--retries", "0")
    assert r.returncode == 1 and _one_line(r), r.stderr
    assert ("within 0.3 s" if where == "headers" else "stalled for 0.3 s") in r.stderr
    assert not (cache / "models" / "4x-Local.pth").exists()


def test_not_pullable_entry_is_refused(srkit_cli, cache):
    gdrive = "https://drive.google.com/file/d/abc/view?usp=sharing"
    _use_catalogue({"4x-Drive": _record(gdrive, PAYLOAD)})
    r = srkit_cli("pull", "4x-Drive", "--no-progress")
    assert r.returncode == 1 and _one_line(r)
    assert "Google Drive" in r.stderr and gdrive in r.stderr and str(cache / "models" / "4x-Drive.pth") in r.stderr
    listed = json.loads(srkit_cli("models", "--catalog", "--json").stdout)["models"]
    assert listed[0]["pullable"] is False and "Google Drive" in listed[0]["not_pullable_because"]


def test_unknown_pull_name_suggests(srkit_cli, cache):
    r = srkit_cli("pull", "4x-realesrgan-x4plu")
    assert r.returncode == 1 and _one_line(r) and "closest: 4x-realesrgan-x4plus" in r.stderr


# ----------------------------------------------------------------------------------------------- refresh


def test_refresh_from_local_server(srkit_cli, server, cache):
    data = {
        "4x-Local": _record(server.url("/m/model.pth"), PAYLOAD),
        "2x-Mega": _record("https://mega.nz/file/xyz#key", PAYLOAD, scale=2, arch="compact"),
        "4x-NoHash": _record(server.url("/m/other.pth"), None, arch="span"),
        "bad id with spaces": _record(server.url("/m/x.pth"), PAYLOAD),
        "4x-NoArch": {"name": "incomplete"},
    }
    server.files["/api/v1/models.json"] = json.dumps(data).encode()
    r = srkit_cli("models", "--refresh", "--url", server.url("/api/v1/models.json"))
    assert r.returncode == 0, r.stderr
    assert "3 models, 1 pullable; 2 records skipped" in r.stdout
    cat = load_catalogue()
    assert cat.origin == str(user_catalogue_path()) and cat.ids == ["2x-Mega", "4x-Local", "4x-NoHash"]
    local = cat.get("4x-Local")
    assert local is not None and local.author == "someone, else"
    out = json.loads(srkit_cli("models", "--catalog", "--json").stdout)
    state = {m["id"]: m["not_pullable_because"] for m in out["models"]}
    assert state["4x-Local"] is None and "Mega" in state["2x-Mega"] and "SHA-256" in state["4x-NoHash"]
    assert out["source"].startswith("OpenModelDB published data, " + server.url("/api/v1/models.json"))
    table = srkit_cli("models", "--catalog").stdout
    assert "4x-Local" in table and "CC0-1.0" in table and "no: only on Mega" in table


def test_refresh_keeps_the_old_copy_on_bad_data(srkit_cli, server, cache):
    server.files["/bad.json"] = b"<html>not json</html>"
    server.files["/empty.json"] = b"{}"
    for path, msg in (("/bad.json", "not JSON"), ("/empty.json", "no valid model record"), ("/nope.json", "404")):
        r = srkit_cli("models", "--refresh", "--url", server.url(path))
        assert r.returncode == 1 and _one_line(r) and msg in r.stderr
    assert not user_catalogue_path().exists()
    r = srkit_cli("models", "--url", server.url("/bad.json"))
    assert r.returncode == 2 and "--refresh" in r.stderr


def test_catalogue_precedence(cache):
    shipped = read_catalogue(SHIPPED_CATALOGUE)
    assert load_catalogue().origin == str(SHIPPED_CATALOGUE)
    old, _ = catalogue_from_records({"4x-Old": _record("https://x.org/a.pth", PAYLOAD)}, source="t", date="2000-01-01")
    write_catalogue(old, user_catalogue_path())
    assert load_catalogue().ids == shipped.ids  # older than the shipped one: ignored
    new, _ = catalogue_from_records({"4x-New": _record("https://x.org/a.pth", PAYLOAD)}, source="t", date="2099-01-01")
    write_catalogue(new, user_catalogue_path())
    assert load_catalogue().ids == ["4x-New"]
    user_catalogue_path().write_text("{broken")
    notes: list[str] = []
    assert load_catalogue(on_ignored=notes.append).ids == shipped.ids and "ignored" in notes[0]


# ----------------------------------------------------------------------------------------------- the shipped catalogue


def test_shipped_catalogue():
    cat = read_catalogue(SHIPPED_CATALOGUE)
    assert cat.source.startswith("OpenModelDB/open-model-database") and cat.date in cat.source
    assert len(cat.models) > 50 and len(set(cat.ids)) == len(cat.ids)
    real = cat.get("4x-realesrgan-x4plus")
    assert real is not None and real.license and real.resource is not None
    assert real.resource.sha256 is not None and len(real.resource.sha256) == 64
    assert all(e.license for e in cat.models)
    assert all(is_direct_url(e.resource.direct_url or "") for e in cat.models if e.resource is not None)


def test_build_script_reproduces_the_shipped_catalogue():
    reference = REPO.parent / "shared" / "reference" / "model_catalogue.json"
    if not reference.exists():
        pytest.skip("no ../shared/reference/model_catalogue.json")
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "build_catalogue.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_runner_tables_match_what_loads():
    from srkit.archs import ARCHS

    for arch, scales in SRKIT_RUNS.values():
        assert arch in ARCHS and set(scales) <= set(ARCHS[arch].scales), arch
    spandrel = pytest.importorskip("spandrel")
    ids = {a.architecture.id for a in spandrel.MAIN_REGISTRY.architectures()}
    assert set(SPANDREL_RUNS.values()) <= ids


@pytest.mark.parametrize("url, direct", [
    ("https://github.com/a/b/releases/download/v1/x.pth", True),
    ("https://huggingface.co/a/b/resolve/main/x.safetensors?download=true", True),
    ("http://127.0.0.1:8000/x.onnx", True),
    ("https://github.com/a/b/releases/download/v1/x.pth.tar", True),
    ("https://github.com/a/b/blob/main/x.pth", False),
    ("https://drive.google.com/file/d/abc/view", False),
    ("https://mega.nz/file/abc#key", False),
    ("https://www.dropbox.com/s/abc/x.pth?dl=0", False),
    ("ftp://example.org/x.pth", False),
    ("https://example.org/download?id=3", False),
])
def test_direct_urls(url, direct):
    assert is_direct_url(url) is direct


# ----------------------------------------------------------------------------------------------- names


def test_pulled_model_loads_by_name(srkit_cli, server, cache, tiny_sr_model, tmp_path):
    """pull -> load_model(NAME), srkit info NAME and srkit upscale --model NAME find the file in the cache."""
    from srkit.models import load_model, save_model

    body = save_model(tiny_sr_model, tmp_path / "w.safetensors").read_bytes()
    server.files["/m/tiny.safetensors"] = body
    _use_catalogue({"4x-Tiny": _record(server.url("/m/tiny.safetensors"), body, arch="span", type_="safetensors")})
    with pytest.raises(ModelLoadError, match=r"srkit pull 4x-Tiny.*put the file at .*4x-Tiny\.safetensors"):
        load_model("4x-Tiny")
    assert srkit_cli("pull", "4x-Tiny", "--no-progress").returncode == 0
    m = load_model("4x-Tiny")
    assert m.info.arch == tiny_sr_model.info.arch and m.info.scale == 4
    r = srkit_cli("info", "4x-Tiny")
    assert r.returncode == 0, r.stderr
    Image.fromarray(np.full((12, 10, 3), 128, np.uint8)).save(tmp_path / "in.png")
    r = srkit_cli("upscale", tmp_path / "in.png", "-o", tmp_path / "out.png", "--model", "4x-Tiny")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "out.png").size == (40, 48)


def test_not_pulled_catalogue_model_says_how(srkit_cli, cache):
    r = srkit_cli("info", "4x-realesrgan-x4plus")
    assert r.returncode == 1 and _one_line(r)
    assert "srkit pull 4x-realesrgan-x4plus" in r.stderr and str(cache / "models") in r.stderr


def test_unknown_model_names_closest(srkit_cli, cache):
    from srkit.models import load_model

    with pytest.raises(ModelLoadError, match="closest: balanced-x4"):
        load_model("balanced-x5")
    with pytest.raises(ModelLoadError, match="closest: bicubic"):
        load_model("bicubc")
    r = srkit_cli("info", "realesrgan-x4plus")
    assert r.returncode == 1 and _one_line(r) and "closest: 4x-realesrgan-x4plus" in r.stderr


# ----------------------------------------------------------------------------------------------- srkit models


def test_models_lists_shipped_classical_and_architectures(srkit_cli, cache):
    from srkit.cli.models import PURPOSE
    from srkit.models import CLASSICAL_KERNELS, builtin_weights

    shipped = list(builtin_weights())
    assert shipped and set(shipped) <= set(PURPOSE)
    r = srkit_cli("models")
    assert r.returncode == 0, r.stderr
    for name in [*shipped, *CLASSICAL_KERNELS, "rrdbnet", "swinir"]:
        assert name in r.stdout
    out = json.loads(srkit_cli("models", "--json").stdout)
    tiny = next(m for m in out["shipped"] if m["name"] == "tiny-x4")
    assert tiny["scale"] == 4 and 0 < tiny["macs_per_output_pixel"] < 2000 and tiny["purpose"]
    out = json.loads(srkit_cli("models", "--json", "--scale", "2").stdout)
    assert {m["scale"] for m in out["shipped"]} == {2} and all(2 in a["scales"] for a in out["architectures"])


def test_catalog_filters(srkit_cli, cache):
    out = json.loads(srkit_cli("models", "--catalog", "--json", "--arch", "esrgan", "--scale", "2").stdout)
    assert out["models"] and all(m["architecture"] == "esrgan" and m["scale"] == 2 for m in out["models"])
    out = json.loads(srkit_cli("models", "--catalog", "--json", "--search", "realesrgan").stdout)
    assert "4x-realesrgan-x4plus" in [m["id"] for m in out["models"]]
    runnable = json.loads(srkit_cli("models", "--catalog", "--json").stdout)["models"]
    everything = json.loads(srkit_cli("models", "--catalog", "--json", "--all").stdout)["models"]
    assert all(m["runs_with"] for m in runnable) and len(everything) > len(runnable)


def test_listing_imports_neither_torch_nor_spandrel():
    """The catalogue and both commands' modules are cheap to import: `srkit --help` and `--catalog` stay fast."""
    code = ("import sys, srkit.cli.app, srkit.cli.models, srkit.cli.pull, srkit.catalog, srkit.catalog.download; "
            "print(sorted(m for m in ('torch', 'spandrel') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "torch" not in r.stdout and "spandrel" not in r.stdout


def test_help_has_no_type_labels_or_stray_spaces(srkit_cli):
    """Friction 8: no `<bool>` / `<list[str]>` labels; brackets in help strings survive (no ` .` left behind)."""
    commands = [(), ("eval",), ("upscale",), ("info",), ("export",), ("train",), ("plot",), ("degrade",),
                ("models",), ("pull",), ("iqa",), ("iqa", "score"), ("iqa", "fit-niqe")]
    for cmd in commands:
        r = srkit_cli(*cmd, "--help")
        assert r.returncode == 0, (cmd, r.stderr)
        for bad in ("<bool>", "<list[", "<str>", "<path>", "<int", "<float"):
            assert bad not in r.stdout, (cmd, bad)
        assert not re.search(r"\w [.,](?=\s)", r.stdout), (cmd, re.search(r".{30}\w [.,](?=\s)", r.stdout))
    assert "[default:" in srkit_cli("models", "--help").stdout.split("--url", 1)[1].split("--timeout")[0]
