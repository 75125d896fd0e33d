"""Video: decode any FFmpeg input with PyAV, upscale its frames in batches through the one inference path
(`srkit.infer.engine.run_image`), encode H.264 / H.265 / FFV1, copy every other stream untouched. Needs the
`video` extra (`pip install 'srkit[video]'`: PyAV).

`upscale_file(src, dst, up, request, options)` is what `srkit upscale clip.mp4 -o clip_x4.mp4` and
`srkit.infer.files.upscale_file` run for a video (recognised by content, `srkit.domains.sniff.is_video`).

What is kept:

* Audio, subtitle and other video streams (cover art, a second angle): their packets are copied byte for byte,
  with their timestamps (remuxed, never re-encoded), codec parameters, metadata (language, title) and
  disposition. Container metadata (title, creation time, ...) and chapters are copied, and attachments (fonts)
  into a Matroska output.
* Timestamps: every output frame has its input frame's pts, so the frame count, the time base (as far as the
  container stores it: MP4/MOV keep it exactly, Matroska stores milliseconds) and variable frame rate are kept;
  the stream's frame rate is written as the input's. Matroska cannot store negative timestamps: when the input
  has some (AAC priming, B-frame reordering), FFmpeg shifts every stream by the same amount, as `ffmpeg -c copy`
  does.
* Rotation: the display matrix (side data; or a legacy `rotate` tag) is written on the output stream, so players
  turn the upscaled clip as they turned the input. Sample aspect ratio is kept.
* Colour: colour range, matrix (colorspace), primaries and transfer are tagged on the output as on the input, and
  the conversions to and from RGB use the input's matrix and range. Bit depth: 8-bit input is upscaled as 8-bit
  RGB, deeper input (10-bit, 12-bit, ...) as 16-bit RGB and written 10-bit (H.264/H.265) or 16-bit (FFV1).
* Pixel format: H.264/H.265 keep the input's (e.g. yuv420p, yuv422p10le) when the encoder takes it, else 4:2:0
  at 8 or 10 bits. FFV1 is the lossless path: it stores the upscaled RGB exactly (bgr0, or gbrp16le for deep
  input), so its frames are pixel for pixel `srkit.upscale` of the decoded frames when each frame has its own
  model call (the default on the CPU); batched (the default on a GPU), up to the batched convolutions' float
  rounding (at most 1 level, on 1 value in ~37000 measured on the tests' clip).

What is not kept: the video codec and its bitstream (the upscaled frames are encoded anew: H.264, H.265 or FFV1 at
`DomainOptions.crf`); alpha (frames are upscaled as RGB); HDR mastering-display and light-level side data
(the transfer and primaries tags are kept); closed captions carried inside the video bitstream (A53); interlacing
(fields are upscaled as progressive frames: deinterlace first); data streams (e.g. QuickTime timecode tracks), and
attachments (Matroska fonts) when the output is not Matroska, are dropped with a warning; a frame size that changes
mid-stream is refused.

Resuming: frames are encoded in segments (at least `SEGMENT_SECONDS` long, cut at the input's keyframes) into a
hidden work folder next to the output (`.<output name>.srkit-video/`); each finished segment is renamed into place
atomically. A killed or failed job, rerun with the same input, model and settings, restarts at the first
unfinished segment (the input is seeked there); a rerun with other settings starts over. When every segment is
done, the segments and the copied streams are remuxed into a temporary file next to the output
(`.<name>.<hex>.tmp`), renamed to the output, and the work folder is removed. No partial file ever has the
output's name.

Progress: `DomainOptions.extra["progress"]` is called as `progress(frames_done, frames_total)` (once at the start,
then after each batch); `extra["on_segment"]` as `on_segment(index, count)` after each finished segment.
`extra["segment_seconds"]`, `extra["batch"]` (frames per model call; default: 1 on the CPU, where it is fastest,
else as many same-size frames as fit `BATCH_BYTES`) and `extra["preset"]` (x264/x265 preset, default "medium")
tune the run.

Multi-frame models (`ModelInfo.frames` > 1, e.g. ``video-x4``): the frames go through the model in windows
(`srkit.infer.clips.plan_windows`: `ModelInfo.frames` output frames with `frame_context` frames of context on each
side; `extra["window"]` / `extra["context"]` override them), at most one window in memory. Windows never span
two resume segments and each segment's windows start at its first frame, and a resumed job decodes from far enough
before its first unfinished segment to give it the same context, so resuming still gives the uninterrupted run's
frames.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import json
import os
import secrets
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from srkit.domains.video_av import (
    CODECS,
    CONTAINERS,
    Look,
    SegmentWriter,
    Spec,
    assemble,
    import_av,
    iter_frames,
    look_at,
    make_spec,
    one_line,
    output_format,
    probe,
    segment_frames,
)
from srkit.errors import ConfigError, ImageReadError, ImageWriteError
from srkit.infer.engine import run_image

if TYPE_CHECKING:
    from srkit.domains import DomainOptions
    from srkit.infer.engine import Request
    from srkit.infer.upscaler import Upscaler

__all__ = [
    "CODECS",
    "CONTAINERS",
    "SEGMENT_SECONDS",
    "ClipScores",
    "evaluate_clip",
    "import_av",
    "iter_frames",
    "upscale_file",
]

#: Segments (the unit of resuming) last at least this long, cut at the input's keyframes.
SEGMENT_SECONDS = 10.0
#: Frames per model call on an accelerator: as many same-size frames as keep about this many bytes of float32 input
#: and output. On the CPU one frame per call is faster (`benchmarks/video_speed.py`, tiny-x4, 50 frames 320x180 ->
#: 1280x720 H.264, 2 threads: the video path 3.3 s one frame per call against 4.5 s in batches of 7, the model
#: alone 1.6 s against 2.8 s; 1 thread: 4.8 s against 10.1 s), so it is the default there.
BATCH_BYTES = 256 << 20
MAX_BATCH = 16
_WORK_SUFFIX = ".srkit-video"
_VERSION = 1  # of the work folder's layout; part of the job key


# --- frames through the one inference path ---------------------------------------------------------------------


def _batch_size(up: Upscaler, height: int, width: int, override: Any = None) -> int:
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, int) or override < 1:
            raise ConfigError(f"batch must be an integer >= 1, got {override!r}")
        return override
    if up.device.type == "cpu":
        return 1
    s = up.scale
    per_frame = 3 * height * width * (1 + s * s) * 4 * 3  # float32 input + output, with working copies
    return max(1, min(MAX_BATCH, BATCH_BYTES // max(per_frame, 1)))


def _upscale_batch(up: Upscaler, request: Request, frames: Sequence[np.ndarray]) -> np.ndarray:
    """(B, H, W, 3) uint8/uint16 frames -> (B, sH, sW, 3), the same dtype, through `run_image` in one call; the
    conversions are `run_array`'s, so each frame equals `srkit.upscale` of it up to the batched model's rounding."""
    stack = np.stack(frames)
    peak = float(np.iinfo(stack.dtype).max)
    x = stack.astype(np.float32)
    x /= np.float32(peak)
    y = run_image(up, torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), request)
    out = y.permute(0, 2, 3, 1).cpu().numpy()
    return np.rint(out * np.float32(peak)).astype(stack.dtype)


def _batches(frames: Iterator[tuple[np.ndarray, int, int]], size: int
             ) -> Iterator[list[tuple[np.ndarray, int, int]]]:
    """Runs of up to `size` consecutive same-size frames."""
    batch: list[tuple[np.ndarray, int, int]] = []
    for item in frames:
        if batch and (len(batch) == size or batch[0][0].shape != item[0].shape):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


# --- the job: segments, resuming, assembly -------------------------------------------------------------------


def _boundaries(keyframes: Sequence[int], time_base: Fraction, seconds: float) -> list[int]:
    """pts where segments 1, 2, ... start: keyframes at least `seconds` after the previous start."""
    if seconds <= 0:
        raise ConfigError(f"segment_seconds must be > 0, got {seconds!r}")
    step = Fraction(seconds) / time_base
    out: list[int] = []
    last = keyframes[0] if keyframes else 0
    for k in keyframes[1:]:
        if k - last >= step:
            out.append(k)
            last = k
    return out


def _model_digest(up: Upscaler) -> str:
    h = hashlib.sha256()
    for name, t in sorted(up.model.state_dict().items()):
        h.update(name.encode())
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _job_key(src: Path, up: Upscaler, request: Request, spec: Spec, bounds: list[int],
             window: tuple[int, int] | None = None) -> str:
    st = src.stat()
    job = {
        "version": _VERSION, "src": os.path.realpath(src), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "model": _model_digest(up), "settings": {k: str(v) for k, v in sorted(up.settings().items())},
        "request": repr(request), "spec": repr(spec), "bounds": bounds,
        **({"window": list(window)} if window is not None else {}),
    }
    return hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()


def _work_folder(dst: Path, key: str) -> Path:
    """The job's work folder, emptied when it belongs to another job."""
    work = dst.parent / f".{dst.name[:200]}{_WORK_SUFFIX}"
    stamp = work / "job.json"
    if work.is_dir():
        try:
            same = json.loads(stamp.read_text()).get("key") == key
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(work)
    work.mkdir(exist_ok=True)
    if not stamp.exists():
        stamp.write_text(json.dumps({"key": key}) + "\n")
    return work


