"""srkit's tiny-x4 against OpenCV's dnn_superres FSRCNN x4 on the same LR image, in one run: output MP/s and PSNR.

    python benchmarks/vs_opencv.py --pb PATH/FSRCNN_x4.pb [--opencv-python PATH_TO_PYTHON] [--image PATH]
                                   [--data DIR] [--repeats N] [--warmup N] [--threads N]
    python benchmarks/vs_opencv.py --make-env [DIR]      # once: a venv with opencv-contrib-python-headless<5

The target (issue 13): tiny-x4 gives >= 2x the output megapixels per second of OpenCV's `cv2.dnn_superres` FSRCNN
x4 - the authors' FSRCNN_x4.pb from github.com/Saafke/FSRCNN_Tensorflow, loaded with `readModel(pb)` +
`setModel("fsrcnn", 4)` - on the same 480x320 LR image in the same run, at a higher PSNR. The .pb is not shipped
and never downloaded here: fetch it yourself and pass `--pb`. Without `--pb`, or with a missing file, the script
prints one line and exits 0 (skipped).

Image: by default a 1920x1280 HR mosaic of 16 Set14 / B100 HR images (--data, else $SRKIT_DATA, else
../shared/datasets; B100 first, sorted by name, each image at least 480x320 - portrait ones transposed - cropped at
its top-left to 480x320, laid out 4 x 4), and its 480x320 LR by MATLAB bicubic x1/4 (`srkit.evaluate.make_lr`,
modern rules). `--image PATH` takes an HR image of any size instead (cropped to a multiple of 4, LR made the same
way). PSNR: each output against the HR, Y channel, border 4 (`srkit.metrics.psnr`, the BasicSR protocol); the
mosaic's seams are inside the scored area and are the same for every method. MATLAB bicubic x4 is listed for
reference (PSNR only, not timed).

OpenCV side: a separate Python with `opencv-contrib-python-headless` (its cv2 clashes with the project's
opencv-python-headless, so it cannot share srkit's environment): `--opencv-python`, else the venv made by
`--make-env DIR` (default DIR: $SRKIT_CACHE/opencv-contrib-env or ~/.cache/srkit/opencv-contrib-env; it is used
when present). A small child script there reads the LR PNG (BGR, as OpenCV does), loads the model, times `upsample`
(--warmup untimed calls, then --repeats timed ones: wall time of each call) and writes the SR PNG and a timing JSON
to a temporary folder. srkit side, in this process: `load_upscaler("tiny-x4")` with its defaults (dtype auto, CPU,
whole image), then `srkit.upscale(lr, upscaler)` on the RGB uint8 array, timed the same way. Both sides include
their colour conversions (both models work on luma) and exclude model loading. The two are timed one after the
other (OpenCV first), not interleaved: on a busy machine run it twice. `--threads N` sets torch's and OpenCV's
thread counts (default: each library's own).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCALE = 4
LR_W, LR_H = 480, 320
GRID = 4  # GRID x GRID images of (LR_W, LR_H) make the (SCALE * LR_W, SCALE * LR_H) HR mosaic
OPENCV_REQUIREMENTS = ["opencv-contrib-python-headless<5", "numpy"]

# Runs under the OpenCV Python, not srkit's: standard library, numpy and cv2 only.
CHILD = r'''
import json
import statistics
import sys
import time


def fail(out, msg):
    if out:
        with open(out + "/timing.json", "w") as f:
            json.dump({"error": msg}, f)
    print(msg, file=sys.stderr)
    sys.exit(1)


def main():
    if sys.argv[1:] == ["--check"]:
        info = {"python": sys.version.split()[0]}
        try:
            import cv2
        except ImportError as e:
            info["error"] = f"cannot import cv2: {e}"
        else:
            info["cv2"] = cv2.__version__
            info["dnn_superres"] = hasattr(cv2, "dnn_superres")
        print(json.dumps(info))
        return
    lr_path, pb, out, warmup, repeats, threads = sys.argv[1:7]
    warmup, repeats, threads = int(warmup), int(repeats), int(threads)
    try:
        import cv2
    except ImportError as e:
        fail(out, f"cannot import cv2 in {sys.executable}: {e}")
    if not hasattr(cv2, "dnn_superres"):
        fail(out, f"cv2 {cv2.__version__} in {sys.executable} has no dnn_superres: "
                  "install opencv-contrib-python-headless (not opencv-python-headless)")
    if threads > 0:
        cv2.setNumThreads(threads)
    img = cv2.imread(lr_path, cv2.IMREAD_COLOR)
    if img is None:
        fail(out, f"cv2.imread could not read {lr_path}")
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    try:
        sr.readModel(pb)
        sr.setModel("fsrcnn", 4)
    except cv2.error as e:
        fail(out, f"cv2.dnn_superres could not load {pb} as FSRCNN x4: {str(e).strip()}")
    times = []
    for i in range(warmup + repeats):
        t = time.perf_counter()
        res = sr.upsample(img)
        dt = time.perf_counter() - t
        if i >= warmup:
            times.append(dt)
    if not cv2.imwrite(out + "/sr.png", res):
        fail(out, "cv2.imwrite failed")
    with open(out + "/timing.json", "w") as f:
        json.dump({"cv2": cv2.__version__, "threads": cv2.getNumThreads(), "times": times,
                   "median": statistics.median(times), "shape": list(res.shape)}, f)


main()
'''


def default_env_dir() -> Path:
    root = os.environ.get("SRKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "srkit")
    return Path(root) / "opencv-contrib-env"


def env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def child_env() -> dict[str, str]:
    """This environment minus what would point the OpenCV Python at srkit's packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def run_child(python: Path, args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="srkit_ocv_child_") as d:
        script = Path(d) / "fsrcnn_child.py"
        script.write_text(CHILD)
        return subprocess.run([str(python), str(script), *args], capture_output=True, text=True,
                              env=child_env(), timeout=timeout)


