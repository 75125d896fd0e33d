"""ResShift-style diffusion SR: a Markov chain that shifts the residual between the upsampled LR image and HR.

Paper: Zongsheng Yue, Jianyi Wang, Chen Change Loy, "ResShift: Efficient Diffusion Model for Image
Super-resolution by Residual Shifting", NeurIPS 2023 (arXiv:2307.12348).
Repository: https://github.com/zsyOAOA/ResShift (S-Lab License 1.0: non-commercial use only). srkit's code is
written from the paper's equations; no code, configuration text or weights of that repository are used, and
srkit's weights are trained by srkit. The schedule constants below are the paper's published numbers.

The formulation (everything in [-1, 1], at HR):

* y0 is the LR image upsampled (bicubic), x0 the HR image, e0 = y0 - x0 their residual.
* Forward chain of T steps (T = ``timesteps``, 15): q(x_t | x0, y0) = N(x0 + eta_t e0, kappa^2 eta_t I), so
  x_t = x0 + eta_t (y0 - x0) + kappa sqrt(eta_t) eps; eta increases from eta_1 ~ 0 to eta_T ~ 1, so x_T is y0 plus
  Gaussian noise of variance kappa^2 eta_T.
* Schedule ("sqrt-power"): sqrt(eta_t) = sqrt(eta_1) b^(beta_t), beta_t = ((t - 1) / (T - 1))^p (T - 1),
  b = (sqrt(eta_T) / sqrt(eta_1))^(1 / (T - 1)); p = ``power`` (0.3), sqrt(eta_1) = ``sqrt_eta_first`` (0.02 =
  min(0.04 / kappa, 0.04) for kappa = 2), sqrt(eta_T) = ``sqrt_eta_last`` (0.99), kappa = ``kappa`` (2.0).
* The network predicts x0 from (x_t, the LR image, t) (trained with an L2/L1 loss on x0: `srkit.train.diffusion`).
* Posterior: q(x_{t-1} | x_t, x0) = N((eta_{t-1} / eta_t) x_t + (alpha_t / eta_t) x0, kappa^2 (eta_{t-1} / eta_t)
  alpha_t I), alpha_t = eta_t - eta_{t-1}, eta_0 = 0; sampling starts at x_T = y0 + kappa sqrt(eta_T) eps and
  replaces x0 by the prediction (clipped to [-1, 1]) at every step.
* Fewer steps (`respaced_timesteps`): N of the T timesteps, spread uniformly from T down to 1 (both ends kept, so
  one step is "predict x0 from x_T"); the chain over them is again of the same form with the sub-sequence of etas,
  so the posterior above is recomputed with it. 1 <= N <= T.

srkit's network (cheap enough for a CPU: x4 of a 256 x 256 LR image at 4 steps in well under 30 s in bf16,
`benchmarks/diffusion_speed.py`):

* Everything runs at LR resolution: an HR tensor is pixel-unshuffled (space to depth, 3 s^2 channels per LR
  pixel) and shuffled back at the end.
* ``prior``: an x0 path that needs no steps. "ecbsr" (default): a plain ECBSR-M12C64 (`srkit.archs.ecbsr`, deployed
  form, the layout of srkit's ``real-x4``), run once per image; "bicubic": the bicubic y0 itself. The prediction is
  ``x0 = prior(LR) + unet(x_t / sqrt(1 + kappa^2 eta_t), prior(LR), LR, t)`` with the U-Net's last conv zero at
  initialisation, so a fresh model (or one started from ``real-x4`` with `load_blind_state_dict`) outputs the
  prior exactly, and training only has to learn the detail the prior cannot give.
* ``unet``: a small U-Net on the unshuffled tensors: ``channels`` per level (1 to 3 levels; default 32, 64: the
  second level at LR / 2; strided 3x3 convs down, 1x1 conv + pixel shuffle up, 1x1 merge of the skip), ``blocks``
  residual blocks per level (twice that in the middle), each SiLU-conv-FiLM(timestep)-SiLU-conv; a sinusoidal
  timestep embedding and an MLP. No normalisation layer with spatial statistics, so a tile's result does not depend
  on what else is in the tile. Default size: 287,248 U-Net + 473,456 prior parameters (2.9 MiB as float32, under
  the 3 MiB of a shipped weights file); 124,798 MACs per LR pixel per step + 471,744 once (x4).

Noise: a stochastic model in srkit's engine (`ModelInfo.noise_channels`) gets one LR-resolution noise field per
image, drawn from the call's seed and cropped with every tile. The sampler needs N draws of 3 s^2 channels (720
channels per LR pixel at T = 15, x4), too much to draw and store for a big image, so the field has two channels
(`NOISE_CHANNELS`) whose 64 float32 bits per LR pixel are hashed into a 32-bit key (`noise_keys`), and
`pixel_noise` expands a key into that pixel's Gaussian values for every step and channel by a counter-based hash.
Any tile, strip or batch holding a pixel therefore gets the same noise for it, at 8 bytes per LR pixel of memory.
Called without a field (training validation, the module on its own), the keys come from the pixel coordinates in
the input, fixed.

The module's inputs: ``module(lr, noise=None, steps=None)`` samples (B, 3, h, w) [0, 1] -> (B, 3, sh, sw), with
``steps`` (the per-call input of `ModelInfo.inputs`, default ``sample_steps``) steps; per-step progress goes to
`srkit.srmodel.report_progress`. ``module(lr, x_t=..., t=...)`` is one training prediction of x0 (HR, [0, 1],
not clipped) from an x_t made by `ResShiftSR.diffuse`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srkit.archs._spec import ArchFamily, ArchSpec
from srkit.errors import ConfigError

PAPER = ("Yue, Wang, Loy, 'ResShift: Efficient Diffusion Model for Image Super-resolution by Residual Shifting', "
         "NeurIPS 2023")
REPO = "https://github.com/zsyOAOA/ResShift"
LICENSE = "S-Lab License 1.0 (non-commercial); srkit's code is written from the paper"

#: Channels of the engine's noise field: the float32 bits of two standard normal values = a 64-bit key per pixel.
NOISE_CHANNELS = 2
#: The per-call input: the number of sampling steps.
STEP_INPUT = "steps"
#: LR sides must be multiples of this (two stride-2 levels at most).
SIZE_MULTIPLE = 4
PRIORS = ("ecbsr", "bicubic")

_M32 = 0xFFFFFFFF


# --------------------------------------------------------------------------------------------- the schedule


def eta_schedule(timesteps: int = 15, *, power: float = 0.3, sqrt_eta_first: float = 0.02,
                 sqrt_eta_last: float = 0.99) -> list[float]:
    """eta_1 .. eta_T of the sqrt-power schedule (see the module docstring), as Python floats (double precision)."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    if not 0.0 < sqrt_eta_first < sqrt_eta_last < 1.0:
        raise ValueError(f"need 0 < sqrt_eta_first < sqrt_eta_last < 1, got {sqrt_eta_first}, {sqrt_eta_last}")
    if timesteps == 1:
        return [sqrt_eta_last**2]
    log_ratio = math.log(sqrt_eta_last / sqrt_eta_first)
    out = []
    for t in range(1, timesteps + 1):
        beta = ((t - 1) / (timesteps - 1)) ** power  # in [0, 1]; times (T - 1) steps of log b = log_ratio / (T - 1)
        out.append((sqrt_eta_first * math.exp(beta * log_ratio)) ** 2)
    return out


