"""The training loop: `fit(cfg, run_dir)` trains one `RunConfig` and leaves everything in `run_dir`.

Layout of a run folder::

    config.yaml              the resolved config (data root and colour filled in)
    log.csv                  step, loss (total and per term), lr, val_psnr, val_ssim, seconds (append-only)
    checkpoints/last.pt      model, EMA, optimiser, step, RNG states, config (atomic; for --resume); GAN runs:
                             the discriminator and its optimiser too (`srkit.train.gan`)
    best.safetensors         srkit weights (EMA when on) of the best validation PSNR so far
    final.safetensors        srkit weights (EMA when on) at the last step
    tb/                      TensorBoard events (only when `tensorboard` is installed)

Determinism and resume. Every source of randomness is a pure function of the config seed and the step:

* the batch of step t: epoch e = t // steps_per_epoch, position t % steps_per_epoch in the epoch's permutation
  `np.random.default_rng([seed, e]).permutation(samples_per_epoch)`, and each sample is itself a function of
  (seed, e, index) (`srkit.data.folders.HRFolder`);
* torch's global RNG (dropout, stochastic depth, anything a model draws) is re-seeded before every step from
  (seed, rank, step);
* the learning rate is a pure function of the step;
* model, EMA, optimiser (moments and step counts) and the logging accumulators come from the checkpoint.

So a run resumed from `last.pt` on the same machine and settings continues bit for bit as if never stopped.

Distributed: under `torchrun` (WORLD_SIZE > 1) each rank trains on its slice of the global batch
(`data.batch_size` / world size) inside DistributedDataParallel (gloo on CPU, nccl on CUDA); gradients are
averaged, so the run computes what a single process would compute on the whole batch, up to summation order.
Only rank 0 validates and writes files.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from srkit.errors import ConfigError, DatasetError, SrkitError, TrainingError
from srkit.train.checkpoint import load_checkpoint, save_checkpoint
from srkit.train.config import RunConfig, ScheduleCfg, dump_config, parse_config
from srkit.train.ema import ModelEMA
from srkit.train.runlog import CsvLog, ProgressBar, tensorboard_writer
from srkit.train.runtime import (
    Dist,
    StopRequest,
    init_distributed,
    worker_ignore_signals,
)

if TYPE_CHECKING:
    from srkit.data.clips import ClipFolder, ValidationClips
    from srkit.data.folders import HRFolder, ValidationImages

__all__ = ["FitResult", "StepBatchSampler", "TrainingError", "fit", "lr_at", "validate"]


@dataclass(frozen=True)
class FitResult:
    """What `fit` did.

    Attributes:
        best_psnr: best validation PSNR (dB, Y, border = scale) so far; None without validation images (and on
            ranks other than 0).
        best_step: the step of `best_psnr` (None likewise).
        final_step: optimiser steps done when `fit` returned.
        run_dir: the run folder.
        wall_seconds: wall time of this call (not of earlier, resumed sessions).
        stopped_by: None when the run reached `train.steps` (or its `train.max_minutes`); "SIGINT" / "SIGTERM" /
            "stop_at" when it stopped
            early after writing `checkpoints/last.pt`.
    """

    best_psnr: float | None
    best_step: int | None
    final_step: int
    run_dir: Path
    wall_seconds: float
    stopped_by: str | None = None

    @property
    def interrupted(self) -> bool:
        return self.stopped_by is not None

    @property
    def best_weights(self) -> Path:
        return self.run_dir / "best.safetensors"

    @property
    def final_weights(self) -> Path:
        return self.run_dir / "final.safetensors"

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"


# ----------------------------------------------------------------------------------------------- schedule


def lr_at(step: int, base_lr: float, schedule: ScheduleCfg, total_steps: int, time_fraction: float = 0.0) -> float:
    """Learning rate of step `step` (0-based: the update that turns step weights into step + 1 weights).

    Linear warm-up from base_lr / warmup_steps to base_lr over the first `warmup_steps` steps, then
    cosine: from base_lr at the end of warm-up to `min_lr` at the last step (total_steps - 1);
    multistep: base_lr * gamma ** (number of milestones <= step); constant: base_lr.
    `time_fraction` (0..1, the share of a `train.max_minutes` budget spent) moves the cosine along when it is
    further than the step count: a time-boxed run anneals to `min_lr` at its deadline.
    """
    w = schedule.warmup_steps
    if step < w:
        return base_lr * (step + 1) / w
    if schedule.name == "constant":
        return base_lr
    if schedule.name == "multistep":
        return base_lr * schedule.gamma ** sum(1 for m in schedule.milestones if step >= m)
    span = max(1, total_steps - 1 - w)
    t = min(1.0, max((step - w) / span, time_fraction))
    return schedule.min_lr + (base_lr - schedule.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def _step_seed(seed: int, rank: int, step: int) -> int:
    """Seed of torch's global RNG for one step: independent streams per (seed, rank, step)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0] >> 1)