def check_python(python: Path) -> dict:
    """{"cv2": version, "dnn_superres": bool} for that interpreter, or {"error": why}."""
    if not python.exists():
        return {"error": f"{python} does not exist"}
    try:
        r = run_child(python, ["--check"], timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"could not run {python}: {e}"}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"{python} --check failed: {(r.stderr or r.stdout).strip()[-500:]}"}


def make_env(env: Path) -> Path:
    """Create (or reuse) a venv at `env` with opencv-contrib-python-headless; its Python, with dnn_superres checked."""
    py = env_python(env)
    info = check_python(py) if py.exists() else {}
    if info.get("dnn_superres"):
        print(f"OpenCV environment {env}: cv2 {info['cv2']} with dnn_superres (reused)")
        return py
    if not py.exists():
        print(f"creating venv {env} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, env=child_env())
    print(f"pip install {' '.join(OPENCV_REQUIREMENTS)} into {env} ...", flush=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *OPENCV_REQUIREMENTS], check=True, env=child_env())
    info = check_python(py)
    if not info.get("dnn_superres"):
        raise SystemExit(f"{env}: no cv2.dnn_superres after the install: {info}")
    print(f"OpenCV environment {env}: cv2 {info['cv2']} with dnn_superres")
    return py


def find_data(arg: Path | None) -> Path | None:
    if arg is not None:
        return arg
    if os.environ.get("SRKIT_DATA"):
        return Path(os.environ["SRKIT_DATA"])
    for d in (Path("../shared/datasets"), Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"):
        if d.is_dir():
            return d
    return None


def read_rgb(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) RGB: gray repeated, alpha dropped, 16-bit scaled down."""
    from srkit.io import read_image

    img, _ = read_image(path)
    if img.dtype == np.uint16:
        img = np.rint(img / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    img = img[..., :3] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
    return np.ascontiguousarray(img)


def mosaic_hr(data: Path) -> tuple[np.ndarray, str]:
    """The GRID x GRID mosaic of (LR_H, LR_W) top-left crops of the first B100 / Set14 HR images large enough."""
    exts = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"}
    tiles, names = [], []
    for set_name in ("B100", "Set14"):
        folder = data / set_name / "HR"
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in exts:
                continue
            img = read_rgb(f)
            if img.shape[0] > img.shape[1]:
                img = img.transpose(1, 0, 2)
            if img.shape[0] >= LR_H and img.shape[1] >= LR_W:
                tiles.append(img[:LR_H, :LR_W])
                names.append(f"{set_name}/{f.stem}")
            if len(tiles) == GRID * GRID:
                rows = [np.concatenate(tiles[r * GRID:(r + 1) * GRID], axis=1) for r in range(GRID)]
                return np.ascontiguousarray(np.concatenate(rows, axis=0)), \
                    f"mosaic of {len(names)} HR images ({names[0]} ... {names[-1]})"
    raise FileNotFoundError(f"fewer than {GRID * GRID} B100 / Set14 HR images of at least {LR_W}x{LR_H} "
                            f"under {data}")


def median_time(fn, warmup: int, repeats: int):
    """(median wall time of the timed calls, the last call's result): `warmup` untimed calls, then `repeats`."""
    times = []
    for i in range(warmup + repeats):
        t = time.perf_counter()
        out = fn()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pb", type=Path, default=None, help="the authors' FSRCNN_x4.pb (Saafke/FSRCNN_Tensorflow)")
    ap.add_argument("--opencv-python", type=Path, default=None,
                    help="a Python with opencv-contrib-python-headless [default: the --make-env venv]")
    ap.add_argument("--make-env", type=Path, nargs="?", const=default_env_dir(), default=None, metavar="DIR",
                    help=f"create (or reuse) a venv with {OPENCV_REQUIREMENTS[0]} and use it "
                         f"[DIR default: {default_env_dir()}]")
    ap.add_argument("--image", type=Path, default=None, help="an HR image instead of the Set14/B100 mosaic")
    ap.add_argument("--data", type=Path, default=None,
                    help="datasets folder with B100/HR, Set14/HR [default: $SRKIT_DATA, else ../shared/datasets]")
    ap.add_argument("--model", default="tiny-x4", help="srkit model (an x4 one)")
    ap.add_argument("--repeats", type=int, default=10, help="timed calls per side (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls before them")
    ap.add_argument("--threads", type=int, default=0, help="torch and OpenCV threads (0: each library's default)")
    args = ap.parse_args()
    if args.repeats < 1 or args.warmup < 0:
        ap.error("--repeats must be >= 1 and --warmup >= 0")

    python = make_env(args.make_env) if args.make_env is not None else None
    if args.pb is None or not args.pb.is_file():
        why = "no --pb given" if args.pb is None else f"{args.pb} not found"
        print(f"skipped: {why}; get FSRCNN_x4.pb from github.com/Saafke/FSRCNN_Tensorflow (models/) and pass --pb")
        return
    if args.opencv_python is not None:
        python = args.opencv_python
    elif python is None:
        python = env_python(default_env_dir())
        if not python.exists():
            print(f"skipped: no OpenCV contrib Python: pass --opencv-python, or --make-env [DIR] to create one "
                  f"(default {default_env_dir()})")
            return
    info = check_python(python)
    if not info.get("dnn_superres"):
        why = info.get("error") or f"cv2 {info.get('cv2')} there has no dnn_superres (opencv-contrib needed)"
        raise SystemExit(f"OpenCV Python {python}: {why}")

    import torch

    import srkit
    from srkit.evaluate import make_lr
    from srkit.infer.api import load_upscaler
    from srkit.metrics import psnr
    from srkit.ops import imresize_matlab

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.image is not None:
        hr, source = read_rgb(args.image), str(args.image)
    else:
        data = find_data(args.data)
        if data is None or not data.is_dir():
            raise SystemExit("no datasets folder: pass --data DIR (with B100/HR, Set14/HR) or --image HR_IMAGE")
        hr, source = mosaic_hr(data)
    hr = hr[: hr.shape[0] - hr.shape[0] % SCALE, : hr.shape[1] - hr.shape[1] % SCALE]
    lr = make_lr(hr, SCALE)
    h, w = lr.shape[:2]
    out_mp = h * w * SCALE * SCALE / 1e6

    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="srkit_vs_opencv_") as tmp:
        lr_png = Path(tmp) / "lr.png"
        Image.fromarray(lr).save(lr_png)
        r = run_child(python, [str(lr_png), str(args.pb.resolve()), tmp, str(args.warmup), str(args.repeats),
                               str(args.threads)])
        timing_file = Path(tmp) / "timing.json"
        ocv = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
        if r.returncode != 0 or "error" in ocv:
            msg = ocv.get("error") or (r.stderr or r.stdout).strip()[-1000:] or f"exit status {r.returncode}"
            raise SystemExit(f"OpenCV side failed ({python}): {msg}")
        ocv_sr = np.asarray(Image.open(Path(tmp) / "sr.png").convert("RGB"))

    up = load_upscaler(args.model)
    if up.scale != SCALE:
        raise SystemExit(f"{args.model} is x{up.scale}; this benchmark compares x{SCALE}")
    srkit_med, srkit_sr = median_time(lambda: srkit.upscale(lr, up), args.warmup, args.repeats)
    bicubic = imresize_matlab(lr, float(SCALE))

    for name, sr in (("OpenCV", ocv_sr), ("srkit", srkit_sr)):
        if sr.shape != hr.shape:
            raise SystemExit(f"{name} output is {sr.shape}, expected {hr.shape}")
    ocv_med = float(ocv["median"])
    p_ocv = psnr(ocv_sr, hr, border=SCALE, y_channel=True)
    p_srkit = psnr(srkit_sr, hr, border=SCALE, y_channel=True)
    p_bic = psnr(bicubic, hr, border=SCALE, y_channel=True)

    print(f"LR {w}x{h} -> {w * SCALE}x{h * SCALE} = {out_mp:.2f} MP output; HR: {source}; FSRCNN: {args.pb}")
    print(f"median of {args.repeats} timed calls after {args.warmup} warm-up; threads: torch "
          f"{torch.get_num_threads()}, OpenCV {ocv['threads']}")
    print(f"{'method':<44}{'s/image':>9}{'out MP/s':>10}{'PSNR Y (dB)':>13}")
    rows = [
        (f"OpenCV {ocv['cv2']} dnn_superres FSRCNN x4", ocv_med, p_ocv),
        (f"srkit {args.model} [{up.settings()['dtype']}]", srkit_med, p_srkit),
        ("MATLAB bicubic x4 (reference, not timed)", None, p_bic),
    ]
    for label, t, p in rows:
        speed = f"{t:>9.3f}{out_mp / t:>10.2f}" if t is not None else f"{'-':>9}{'-':>10}"
        print(f"{label:<44}{speed}{p:>13.4f}")
    ratio = ocv_med / srkit_med
    ok = ratio >= 2.0 and p_srkit > p_ocv
    print(f"{args.model} / FSRCNN: {ratio:.2f}x the output MP/s (target >= 2), PSNR {p_srkit - p_ocv:+.4f} dB "
          f"(target > 0): {'target met' if ok else 'target NOT met'}")


if __name__ == "__main__":
    main()
