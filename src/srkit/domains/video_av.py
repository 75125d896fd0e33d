"""The PyAV side of `srkit.domains.video`: what an input holds (a demux pass, its first frame), decoding frames to
RGB arrays, encoding upscaled frames into segment files, remuxing the segments with the input's other streams.
Needs the `video` extra (PyAV); `import_av` names it when missing."""

from __future__ import annotations

import dataclasses
import heapq
import io
import itertools
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from srkit.errors import ConfigError, ImageReadError, ImageWriteError

__all__ = [
    "CODECS",
    "CONTAINERS",
    "Look",
    "SegmentWriter",
    "Source",
    "Spec",
    "assemble",
    "import_av",
    "iter_frames",
    "look_at",
    "make_spec",
    "one_line",
    "output_format",
    "probe",
    "segment_frames",
]

#: `DomainOptions.codec` -> (FFmpeg encoder, codec name a container lists as supported).
CODECS = {"h264": ("libx264", "h264"), "h265": ("libx265", "hevc"), "ffv1": ("ffv1", "ffv1")}
#: Output suffix -> FFmpeg muxer.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
              ".ts": "mpegts", ".mts": "mpegts", ".m2ts": "mpegts", ".nut": "nut"}
# Container tags written by the muxer itself, not copied.
_MUXER_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration", "vendor_id"}
# AVColorSpace -> swscale colorspace (SWS_CS_*) for RGB -> YUV; others: swscale's default (BT.601).
_SWS_CS = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
_AVCOL_SPC_RGB = 0
_AVCOL_RANGE_MPEG, _AVCOL_RANGE_JPEG = 1, 2


def import_av() -> Any:
    """The `av` module; ConfigError naming the extra when PyAV is not installed."""
    try:
        import av
    except ImportError:
        raise ConfigError("video input needs the video extra: pip install 'srkit[video]'") from None
    return av


def frac(value: Any) -> Fraction | None:
    """A PyAV rational (Fraction, or AVRational in newer PyAV) as a Fraction; None when unset or zero."""
    if value is None or not value:
        return None
    return Fraction(int(value.numerator), int(value.denominator))


def one_line(e: BaseException) -> str:
    return " ".join(str(getattr(e, "strerror", None) or e).split()) or type(e).__name__


# --- what the input holds ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Source:
    """What a demux pass over the input learnt (no decoding)."""

    video: int  # index of the stream that is upscaled
    time_base: Fraction
    packets: int  # video packets (frames)
    keyframes: tuple[int, ...]  # pts of the video keyframes, sorted
    copied: tuple[int, ...]  # indices of the streams copied untouched
    attachments: tuple[int, ...]  # indices of the attachment streams (fonts, cover images in Matroska)
    dropped: tuple[str, ...]  # streams that cannot be copied, described


@dataclasses.dataclass(frozen=True)
class Look:
    """The video as its first decoded frame shows it."""

    width: int
    height: int
    pix_fmt: str
    deep: bool  # more than 8 bits per sample
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int
    matrix: tuple[int, ...] | None  # display matrix (9 int32), None when absent
    rate: Fraction | None
    sample_aspect_ratio: Fraction | None


def _main_video(container: Any) -> Any:
    for s in container.streams.video:
        if not int(s.disposition) & int(s.disposition.__class__.attached_pic):
            return s
    return None