# ----------------------------------------------------------------------------------------------- batches


class StepBatchSampler(Sampler):
    """Batches of `(epoch, index)` keys for steps `start_step .. total_steps - 1`; a pure function of the step.

    Step t uses epoch e = t // steps_per_epoch (steps_per_epoch = n // global_batch, the remainder of each
    epoch's permutation is dropped) and the slice `[k * B + rank * b, k * B + (rank + 1) * b)` of
    `np.random.default_rng([seed, e]).permutation(n)`, k = t % steps_per_epoch, B = global batch,
    b = B / world. The ranks of a distributed run together see exactly the batch of a single process.

    Args:
        n: samples per epoch (`len(dataset)`).
        global_batch: batch size summed over ranks.
        start_step, total_steps: the step range to yield.
        seed: the run seed.
        rank, world: this process's slice.
    """

    def __init__(self, n: int, global_batch: int, start_step: int, total_steps: int, seed: int,
                 rank: int = 0, world: int = 1):
        if global_batch % world:
            raise ConfigError(f"data.batch_size ({global_batch}) is not divisible by the {world} processes")
        self.steps_per_epoch = n // global_batch
        if self.steps_per_epoch < 1:
            raise ConfigError(f"an epoch of {n} samples is smaller than one batch of {global_batch}")
        self.n, self.global_batch, self.local_batch = n, global_batch, global_batch // world
        self.start_step, self.total_steps = start_step, total_steps
        self.seed, self.rank = seed, rank
        self._perm_epoch: int | None = None
        self._perm: np.ndarray | None = None

    def batch(self, step: int) -> list[tuple[int, int]]:
        """The (epoch, index) keys of this rank's share of step `step`."""
        epoch, k = divmod(step, self.steps_per_epoch)
        perm = self._perm
        if perm is None or epoch != self._perm_epoch:
            perm = self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._perm_epoch = epoch
        lo = k * self.global_batch + self.rank * self.local_batch
        return [(epoch, int(i)) for i in perm[lo : lo + self.local_batch]]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch(step)

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)