def _segment_path(work: Path, k: int) -> Path:
    return work / f"seg-{k:06d}.mp4"


class _Segments:
    """Sends each upscaled frame to its segment's writer; a segment is finished (renamed into place) when the first
    frame of a later one arrives, or at the end."""

    def __init__(self, av: Any, paths: list[Path], spec: Spec, done: set[int],
                 on_segment: Callable[[int, int], Any] | None):
        self.av, self.paths, self.spec, self.done, self.on_segment = av, paths, spec, done, on_segment
        self.writer: SegmentWriter | None = None
        self.current = -1

    def add(self, k: int, rgb: np.ndarray, pts: int, duration: int) -> None:
        if k != self.current:
            if k < self.current:
                raise ImageReadError("video timestamps go backwards")
            self.finish()
            self.writer, self.current = SegmentWriter(self.av, self.paths[k], self.spec), k
        assert self.writer is not None
        self.writer.add(rgb, pts, duration)

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.finish()
            self.writer = None
            self.done.add(self.current)
            if self.on_segment is not None:
                self.on_segment(self.current, len(self.paths))

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


def _check_size(src: Path, look: Look, frame: np.ndarray) -> None:
    h, w = frame.shape[:2]
    if (w, h) != (look.width, look.height):
        raise ImageReadError(f"cannot read '{src}': the frame size changes mid-stream ({look.width} x "
                             f"{look.height} -> {w} x {h})")