def probe(av: Any, src: Path) -> Source:
    """Demux the input once: the stream to upscale, its keyframes and frame count, the streams to copy.
    ImageReadError (one line) for an unreadable, truncated or corrupt file."""
    try:
        container = av.open(str(src), "r")
    except (av.FFmpegError, OSError) as e:
        raise ImageReadError(f"cannot read '{src}': not a readable video, or truncated ({one_line(e)})") from None
    try:
        vs = _main_video(container)
        if vs is None:
            raise ImageReadError(f"cannot read '{src}': no video stream")
        tb = frac(vs.time_base)
        if tb is None:
            raise ImageReadError(f"cannot read '{src}': the video stream has no time base")
        copied, attachments, dropped = [], [], []
        for s in container.streams:
            if s.index == vs.index:
                continue
            if s.type in ("audio", "subtitle", "video"):
                copied.append(s.index)
            elif s.type == "attachment":
                attachments.append(s.index)
            else:
                dropped.append(f"#{s.index} ({s.type}{', ' + s.codec_context.name if s.codec_context else ''})")
        keyframes, count = [], 0
        try:
            for p in container.demux(vs):
                if p.size == 0 and p.pts is None and p.dts is None:
                    continue  # the demuxer's end-of-stream marker
                if p.is_corrupt:
                    raise ImageReadError(f"cannot read '{src}': truncated or corrupt video (frame {count + 1} "
                                         "is damaged)")
                count += 1
                if p.is_keyframe and p.pts is not None:
                    keyframes.append(int(p.pts))
        except av.FFmpegError as e:
            raise ImageReadError(f"cannot read '{src}': truncated or corrupt video ({one_line(e)})") from None
        if count == 0:
            raise ImageReadError(f"cannot read '{src}': the video stream has no frames")
        if vs.frames and count < vs.frames:
            raise ImageReadError(f"cannot read '{src}': truncated video ({count} of {vs.frames} frames present)")
        return Source(vs.index, tb, count, tuple(sorted(set(keyframes))), tuple(copied), tuple(attachments),
                      tuple(dropped))
    finally:
        container.close()


def _display_matrix(av: Any, frame: Any, stream: Any) -> tuple[int, ...] | None:
    sd = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX) if frame.side_data else None
    if sd is not None:
        m = tuple(int(v) for v in np.frombuffer(bytes(sd), dtype=np.int32)[:9])
        return None if m == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30) else m
    rotate = stream.metadata.get("rotate")
    if rotate:
        try:
            degrees = -float(rotate)  # the legacy tag turns clockwise; the matrix counterclockwise
        except ValueError:
            return None
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        fix = lambda v: int(round(v * 65536))  # noqa: E731 - 16.16 fixed point
        return (fix(c), fix(-s), 0, fix(s), fix(c), 0, 0, 0, 1 << 30)
    return None


def look_at(av: Any, src: Path, index: int) -> Look:
    """Decode the first frame: size, pixel format, colour, rotation."""
    try:
        with av.open(str(src), "r") as container:
            vs = container.streams[index]
            for frame in container.decode(vs):
                cc = vs.codec_context
                comps = frame.format.components
                deep = any(c.bits > 8 for c in comps)
                pick = lambda f, c, unset: f if f not in unset else c  # noqa: E731
                return Look(
                    width=frame.width, height=frame.height, pix_fmt=frame.format.name, deep=deep,
                    colorspace=int(pick(frame.colorspace, cc.colorspace, (2,))),
                    color_range=int(pick(frame.color_range, cc.color_range, (0,))),
                    color_primaries=int(pick(frame.color_primaries, cc.color_primaries, (2,))),
                    color_trc=int(pick(frame.color_trc, cc.color_trc, (2,))),
                    matrix=_display_matrix(av, frame, vs),
                    rate=frac(vs.average_rate) or frac(vs.guessed_rate),
                    sample_aspect_ratio=frac(cc.sample_aspect_ratio),
                )
    except av.FFmpegError as e:
        raise ImageReadError(f"cannot read '{src}': cannot decode the video ({one_line(e)})") from None
    raise ImageReadError(f"cannot read '{src}': no video frame could be decoded")


