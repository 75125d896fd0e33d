"""Replaying degradation records on a whole batch at once (:meth:`srkit.degrade.pipeline.Degradation.replay`).

Each image has its own record: a list of leaf steps (blur, resize, noise, JPEG, sharpen) in the order it runs
them. The batch is degraded round by round: each round takes the op that most images run next (:func:`next_op`)
and applies it to all of those images together, while the others wait; so every image runs exactly its own
steps in its own order (a shuffled pipeline included), and only the grouping of the work changes.

After a random resize the images have different sizes. They stay in one canvas tensor
(:mod:`srkit.degrade.canvas`): image ``i`` is ``x[i, :, :h_i, :w_i]``. Within a round the images are bucketed by
size (and blur kernels by size), and each bucket is one batched call:

* blur: every kernel zero-padded (centred) to the bucket's largest one, each image padded at its own border,
  one grouped convolution (``groups = n * C``);
* resize: one interpolation per (mode, input size, output size);
* noise: each image's field drawn on the CPU from its record's seed exactly as for a single image (Poisson
  noise needs the pixels there: one copy of the bucket to the CPU), sent to the device in one copy and added
  with per-image strengths; the standard deviation of the noise each image actually got (after clipping, in
  8-bit units) is written into its record as ``std``, the level a conditioned model is told
  (:func:`srkit.degrade.pipeline.record_levels`);
* JPEG: libjpeg - one 8-bit copy of the bucket to the CPU, Pillow per image (in threads), one copy back;
  differentiable - one call with per-image quality (:func:`srkit.degrade.jpeg.jpeg_differentiable` ``sizes``);
* sharpen: two grouped 1-D convolutions with per-image Gaussians.

On a CUDA batch the host buffers are page-locked and copied without waiting; the device waits only where the CPU
needs pixels (Poisson noise, libjpeg). All randomness comes from the records (noise fields from their seeds, on
CPU generators), so the result does not depend on the device's random state.

The result inside each image is what the op gives that image alone, up to float rounding of the batched kernels
(outputs agree within one 8-bit level after quantisation; on the CPU they are usually bit-identical).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from srkit.degrade.canvas import buckets, pad_images, to_device
from srkit.errors import ConfigError, ShapeError

__all__ = ["OPS", "apply_records", "next_op", "replay_one_by_one"]

Rec = Mapping[str, Any]
Size = tuple[int, int]

#: The leaf ops a record holds, in the order that breaks ties in :func:`next_op`.
OPS = ("blur", "resize", "noise", "jpeg", "sharpen")

#: On a CPU batch, noise and libjpeg work on each image in place (what they compute is the same either way;
#: False runs the CUDA path, buckets copied to and from host buffers, on the CPU too - the tests compare them).
PER_IMAGE_ON_CPU = True

#: Blur groups pad kernels to their largest: at most this fraction more taps than the kernels' own.
KERNEL_WASTE = 0.3


def _blank(shape: Sequence[int], dtype: torch.dtype, device: torch.device, pin: bool = False) -> torch.Tensor:
    """A new canvas-like buffer, uninitialised: only the images' own pixels in it are ever written and read.

    (Outside its image a canvas holds leftovers of no meaning; no op reads them as data - filters see each
    image through clamped indices - which the tests check by filling this with NaN.)
    """
    return torch.empty(tuple(shape), dtype=dtype, device=device, pin_memory=pin)


def _host_buffer(shape: Sequence[int], device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A CPU buffer to fill and send to ``device`` (page-locked for CUDA, so the copy need not wait)."""
    return _blank(shape, dtype, torch.device("cpu"), pin=device.type == "cuda")


def _threaded(fn: Callable[[int], None], n: int) -> None:
    """``fn(0) .. fn(n - 1)`` (per-image CPU work writing disjoint outputs), in up to 8 threads.

    Pillow and torch release the GIL while they work; each image uses its own generator, so the result does not
    depend on the number of threads.
    """
    threads = max(1, min(n, torch.get_num_threads(), 8))
    if threads == 1:
        for j in range(n):
            fn(j)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(fn, range(n)):
            pass


def _inside(sizes: Sequence[Size], h: int, w: int, device: torch.device) -> torch.Tensor:
    """(n, h, w) bool: which canvas pixels belong to each image."""
    hw = to_device(torch.tensor(sizes, dtype=torch.int64), device)
    rows = torch.arange(h, device=device)[None, :, None] < hw[:, 0, None, None]
    return rows & (torch.arange(w, device=device)[None, None, :] < hw[:, 1, None, None])


