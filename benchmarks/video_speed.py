"""Speed of `srkit upscale` on a video, and what the video path costs on top of the model.

Not a test. Makes a synthetic clip with PyAV (a panning texture, H.264, a sine AAC track; --frames at --size and
25 fps), then times, for one model:

* model only: `run_image` on the decoded frames, in the batches the video path uses, and one frame per call;
* video path: `srkit.infer.files.upscale_file(clip.mp4 -> out.mp4)` (decode, batched upscale, encode with
  --codec at CRF 18, remux of the audio, segment files and final assembly), batched as on a GPU, then with one
  frame per model call (the CPU's default).

Prints wall seconds, frames per second and CPU seconds (this process, all threads) of each (the video path
minus the model alone is what decoding, colour conversion, encoding and muxing cost), and the warping error of the
output beside the input's (`srkit.domains.video.evaluate_clip`).

    python benchmarks/video_speed.py --model tiny-x4 --size 320x180 --frames 50 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch


def make_clip(path: Path, frames: int, width: int, height: int) -> None:
    import av
    import cv2

    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur((rng.random((height + 64, width + 4 * frames)) * 255).astype(np.float32), (0, 0), 2)
    tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=25, options={"crf": "18"})
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    aus = out.add_stream("aac", rate=48000)
    for i in range(frames):
        g = tex[32:32 + height, 2 * i:2 * i + width]
        img = np.stack([g, g[::-1], 255 - g], -1)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, 25)
        out.mux(vs.encode(frame))
    out.mux(vs.encode())
    t = np.arange(48000 * frames // 25) / 48000
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for k in range(0, len(samples), 1024):
        chunk = np.pad(samples[k:k + 1024], (0, max(0, k + 1024 - len(samples))))
        af = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
        out.mux(aus.encode(af))
    out.mux(aus.encode())
    out.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny-x4")
    ap.add_argument("--size", default="320x180", help="LR frame size WxH")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--codec", default="h264", choices=["h264", "h265", "ffv1"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=0, help="frames per call of the batched runs [default: the "
                    "video path's on a GPU, from BATCH_BYTES]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from srkit.domains import DomainOptions
    from srkit.domains.video import BATCH_BYTES, MAX_BATCH, _upscale_batch, evaluate_clip, iter_frames
    from srkit.infer.api import load_upscaler
    from srkit.infer.files import upscale_file

    w, h = (int(v) for v in args.size.lower().split("x"))
    up = load_upscaler(args.model, device=args.device)
    request = up.request()
    suffix = ".mkv" if args.codec == "ffv1" else ".mp4"
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, args.frames, w, h)
        frames = [a for a, _, _ in iter_frames(clip)]
        per_frame = 3 * h * w * (1 + up.scale**2) * 4 * 3
        batch = args.batch or max(1, min(MAX_BATCH, BATCH_BYTES // per_frame))
        _upscale_batch(up, request, frames[:1])  # warm-up
        print(f"{args.model} x{up.scale}, {len(frames)} frames {w}x{h} -> {w * up.scale}x{h * up.scale}, "
              f"{args.codec}, {args.threads} threads, batch {batch}")
        for label, size in (("batched", batch), ("batch 1", 1)):
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(0, len(frames), size):
                _upscale_batch(up, request, frames[i:i + size])
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"  model only ({label}):   {wall:7.2f} s  {len(frames) / wall:6.2f} fps  cpu {cpu:7.2f} s")
        for label, extra in (("video path (batched)", {"batch": batch}), ("video path (batch 1)", {"batch": 1})):
            out = Path(tmp) / f"out{suffix}"
            out.unlink(missing_ok=True)
            t0, c0 = time.perf_counter(), time.process_time()
            upscale_file(clip, out, up, domain_options=DomainOptions(codec=args.codec, extra=extra))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"  {label + ':':23s} {wall:7.2f} s  {len(frames) / wall:6.2f} fps  cpu {cpu:7.2f} s  "
                  f"({out.stat().st_size / 1e6:.2f} MB)")
        scores = evaluate_clip(clip, up, request)
        print(f"  warping error: output {scores.output:.5f}, input {scores.input:.5f} ({scores.frames} frames)")


if __name__ == "__main__":
    main()