def iter_frames(src: str | os.PathLike[str], *, start_pts: int | None = None) -> Iterator[tuple[np.ndarray, int, int]]:
    """The frames of `src`'s main video stream as (RGB array, pts, duration): (H, W, 3) uint8, or uint16 for input
    deeper than 8 bits, converted with the stream's own colour matrix and range. `start_pts`: seek to the keyframe
    at or before it and give only the frames from it on. ImageReadError when the video cannot be decoded."""
    av = import_av()
    path = Path(os.fspath(src))
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as e:
        raise ImageReadError(f"cannot read '{path}': not a readable video, or truncated ({one_line(e)})") from None
    try:
        vs = _main_video(container)
        if vs is None:
            raise ImageReadError(f"cannot read '{path}': no video stream")
        vs.thread_type = "AUTO"
        try:
            frames = container.decode(vs)
            if start_pts is not None:
                container.seek(int(start_pts), stream=vs, backward=True, any_frame=False)
                frames = container.decode(vs)
                head = next(frames, None)
                if head is not None and head.pts is not None and head.pts > start_pts:
                    container.seek(0, stream=vs, backward=True, any_frame=False)  # overshot: from the start
                    frames = container.decode(vs)
                elif head is not None:
                    frames = itertools.chain([head], frames)
            for frame in frames:
                if frame.pts is None:
                    raise ImageReadError(f"cannot read '{path}': a video frame has no timestamp")
                if start_pts is not None and frame.pts < start_pts:
                    continue
                yield _frame_array(frame), int(frame.pts), int(frame.duration or 0)
        except av.FFmpegError as e:
            raise ImageReadError(f"cannot read '{path}': truncated or corrupt video ({one_line(e)})") from None
    finally:
        container.close()


# swscale flags of the YUV <-> RGB conversions: bicubic chroma, rounded (swscale's default truncates: its RGB
# came out 0.5-1.3 levels dark on 8-bit BT.709 clips), full horizontal chroma interpolation.
_SWS_FLAGS = (1 << 2) | (1 << 18) | (1 << 13)  # SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT


def _frame_array(frame: Any) -> np.ndarray:
    deep = any(c.bits > 8 for c in frame.format.components)
    return frame.to_ndarray(format="rgb48le" if deep else "rgb24", interpolation=_SWS_FLAGS)


# --- encoding ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Spec:
    """How the upscaled frames are encoded."""

    codec: str  # DomainOptions.codec
    encoder: str
    options: tuple[tuple[str, str], ...]
    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    rate: Fraction | None
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int
    sample_aspect_ratio: Fraction | None
    src_colorspace: int  # matrix of the RGB -> YUV conversion (the input's)


def make_spec(av: Any, look: Look, source: Source, scale: int, codec: str, crf: int, preset: str) -> Spec:
    """The encoding of the upscaled frames: `codec` ("h264", "h265", "ffv1") at `crf` (ignored by FFV1)."""
    if codec not in CODECS:
        raise ConfigError(f"video codec must be one of {', '.join(CODECS)}, got {codec!r}")
    encoder = CODECS[codec][0]
    if codec != "ffv1" and (isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51):
        raise ConfigError(f"crf must be an integer in 0..51, got {crf!r}")
    s = scale
    w, h = look.width * s, look.height * s
    yuv_range = look.color_range if look.color_range else _AVCOL_RANGE_MPEG
    if codec == "ffv1":  # lossless RGB: the upscaled pixels exactly
        pix_fmt = "gbrp16le" if look.deep else "bgr0"
        opts: dict[str, str] = {"level": "3", "slicecrc": "1"}
        cs, rng = _AVCOL_SPC_RGB, _AVCOL_RANGE_JPEG
    else:
        supported = {f.name for f in av.codec.Codec(encoder, "w").video_formats}
        if look.pix_fmt in supported and look.pix_fmt.startswith(("yuv", "gray", "gbr")):
            pix_fmt = look.pix_fmt
        else:
            pix_fmt = "yuv420p10le" if look.deep else "yuv420p"
        if pix_fmt.startswith(("yuv420", "yuv422", "yuvj420", "yuvj422")) and (w % 2 or h % 2):
            raise ConfigError(f"{codec} {pix_fmt} needs an even frame size, the output is {w} x {h}: use ffv1")
        opts = {"crf": str(crf), "preset": preset}
        if encoder == "libx265":
            opts["x265-params"] = "log-level=error"
        cs = _AVCOL_SPC_RGB if pix_fmt.startswith("gbr") else look.colorspace
        rng = _AVCOL_RANGE_JPEG if pix_fmt.startswith(("gbr", "yuvj")) else yuv_range
    return Spec(codec, encoder, tuple(sorted(opts.items())), w, h, pix_fmt, source.time_base, look.rate, cs, rng,
                look.color_primaries, look.color_trc, look.sample_aspect_ratio, look.colorspace)


