"""Generator + discriminator training: the discriminator, its optimiser, and the GAN part of each step.

The trainer (`srkit.train.loop`) keeps one :class:`Adversary` when the run config has a ``gan:`` section. A step:

1. G's forward on the LR batch (autocast as configured) and its configured ``loss:`` terms (pixel, perceptual);
2. :meth:`Adversary.generator_terms`: with D frozen (``requires_grad=False``, so G's backward leaves D's
   gradients alone), ``weight * adversarial + feature_matching * FM + ldl * LDL`` added to G's loss;
3. G's backward, clipping (``optim.grad_clip``), optimiser step, EMA update (skipped during ``gan.warmup_steps``);
4. :meth:`Adversary.discriminator_step`: D's loss on (HR, G's output of step 1, detached), backward, clipping
   (``gan.grad_clip``), D's optimiser step.

D's learning rate follows the run's schedule shape with ``gan.optim.lr`` as its peak. D runs in train mode
throughout (spectral-norm power iterations and BatchNorm statistics advance with every forward, as in BasicSR /
Real-ESRGAN); its losses are computed in float32 from logits produced under autocast. Under DDP the discriminator
is not wrapped: its gradients are averaged over ranks by hand before its step, so every rank keeps the same D.
Every GAN loss is a mean, so a distributed run computes the single-process step up to summation order, except
``ragan`` (its "mean of the other side" is taken over each rank's share of the batch) and the BatchNorm
statistics of ``vgg-discriminator`` (per rank).

Reference: C. Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network" (SRGAN), CVPR 2017; X. Wang et al., "ESRGAN", ECCV Workshops 2018; X. Wang et al., "Real-ESRGAN",
ICCV Workshops 2021; J. Liang et al., "Details or Artifacts" (LDL), CVPR 2022.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srkit.errors import ConfigError
from srkit.losses.adversarial import discriminator_loss, feature_matching_loss, generator_loss
from srkit.losses.artifact import ldl_loss
from srkit.train.config import GanCfg

__all__ = ["GAN_LOG_COLUMNS", "Adversary", "build_discriminator", "restore"]

# log.csv columns the GAN step adds (fm and ldl only when their weights are > 0); `srkit plot` draws the first
# three in their own panel.
GAN_LOG_COLUMNS = ("g_adv", "d_real", "d_fake", "fm", "ldl")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("params", "params_ema", "state_dict"):  # BasicSR / Real-ESRGAN / Lightning wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            return state[key]
    return state


def build_discriminator(cfg: GanCfg, channels: int, *, seed: int = 0, load_init: bool = True) -> nn.Module:
    """The bare discriminator network of ``cfg.discriminator`` (checkpoint key names as its authors'), CPU, fp32.

    Args:
        cfg: the ``gan`` section.
        channels: the generator's output channels (1 for Y models): ``num_in_ch`` unless the options set it.
        seed: its random initialisation (spectral-norm vectors included) is drawn from this seed, leaving the
            caller's global RNG untouched.
        load_init: load ``cfg.discriminator.init`` when set (False on resume: the checkpoint holds the weights).

    Raises:
        ConfigError: a ``num_in_ch`` that differs from ``channels``, bad options, an unreadable or unfitting init.
    """
    from srkit.archs import build

    d = cfg.discriminator
    options = dict(d.options)
    if options.setdefault("num_in_ch", channels) != channels:
        raise ConfigError(f"gan.discriminator.options.num_in_ch: {options['num_in_ch']} channels, but the generator "
                          f"makes {channels}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            net = build(d.arch, 1, **options).module
        except (ConfigError, ValueError) as e:  # the builders refuse bad sizes with ValueError
            raise ConfigError(f"gan.discriminator.options: {e}") from None
    if d.init is not None and load_init:
        path = Path(d.init).expanduser()
        if not path.is_file():
            raise ConfigError(f"gan.discriminator.init: no file {str(path)!r}")
        try:
            net.load_state_dict(_read_state_dict(path))
        except (RuntimeError, OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ConfigError(f"gan.discriminator.init: {str(path)!r} does not fit {d.arch} {d.options}: {first}"
                              ) from None
    return net


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """``requires_grad=False`` on every parameter inside the block (restored after)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Adversary:
    """The discriminator side of a GAN run: D, its optimiser, and the GAN terms of every step.

    Args:
        cfg: the run config's ``gan`` section.
        channels: the generator's output channels.
        device: where D lives.
        seed: the run seed (D's initialisation is drawn from it).
        world: number of DDP processes (D's gradients are averaged over them).
        memory_format: D's parameters' memory format (channels-last like G when configured).
        load_init: load ``gan.discriminator.init`` (a fresh run; on resume the checkpoint has the weights).
    """

    def __init__(self, cfg: GanCfg, channels: int, device: torch.device, *, seed: int = 0, world: int = 1,
                 memory_format: torch.memory_format = torch.contiguous_format, load_init: bool = True) -> None:
        self.cfg, self.world = cfg, world
        # Its own seed stream: the same D whatever else (EMA, distillation) was built before it.
        d_seed = int(np.random.SeedSequence([seed, 0xD15C]).generate_state(1, np.uint64)[0] >> 1)
        net = build_discriminator(cfg, channels, seed=d_seed, load_init=load_init)
        # torch's stubs list no to(device, memory_format=...) overload; Module.to accepts it
        net = net.to(device, memory_format=memory_format)  # type: ignore[call-overload]
        self.discriminator = net.train()
        if cfg.feature_matching > 0 and not hasattr(net, "forward_features"):
            raise ConfigError(f"gan.feature_matching: {cfg.discriminator.arch} does not expose its features")
        o = cfg.optim
        opt_cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(self.discriminator.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)

    def trains_generator(self, step: int) -> bool:
        """False during the D-only warm-up (steps ``0 .. gan.warmup_steps - 1``)."""
        return step >= self.cfg.warmup_steps

    def set_lr(self, lr: float) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    def _d(self, x: torch.Tensor, features: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if features:  # forward_features: looked up by name (__init__ checked it is there when features are used)
            return getattr(self.discriminator, "forward_features")(x)
        return self.discriminator(x), []

    def generator_terms(self, sr: torch.Tensor, hr: torch.Tensor, lr: torch.Tensor, ema: nn.Module | None,
                        amp: AbstractContextManager) -> tuple[torch.Tensor, dict[str, float]]:
        """G's GAN terms for this step (D frozen while they are computed).

        Args:
            sr: G's output (B, C, sH, sW), with autograd (or without, during the warm-up).
            hr: the HR batch, same shape, float [0, 1].
            lr: the LR batch (the EMA generator's input for LDL).
            ema: the EMA generator (needed when ``gan.ldl > 0``).
            amp: the autocast context of the run (or a null context).

        Returns:
            ``(weight * g_adv + feature_matching * fm + ldl * ldl, {"g_adv": ..., "fm": ..., "ldl": ...})``; the
            values are unweighted floats (fm and ldl only when their weights are > 0).
        """
        cfg = self.cfg
        fm_on = cfg.feature_matching > 0
        with _frozen(self.discriminator), amp:
            fake, fake_feats = self._d(sr, fm_on)
            real: torch.Tensor | None = None
            real_feats: list[torch.Tensor] = []
            if cfg.loss == "ragan" or fm_on:
                with torch.no_grad():
                    real, real_feats = self._d(hr, fm_on)
        adv = generator_loss(fake, real, cfg.loss)
        total = cfg.weight * adv
        values = {"g_adv": adv}
        if fm_on:
            values["fm"] = feature_matching_loss(fake_feats, real_feats)
            total = total + cfg.feature_matching * values["fm"]
        if cfg.ldl > 0:
            if ema is None:
                raise ConfigError("gan.ldl > 0 needs the EMA generator: set train.ema_decay")
            with torch.no_grad(), amp:
                sr_ema = ema(lr)
            values["ldl"] = ldl_loss(sr.float(), sr_ema.float(), hr.float(), kernel_size=cfg.ldl_kernel)
            total = total + cfg.ldl * values["ldl"]
        return total, {k: float(v.detach()) for k, v in values.items()}

    def discriminator_step(self, sr: torch.Tensor, hr: torch.Tensor, amp: AbstractContextManager,
                           step: int) -> dict[str, float]:
        """One optimiser step of D on HR (real) and ``sr`` (fake, detached here); returns ``{"d_real", "d_fake"}``.

        Raises:
            TrainingError: D's loss is NaN or infinite.
        """
        with amp:
            real = self.discriminator(hr)
            fake = self.discriminator(sr.detach())
        part_real, part_fake = discriminator_loss(real, fake, self.cfg.loss)
        loss = part_real + part_fake
        value = float(loss.detach())
        if not math.isfinite(value):
            from srkit.errors import TrainingError

            raise TrainingError(f"the discriminator loss is {value} at step {step + 1}; lower gan.optim.lr or set "
                                "gan.grad_clip")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.world > 1:
            self._average_grads()
        if self.cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.discriminator.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return {"d_real": float(part_real.detach()), "d_fake": float(part_fake.detach())}

    def _average_grads(self) -> None:
        import torch.distributed as dist

        grads = [p.grad for p in self.discriminator.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def state_dict(self) -> dict:
        """``{"discriminator": D's state dict, "optimizer": D's optimiser state}`` (for the checkpoint)."""
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])


def restore(adversary: Adversary | None, state: dict | None) -> None:
    """Load a checkpoint's ``gan`` entry into ``adversary``; ConfigError when one of them is missing."""
    if adversary is None and state is not None:
        raise ConfigError("the checkpoint was trained with a gan section, the config has none: add it back")
    if adversary is not None:
        if state is None:
            raise ConfigError("the checkpoint was trained without a gan section: start a new run (model.init can "
                              "take the fidelity run's best.safetensors)")
        adversary.load_state_dict(state)