def _clip_start(av: Any, segments: _Segments, first: int, context: int) -> int:
    """The segment to decode from so that segment `first` gets `context` frames before it: back over finished
    segments (their frame counts are known) until they hold that many."""
    start, have = first, 0
    while start > 0 and have < context:
        start -= 1
        have += segment_frames(av, segments.paths[start])
    return start


def _encode_windows(av: Any, src: Path, up: Upscaler, request: Request, look: Look, bounds: list[int],
                    segments: _Segments, window: tuple[int, int], report: Callable[[int], Any]) -> None:
    """`_encode` for a multi-frame model: windows of frames (`srkit.infer.clips`), cut at segment boundaries."""
    from srkit.infer.clips import plan_windows, run_clip

    done = segments.done
    first = min(k for k in range(len(segments.paths)) if k not in done)
    start = _clip_start(av, segments, first, window[1])
    frames = ((a, pts, dur, bisect.bisect_right(bounds, pts))
              for a, pts, dur in iter_frames(src, start_pts=bounds[start - 1] if start > 0 else None))
    for run, lo, hi in plan_windows(frames, window[0], window[1], group=lambda item: item[3]):
        kept = run[lo:hi]
        if kept[0][3] in done:
            continue
        for item in run:
            _check_size(src, look, item[0])
        stack = np.stack([item[0] for item in run])
        peak = float(np.iinfo(stack.dtype).max)
        x = torch.from_numpy(np.ascontiguousarray(stack.transpose(0, 3, 1, 2))).float().div_(peak)
        y = run_clip(up, x, request)[lo:hi].permute(0, 2, 3, 1).cpu().numpy()
        for out, (_, pts, dur, k) in zip(np.rint(y * np.float32(peak)).astype(stack.dtype), kept):
            segments.add(k, out, pts, dur)
        report(len(kept))


def _encode(av: Any, src: Path, up: Upscaler, request: Request, look: Look, bounds: list[int], segments: _Segments,
            batch: int, report: Callable[[int], Any], window: tuple[int, int] | None = None) -> None:
    """Decode from the first unfinished segment on, upscale in batches (a multi-frame model: in `window` = (window,
    context) windows), encode into the unfinished segments."""
    done = segments.done
    first = min(k for k in range(len(segments.paths)) if k not in done)
    try:
        if window is not None:
            _encode_windows(av, src, up, request, look, bounds, segments, window, report)
            segments.finish()
            return
        for run in _batches(iter_frames(src, start_pts=bounds[first - 1] if first > 0 else None), batch):
            _check_size(src, look, run[0][0])
            todo = [(a, pts, dur, k) for a, pts, dur in run if (k := bisect.bisect_right(bounds, pts)) not in done]
            if not todo:
                continue
            for out, (_, pts, dur, k) in zip(_upscale_batch(up, request, [t[0] for t in todo]), todo):
                segments.add(k, out, pts, dur)
            report(len(todo))
        segments.finish()
    except ImageReadError as e:
        raise ImageReadError(str(e) if str(e).startswith("cannot read") else f"cannot read '{src}': {e}") from None
    finally:
        segments.abort()