class SegmentWriter:
    """One segment: the upscaled frames encoded into `<work>/seg-NNNNNN.mp4`, written as `.part` and renamed when
    complete."""

    def __init__(self, av: Any, path: Path, spec: Spec):
        self.av, self.path, self.spec = av, path, spec
        self.part = path.with_name(path.name + ".part")
        self.part.unlink(missing_ok=True)
        self.frames = 0
        self.out = av.open(str(self.part), "w", format="mp4")
        try:
            vs = self.out.add_stream(spec.encoder, rate=spec.rate, options=dict(spec.options))
            vs.width, vs.height, vs.pix_fmt = spec.width, spec.height, spec.pix_fmt
            cc = vs.codec_context
            cc.time_base = spec.time_base
            vs.time_base = spec.time_base
            cc.color_range, cc.colorspace = spec.color_range, spec.colorspace
            cc.color_primaries, cc.color_trc = spec.color_primaries, spec.color_trc
            if spec.sample_aspect_ratio is not None:
                cc.sample_aspect_ratio = spec.sample_aspect_ratio
            self.stream = vs
        except BaseException:
            self.abort()
            raise

    def add(self, rgb: np.ndarray, pts: int, duration: int) -> None:
        av, spec = self.av, self.spec
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if rgb.dtype == np.uint16 else "rgb24")
        if spec.colorspace == _AVCOL_SPC_RGB:
            frame = frame.reformat(format=spec.pix_fmt)
        else:
            frame = frame.reformat(format=spec.pix_fmt, dst_colorspace=_SWS_CS.get(spec.src_colorspace),
                                   dst_color_range=spec.color_range, interpolation=_SWS_FLAGS)
        frame.colorspace, frame.color_range = spec.colorspace, spec.color_range
        frame.color_primaries, frame.color_trc = spec.color_primaries, spec.color_trc
        frame.pts, frame.time_base = pts, spec.time_base
        if duration:
            frame.duration = duration
        self.out.mux(self.stream.encode(frame))
        self.frames += 1

    def finish(self) -> None:
        self.out.mux(self.stream.encode(None))
        self.out.close()
        os.replace(self.part, self.path)

    def abort(self) -> None:
        try:
            self.out.close()
        except Exception:  # noqa: BLE001 - closing a broken muxer: the part file is removed anyway
            pass
        self.part.unlink(missing_ok=True)


def segment_frames(av: Any, path: Path) -> int:
    """Frames in a finished segment file."""
    with av.open(str(path), "r") as c:
        return int(c.streams.video[0].frames)


def output_format(av: Any, dst: Path, spec: Spec, src: Path, source: Source) -> str:
    """The muxer for `dst`'s suffix; ConfigError when it is unknown or cannot hold the video codec or a stream that
    is copied."""
    fmt = CONTAINERS.get(dst.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot write '{dst}': unknown video container {dst.suffix or '(no suffix)'!r}; use "
                          f"{', '.join(sorted(CONTAINERS))}")
    with av.open(io.BytesIO(), "w", format=fmt) as probe:
        supported = probe.supported_codecs
    if CODECS[spec.codec][1] not in supported:
        raise ConfigError(f"cannot write '{dst}': {fmt} cannot store {spec.codec} video (try .mkv)")
    with av.open(str(src), "r") as c:
        for i in source.copied:
            cc = c.streams[i].codec_context
            name = cc.name if cc is not None else "unknown"
            if name not in supported:
                raise ConfigError(f"cannot write '{dst}': {fmt} cannot store the {name} {c.streams[i].type} stream "
                                  f"#{i} of the input, which is copied untouched (try .mkv or the input's container)")
    return fmt