class _EpochKeyed(Dataset):
    """Wraps an epoch-aware dataset so that items are fetched by `(epoch, index)`.

    Each DataLoader worker switches its own copy of the dataset to the key's epoch, so one persistent loader
    runs across epochs (and keeps its in-memory image cache) while samples stay a function of (epoch, index).
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self.epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        if epoch != self.epoch:
            self.dataset.set_epoch(epoch)
            self.epoch = epoch
        return self.dataset[index]


# ----------------------------------------------------------------------------------------------- init


def _load_init(model: nn.Module, init: str | dict[str, str]) -> None:
    """Copy the weights of `init` (shipped name or file) into `model`; ConfigError when the networks differ.

    A conditioned network (`srkit.archs.conditioned`) also starts from its blind counterpart (``real-x4`` for
    ``ecbsr-ctrl`` with real-x4's options): the head's weights for the level maps start at zero. A mapping
    {submodule: model} starts each named part of the network (``clean``, ``restore``) from that model."""
    from srkit.models import load_model, same_layout

    if isinstance(init, dict):
        module = getattr(model, "module", model)
        for part, source in init.items():
            try:
                sub = module.get_submodule(part)
            except AttributeError:
                names = ", ".join(n for n, _ in module.named_children())
                raise ConfigError(f"model.init: {part!r} is not a part of {type(module).__name__} "
                                  f"(parts: {names})") from None
            _load_init(sub, source)
        return
    try:
        theirs = load_model(init).state_dict()
    except SrkitError as e:
        raise ConfigError(f"model.init: {e}") from None
    if not hasattr(model, "info"):  # a part of a composite network: the model's module keys, unprefixed
        theirs = {k.removeprefix("module."): v for k, v in theirs.items()}
    blind = getattr(getattr(model, "module", model), "load_blind_state_dict", None)
    if not same_layout(theirs, model.state_dict()) and blind is not None:
        try:
            blind({k.removeprefix("module."): v for k, v in theirs.items()})
        except ConfigError as e:
            raise ConfigError(f"model.init: {init!r} is neither this network nor its blind counterpart ({e})") \
                from None
        return
    if not same_layout(theirs, model.state_dict()):
        raise ConfigError(
            f"model.init: {init!r} is not the network this config builds (different parameter names or shapes; "
            "a shipped model is stored deployed, so start a multi-branch run from a run's best.safetensors)"
        )
    model.load_state_dict(theirs)  # copies in place, casting to the model's dtypes


def _check_conditioned(cfg: RunConfig, inputs: tuple[str, ...]) -> bool:
    """Whether the model is conditioned on the degradation levels (it takes ``noise`` and ``jpeg``); then the run
    must make each sample's levels known: a degradation whose records give them, and no GAN (its LDL term runs
    the EMA generator on the LR alone)."""
    if not inputs:
        return False
    if set(inputs) != {"noise", "jpeg"}:
        raise ConfigError(f"model.arch: {cfg.model.arch} takes inputs {', '.join(inputs)}; training passes only "
                          "noise and jpeg levels")
    d = cfg.data.degradation
    if d is None:
        raise ConfigError(f"data.degradation: {cfg.model.arch} is told each sample's noise and JPEG levels; give a "
                          "degradation whose records hold them (preset: controllable)")
    from srkit.degrade.pipeline import level_problem

    problem = level_problem(d.resolved_steps())
    if problem is not None:
        raise ConfigError(f"data.degradation: {cfg.model.arch} needs each sample's levels, but {problem}")
    if cfg.gan is not None:
        raise ConfigError(f"gan: adversarial training of the conditioned {cfg.model.arch} is not supported")
    return True


# ----------------------------------------------------------------------------------------------- validation


@torch.no_grad()
def validate(model: nn.Module, images, scale: int, device: torch.device) -> tuple[float, float]:
    """Mean PSNR and SSIM (Y channel, border = scale, `srkit.metrics`) of `model` in fp32 eval mode.

    Args:
        model: an `SRModel` (its train/eval mode is restored afterwards). LR images are padded at the
            bottom/right to its `info.size_multiple` (reflect) and the output cropped back.
        images: items (lr (C, h, w), hr (C, sh, sw), name[, levels]), float [0, 1]; levels: a (2,) tensor of the
            image's (noise, jpeg), passed to a conditioned model.
    """
    import torch.nn.functional as F

    from srkit.metrics import psnr, ssim

    multiple = max(1, getattr(getattr(model, "info", None), "size_multiple", 1))
    was_training = model.training
    model.eval()
    ps, ss = [], []
    try:
        for item in images:
            lr, hr = item[0], item[1]
            # conditioned models: the image's (noise, jpeg) levels as the fourth item
            kw = {} if len(item) < 4 else {"noise": float(item[3][0]), "jpeg": float(item[3][1])}
            x = lr[None].to(device)
            h, w = x.shape[-2:]
            ph, pw = -h % multiple, -w % multiple
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
            sr = model(x, **kw).float().clamp(0, 1)[0, :, : h * scale, : w * scale].cpu()
            ps.append(psnr(sr, hr, border=scale, y_channel=True))
            ss.append(ssim(sr, hr, border=scale, y_channel=True))
    finally:
        model.train(was_training)
    return float(np.mean(ps)), float(np.mean(ss))


# ----------------------------------------------------------------------------------------------- fit


def _train_dirs(cfg: RunConfig) -> list[Path]:
    root = cfg.data.root
    if root is None or not root.is_dir():
        raise DatasetError(f"data.root {str(root)!r} is not a folder")
    dirs = []
    for name in cfg.data.train_sets:
        d = root / name
        if not d.is_dir():
            raise DatasetError(f"data.train_sets: no folder {str(d)!r}")
        dirs.append(d / "HR" if (d / "HR").is_dir() else d)
    return dirs


def _has_run(run_dir: Path) -> bool:
    ck = run_dir / "checkpoints"
    return (ck.is_dir() and any(ck.iterdir())) or (run_dir / "final.safetensors").exists()


def fit(cfg: RunConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True,
        stop_at: int | None = None) -> FitResult:
    """Train `cfg` into `run_dir` (see the module docstring for the files it writes).

    Args:
        cfg: the run configuration.
        run_dir: output folder; created if missing. A fresh run refuses a folder that already has checkpoints.
        resume: continue from `run_dir/checkpoints/last.pt` (the weights, optimiser and step come from it;
            `cfg` should be the run's config, e.g. `load_config(run_dir / "config.yaml")`; a longer
            `train.steps` extends the run, with a schedule stretched accordingly).
        progress: show a progress bar on stderr (rank 0 only).
        stop_at: stop after this many steps in total as if interrupted (checkpoint written, `stopped_by` =
            "stop_at"); the schedule still runs to `train.steps`. For time-sliced jobs and tests.

    Returns:
        `FitResult`.

    Raises:
        ConfigError: bad combination of settings, a non-empty run folder without `resume`, no checkpoint with
            `resume`, or a checkpoint that does not fit the model.
        DatasetError: training folders missing or empty.
        TrainingError: the loss became NaN or infinite.
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    want = cfg.train.device
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for, but torch sees no CUDA device")
    use_cuda = want == "cuda" or (want == "auto" and torch.cuda.is_available())
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda and local_rank >= torch.cuda.device_count():
        raise ConfigError(f"process {local_rank} of this node has no GPU ({torch.cuda.device_count()} visible): "
                          "start at most one process per GPU, or set train.device=cpu")
    dctx = init_distributed(use_cuda)
    device = torch.device(f"cuda:{dctx.local_rank}" if use_cuda else "cpu")
    stop = StopRequest()
    det_before = torch.are_deterministic_algorithms_enabled()
    bench_before = torch.backends.cudnn.benchmark
    try:
        # The run re-seeds torch's global RNG (model init, per-step dropout); the caller's RNG state is kept.
        with torch.random.fork_rng(devices=[device.index] if use_cuda else []):
            stop.install()
            return _Run(cfg, run_dir, dctx, device, stop).run(resume, progress, stop_at, t0)
    finally:
        stop.restore()
        torch.use_deterministic_algorithms(det_before)
        torch.backends.cudnn.benchmark = bench_before
        if dctx.initialized_here:
            import torch.distributed as dist

            dist.destroy_process_group()


