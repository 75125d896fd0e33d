"""Helpers of the service tests: a real uvicorn server on 127.0.0.1 (random free port) in a thread, test models,
generated images and a small HTTP client (urllib: no extra dependency)."""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn


@contextmanager
def running_server(config) -> Iterator[str]:
    """Start `srkit.serve.create_app(config)` under uvicorn in a thread; yields its base URL; stops it after."""
    import uvicorn

    from srkit.serve.app import create_app

    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > end or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def call(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None,
         timeout: float = 60) -> Reply:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def multipart(fields: dict[str, str], file: bytes, filename: str = "photo.png") -> tuple[bytes, str]:
    """A multipart/form-data body with `fields` and the file in field `file`; (body, content type)."""
    boundary = uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + file + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def png_bytes(h: int, w: int, seed: int = 0, channels: int = 3) -> bytes:
    """A smooth random PNG (h x w)."""
    rng = np.random.default_rng(seed)
    small = (rng.random((max(2, h // 6), max(2, w // 6), channels)) * 255).astype(np.uint8)
    im = Image.fromarray(small if channels > 1 else small[..., 0]).resize((w, h), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose IHDR claims w x h (8-bit gray) followed by a tiny IDAT: a header-size attack, 60 bytes."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        _chunk(b"IEND", b"")


def png_bomb(side: int) -> bytes:
    """A real decompression bomb: a side x side 8-bit gray PNG of zeros (a few KB that decode to side^2 bytes)."""
    comp = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    out = [comp.compress(row * min(side, 256)) for _ in range(side // 256)]
    out.append(comp.compress(row * (side % 256)))
    out.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(out)) + _chunk(b"IEND", b"")


class DelayUpsampler(nn.Module):
    """Nearest x2 that first sleeps `delay` seconds (a per-call input): a model whose duration a test chooses."""

    def forward(self, x: torch.Tensor, delay: float = 0.0) -> torch.Tensor:
        if delay:
            time.sleep(float(delay))
        return F.interpolate(x, scale_factor=2, mode="nearest")


class StrengthUpsampler(nn.Module):
    """Nearest x2 blended towards mid-gray by `strength` in [0, 1] (a per-call input, like a restoration model's)."""

    def forward(self, x: torch.Tensor, strength: float = 0.0) -> torch.Tensor:
        y = F.interpolate(x, scale_factor=2, mode="nearest")
        return y * (1 - float(strength)) + 0.5 * float(strength)


def input_model(module: nn.Module, name: str, input_name: str):
    """An x2 SRModel around `module` that declares one per-call input (`ModelInfo.inputs`)."""
    from srkit.srmodel import ModelInfo, SRModel

    info = ModelInfo(arch=name, scale=2, receptive_field=0, safe_dtypes=("fp32",), channel_agnostic=True,
                     in_channels=1, out_channels=1, macs_per_lr_pixel=0.0, inputs=(input_name,))
    return SRModel(module, info).eval()


class LevelsUpsampler(nn.Module):
    """Nearest x2 that records the (noise, jpeg) levels of each call: a conditioned model (like real-x4-ctrl) whose
    test can see what the server passed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[float, float]] = []

    def forward(self, x: torch.Tensor, noise: float = -1.0, jpeg: float = -1.0) -> torch.Tensor:
        self.calls.append((float(noise), float(jpeg)))
        return F.interpolate(x, scale_factor=2, mode="nearest")


def levels_model(module: nn.Module, name: str = "levels"):
    """An x2 SRModel around `module` that takes a conditioned model's noise and JPEG levels (`ModelInfo.inputs`)."""
    from srkit.srmodel import ModelInfo, SRModel

    info = ModelInfo(arch=name, scale=2, receptive_field=0, safe_dtypes=("fp32",), channel_agnostic=True,
                     in_channels=1, out_channels=1, macs_per_lr_pixel=0.0, inputs=("noise", "jpeg"))
    return SRModel(module, info).eval()


def raw_post(base: str, path: str, head: dict[str, str], body: bytes, chunked: bool = False) -> Reply:
    """POST over a bare socket that keeps reading when the server answers before the whole body is sent (413 on
    a declared or counted size): urllib would only report the broken pipe."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in head.items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            step = 1 << 16
            for i in range(0, len(body), step):
                part = body[i:i + step]
                s.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    head_part, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head_part.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return Reply(int(status_line.split()[1]), headers, rest)