def upscale_file(src: Path, dst: Path, up: Upscaler, request: Request, options: DomainOptions) -> Path:
    """Upscale the video `src` into `dst` (see the module docstring for what is kept, resuming and progress).

    Raises:
        ConfigError: the video extra is missing; a bad codec / crf; an output container that cannot hold the
            codec or a copied stream. ImageReadError: an unreadable, truncated or corrupt input (one line, before
            anything is written). ImageWriteError: the output cannot be written.
    """
    av = import_av()
    src, dst = Path(src), Path(dst)
    extra = options.extra
    progress: Callable[[int, int], Any] | None = extra.get("progress")
    if not dst.parent.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': directory '{dst.parent}' does not exist")
    if dst.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': is a directory")
    source = probe(av, src)
    look = look_at(av, src, source.video)
    spec = make_spec(av, look, source, up.scale, options.codec, options.crf, str(extra.get("preset", "medium")))
    fmt = output_format(av, dst, spec, src, source)
    dropped = source.dropped
    if source.attachments and fmt not in ("matroska", "webm"):
        dropped += tuple(f"#{i} (attachment: only Matroska stores them)" for i in source.attachments)
    for what in dropped:
        warnings.warn(f"{src.name}: stream {what} is not copied", RuntimeWarning, stacklevel=2)
    bounds = _boundaries(source.keyframes, source.time_base, float(extra.get("segment_seconds", SEGMENT_SECONDS)))
    batch = _batch_size(up, look.height, look.width, extra.get("batch"))
    window = None
    if up.model.info.multi_frame:
        from srkit.infer.clips import window_of

        window = window_of(up, extra.get("window"), extra.get("context"))
    try:
        work = _work_folder(dst, _job_key(src, up, request, spec, bounds, window))
    except OSError as e:
        raise ImageWriteError(f"cannot write '{dst}': work folder: {one_line(e)}") from None
    paths = [_segment_path(work, k) for k in range(len(bounds) + 1)]
    done = {k for k, p in enumerate(paths) if p.is_file()}
    frames_done = [sum(segment_frames(av, paths[k]) for k in done)]

    def report(n: int) -> None:
        frames_done[0] += n
        if progress is not None:
            progress(frames_done[0], source.packets)

    report(0)
    if len(done) < len(paths):
        try:
            _encode(av, src, up, request, look, bounds, _Segments(av, paths, spec, done, extra.get("on_segment")),
                    batch, report, window)
        except av.FFmpegError as e:
            raise ImageWriteError(f"cannot write '{dst}': encoding failed ({one_line(e)})") from None
    paths = [p for p in paths if p.is_file()]  # a segment whose time range decoded to no frame has no file
    if not paths:
        raise ImageReadError(f"cannot read '{src}': no video frame could be decoded")
    tmp = dst.parent / f".{dst.name[:200]}.{secrets.token_hex(6)}.tmp"
    try:
        assemble(av, src, paths, tmp, fmt, source, look)
        os.replace(tmp, dst)
    except (av.FFmpegError, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise ImageWriteError(f"cannot write '{dst}': {one_line(e)}") from None
    shutil.rmtree(work, ignore_errors=True)
    return dst


# --- temporal consistency of an upscaled clip -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClipScores:
    """`evaluate_clip`'s result: warping errors (mean |frame - warped previous frame| on [0, 1]) of the upscaled
    clip and of the input, over `frames` frames."""

    frames: int
    output: float
    input: float


def evaluate_clip(src: str | os.PathLike[str], up: Upscaler, request: Request, *, max_frames: int | None = None,
                  progress: Callable[[int, int], Any] | None = None) -> ClipScores:
    """Upscale the frames of the video `src` (as `upscale_file` does, nothing written) and score their temporal
    consistency: `srkit.metrics.warping.WarpingError` of the output (flow from the input frames, upscaled) beside
    the same figure for the input. Memory holds two frames, not the clip."""
    from srkit.metrics.warping import WarpingError

    av = import_av()
    path = Path(os.fspath(src))
    source = probe(av, path)
    total = source.packets if max_frames is None else min(source.packets, max_frames)
    look = look_at(av, path, source.video)
    out_score, in_score = WarpingError(), WarpingError()
    n = 0
    if up.model.info.multi_frame:  # windows of frames (srkit.infer.clips), two frames held for the scores
        from srkit.infer.clips import iter_clip

        lrs = (a for a, _, _ in itertools.islice(iter_frames(path), max_frames))
        to_model, to_score = itertools.tee(lrs)  # holds the frames the model has read and not yet given back
        for sr, lr in zip(iter_clip(up, to_model, request), to_score):
            in_score.update(lr, lr)
            out_score.update(sr, lr)
            n += 1
            if progress is not None:
                progress(n, total)
        return ClipScores(n, out_score.value, in_score.value)
    for run in _batches(iter_frames(path), _batch_size(up, look.height, look.width)):
        if max_frames is not None:
            run = run[: max(0, max_frames - n)]
        if not run:
            break
        arrays = [a for a, _, _ in run]
        for lr, sr in zip(arrays, _upscale_batch(up, request, arrays)):
            in_score.update(lr, lr)
            out_score.update(sr, lr)
        n += len(run)
        if progress is not None:
            progress(n, total)
    return ClipScores(n, out_score.value, in_score.value)
