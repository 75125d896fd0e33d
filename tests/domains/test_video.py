"""Video (`srkit.domains.video`): streams copied untouched, timestamps / rotation / colour kept, the lossless FFV1
path equal to `srkit.upscale` of the decoded frames, resuming by segment, bad input and the missing extra refused
in one line. Clips are made here with PyAV: 64 x 48, a dozen frames, a sine audio track."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from srkit.domains import DomainOptions
from srkit.errors import ConfigError, ImageReadError
from srkit.infer.files import upscale_file

W, H, FPS, N = 64, 48, 10, 12


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("srkit: error:")]


def make_clip(path: Path, *, n: int = N, vfr: bool = False, audio: str = "aac", rotate: float | None = None,
              bt709: bool = False, subtitles: str | None = None) -> Path:
    """A moving pattern in H.264 (IDR every 4 frames, B-frames), a 440 Hz sine track, optional subtitles."""
    av = pytest.importorskip("av")
    fmt = "matroska" if path.suffix == ".mkv" else None
    out = av.open(str(path), "w", format=fmt)
    vs = out.add_stream("libx264", rate=FPS, options={"g": "4", "keyint_min": "4", "sc_threshold": "0"})
    vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
    tb = Fraction(1, 1000) if vfr else Fraction(1, FPS)
    vs.codec_context.time_base = tb
    vs.time_base = tb
    if bt709:
        cc = vs.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = 1  # BT.709
        cc.color_range = 2  # full
    if rotate is not None:
        vs.set_display_rotation(rotate)
    aus = out.add_stream(audio, rate=8000)
    aus.layout = "mono"
    sub = None
    if subtitles is not None:
        sub = out.add_mux_stream(subtitles)
        sub.time_base = Fraction(1, 1000)
        sub.metadata["language"] = "fra"
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(0)
    pts = 0
    for i in range(n):
        img = np.stack([(xx * 4 + i * 8) % 256, (yy * 5 + i * 3) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, tb
        pts += int(rng.integers(60, 160)) if vfr else 1
        out.mux(vs.encode(frame))
    out.mux(vs.encode())
    t = np.arange(int(8000 * n / FPS)) / 8000
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    size = aus.codec_context.frame_size or 1024
    fmt_name = aus.format.name
    for k in range(0, len(samples), size):
        chunk = np.pad(samples[k:k + size], (0, max(0, k + size - len(samples))))
        data = chunk[None] if fmt_name in ("flt", "fltp") else (chunk[None] * 32767).astype(np.int16)
        af = av.AudioFrame.from_ndarray(data, format=fmt_name, layout="mono")
        af.sample_rate, af.pts, af.time_base = 8000, k, Fraction(1, 8000)
        out.mux(aus.encode(af))
    out.mux(aus.encode())
    if sub is not None:
        for i, text in enumerate([b"bonjour", b"au revoir"]):
            data = text if subtitles == "subrip" else len(text).to_bytes(2, "big") + text
            p = av.Packet(data)
            p.pts = p.dts = 300 * i
            p.duration, p.time_base, p.stream = 300, Fraction(1, 1000), sub
            out.mux(p)
    out.close()
    return path


def _packets(path: Path, kind: str) -> list[bytes]:
    import av

    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(getattr(c.streams, kind)[0]) if p.size]


def _times(path: Path) -> list[Fraction]:
    """Presentation times of the decoded video frames, in seconds."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        tb = Fraction(vs.time_base.numerator, vs.time_base.denominator)
        return [f.pts * tb for f in c.decode(vs)]


def _frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    make_clip(root / "clip.mp4")
    return root


@pytest.fixture()
def model():
    from helpers import rand_model

    return rand_model("fsrcnn-s", 2)


