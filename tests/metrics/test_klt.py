"""The KLT index: learned bases, AGGD fits, severity ordering, model files, input handling and bad input, CLI."""

import importlib
import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from srkit.errors import ConfigError, ShapeError
from srkit.io import write_image
from srkit.metrics import METRICS, KltModel, fit_klt_model, klt, klt_features, load_klt_model, save_klt_model
from srkit.metrics.niqe import aggd_fit
from srkit.ops import imresize_matlab

klt_mod = importlib.import_module("srkit.metrics.klt")  # the module (srkit.metrics.klt is the function)


def _texture(h=64, w=64, seed=0):
    """A seeded textured RGB image: smooth random colour shapes plus fine grain."""
    rng = np.random.default_rng(seed)
    base = imresize_matlab(rng.random((max(h // 8, 2), max(w // 8, 2), 3)), output_shape=(h, w))
    return np.rint(np.clip(base + rng.normal(0, 0.03, (h, w, 3)), 0, 1) * 255).astype(np.uint8)


def _train_images():
    """Four small training images (chroma is analysed at half resolution: 36 chroma blocks each)."""
    return [_texture(96, 104, seed=s) for s in range(4)]


@pytest.fixture(scope="module")
def tiny_model():
    return fit_klt_model(_train_images(), name="tiny")


@pytest.fixture(scope="module")
def photo():
    """A natural photograph: scikit-image's astronaut (512x512 RGB, shipped with the package), centre 256x256."""
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[128:384, 128:384])


def _blur(img, sigma):
    f = img.astype(np.float64)
    out = np.stack([ndimage.gaussian_filter(f[..., c], sigma, mode="reflect") for c in range(3)], -1)
    return np.rint(np.clip(out, 0, 255)).astype(np.uint8)


def _jpeg(img, quality):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _noise(img, sigma, seed=0):
    noisy = img + np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.rint(np.clip(noisy, 0, 255)).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Bases and AGGD
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["shipped", "tiny"])
def test_bases_are_orthonormal_and_sorted(which, tiny_model):
    m = load_klt_model() if which == "shipped" else tiny_model
    assert m.bases.shape == (3, 64, 64) and m.eigenvalues.shape == (3, 64)
    for c in range(3):
        q = m.bases[c]
        assert np.abs(q.T @ q - np.eye(64)).max() < 1e-6
        assert np.all(np.diff(m.eigenvalues[c]) <= 0) and m.eigenvalues[c, -1] >= 0
        peak = q[np.argmax(np.abs(q), axis=0), np.arange(64)]
        assert np.all(peak > 0)  # the sign convention that makes the fit deterministic
    if which == "shipped":
        assert m.name == "srkit" and m.meta["images"] == 341


def test_basis_diagonalises_the_training_covariance(tiny_model):
    """The fitted basis is the KLT of the training blocks: it decorrelates them, variances = eigenvalues."""
    imgs = _train_images()
    for c in range(3):
        blocks = np.vstack([klt_mod.mscn_blocks(klt_mod.opponent_planes(i)[c]) for i in imgs])
        cov = np.cov(blocks @ tiny_model.bases[c], rowvar=False, bias=True)
        assert np.allclose(np.diag(cov), tiny_model.eigenvalues[c], rtol=1e-6, atol=1e-10)
        off = cov - np.diag(np.diag(cov))
        assert np.abs(off).max() < 1e-8 * np.abs(cov).max() + 1e-12


def _aggd_samples(alpha, beta_l, beta_r, n, seed):
    """Exact AGGD draws: |x| / beta = G^(1/alpha), G ~ Gamma(1/alpha); right side with prob beta_r/(beta_l+beta_r)."""
    rng = np.random.default_rng(seed)
    t = rng.gamma(1.0 / alpha, 1.0, n) ** (1.0 / alpha)
    right = rng.random(n) < beta_r / (beta_l + beta_r)
    return np.where(right, beta_r * t, -beta_l * t)


@pytest.mark.parametrize("alpha,beta_l,beta_r", [(0.8, 1.0, 1.0), (1.5, 0.6, 1.2), (2.0, 2.0, 1.5), (3.0, 0.5, 0.7)])
def test_aggd_fit_recovers_parameters(alpha, beta_l, beta_r):
    x = _aggd_samples(alpha, beta_l, beta_r, 400_000, seed=int(alpha * 10))
    a, bl, br = aggd_fit(x)
    assert a == pytest.approx(alpha, rel=0.02)
    assert bl == pytest.approx(beta_l, rel=0.02) and br == pytest.approx(beta_r, rel=0.02)
    # the same fit as the pooled feature of coefficient_features (alpha, log beta_l, log beta_r)
    coefs = x[: 64 * (x.size // 64)].reshape(-1, 64)
    f = klt_mod.coefficient_features(coefs)
    a2, bl2, br2 = aggd_fit(coefs.ravel())
    assert f[0] == a2 and f[1] == pytest.approx(np.log(bl2)) and f[2] == pytest.approx(np.log(br2))
    # per component: each column is an AGGD sample with the same alpha; energies are the mean squares
    assert np.allclose(f[3:67], alpha, rtol=0.15)
    assert np.allclose(f[67:], np.log((coefs**2).mean(0)))


# ---------------------------------------------------------------------------------------------------------------
# Severity
# ---------------------------------------------------------------------------------------------------------------


def test_index_increases_with_blur_jpeg_and_noise(photo):
    """Strictly increasing along each ladder. (The photograph itself is not always below the mildest level: it
    is slightly grainy, and sigma-0.5 blur or quality-90 JPEG can bring it nearer the pristine statistics.)"""
    base = klt(photo)
    assert 0 < base < 3  # a pristine photograph is near the pristine model (about 1)
    blur = [klt(_blur(photo, s)) for s in (0.5, 1.0, 2.0, 3.0)]
    assert np.all(np.diff(blur) > 0), blur
    jpeg = [klt(_jpeg(photo, q)) for q in (90, 50, 10)]
    assert np.all(np.diff(jpeg) > 0), jpeg
    noise = [klt(_noise(photo, s)) for s in (5, 15, 40)]
    assert base < noise[0] and np.all(np.diff(noise) > 0), (base, noise)
    assert blur[-1] > 2 * base and jpeg[-1] > 2 * base and noise[-1] > 2 * base  # strong distortion: far off


# ---------------------------------------------------------------------------------------------------------------
# Model files
# ---------------------------------------------------------------------------------------------------------------


def test_model_round_trip(tmp_path, tiny_model):
    path = save_klt_model(tiny_model, tmp_path / "sub" / "m.npz")
    loaded = load_klt_model(path)
    for key in ("bases", "eigenvalues", "mean", "var", "channel_weights"):
        assert np.array_equal(getattr(loaded, key), getattr(tiny_model, key)), key
    assert loaded.meta == tiny_model.meta and loaded.name == str(path)
    assert load_klt_model(path) is loaded  # cached
    img = _texture(96, 80, seed=9)
    assert klt(img, model=path) == klt(img, model=tiny_model) == klt(img, model=str(path))
    assert klt(img, model=tiny_model) != klt(img)  # a different model gives a different score
    assert np.isfinite(klt(img)) and load_klt_model("srkit") is load_klt_model()
    assert not list((tmp_path / "sub").glob(".*tmp"))  # no temp file left behind


def test_fit_is_deterministic_and_reads_folders(tmp_path, tiny_model):
    d = tmp_path / "train" / "HR"
    d.mkdir(parents=True)
    for s, img in enumerate(_train_images()):
        write_image(d / f"t{s}.png", img)
    from_files = fit_klt_model([d])
    for key in ("bases", "eigenvalues", "mean", "var"):
        assert np.array_equal(getattr(from_files, key), getattr(tiny_model, key)), key
    assert from_files.meta["sources"] == [str(d)] and from_files.meta["images"] == 4
    bench = tmp_path / "Set14" / "HR"
    bench.mkdir(parents=True)
    write_image(bench / "x.png", _texture(seed=1))
    with pytest.raises(ConfigError, match="benchmark set 'Set14'"):
        fit_klt_model([bench])
    with pytest.raises(ConfigError, match="usable"):
        fit_klt_model([_texture(seed=1), np.zeros((32, 32, 3), np.uint8)])


def test_bad_model_files(tmp_path, tiny_model):
    good = {k: getattr(tiny_model, k) for k in ("bases", "eigenvalues", "mean", "var", "channel_weights")}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{**good, "bases": good["bases"][:2]})
    with pytest.raises(ConfigError) as e:
        klt(_texture(), model=bad)
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg and "'bases'" in msg and "(3, 64, 64)" in msg
    np.savez(bad, **{**good, "mean": good["mean"][:100]})
    with pytest.raises(ConfigError, match=r"'mean' must have shape \(393,\)"):
        load_klt_model(bad)
    np.savez(bad, **{k: v for k, v in good.items() if k != "var"})
    with pytest.raises(ConfigError, match="no 'var' array"):
        load_klt_model(bad)
    np.savez(bad, **{**good, "bases": good["bases"] * 1.01})
    with pytest.raises(ConfigError, match="not orthonormal"):
        load_klt_model(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_klt_model(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot read"):
        load_klt_model(tmp_path / "junk.npz")


# ---------------------------------------------------------------------------------------------------------------
# Input handling and bad input
# ---------------------------------------------------------------------------------------------------------------


def test_input_forms_agree():
    img = _texture(72, 88, seed=3)
    ref = klt(img)
    as_float = img.astype(np.float64) / 255.0
    assert klt(as_float) == ref
    t = torch.from_numpy(as_float).permute(2, 0, 1).float()
    assert klt(t) == ref and klt(t[None]) == ref
    # gray: (H, W) equals the same pixels as RGB with three equal channels; luminance features only
    gray = img[..., 1]
    assert klt(gray) == klt(np.repeat(gray[..., None], 3, axis=2))
    f = klt_features(gray)
    n = klt_mod.FEATURES_PER_CHANNEL
    assert f.shape == (393,) and np.isnan(f[: 2 * n]).all() and np.isfinite(f[2 * n:]).all()
    assert np.isfinite(klt_features(img)).all()


def test_crop_border_and_block_cut():
    img = _texture(100, 90, seed=5)
    assert klt(img, crop_border=4) == klt(img[4:-4, 4:-4])
    assert klt(img) == klt(img[:96, :88])  # cut to a multiple of 8 at the bottom/right


def test_bad_input_is_one_line_error():
    with pytest.raises(ShapeError, match="8x8") as e:
        klt(_texture(7, 40))
    assert "\n" not in str(e.value)
    with pytest.raises(ShapeError, match="after cropping"):
        klt(_texture(20, 20), crop_border=7)
    bad = _texture().astype(np.float64) / 255.0
    bad[5, 5, 1] = np.nan
    with pytest.raises(ShapeError, match="NaN"):  # as niqe: NaN/Inf input is a ShapeError
        klt(bad)
    bad[5, 5, 1] = np.inf
    with pytest.raises(ShapeError, match="NaN or Inf"):
        klt(torch.from_numpy(bad).permute(2, 0, 1))
    with pytest.raises(ShapeError, match="constant"):
        klt(np.full((64, 64, 3), 77, np.uint8))
    with pytest.raises(ShapeError, match="constant"):
        klt(np.zeros((64, 64), np.uint8))
    with pytest.raises(ShapeError, match="channels"):
        klt(np.dstack([_texture(), _texture()[..., :1]]))  # RGBA
    with pytest.raises(ShapeError, match="crop_border"):
        klt(_texture(), crop_border=-1)


def test_partly_flat_and_grayish_images_are_finite():
    img = _texture(96, 96, seed=2)
    img[:60, :60] = 200  # flat blocks: their MSCN is exactly 0
    assert np.isfinite(klt(img))
    tinted = np.repeat(_texture(96, 96, seed=4)[..., :1], 3, axis=2)
    tinted[..., 2] = 10  # R == G everywhere: O1 is constant and left out, O2 carries the tint
    f = klt_features(tinted)
    n = klt_mod.FEATURES_PER_CHANNEL
    assert np.isnan(f[:n]).all() and np.isfinite(f[n:]).all() and np.isfinite(klt(tinted))
    assert np.isfinite(klt(_texture(8, 8, seed=1)))  # a single block still gives a number


# ---------------------------------------------------------------------------------------------------------------
# Table and CLI
# ---------------------------------------------------------------------------------------------------------------


def test_metric_table_entry():
    info = METRICS["klt"]
    assert info.fn is klt and not info.higher_is_better and not info.needs_reference
    assert isinstance(info.check(), KltModel)


def test_iqa_score_cli(tmp_path, srkit_cli):
    d = tmp_path / "photos"
    d.mkdir()
    write_image(d / "a.png", _texture(96, 96, seed=1))
    write_image(d / "b.png", _texture(80, 104, seed=2))
    r = srkit_cli("iqa", "score", d, "--metrics", "klt")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("mean of 2 image(s)") and "klt model: srkit" in lines[-1]
    first = lines[0].split("\t")
    assert first[0] == str(d / "a.png") and first[1] == f"klt {klt(_texture(96, 96, seed=1)):.4f}"


def test_evaluate_scores_klt(tmp_path):
    from srkit.evaluate import evaluate

    hr_dir = tmp_path / "Tiny" / "HR"
    hr_dir.mkdir(parents=True)
    write_image(hr_dir / "img0.png", _texture(64, 72, seed=0))
    report = evaluate("bicubic", tmp_path, sets=["Tiny"], scales=[2], metrics=["psnr", "klt"])
    assert sorted(report.images[0].scores) == ["klt", "psnr"] and np.isfinite(report.images[0].scores["klt"])


def test_model_is_validated_when_built(tiny_model):
    good = {k: getattr(tiny_model, k) for k in ("bases", "eigenvalues", "mean", "var")}
    with pytest.raises(ConfigError, match="'var' must be > 0"):
        KltModel(**{**good, "var": np.zeros(393)})
    with pytest.raises(ConfigError, match="'eigenvalues' must have shape"):
        KltModel(**{**good, "eigenvalues": good["eigenvalues"][:, :10]})