class _Run:
    """State of one `fit` call (split out of `fit` to keep the steps readable)."""

    # Set by run() (and _restore on resume).
    best_psnr: float | None
    best_step: int | None
    last_val_step: int | None
    acc: dict[str, float]
    # Set by _data(): patches (clips in clip mode) and validation images (clips), None off rank 0.
    dataset: HRFolder | ClipFolder
    val_images: ValidationImages | ValidationClips | None

    def __init__(self, cfg: RunConfig, run_dir: Path, dctx: Dist, device: torch.device, stop: StopRequest):
        self.cfg, self.run_dir, self.dctx, self.device, self.stop = cfg, run_dir, dctx, device, stop
        self.ckpt_path = run_dir / "checkpoints" / "last.pt"

    # -- setup ---------------------------------------------------------------------------------------------

    def _check_folder(self, resume: bool) -> None:
        if resume:
            if not self.ckpt_path.is_file():
                raise ConfigError(f"nothing to resume: no {str(self.ckpt_path)!r}")
        elif _has_run(self.run_dir):
            raise ConfigError(f"{str(self.run_dir)!r} already holds a run: use --resume or a new folder")

    def _build(self, resume: bool = False) -> None:
        from srkit.archs import build
        from srkit.losses import CompositeLoss

        cfg, tr = self.cfg, self.cfg.train
        if cfg.data.batch_size % self.dctx.world:
            raise ConfigError(
                f"data.batch_size ({cfg.data.batch_size}) must be divisible by the number of processes "
                f"({self.dctx.world}): it is the global batch"
            )
        if tr.deterministic:
            if self.device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed patch sizes: autotuning pays off
        # Weight initialisation draws from torch's global RNG (nn.init), so it is seeded here from the config.
        torch.manual_seed(tr.seed)
        model = build(cfg.model.arch, cfg.model.scale, **cfg.model.options)
        if cfg.model.init is not None and not resume:  # a resumed run's checkpoint already holds the weights
            _load_init(model, cfg.model.init)
        # A stochastic model trains by denoising (srkit.train.diffusion): the network predicts x0 from x_t.
        self.diffusion = None
        if model.info.noise_channels > 0:
            from srkit.train.diffusion import DiffusionSteps

            self.diffusion = DiffusionSteps(cfg, model)
        self.conditioned = self.diffusion is None and _check_conditioned(cfg, model.info.inputs)
        channels = model.info.in_channels
        color = cfg.data.color or ("y" if channels == 1 else "rgb")
        if (color == "y") != (channels == 1):
            raise ConfigError(
                f"data.color: {color!r} data does not fit {cfg.model.arch}, which takes {channels} channel"
                f"{'s' if channels != 1 else ''} (use color: {'y' if channels == 1 else 'rgb'}, or leave it unset)"
            )
        from srkit.train.clips import check_clip_mode

        check_clip_mode(cfg, model.info.multi_frame, color)
        self.multi_frame = model.info.multi_frame
        # The resolved config (data root and colour filled in) is what config.yaml records.
        self.cfg = cfg = parse_config({**cfg.model_dump(), "data": {**cfg.data.model_dump(), "color": color}})
        self.color: str = color  # = cfg.data.color from here on
        self.memory_format = torch.channels_last if tr.channels_last else torch.contiguous_format
        # torch's stubs list no to(device, memory_format=...) overload; Module.to accepts it
        model = model.to(self.device, memory_format=self.memory_format)  # type: ignore[call-overload]
        self.model = model.train()
        # EMA before the distiller: its hooks must not be deep-copied into the average.
        self.ema = ModelEMA(self.model, tr.ema_decay) if tr.ema_decay is not None else None
        self.distiller = None
        if cfg.distill is not None:
            from srkit.train.distill import Distiller

            self.distiller = Distiller(cfg.distill, self.model, self.device, in_channels=channels)
        self.criterion = CompositeLoss(cfg.loss).to(self.device)
        self.monotone = None  # conditioned models: the monotonic-cleaning term (srkit.train.strength)
        if cfg.monotone is not None:
            if not self.conditioned:
                raise ConfigError(f"monotone: {cfg.model.arch} takes no noise / JPEG levels; the term needs a "
                                  "conditioned model (ecbsr-ctrl, ecbsr-ctrl-gated)")
            from srkit.train.strength import MonotoneStrength

            self.monotone = MonotoneStrength(cfg.monotone)
        self.gan = None  # the discriminator side of a GAN run (srkit.train.gan)
        if cfg.gan is not None:
            from srkit.train.gan import Adversary

            self.gan = Adversary(cfg.gan, model.info.out_channels, self.device, seed=tr.seed, world=self.dctx.world,
                                 memory_format=self.memory_format, load_init=not resume)
        params = list(self.model.parameters())
        self.extra_params = list(self.distiller.parameters()) if self.distiller is not None else []
        o = cfg.optim
        opt_cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(params + self.extra_params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.net: nn.Module = self.model
        if self.dctx.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

    def _data(self) -> None:
        from srkit.data.folders import (
            HRFolder,
            ValidationImages,
            list_images,
            split_files,
        )

        cfg, d = self.cfg, self.cfg.data
        files = list_images(_train_dirs(cfg))
        train_files, val_files = split_files(files, d.val_count, cfg.train.seed)
        degradation = None
        if d.degradation is not None:
            from srkit.degrade.pipeline import Degradation

            degradation = Degradation(d.degradation)
        # on: batch - the loader yields RGB HR patches and _loop degrades each batch on the training device.
        self.batch_degradation = degradation if degradation is not None and degradation.cfg.on == "batch" else None
        if d.clips is not None:  # clip mode (srkit.train.clips): clips made on the fly from the images
            from srkit.data.clips import ClipFolder, ValidationClips

            self.dataset = ClipFolder(train_files, scale=cfg.model.scale, patch_size=d.patch_size, cfg=d.clips,
                                      degradation=degradation, samples_per_epoch=d.samples_per_epoch,
                                      seed=cfg.train.seed)
            self.has_val = bool(val_files)
            self.val_images = None
            if val_files and self.dctx.main:
                self.val_images = ValidationClips(val_files, scale=cfg.model.scale, cfg=d.clips,
                                                  degradation=degradation, max_side=d.val_max_side,
                                                  seed=cfg.train.seed)
            return
        self.dataset = HRFolder(
            train_files, scale=cfg.model.scale, patch_size=d.patch_size,
            color="rgb" if self.batch_degradation is not None else self.color, sampler=d.sampler,
            augment=True, samples_per_epoch=d.samples_per_epoch, seed=cfg.train.seed, degradation=degradation,
            levels=self.conditioned and self.batch_degradation is None,
        )
        self.val_images = None
        self.has_val = bool(val_files)  # the same on every rank (only rank 0 holds the images)
        if val_files and self.dctx.main:
            # Validation LR comes from the training degradation too (fixed per image by the run seed).
            self.val_images = ValidationImages(val_files, scale=cfg.model.scale, color=self.color,
                                               max_side=d.val_max_side, degradation=degradation,
                                               seed=cfg.train.seed, levels=self.conditioned)

    def _loader(self, start: int) -> DataLoader:
        cfg = self.cfg
        self.sampler = StepBatchSampler(len(self.dataset), cfg.data.batch_size, start, cfg.train.steps,
                                        cfg.train.seed, self.dctx.rank, self.dctx.world)
        return DataLoader(
            _EpochKeyed(self.dataset), batch_sampler=self.sampler, num_workers=cfg.data.workers,
            pin_memory=self.device.type == "cuda", generator=self.loader_gen,
            worker_init_fn=worker_ignore_signals if cfg.data.workers else None,
            persistent_workers=False,
        )

    # -- checkpoint ----------------------------------------------------------------------------------------

    def _state(self, step: int) -> dict:
        rng = {"torch_cpu": torch.get_rng_state(), "loader": self.loader_gen.get_state()}
        if self.device.type == "cuda":
            rng["torch_cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "step": step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "distill": self.distiller.state_dict() if self.distiller is not None else None,
            **({"gan": self.gan.state_dict()} if self.gan is not None else {}),
            "rng": rng,
            "best_psnr": self.best_psnr,
            "best_step": self.best_step,
            "last_val_step": self.last_val_step,
            "seconds": self.seconds(),
            "acc": dict(self.acc),
            "config": dump_config(self.cfg),
        }

    def _restore(self) -> int:
        st = load_checkpoint(self.ckpt_path)
        try:
            self.model.load_state_dict(st["model"])
            if self.ema is not None:
                if st.get("ema") is None:
                    raise ConfigError("the checkpoint has no EMA weights but train.ema_decay is set")
                decay = self.ema.decay  # train.ema_decay: the config may have changed it
                self.ema.load_state_dict(st["ema"])
                self.ema.decay = decay
            if self.distiller is not None:
                if st.get("distill") is None:
                    raise ConfigError("the checkpoint was trained without distillation; start a new run")
                self.distiller.load_state_dict(st["distill"])
            if self.gan is not None or st.get("gan") is not None:
                from srkit.train.gan import restore

                restore(self.gan, st.get("gan"))
            self.optimizer.load_state_dict(st["optimizer"])
        except (RuntimeError, KeyError, ValueError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ConfigError(f"{str(self.ckpt_path)!r} does not fit this config: {first}") from None
        rng = st.get("rng") or {}
        if "torch_cpu" in rng:
            torch.set_rng_state(rng["torch_cpu"])
        if "loader" in rng:
            self.loader_gen.set_state(rng["loader"])
        if "torch_cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["torch_cuda"], self.device)
        self.best_psnr, self.best_step = st.get("best_psnr"), st.get("best_step")
        self.last_val_step = st.get("last_val_step")
        self.seconds_before = float(st.get("seconds", 0.0))
        # Only rank 0's running sums were saved; other ranks restart theirs (the logged mean stays a mean).
        self.acc = dict(st.get("acc") or {}) if self.dctx.main else {}
        return int(st["step"])

    def _save(self, step: int) -> None:
        if self.dctx.main:
            save_checkpoint(self._state(step), self.ckpt_path)

    def _save_weights(self, name: str, step: int, psnr: float | None) -> None:
        from srkit.models import save_model

        net = self.ema.module if self.ema is not None else self.model
        extra = {"step": str(step), "ema": str(self.ema is not None).lower()}
        if psnr is not None:
            extra["val_psnr"] = f"{psnr:.4f}"
        save_model(net, self.run_dir / name, training_data="+".join(self.cfg.data.train_sets), extra=extra)

    # -- the loop ------------------------------------------------------------------------------------------

    def seconds(self) -> float:
        return self.seconds_before + (time.perf_counter() - self.t_session)

    def _time_fraction(self) -> float:
        """Share of `train.max_minutes` spent (0 without a budget); rank 0's clock, so all ranks agree."""
        budget = self.cfg.train.max_minutes
        if budget is None:
            return 0.0
        frac = torch.tensor([self.seconds() / (60.0 * budget)], dtype=torch.float64)
        if self.dctx.world > 1:
            import torch.distributed as dist

            frac = frac.to(self.device)
            dist.broadcast(frac, 0)
        return min(1.0, float(frac.item()))

    def _sync_stop(self) -> str | None:
        """The stop reason agreed by all ranks (any rank's signal stops everyone at the same step)."""
        reason = self.stop.reason
        if self.dctx.world == 1:
            return reason
        import torch.distributed as dist

        flag = torch.tensor([0 if reason is None else 1 if reason == "SIGINT" else 2], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return {0: None, 1: "SIGINT", 2: "SIGTERM"}[int(flag.item())] if reason is None else reason

    def _log_values(self) -> dict[str, float]:
        """Means of the accumulated loss terms since the last row (averaged over ranks)."""
        n = self.acc.get("n", 0.0)
        keys = [k for k in self.acc if k != "n"]
        vals = torch.tensor([self.acc[k] for k in keys] + [n], dtype=torch.float64)
        if self.dctx.world > 1:
            import torch.distributed as dist

            vals = vals.to(self.device)
            dist.all_reduce(vals)
            vals = vals.cpu()
        total_n = float(vals[-1])
        self.acc = {}
        return {k: float(v) / total_n for k, v in zip(keys, vals[:-1].tolist())} if total_n else {}

    def run(self, resume: bool, progress: bool, stop_at: int | None, t0: float) -> FitResult:
        cfg, dctx = self.cfg, self.dctx
        self._check_folder(resume)
        if dctx.world > 1:
            import torch.distributed as dist

            dist.barrier()  # every rank has looked at the folder before rank 0 writes into it
        self._build(resume)
        cfg = self.cfg
        self.loader_gen = torch.Generator().manual_seed(cfg.train.seed)
        self.best_psnr = None
        self.best_step = None
        self.last_val_step = None
        self.seconds_before = 0.0
        self.acc = {}
        start = self._restore() if resume else 0
        self._data()
        self.t_session = time.perf_counter()
        log = tb = None
        if dctx.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.run_dir / f".config.yaml.{os.getpid()}.tmp"
            tmp.write_text(dump_config(cfg))
            os.replace(tmp, self.run_dir / "config.yaml")
            log = CsvLog(self.run_dir / "log.csv", keep_until=start if resume else None)
            tb = tensorboard_writer(self.run_dir, purge_step=start + 1 if resume else None)
        bar = ProgressBar(cfg.train.steps, start, progress and dctx.main)
        stopped_by = None
        step = start
        try:
            step, stopped_by = self._loop(start, stop_at, log, tb, bar)
        finally:
            bar.close()
            if tb is not None:
                tb.close()
        if stopped_by is None and dctx.main:
            self._save_weights("final.safetensors", step, None)
        if dctx.world > 1:
            import torch.distributed as dist

            dist.barrier()  # no rank leaves (and tears the group down) before rank 0 has written its files
        return FitResult(self.best_psnr, self.best_step, step, self.run_dir, time.perf_counter() - t0, stopped_by)

    def _loop(self, start: int, stop_at: int | None, log, tb, bar) -> tuple[int, str | None]:
        cfg, tr, dev = self.cfg, self.cfg.train, self.device
        total = tr.steps
        amp = (torch.autocast(dev.type, dtype=torch.bfloat16) if tr.bf16 else nullcontext())
        clip_params = list(self.model.parameters()) + self.extra_params
        shown_loss = None
        step = start
        if start >= total:
            return step, None
        time_fraction = self._time_fraction()  # then once per step, after it (one clock read / broadcast a step)
        for batch in self._loader(start):
            lr_img, hr_img, levels = self._batch(batch, step)
            # Dropout / stochastic depth draw from the global RNG: make them a function of (seed, rank, step).
            torch.manual_seed(_step_seed(tr.seed, self.dctx.rank, step))
            lr_now = lr_at(step, cfg.optim.lr, cfg.schedule, total, time_fraction)
            for g in self.optimizer.param_groups:
                g["lr"] = lr_now
            if self.gan is not None:  # D: the same schedule shape, its own peak
                self.gan.set_lr(lr_at(step, self.gan.cfg.optim.lr, cfg.schedule, total, time_fraction))
            train_g = self.gan is None or self.gan.trains_generator(step)  # False: D-only warm-up
            lr_img = self._on_device(lr_img)
            hr_img = hr_img.to(dev, non_blocking=True)
            with amp, nullcontext() if train_g else torch.no_grad():
                sr, extra = self._forward(lr_img, hr_img, levels, step)
            sr, hr_img, loss, terms = self._losses(sr, hr_img)
            if extra is not None:
                loss = loss + extra[0]
                terms.update(extra[1])
            if self.distiller is not None:
                d_loss, d_terms = self.distiller.loss(sr)
                loss = loss + d_loss
                terms.update(d_terms)
            if self.gan is not None:
                ema_net = self.ema.module if self.ema is not None else None  # LDL compares with it
                g_loss, g_terms = self.gan.generator_terms(sr, hr_img, lr_img, ema_net, amp)
                loss = loss + g_loss
                terms.update(g_terms)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise TrainingError(f"the loss is {loss_value} at step {step + 1}; lower optim.lr or set "
                                    "optim.grad_clip")
            if train_g:
                self._update_generator(loss, clip_params)
            if self.gan is not None:
                terms.update(self.gan.discriminator_step(sr, hr_img, amp, step))
            step += 1
            self.acc["n"] = self.acc.get("n", 0.0) + 1
            self.acc["loss"] = self.acc.get("loss", 0.0) + loss_value
            for k, v in terms.items():
                self.acc[k] = self.acc.get(k, 0.0) + v
            shown_loss = loss_value if shown_loss is None else 0.9 * shown_loss + 0.1 * loss_value
            bar.update(step, loss=shown_loss)

            stopped_by = self._stop_reason(step, stop_at, total)
            time_fraction = self._time_fraction()
            final = step == total or time_fraction >= 1.0
            val_step = (step % tr.val_every == 0 or final) and self.has_val
            val = None
            if val_step and self.val_images is not None:
                val = self._validate(step)
                bar.update(step, psnr=val[0])
            # Rank-independent condition: _log_values is a collective call under DDP.
            if step % tr.log_every == 0 or final or val_step or stopped_by is not None:
                self._write_log(step, self._log_values(), lr_now, val, log, tb)
            if step % tr.checkpoint_every == 0 or final or stopped_by is not None:
                self._save(step)
            if stopped_by is not None:
                return step, stopped_by
            if final:  # train.steps reached, or the max_minutes budget spent
                return step, None
        return step, None

    def _forward(self, lr_img: torch.Tensor, hr_img: torch.Tensor, levels: torch.Tensor | None,
                 step: int) -> tuple[torch.Tensor, tuple[torch.Tensor, dict[str, float]] | None]:
        """The generator's output for this step and the monotonic-cleaning (loss, terms) of a conditioned model
        (else None), in the caller's autocast / grad mode; the distiller's teacher sees the same batch."""
        tr, dev, rank = self.cfg.train, self.device, self.dctx.rank
        if self.distiller is not None:
            self.distiller.teach(lr_img)
        # a conditioned model is told each sample's (noise sigma, JPEG quality); a diffusion model gets x_t of a
        # random timestep and predicts x0 (the "sr" the loss terms compare with HR)
        kw = {} if levels is None else {"noise": levels[:, 0].to(dev), "jpeg": levels[:, 1].to(dev)}
        if self.diffusion is not None:
            kw = self.diffusion.inputs(lr_img, hr_img, _step_seed(tr.seed + 2, rank, step))
        sr = self.net(lr_img, **kw)
        extra = None
        if self.monotone is not None:
            extra = self.monotone.loss(self.net, lr_img, _step_seed(tr.seed + 3, rank, step))
        return sr, extra

    def _on_device(self, lr_img: torch.Tensor) -> torch.Tensor:
        """The LR batch on the training device in the training memory format (clips for a multi-frame model are
        5-D: channels-last is then the model's business, frame by frame)."""
        fmt = self.memory_format if lr_img.ndim == 4 else torch.contiguous_format
        return lr_img.to(self.device, non_blocking=True).contiguous(memory_format=fmt)

    def _losses(self, sr: torch.Tensor, hr_img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                        dict[str, float]]:
        """(sr, hr, loss, terms) of the loss terms: in fp32 (FFT and small differences lose too much in bf16);
        clips through a multi-frame model are scored over every frame (sr and hr come back as frames), and a
        model's own auxiliary loss is added (`srkit.train.clips`)."""
        if sr.ndim == 5:
            sr, hr_img = sr.flatten(0, 1), hr_img.flatten(0, 1)
        loss, raw = self.criterion(sr.float(), hr_img)
        terms = {k: float(v) for k, v in raw.items()}
        if self.cfg.data.clips is not None:
            from srkit.train.clips import auxiliary_loss

            aux = auxiliary_loss(self.model)  # e.g. a flow estimator's alignment loss
            if aux is not None:
                loss = loss + aux.float()
                terms["aux"] = float(aux.detach())
        return sr, hr_img, loss, terms

    def _batch(self, batch, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(LR, HR, levels) of one step: the loader's batch, degraded here for ``on: batch``; levels (B, 2) of the
        samples' (noise sigma, JPEG quality) for a conditioned model, else None."""
        lr_img, hr_img = batch[0], batch[1]
        levels = batch[2] if len(batch) > 2 else None
        if lr_img.ndim == 5:  # clips (srkit.train.clips): a single-image model gets their frames as images
            from srkit.train.clips import frames_as_images

            lr_img, hr_img = frames_as_images(lr_img, hr_img, self.multi_frame)
        if self.batch_degradation is None:
            return lr_img, hr_img, levels
        tr = self.cfg.train
        # Every image of the batch gets its own kernel size and resize: cuDNN autotuning (benchmark mode, on for
        # the fixed-size network) would re-tune dozens of new shapes each step (13 s a step on an H200), so it is
        # off for the degradation.
        with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, benchmark=False,
                                        deterministic=torch.backends.cudnn.deterministic,
                                        allow_tf32=torch.backends.cudnn.allow_tf32):
            lr_img, hr_img, records = self.batch_degradation.training_batch(
                hr_img.to(self.device), self.cfg.model.scale, _step_seed(tr.seed + 1, self.dctx.rank, step),
                self.color)
        if self.conditioned:
            from srkit.degrade.pipeline import record_levels

            levels = torch.tensor([record_levels(r) for r in records], dtype=torch.float32)
        return lr_img, hr_img, levels

    def _stop_reason(self, step: int, stop_at: int | None, total: int) -> str | None:
        """A signal (agreed by all ranks), or "stop_at" when the caller's step limit is reached before the end."""
        reason = self._sync_stop()
        if reason is None and stop_at is not None and stop_at <= step < total:
            reason = "stop_at"
        return reason

    def _write_log(self, step: int, values: dict[str, float], lr_now: float, val: tuple[float, float] | None,
                   log, tb) -> None:
        """One row of log.csv (rank 0 only: `log` is None elsewhere) and the same scalars in TensorBoard."""
        if log is None:
            return
        log.write({"step": step, **{k: f"{v:.6g}" for k, v in values.items()}, "lr": f"{lr_now:.6g}",
                   "val_psnr": "" if val is None else f"{val[0]:.4f}",
                   "val_ssim": "" if val is None else f"{val[1]:.5f}",
                   "seconds": f"{self.seconds():.2f}"})
        if tb is None:
            return
        for k, v in values.items():
            tb.add_scalar(f"train/{k}", v, step)
        tb.add_scalar("train/lr", lr_now, step)
        if val is not None:
            tb.add_scalar("val/psnr", val[0], step)
            tb.add_scalar("val/ssim", val[1], step)

    def _update_generator(self, loss: torch.Tensor, clip_params: list[nn.Parameter]) -> None:
        """Backward, clip, optimiser step and EMA update of the generator (and of the distillation adapters)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.dctx.world > 1 and self.extra_params:
            self._allreduce_extra_grads()
        if self.cfg.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(clip_params, self.cfg.optim.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)

    def _allreduce_extra_grads(self) -> None:
        # The distillation adapters live outside DistributedDataParallel: average their gradients by hand.
        import torch.distributed as dist

        grads = [p.grad for p in self.extra_params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.dctx.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def _validate(self, step: int) -> tuple[float, float]:
        net = self.ema.module if self.ema is not None else self.model
        if self.cfg.data.clips is not None:
            from srkit.train.clips import validate_clips

            p, s = validate_clips(net, self.val_images, self.cfg.model.scale, self.device)
        else:
            p, s = validate(net, self.val_images, self.cfg.model.scale, self.device)
        self.last_val_step = step
        if self.best_psnr is None or p > self.best_psnr:
            self.best_psnr, self.best_step = p, step
            self._save_weights("best.safetensors", step, p)
        return p, s