class _Canvas:
    """The batch in flight: image ``i`` is ``x[i, :, :h_i, :w_i]`` with ``(h_i, w_i) = sizes[i]``."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self.sizes: list[Size] = [(int(x.shape[-2]), int(x.shape[-1]))] * x.shape[0]
        self.owned = False  # x may be (a view of) the caller's tensor: copy before writing into it

    @property
    def device(self) -> torch.device:
        return self.x.device

    def _index(self, idx: list[int]) -> torch.Tensor:
        return to_device(torch.tensor(idx, dtype=torch.int64), self.device)

    def take(self, idx: list[int], h: int, w: int) -> torch.Tensor:
        """Images ``idx`` (ascending) in an ``h x w`` canvas: (len(idx), C, h, w), a view where possible."""
        x = self.x[:, :, :h, :w]
        if idx == list(range(idx[0], idx[0] + len(idx))):
            return x[idx[0] : idx[0] + len(idx)]
        return x[self._index(idx)]  # advanced indexing: far faster than index_select on a cropped CPU view

    def own(self) -> torch.Tensor:
        """The canvas, made writable (a copy of the caller's tensor the first time)."""
        if not self.owned:
            self.x, self.owned = self.x.clone(), True
        return self.x

    def per_image(self) -> bool:
        """Per-image host work on the canvas itself (CPU batches): no bucket copies, each image in cache."""
        return self.device.type == "cpu" and PER_IMAGE_ON_CPU

    def store(self, results: list[tuple[list[int], torch.Tensor]]) -> None:
        """Store the outputs of one round's buckets, ``[(images, (n, C, h, w) tensor), ...]`` (disjoint images)."""
        b, c, hc, wc = self.x.shape
        if len(results) == 1 and results[0][1].shape[0] == b and tuple(results[0][1].shape[-2:]) == (hc, wc):
            self.x, self.owned = results[0][1], True
            return
        if not self.owned and sum(len(idx) for idx, _ in results) == b:  # every image new: nothing to copy
            self.x, self.owned = _blank(self.x.shape, self.x.dtype, self.device), True
        x = self.own()
        for idx, out in results:
            n, _, h, w = out.shape
            if idx == list(range(idx[0], idx[0] + n)):
                x[idx[0] : idx[0] + n, :, :h, :w] = out
            else:
                x[:, :, :h, :w].index_copy_(0, self._index(idx), out)

    def reshape(self, h: int, w: int, replaced: set[int]) -> None:
        """Make the canvas ``h x w``, keeping the pixels of every image not in ``replaced``."""
        b, c, oh, ow = self.x.shape
        if (h, w) == (oh, ow):
            return
        if h <= oh and w <= ow:
            self.x = self.x[:, :, :h, :w]
            return
        new = _blank((b, c, h, w), self.x.dtype, self.device)
        if len(replaced) < b:
            new[:, :, : min(h, oh), : min(w, ow)] = self.x[:, :, :h, :w]
        self.x, self.owned = new, True


# ------------------------------------------------------------------------------------------------------- ops


def _blur(cv: _Canvas, sel: list[int], recs: list[Rec]) -> None:
    """Per image kernel, zero-padded (centred) to the largest of its group: one grouped convolution per group.

    A centred zero-padded kernel is the same convolution; images are grouped by size and then by kernel size
    (so that small kernels are not padded to much larger ones).
    """
    from srkit.degrade.kernels import kernel_from_record

    kernels = {i: kernel_from_record({k: v for k, v in r.items() if k != "op"}) for i, r in zip(sel, recs)}
    ksize = {i: (int(k.shape[-1]),) * 2 for i, k in kernels.items()}
    results = []
    for by_size, _, _ in buckets(sel, cv.sizes):
        for idx, big, _ in buckets(by_size, ksize, KERNEL_WASTE):
            h, w = max(cv.sizes[i][0] for i in idx), max(cv.sizes[i][1] for i in idx)
            p = big // 2
            weight = torch.zeros(len(idx), big, big)
            for j, i in enumerate(idx):
                k = kernels[i]
                o = p - k.shape[-1] // 2
                weight[j, o : o + k.shape[-1], o : o + k.shape[-1]] = k
            x = cv.take(idx, h, w)
            n, c = x.shape[:2]
            padded = pad_images(x, [cv.sizes[i] for i in idx], p, [ksize[i][0] // 2 for i in idx])
            # true convolution, as srkit.degrade.kernels.blur: the kernel flipped
            wt = to_device(weight.flip(-2, -1), cv.device).to(x.dtype)
            wt = wt[:, None].expand(n, c, big, big).reshape(n * c, 1, big, big)
            out = F.conv2d(padded.reshape(1, n * c, h + 2 * p, w + 2 * p), wt, groups=n * c)
            results.append((idx, out.reshape(n, c, h, w)))
    cv.store(results)


def _resize(cv: _Canvas, sel: list[int], recs: list[Rec]) -> None:
    """One :func:`srkit.degrade.resize.resize` call per (mode, input size, output size)."""
    from srkit.degrade.resize import resize

    groups: dict[tuple[str, Size, Size], list[int]] = {}
    for i, r in zip(sel, recs):
        new = (int(r["size"][0]), int(r["size"][1]))
        groups.setdefault((r["mode"], cv.sizes[i], new), []).append(i)
    outs = []
    for (mode, old, new), idx in groups.items():
        out = resize(cv.take(idx, *old), new, mode)  # validates the mode and size even when they keep the size
        if new != old:
            outs.append((idx, out))
    replaced = {i for idx, _ in outs for i in idx}
    for (_, _, new), idx in groups.items():
        for i in idx:
            cv.sizes[i] = new
    cv.reshape(max(s[0] for s in cv.sizes), max(s[1] for s in cv.sizes), replaced)
    cv.store(outs)


def _added_std(noisy: torch.Tensor, clean: torch.Tensor) -> float:
    """Standard deviation (8-bit units) of the noise an image got: ``noisy - clean`` over all its pixels."""
    return round(float((noisy.float() - clean.float()).std(correction=0)) * 255.0, 4)


def _note_std(rec: Rec, std: float) -> None:
    """Write the noise an image got into its record (records are plain dicts; a read-only mapping is left as is)."""
    if isinstance(rec, MutableMapping):
        rec["std"] = std


def _noise(cv: _Canvas, sel: list[int], recs: list[Rec]) -> None:
    """Each image's noise field from its record's seed, drawn on the CPU as for the image alone
    (:func:`srkit.degrade.noise.gaussian_field` / :func:`~srkit.degrade.noise.poisson_field`)."""
    from srkit.degrade.noise import gaussian_field, poisson_field

    def field_of(r: Rec, c: int, ih: int, iw: int, pixels: Callable[[], torch.Tensor]) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(r["seed"]))
        if r["kind"] == "gaussian":
            return gaussian_field(c, ih, iw, bool(r["gray"]), g)
        return poisson_field(pixels(), bool(r["gray"]), g)

    def amount(r: Rec) -> float:
        return r["sigma"] / 255.0 if r["kind"] == "gaussian" else r["scale"]

    if cv.per_image():
        x = cv.own()

        def add(j: int) -> None:
            i, r = sel[j], recs[j]
            v = x[i, :, : cv.sizes[i][0], : cv.sizes[i][1]]
            f = field_of(r, v.shape[0], v.shape[1], v.shape[2], lambda: v[None].clamp(0.0, 1.0).to(torch.float32))
            s = torch.tensor([amount(r)], dtype=torch.float32).to(x.dtype)
            noisy = (v + f[0].to(x.dtype) * s).clamp(0.0, 1.0)
            _note_std(r, _added_std(noisy, v))
            v.copy_(noisy)

        _threaded(add, len(sel))
        return
    rec_of = dict(zip(sel, recs))
    results = []
    for idx, h, w in buckets(sel, cv.sizes):
        x = cv.take(idx, h, w)
        n, c = x.shape[:2]
        rs = [rec_of[i] for i in idx]
        field = _host_buffer((n, c, h, w), cv.device)
        # Poisson noise depends on the pixels: one copy of the bucket to the CPU, where the generators draw.
        host = x.clamp(0.0, 1.0).to("cpu", torch.float32) if any(r["kind"] != "gaussian" for r in rs) else None

        def draw(j: int) -> None:
            ih, iw = cv.sizes[idx[j]]
            pixels = lambda: host[j : j + 1, :, :ih, :iw].contiguous()  # type: ignore[index]  # noqa: E731
            field[j, :, :ih, :iw] = field_of(rs[j], c, ih, iw, pixels)[0]

        _threaded(draw, n)
        s = torch.tensor([amount(r) for r in rs], dtype=torch.float32).view(n, 1, 1, 1)
        s = to_device(s, cv.device).to(x.dtype)
        field = to_device(field, cv.device).to(x.dtype)  # a buffer of its own: updated in place
        out = field.mul_(s).add_(x).clamp_(0.0, 1.0)  # (x + s * field).clamp(0, 1) as for one
        for j, i in enumerate(idx):
            ih, iw = cv.sizes[i]
            _note_std(rs[j], _added_std(out[j, :, :ih, :iw], x[j, :, :ih, :iw]))
        results.append((idx, out))
    cv.store(results)


def _jpeg(cv: _Canvas, sel: list[int], recs: list[Rec]) -> None:
    """libjpeg: the bucket to the CPU as 8-bit (one copy), Pillow per image, one copy back;
    differentiable: one :func:`srkit.degrade.jpeg.jpeg_differentiable` call per bucket, per-image quality."""
    from srkit.degrade.jpeg import _check_int_quality, jpeg_differentiable, libjpeg_roundtrip

    rec_of = dict(zip(sel, recs))
    diff = [i for i in sel if rec_of[i].get("backend", "libjpeg") == "differentiable"]
    lib = [i for i in sel if rec_of[i].get("backend", "libjpeg") != "differentiable"]
    results = []
    for idx, h, w in buckets(diff, cv.sizes) if diff else []:
        x = cv.take(idx, h, w).clamp(0.0, 1.0)
        q = to_device(torch.tensor([float(rec_of[i]["quality"]) for i in idx], dtype=torch.float64), cv.device)
        results.append((idx, jpeg_differentiable(x, q, sizes=[cv.sizes[i] for i in idx])))
    # k / 255 as jpeg_libjpeg computes it (in float64, then cast); float32 division gives the same values
    work = torch.float32 if cv.x.dtype == torch.float32 else torch.float64
    if lib and cv.per_image():
        x = cv.own()
        qs = [_check_int_quality(rec_of[i]["quality"]) for i in lib]

        def code_in_place(j: int) -> None:
            v = x[lib[j], :, : cv.sizes[lib[j]][0], : cv.sizes[lib[j]][1]]
            u = v.clamp(0.0, 1.0).to(torch.float64)
            if bool(torch.isnan(u).any()):
                raise ShapeError("jpeg_libjpeg got NaN or inf values")
            arr = (u * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
            dec = torch.from_numpy(libjpeg_roundtrip(arr, qs[j])).permute(2, 0, 1)
            v.copy_(dec.to(work).div_(255.0))

        _threaded(code_in_place, len(lib))
        lib = []
    for idx, h, w in buckets(lib, cv.sizes) if lib else []:
        qs = [_check_int_quality(rec_of[i]["quality"]) for i in idx]
        x = cv.take(idx, h, w).clamp(0.0, 1.0).to(torch.float64)  # 8 bits as jpeg_libjpeg rounds them
        nan = (torch.isnan(x).any(1) & _inside([cv.sizes[i] for i in idx], h, w, cv.device)).any()
        arr = (x * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
        if bool(nan):
            raise ShapeError("jpeg_libjpeg got NaN or inf values")
        out = _host_buffer(arr.shape, cv.device, torch.uint8)
        dec = out.numpy()

        def code(j: int) -> None:
            ih, iw = cv.sizes[idx[j]]
            dec[j, :ih, :iw] = libjpeg_roundtrip(arr[j, :ih, :iw], qs[j])

        _threaded(code, len(idx))
        y = to_device(out, cv.device).to(work).div_(255.0).to(cv.x.dtype)
        results.append((idx, y.permute(0, 3, 1, 2).contiguous()))
    cv.store(results)


def _sharpen(cv: _Canvas, sel: list[int], recs: list[Rec]) -> None:
    """Unsharp masking, threshold 0 (:func:`srkit.degrade.sharpen.unsharp_mask`), each image with its own
    Gaussian: two grouped 1-D convolutions per bucket."""
    rec_of = dict(zip(sel, recs))
    results = []
    for idx, h, w in buckets(sel, cv.sizes):
        sigmas = [float(rec_of[i]["sigma"]) for i in idx]
        weights = [float(rec_of[i]["weight"]) for i in idx]
        for s, wt in zip(sigmas, weights):
            if not s > 0:
                raise ConfigError(f"sigma must be > 0, got {s}")
            if wt < 0:
                raise ConfigError(f"unsharp_mask: weight and threshold must be >= 0, got {wt}, 0.0")
        radii = [max(1, math.ceil(3.0 * s)) for s in sigmas]
        big = max(radii)
        k = torch.zeros(len(idx), 2 * big + 1, dtype=torch.float64)
        for j, (s, r) in enumerate(zip(sigmas, radii)):  # as srkit.degrade.sharpen.gaussian_blur_separable
            t = torch.arange(-r, r + 1, dtype=torch.float64)
            g = torch.exp(-0.5 * (t / s) ** 2)
            k[j, big - r : big + r + 1] = g / g.sum()
        x = cv.take(idx, h, w).clamp(0.0, 1.0)
        n, c = x.shape[:2]
        kt = to_device(k.to(x.dtype), cv.device)[:, None].expand(n, c, 2 * big + 1).reshape(n * c, 1, 1, -1)
        y = pad_images(x, [cv.sizes[i] for i in idx], big, radii).reshape(1, n * c, h + 2 * big, w + 2 * big)
        y = F.conv2d(y, kt, groups=n * c)
        y = F.conv2d(y, kt.view(n * c, 1, -1, 1), groups=n * c).reshape(n, c, h, w)
        wv = to_device(torch.tensor(weights, dtype=torch.float32).view(n, 1, 1, 1), cv.device).to(x.dtype)
        results.append((idx, (x + wv * (x - y)).clamp(0.0, 1.0)))
    cv.store(results)


_APPLY: dict[str, Callable[[_Canvas, list[int], list[Rec]], None]] = {
    "blur": _blur, "resize": _resize, "noise": _noise, "jpeg": _jpeg, "sharpen": _sharpen,
}


# ------------------------------------------------------------------------------------------------- schedule


def next_op(pending: Sequence[str]) -> str:
    """The op that most images run next (ties: the first in :data:`OPS`)."""
    return max(OPS, key=lambda op: (sum(p == op for p in pending), -OPS.index(op)))


def apply_records(hr: torch.Tensor, records: Sequence[Sequence[Rec]]) -> tuple[torch.Tensor, list[Size]]:
    """Run each image's record on a batch.

    Args:
        hr: float (B, C, H, W), any device (not modified).
        records: one list of leaf-step dicts per image (``{"op": "blur", ...}``, as
            :meth:`srkit.degrade.pipeline.Degradation.sample` writes them).

    Returns:
        ``(x, sizes)``: the canvas (B, C, max h, max w) on hr's device, image ``i`` in ``x[i, :, :h_i, :w_i]``, and
        the sizes ``(h_i, w_i)``. Not yet clamped or quantised.

    Raises:
        ConfigError: an unknown op or a bad parameter in a record.
    """
    if len(records) != hr.shape[0]:
        raise ShapeError(f"{len(records)} records for a batch of {hr.shape[0]}")
    for rec in records:
        for r in rec:
            if r.get("op") not in _APPLY:
                raise ConfigError(f"record step {dict(r)!r} has an unknown op {r.get('op')!r}")
    cv = _Canvas(hr)
    pos = [0] * len(records)
    while True:
        pending = {i: records[i][pos[i]]["op"] for i in range(len(records)) if pos[i] < len(records[i])}
        if not pending:
            return cv.x, cv.sizes
        op = next_op(list(pending.values()))
        sel = [i for i, o in pending.items() if o == op]
        _APPLY[op](cv, sel, [records[i][pos[i]] for i in sel])
        for i in sel:
            pos[i] += 1


def replay_one_by_one(hr: torch.Tensor, record: list[dict]) -> torch.Tensor:
    """What a record means, op by op: the op functions applied one after the other to one (1, C, H, W) image,
    quantised to 8-bit levels at the end. The reference the batched replay is checked and timed against (it is
    how srkit replayed records before batching)."""
    from srkit.degrade.jpeg import jpeg_differentiable, jpeg_libjpeg
    from srkit.degrade.kernels import blur, kernel_from_record
    from srkit.degrade.noise import add_gaussian_noise, add_poisson_noise
    from srkit.degrade.resize import resize
    from srkit.degrade.sharpen import unsharp_mask

    x = hr
    for r in record:
        if r["op"] == "blur":
            x = blur(x, kernel_from_record({k: v for k, v in r.items() if k != "op"}))
        elif r["op"] == "resize":
            x = resize(x, tuple(r["size"]), r["mode"])
        elif r["op"] == "noise":
            g = torch.Generator().manual_seed(int(r["seed"]))
            if r["kind"] == "gaussian":
                x = add_gaussian_noise(x, r["sigma"] / 255.0, gray=bool(r["gray"]), generator=g)
            else:
                x = add_poisson_noise(x, r["scale"], gray=bool(r["gray"]), generator=g)
        elif r["op"] == "jpeg" and r.get("backend", "libjpeg") == "differentiable":
            x = jpeg_differentiable(x.clamp(0.0, 1.0), float(r["quality"]))
        elif r["op"] == "jpeg":
            x = jpeg_libjpeg(x.clamp(0.0, 1.0), int(r["quality"]))
        elif r["op"] == "sharpen":
            x = unsharp_mask(x.clamp(0.0, 1.0), float(r["weight"]), float(r["sigma"]), 0.0)
        else:
            raise ValueError(f"unknown op {r['op']!r} in a degradation record")
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0