def _packets(av: Any, path: Path, streams: Sequence[int] | None) -> Iterator[Any]:
    """Packets of `path` (the given streams, or its video stream), end-of-stream markers left out."""
    with av.open(str(path), "r") as c:
        chosen = [c.streams[i] for i in streams] if streams is not None else [c.streams.video[0]]
        if not chosen:
            return
        for p in c.demux(chosen):
            if p.size == 0 and p.pts is None and p.dts is None:
                continue
            yield p


def _video_packets(av: Any, segments: Sequence[Path], time_base: Fraction) -> Iterator[Any]:
    """The segments' packets in order, decode timestamps kept increasing across segment joins."""
    last: int | None = None
    for path in segments:
        for p in _packets(av, path, None):
            if frac(p.time_base) != time_base:
                raise ImageWriteError(f"segment '{path.name}' has time base {p.time_base}, expected {time_base}")
            if p.dts is not None and last is not None and p.dts <= last:
                if p.pts is not None and last + 1 > p.pts:
                    raise ImageWriteError(f"segment '{path.name}' cannot be joined: its decode timestamps overlap "
                                          "the previous segment's")
                p.dts = last + 1
            if p.dts is not None:
                last = p.dts
            yield p


def _when(p: Any) -> Fraction:
    t = p.dts if p.dts is not None else p.pts
    return Fraction(t if t is not None else 0) * (frac(p.time_base) or Fraction(1))


def assemble(av: Any, src: Path, segments: Sequence[Path], tmp: Path, fmt: str, source: Source,
              look: Look) -> None:
    """Remux the segments' video and the input's other streams (packets untouched) into `tmp`."""
    with av.open(str(src), "r") as inp, av.open(str(segments[0]), "r") as first:
        out = av.open(str(tmp), "w", format=fmt)
        try:
            out.metadata.update({k: v for k, v in inp.metadata.items() if k.lower() not in _MUXER_TAGS})
            template = first.streams.video[0]
            ov = out.add_stream_from_template(template)
            tb = frac(template.time_base)
            assert tb is not None
            ov.time_base = tb
            iv = inp.streams[source.video]
            _copy_stream_info(iv, ov)
            if look.matrix is not None:
                ov.set_display_matrix(list(look.matrix))
            mapping = {}
            for i in source.copied:
                s = inp.streams[i]
                o = out.add_stream_from_template(s)
                stb = frac(s.time_base)
                if stb is not None:
                    o.time_base = stb
                _copy_stream_info(s, o)
                mapping[i] = o
            if fmt in ("matroska", "webm"):
                for i in source.attachments:
                    a = inp.streams[i]
                    out.add_attachment(a.metadata.get("filename", f"attachment-{i}"),
                                       a.mimetype or "application/octet-stream", a.data)
            chapters = inp.chapters()
            if chapters:
                out.set_chapters(chapters)
            video = ((_when(p), 0, p) for p in _video_packets(av, segments, tb))
            # The MP4/MOV muxer writes its own empty mov_text samples where a subtitle ends; copying the input's
            # (zero duration, empty text) would double them.
            fillers = {i for i in source.copied if inp.streams[i].codec_context.name == "mov_text"}
            others = ((_when(p), 1, p) for p in _packets(av, src, source.copied)
                      if not (p.stream_index in fillers and not p.duration and bytes(p) == b"\x00\x00"))
            for _, kind, p in heapq.merge(video, others, key=lambda item: (item[0], item[1])):
                p.stream = ov if kind == 0 else mapping[p.stream_index]
                out.mux(p)
        except BaseException:
            try:
                out.close()
            finally:
                tmp.unlink(missing_ok=True)
            raise
        out.close()


def _copy_stream_info(s: Any, o: Any) -> None:
    o.metadata.update({k: v for k, v in s.metadata.items() if k.lower() not in _MUXER_TAGS | {"rotate"}})
    try:
        o.disposition = s.disposition
    except (AttributeError, TypeError, ValueError):
        pass