def respaced_timesteps(timesteps: int, steps: int) -> list[int]:
    """The `steps` timesteps (1-based, increasing) a sampler of `steps` steps visits on a chain of `timesteps`:
    spread uniformly from 1 to T, both kept (one step: [T]).

    Raises:
        ConfigError: `steps` outside 1..`timesteps`.
    """
    if not 1 <= steps <= timesteps:
        raise ConfigError(f"steps must be an integer in 1..{timesteps} (the model's trained chain), got {steps}")
    if steps == 1:
        return [timesteps]
    span, gaps = timesteps - 1, steps - 1
    return [1 + (k * span + gaps // 2) // gaps for k in range(steps)]


def posterior(etas: Sequence[float], kappa: float) -> tuple[list[float], list[float], list[float]]:
    """Coefficients of q(x_{k-1} | x_k, x0) for a chain with these etas (increasing; eta_0 = 0 before them):
    (mean coefficient of x_k, mean coefficient of x0, standard deviation), one per step k (index 0 = the first)."""
    c_x, c_0, std = [], [], []
    prev = 0.0
    for eta in etas:
        alpha = eta - prev
        c_x.append(prev / eta)
        c_0.append(alpha / eta)
        std.append(kappa * math.sqrt(max(prev / eta * alpha, 0.0)))
        prev = eta
    return c_x, c_0, std


# --------------------------------------------------------------------------------------------- noise


def _mix32(h: Tensor) -> Tensor:
    """A 32-bit integer mixer on int64 tensors of values in [0, 2^32), in place (pass a tensor you own).

    xorshift-multiply rounds with the constants 0x21F0AAAD / 0x735A2D97 (shifts 16, 15, 15) found by C. Wellons'
    hash-prospector (public domain). Both multipliers are below 2^31, so no int64 product overflows."""
    h.bitwise_xor_(h >> 16).mul_(0x21F0AAAD).bitwise_and_(_M32)
    h.bitwise_xor_(h >> 15).mul_(0x735A2D97).bitwise_and_(_M32)
    return h.bitwise_xor_(h >> 15)


def noise_keys(noise: Tensor | None, like: Tensor) -> Tensor:
    """One (B, 1, h, w) int64 key (values in [0, 2^32)) per pixel of `like` (B, C, h, w).

    From the engine's field `noise` (B, 2, h, w) float32: the bits of its two values, hashed together. Without a
    field: fixed keys made from the pixel coordinates in `like` (the same for every image of the batch)."""
    b, _, h, w = like.shape
    if noise is None:
        ys = torch.arange(h, device=like.device, dtype=torch.int64).view(1, 1, h, 1)
        xs = torch.arange(w, device=like.device, dtype=torch.int64).view(1, 1, 1, w)
        return _mix32((ys * 0x10001 + xs * 0x9E37 + 0x5EED) & _M32).expand(b, 1, h, w)
    if noise.shape[0] != b or noise.shape[1] < NOISE_CHANNELS or noise.shape[-2:] != like.shape[-2:]:
        raise ValueError(f"noise field {tuple(noise.shape)} does not fit the input {tuple(like.shape)}")
    bits = noise[:, :NOISE_CHANNELS].to(torch.float32).contiguous().view(torch.int32).to(torch.int64) & _M32
    return _mix32(_mix32(bits[:, :1].clone()) ^ bits[:, 1:2])


def pixel_noise(keys: Tensor, stream: int, channels: int) -> Tensor:
    """Standard normal values (B, channels, h, w) float32 for counters ``stream * channels + c``: a pure function
    of each pixel's key (`noise_keys`) and the counter, so every tile holding a pixel draws the same values for it.

    Each value: `_mix32` of (key XOR a hashed counter), its top 23 bits as a uniform u in (0, 1), then
    sqrt(2) erfinv(2u - 1)."""
    counters = torch.arange(stream * channels, (stream + 1) * channels, device=keys.device, dtype=torch.int64)
    c = _mix32((counters * 0x9E3779B1 + 0x7F4A7C15) & _M32).view(1, channels, 1, 1)
    h = _mix32(keys ^ c)
    u = (h >> 9).to(torch.float32).add_(0.5).mul_(2.0**-22).sub_(1.0)  # 2u - 1, u = (k + 1/2) / 2^23
    return u.erfinv_().mul_(math.sqrt(2.0))


# --------------------------------------------------------------------------------------------- the network


def timestep_embedding(t: Tensor, dim: int, timesteps: int) -> Tensor:
    """(B,) timesteps 1..T -> (B, dim) sinusoidal features of t * 1000 / T (periods 1 .. 10000 of that scale)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    arg = (t.to(torch.float32) * (1000.0 / timesteps))[:, None] * freqs[None]
    emb = torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)
    return F.pad(emb, (0, dim - 2 * half)) if dim % 2 else emb


class ResBlock(nn.Module):
    """x + conv(SiLU(FiLM_t(conv(SiLU(x))))): (B, C, h, w) and (B, E) timestep features -> (B, C, h, w)."""

    def __init__(self, channels: int, emb_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(x))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = h * (1 + scale) + shift
        return x + self.conv2(F.silu(h))


class Stage(nn.Module):
    """`blocks` ResBlocks of one U-Net level, in a row."""

    def __init__(self, channels: int, emb_dim: int, blocks: int):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(channels, emb_dim) for _ in range(blocks))

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, emb)
        return x


class DenoiserUNet(nn.Module):
    """The x0 residual at LR resolution: (B, in_channels, h, w) + (B,) timesteps -> (B, out_channels, h, w).

    h and w must be multiples of 2^(levels - 1). The last conv starts at zero.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: Sequence[int] = (32, 64), blocks: int = 1,
                 timesteps: int = 15):
        super().__init__()
        channels = [int(c) for c in channels]
        if not 1 <= len(channels) <= 3 or min(channels) < 1 or blocks < 1:
            raise ValueError(f"channels must list 1 to 3 positive widths and blocks be >= 1, got {channels}, {blocks}")
        self.timesteps = int(timesteps)
        c0 = channels[0]
        emb = 2 * c0
        self.embed_dim = c0
        self.time = nn.Sequential(nn.Linear(c0, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.head = nn.Conv2d(in_channels, c0, 3, padding=1)
        n = len(channels)
        self.enc = nn.ModuleList(Stage(c, emb, blocks) for c in channels[:-1])
        self.down = nn.ModuleList(nn.Conv2d(channels[i], channels[i + 1], 3, stride=2, padding=1) for i in range(n - 1))
        self.mid = Stage(channels[-1], emb, 2 * blocks)
        self.up = nn.ModuleList(nn.Conv2d(channels[i + 1], 4 * channels[i], 1) for i in range(n - 1))
        self.merge = nn.ModuleList(nn.Conv2d(2 * channels[i], channels[i], 1) for i in range(n - 1))
        self.dec = nn.ModuleList(Stage(c, emb, blocks) for c in channels[:-1])
        self.tail = nn.Conv2d(c0, out_channels, 3, padding=1)
        with torch.no_grad():  # the x0 residual starts at zero: a fresh model outputs its prior
            for p in self.tail.parameters():
                p.zero_()

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.time(timestep_embedding(t, self.embed_dim, self.timesteps).to(x.dtype))
        h = self.head(x)
        skips = []
        for stage, down in zip(self.enc, self.down):
            h = stage(h, emb)
            skips.append(h)
            h = down(h)
        h = self.mid(h, emb)
        for i in reversed(range(len(self.up))):
            h = F.pixel_shuffle(self.up[i](h), 2)
            h = self.merge[i](torch.cat([h, skips[i]], dim=1))
            h = self.dec[i](h, emb)
        return self.tail(F.silu(h))


class ResShiftSR(nn.Module):
    """Residual-shifting diffusion SR (see the module docstring): (B, 3, h, w) [0, 1] -> (B, 3, sh, sw).

    Args:
        scale: s.
        timesteps: T, the trained chain's length.
        kappa, power, sqrt_eta_first, sqrt_eta_last: the schedule.
        sample_steps: steps when a call does not say.
        channels, blocks: the U-Net's widths per level (1 to 3 levels) and residual blocks per level.
        prior: "ecbsr" (a plain ECBSR of `prior_modules` x `prior_channels`, real-x4's layout) or "bicubic".
        freeze_prior: train without gradients into the prior (it stays as initialised, e.g. real-x4's weights).
    """

    def __init__(self, scale: int = 4, timesteps: int = 15, kappa: float = 2.0, power: float = 0.3,
                 sqrt_eta_first: float = 0.02, sqrt_eta_last: float = 0.99, sample_steps: int = 4,
                 channels: Sequence[int] = (32, 64), blocks: int = 1, prior: str = "ecbsr",
                 prior_modules: int = 12, prior_channels: int = 64, freeze_prior: bool = False):
        super().__init__()
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if not 1 <= sample_steps <= timesteps:
            raise ValueError(f"sample_steps must be in 1..timesteps ({timesteps}), got {sample_steps}")
        if kappa <= 0:
            raise ValueError(f"kappa must be > 0, got {kappa}")
        self.scale = int(scale)
        self.timesteps = int(timesteps)
        self.kappa = float(kappa)
        self.sample_steps = int(sample_steps)
        self.freeze_prior = bool(freeze_prior)
        self.etas = eta_schedule(self.timesteps, power=power, sqrt_eta_first=sqrt_eta_first,
                                 sqrt_eta_last=sqrt_eta_last)
        self.prior_kind = prior
        self.prior: nn.Module | None = None
        if prior == "ecbsr":  # registered first: its weights are the first parameters (a start from real-x4)
            from srkit.archs.ecbsr import ECBSR

            self.prior = ECBSR(prior_modules, prior_channels, scale=scale, colors=3, deploy=True)
        self.hr_channels = 3 * scale * scale
        self.unet = DenoiserUNet(2 * self.hr_channels + 3, self.hr_channels, channels, blocks, self.timesteps)
        self.multiple = 2 ** (len(list(channels)) - 1)

    # -- the pieces ----------------------------------------------------------------------------------------

    def _unshuffle(self, hr: Tensor) -> Tensor:
        """HR (B, 3, sh, sw) in [0, 1] -> (B, 3 s^2, h, w) in [-1, 1]."""
        return F.pixel_unshuffle(hr.float(), self.scale) * 2.0 - 1.0

    def _shuffle(self, z: Tensor) -> Tensor:
        """(B, 3 s^2, h, w) in [-1, 1] -> HR (B, 3, sh, sw) in [0, 1]."""
        return F.pixel_shuffle((z + 1.0) * 0.5, self.scale)

    def upsampled(self, lr: Tensor) -> Tensor:
        """y0: the LR image upsampled (bicubic), unshuffled, in [-1, 1]."""
        up = F.interpolate(lr.float(), scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self._unshuffle(up)

    def base(self, lr: Tensor, y0: Tensor | None = None) -> Tensor:
        """The prior's x0 (unshuffled, [-1, 1]): ECBSR(lr), or without a prior y0 (`upsampled(lr)` when not
        given)."""
        if self.prior is None:
            return self.upsampled(lr) if y0 is None else y0
        if self.freeze_prior:
            with torch.no_grad():
                return self._unshuffle(self.prior(lr))
        return self._unshuffle(self.prior(lr))

    def denoise(self, x_t: Tensor, t: Tensor, base: Tensor, lr: Tensor) -> Tensor:
        """x0 prediction (unshuffled, [-1, 1], fp32) from x_t at 1-based timesteps `t` (B,)."""
        eta = torch.tensor(self.etas, device=x_t.device, dtype=torch.float32)[t.long() - 1]
        x_in = x_t / torch.sqrt(1.0 + self.kappa**2 * eta).view(-1, 1, 1, 1)
        inp = torch.cat([x_in, base, lr.float() * 2.0 - 1.0], dim=1)
        return base + self.unet(inp, t).float()

    def diffuse(self, lr: Tensor, hr: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """x_t (unshuffled, [-1, 1]) of HR `hr` (B, 3, sh, sw) [0, 1] at timesteps `t` (B,) 1..T, with y0 from `lr`
        (B, 3, h, w) and standard normal `eps` (B, 3, sh, sw)."""
        x0 = self._unshuffle(hr)
        y0 = self.upsampled(lr)
        eta = torch.tensor(self.etas, device=hr.device, dtype=torch.float32)[t.long() - 1].view(-1, 1, 1, 1)
        return x0 + eta * (y0 - x0) + self.kappa * eta.sqrt() * F.pixel_unshuffle(eps.float(), self.scale)

    def check_steps(self, steps: object) -> int:
        """The number of sampling steps a call asks for: None -> `sample_steps`; an integral number in 1..T.

        Raises:
            ConfigError: anything else (one line, naming the trained chain's length)."""
        if steps is None:
            return self.sample_steps
        if isinstance(steps, Tensor):
            steps = steps.item() if steps.numel() == 1 else steps.tolist()
        if isinstance(steps, bool) or not isinstance(steps, (int, float)) or not float(steps).is_integer():
            raise ConfigError(f"steps must be an integer in 1..{self.timesteps} (the model's trained chain), got "
                              f"{steps!r}")
        n = int(steps)
        respaced_timesteps(self.timesteps, n)  # raises for n outside 1..T
        return n

    # -- forward -------------------------------------------------------------------------------------------

    def forward(self, x: Tensor, noise: Tensor | None = None, steps: float | int | Tensor | None = None,
                x_t: Tensor | None = None, t: Tensor | None = None) -> Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:  # the engine pads to SIZE_MULTIPLE already; this is for direct calls (training patches)
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
            if noise is not None:
                noise = F.pad(noise, (0, pw, 0, ph), mode="replicate")
            if x_t is not None:
                x_t = F.pad(x_t, (0, pw, 0, ph), mode=mode)
        s = self.scale
        if x_t is not None:
            if t is None:
                raise ValueError("a training prediction needs the timesteps t with x_t")
            y = self._shuffle(self.denoise(x_t, t, self.base(x), x))
        else:
            y = self.sample(x, noise, self.check_steps(steps))
        return y[..., : h * s, : w * s]

    def sample(self, lr: Tensor, noise: Tensor | None, steps: int) -> Tensor:
        """`steps` steps of the respaced chain from x_T = y0 + kappa sqrt(eta_T) eps: (B, 3, h, w) -> HR [0, 1]
        (not clipped), noise from `pixel_noise` (stream k for the k-th draw)."""
        from srkit.srmodel import report_progress

        ts = respaced_timesteps(self.timesteps, steps)
        etas = [self.etas[t - 1] for t in ts]
        c_x, c_0, std = posterior(etas, self.kappa)
        keys = noise_keys(noise, lr)
        c = self.hr_channels
        y0 = self.upsampled(lr)
        base = self.base(lr, y0)
        b = lr.shape[0]
        x = y0 + self.kappa * math.sqrt(etas[-1]) * pixel_noise(keys, 0, c)
        for i, k in enumerate(reversed(range(steps))):
            t = torch.full((b,), ts[k], device=lr.device, dtype=torch.long)
            x0 = self.denoise(x, t, base, lr).clamp_(-1.0, 1.0)
            if k == 0:
                x = x0
            else:
                x = c_x[k] * x + c_0[k] * x0 + std[k] * pixel_noise(keys, i + 1, c)
            report_progress((i + 1) / steps)
        return self._shuffle(x)

    @torch.no_grad()
    def load_blind_state_dict(self, state_dict: dict[str, Tensor]) -> None:
        """Start the prior from a plain ECBSR of its layout (e.g. ``real-x4``: ``backbone.*`` keys); the U-Net
        keeps its initialisation (its last conv is zero, so the model then outputs exactly that ECBSR).

        Raises:
            ConfigError: no ECBSR prior, or the weights are not an ECBSR of the prior's layout.
        """
        if self.prior is None:
            raise ConfigError("this model's prior is bicubic: there is no network to start from other weights")
        own = self.prior.state_dict()
        sd = {k.removeprefix("prior."): v for k, v in state_dict.items()}
        if sd.keys() != own.keys() or any(sd[k].shape != own[k].shape for k in own):
            raise ConfigError("not a plain ECBSR of the prior's layout (module_nums, channel_nums; RGB, deployed)")
        self.prior.load_state_dict(sd)


def build_resshift(scale: int = 4, **options) -> ResShiftSR:
    """`ResShiftSR` with srkit's defaults (T 15, kappa 2, p 0.3, 4 sampling steps, U-Net 32/64, ECBSR prior)."""
    if "channels" in options:
        options["channels"] = tuple(int(c) for c in options["channels"])
    return ResShiftSR(scale=scale, **options)


def detect_resshift(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """Recognise srkit's ResShift layout (``unet.*`` [+ ``prior.backbone.*``]); scale, U-Net widths and blocks and
    the prior's size come from the shapes. The schedule options are not in the tensors: the defaults are assumed
    (srkit safetensors carry them in their metadata)."""
    head = state_dict.get("unet.head.weight")
    tail = state_dict.get("unet.tail.weight")
    if head is None or tail is None or head.dim() != 4 or tail.dim() != 4:
        return None
    hr_channels = int(tail.shape[0])
    s = math.isqrt(hr_channels // 3)
    if 3 * s * s != hr_channels or head.shape[1] != 2 * hr_channels + 3:
        return None
    channels = [int(head.shape[0])]
    i = 0
    while f"unet.down.{i}.weight" in state_dict:
        channels.append(int(state_dict[f"unet.down.{i}.weight"].shape[0]))
        i += 1
    blocks = sum(1 for k in state_dict if k.startswith("unet.mid.blocks.") and k.endswith(".conv1.weight")) // 2
    options: dict = {"channels": channels, "blocks": max(blocks, 1)}
    prior_head = state_dict.get("prior.backbone.0.conv3x3.weight")
    if prior_head is None:
        options["prior"] = "bicubic"
    else:
        layers = {int(k.split(".")[2]) for k in state_dict if k.startswith("prior.backbone.")}
        options.update(prior="ecbsr", prior_modules=len(layers) - 2, prior_channels=int(prior_head.shape[0]))
    return "resshift-unet", s, options


RESSHIFT_SPEC = ArchSpec(
    build=build_resshift, family="resshift", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=3, out_channels=3, color_space="rgb", size_multiple=SIZE_MULTIPLE, receptive_field=None,
    safe_dtypes=("fp32", "bf16"), inputs=(STEP_INPUT,), noise_channels=NOISE_CHANNELS,
)

FAMILY = ArchFamily(name="resshift", specs={"resshift-unet": RESSHIFT_SPEC}, detect=detect_resshift)

__all__ = [
    "FAMILY",
    "NOISE_CHANNELS",
    "RESSHIFT_SPEC",
    "STEP_INPUT",
    "DenoiserUNet",
    "ResShiftSR",
    "build_resshift",
    "detect_resshift",
    "eta_schedule",
    "noise_keys",
    "pixel_noise",
    "posterior",
    "respaced_timesteps",
]