def test_cli_copies_audio_packets_and_keeps_frames_and_timestamps(srkit_cli, clips, tmp_path):
    src = clips / "clip.mp4"
    dst = tmp_path / "clip_x2.mp4"
    r = srkit_cli("upscale", src, "-o", dst, "--model", "bicubic", "--scale", "2", "--crf", "20")
    assert r.returncode == 0, r.stderr
    assert _packets(dst, "audio") == _packets(src, "audio")  # bit-identical, not re-encoded
    assert _times(dst) == _times(src)  # same frame count, same timestamps (MP4 -> MP4: exactly)
    assert len(_times(dst)) == N
    assert _frames(dst)[0].shape == (2 * H, 2 * W, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_x2.mp4"]  # work folder and temp files gone


@pytest.mark.parametrize("suffix, codec", [(".mkv", "subrip"), (".mp4", "mov_text")])
def test_subtitles_copied_untouched(tmp_path, suffix, codec):
    import av

    src = make_clip(tmp_path / f"sub{suffix}", subtitles=codec, audio="flac" if suffix == ".mkv" else "aac")
    dst = upscale_file(src, tmp_path / f"out{suffix}", "bicubic", scale=2)
    assert _packets(dst, "subtitles") == _packets(src, "subtitles")
    assert _packets(dst, "audio") == _packets(src, "audio")
    with av.open(str(dst)) as c:
        assert c.streams.subtitles[0].metadata["language"] == "fra"
    t_in, t_out = _times(src), _times(dst)
    assert [t - t_in[0] for t in t_in] == [t - t_out[0] for t in t_out]  # Matroska: milliseconds, shifted as one


def test_chapters_title_and_attachments_kept(tmp_path):
    import av

    plain = make_clip(tmp_path / "plain.mkv", audio="flac")
    src = tmp_path / "full.mkv"
    chapters = [{"id": i + 1, "start": 600 * i, "end": 600 * (i + 1), "time_base": Fraction(1, 1000),
                 "metadata": {"title": f"part {i + 1}"}} for i in range(2)]
    with av.open(str(plain)) as inp, av.open(str(src), "w") as out:  # the clip with chapters, a title, a font
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        out.add_attachment("font.ttf", "application/x-truetype-font", b"not really a font")
        out.metadata["title"] = "a clip"
        out.set_chapters(chapters)
        for p in inp.demux():
            if p.dts is not None:
                p.stream = streams[p.stream_index]
                out.mux(p)
    dst = upscale_file(src, tmp_path / "out.mkv", "bicubic", scale=2)
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert b.metadata["title"] == "a clip" and b.chapters() == a.chapters()
        att = b.streams[-1]
        assert att.type == "attachment" and att.data == b"not really a font"
    with pytest.warns(RuntimeWarning, match="attachment: only Matroska"):
        upscale_file(src, tmp_path / "out.mp4", "bicubic", scale=2)


def test_variable_frame_rate_timestamps_carried(tmp_path):
    src = make_clip(tmp_path / "vfr.mp4", vfr=True)
    times = _times(src)
    gaps = {b - a for a, b in zip(times, times[1:])}
    assert len(gaps) > 3  # really variable
    dst = upscale_file(src, tmp_path / "out.mp4", "bicubic", scale=2)
    assert _times(dst) == times


def test_rotation_and_colour_kept(tmp_path):
    import av

    src = make_clip(tmp_path / "rot.mp4", rotate=90, bt709=True)
    dst = upscale_file(src, tmp_path / "out.mp4", "bicubic", scale=2)
    with av.open(str(dst)) as c:
        vs = c.streams.video[0]
        frame = next(c.decode(vs))
        assert frame.rotation == 90
        assert (frame.colorspace, frame.color_primaries, frame.color_trc, frame.color_range) == (1, 1, 1, 2)


def test_ffv1_is_pixel_equal_to_upscale_of_the_decoded_frames(tmp_path, clips, model):
    import srkit
    from srkit.domains.video import iter_frames

    src = clips / "clip.mp4"
    want = [srkit.upscale(f, model) for f, _, _ in iter_frames(src)]  # the frames as srkit decodes them
    # One frame per model call (the CPU's default): srkit.upscale's computation, so its pixels, stored losslessly.
    dst = upscale_file(src, tmp_path / "out.mkv", model, domain_options=DomainOptions(codec="ffv1"))
    got = _frames(dst)
    assert len(got) == len(want) == N
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # Batched (a GPU's default): equal up to the batched convolutions' float rounding, at most 1 level, rarely.
    dst = upscale_file(src, tmp_path / "batched.mkv", model, domain_options=DomainOptions(codec="ffv1",
                                                                                          extra={"batch": 5}))
    diff = np.abs(np.stack(_frames(dst)).astype(int) - np.stack(want))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_resume_after_an_interrupted_run(tmp_path, clips, model):
    src = clips / "clip.mp4"

    class Killed(Exception):
        pass

    def kill(index, count):
        raise Killed

    opts = dict(segment_seconds=0.3)  # IDR every 4 frames (0.4 s): segments of 4 frames
    with pytest.raises(Killed):
        upscale_file(src, tmp_path / "out.mp4", model, domain_options=DomainOptions(extra={**opts, "on_segment": kill}))
    assert not (tmp_path / "out.mp4").exists()
    work = tmp_path / ".out.mp4.srkit-video"
    assert sorted(p.name for p in work.glob("seg-*")) == ["seg-000000.mp4"]  # the first segment survived

    segments, progress = [], []
    extra = {**opts, "on_segment": lambda i, n: segments.append((i, n)), "progress": lambda d, t: progress.append(d)}
    upscale_file(src, tmp_path / "out.mp4", model, domain_options=DomainOptions(extra=extra))
    assert segments == [(1, 3), (2, 3)]  # restarted at the second segment
    assert progress[0] == 4 and progress[-1] == N
    assert not work.exists()
    assert _times(tmp_path / "out.mp4") == _times(src)
    whole = upscale_file(src, tmp_path / "whole.mp4", model, domain_options=DomainOptions(extra=opts))
    for a, b in zip(_frames(tmp_path / "out.mp4"), _frames(whole), strict=True):
        np.testing.assert_array_equal(a, b)  # the resumed output decodes to the uninterrupted run's frames


def test_truncated_mp4_one_line_error_and_no_output(srkit_cli, clips, tmp_path):
    data = (clips / "clip.mp4").read_bytes()
    src = tmp_path / "in" / "cut.mp4"
    src.parent.mkdir()
    src.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    out = tmp_path / "out"
    r = srkit_cli("upscale", src, "-o", out / "cut.mp4", "--model", "bicubic", "--scale", "2")
    assert r.returncode == 1
    errors = _error_lines(r.stderr)
    assert len(errors) == 1 and "truncated" in errors[0], r.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_truncated_faststart_mp4_refused(tmp_path, clips):
    import av

    with av.open(str(clips / "clip.mp4")) as inp, av.open(str(tmp_path / "fs.mp4"), "w",
                                                          options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for p in inp.demux():
            if p.dts is not None:
                p.stream = streams[p.stream_index]
                out.mux(p)
    data = (tmp_path / "fs.mp4").read_bytes()
    src = tmp_path / "cut.mp4"
    src.write_bytes(data[: int(len(data) * 0.6)])  # index first, samples cut
    with pytest.raises(ImageReadError, match="truncated") as e:
        upscale_file(src, tmp_path / "o.mp4", "bicubic", scale=2)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4", "fs.mp4"]


def test_missing_extra_refused_in_one_line(srkit_cli, tmp_path, monkeypatch):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64))  # recognised by content
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` fails
    with pytest.raises(ConfigError, match=r"pip install 'srkit\[video\]'"):
        upscale_file(src, tmp_path / "o.mp4", "bicubic", scale=2)
    r = srkit_cli("upscale", src, "-o", tmp_path / "o.mp4", "--model", "bicubic", "--scale", "2")
    assert r.returncode == 1
    errors = _error_lines(r.stderr)
    assert len(errors) == 1 and "srkit[video]" in errors[0], r.stderr
    assert not (tmp_path / "o.mp4").exists()
    r = srkit_cli("eval", "--video", src, "--model", "bicubic")
    assert r.returncode == 1 and "pip install 'srkit[video]'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_codec_container_pair_refused_before_work(tmp_path, clips):
    with pytest.raises(ConfigError, match="cannot store ffv1"):
        upscale_file(clips / "clip.mp4", tmp_path / "o.webm", "bicubic", scale=2,
                     domain_options=DomainOptions(codec="ffv1"))
    assert list(tmp_path.iterdir()) == []


def test_output_name_keeps_the_container_suffix(clips, tmp_path):
    from srkit.cli.jobs import plan_jobs

    jobs, failures, _ = plan_jobs([str(clips / "clip.mp4")], str(tmp_path) + "/", "png", "_x2")
    assert not failures and [j.dst.name for j in jobs] == ["clip_x2.mp4"]


def test_eval_video_prints_output_and_input_warping_errors(srkit_cli, clips):
    r = srkit_cli("eval", "--video", clips / "clip.mp4", "--model", "bicubic", "--scales", "2")
    assert r.returncode == 0, r.stderr
    values = {ln.split(":")[0].strip(): float(ln.split(":")[1]) for ln in r.stdout.splitlines()
              if ln.strip().startswith(("output:", "input:"))}
    assert set(values) == {"output", "input"} and all(np.isfinite(v) for v in values.values())


def test_batched_frames_match_single_frames(clips, model):
    from srkit.domains.video import _upscale_batch, iter_frames
    from srkit.infer.upscaler import Upscaler

    up = Upscaler(model)
    frames = [f for f, _, _ in iter_frames(clips / "clip.mp4")][:4]
    single = np.stack([_upscale_batch(up, up.request(), [f])[0] for f in frames])
    np.testing.assert_array_equal(single, np.stack([up.upscale(f) for f in frames]))  # run_array's conversions
    diff = np.abs(_upscale_batch(up, up.request(), frames).astype(int) - single)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # one batched call: float rounding only
