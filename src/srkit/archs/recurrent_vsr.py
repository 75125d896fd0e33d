"""Recurrent multi-frame SR (BasicVSR-style) and its same-cost single-frame counterpart.

``recurrent-vsr`` super-resolves every frame of a clip with what the other frames saw: features are propagated
through the clip at LR resolution, backwards (last frame to first) and then forwards, each step aligning the
propagated features to the current frame by optical flow (a warp with `flow_warp`), so every output frame draws on
every input frame. The flow comes from a small SpyNet-like pyramid (`FlowNet`: three levels, each a few
Lucas-Kanade steps and a learned residual) that has no pretrained weights: its Lucas-Kanade steps align from the
first training step, and its learned part is trained end to end with the network (optionally helped by an
unsupervised alignment loss, `RecurrentVSR.auxiliary_loss`). The output is a pixel-shuffle x s reconstruction of
the forward features plus a bilinear upsampling of the current frame.

``recurrent-vsr-single`` is the same network without the other frames: the feature extraction, a stack of the same
residual blocks, the same reconstruction and skip, with as many blocks as bring it to the multi-frame network's
cost - the baseline that says what the other frames are worth.

Costs (MACs per output pixel at x4, counted by `srkit.archs.profile.macs_per_lr_pixel`, flow estimator, warps and
bilinear skip included; the multi-frame figure on a clip of `frames` = 16 frames, where 15/16 of the frames need a
flow each way):

=========================  ===========================================  =======================
arch                       default options                              MACs per output pixel
=========================  ===========================================  =======================
``recurrent-vsr``          channels 32, blocks 2 (x2 branches), recon   10,864 (10,754 on the
                           blocks 1, flow width 24, 3 flow levels       7-frame training clips,
                                                                        < 10,950 on any clip)
``recurrent-vsr-single``   channels 32, blocks 8, recon blocks 1        11,298
=========================  ===========================================  =======================

The single-frame network's 8 blocks are the nearest that is not cheaper than the multi-frame one (4 % more). Run on
a video by the engine (`srkit.infer.clips`: windows of 16 output frames with 8 frames of context on each side), each
kept frame costs 32/16 of the model's figure, about 21,700 MACs per output pixel.

Shapes: ``recurrent-vsr`` takes a clip (B, T, C, h, w) in [0, 1] and returns (B, T, C, s h, s w); a 4-D input
(B, C, h, w) is B one-frame clips (then no flow is computed: a one-frame clip has no neighbour). Any h, w >= 1 (the
flow pyramid pads internally). ``recurrent-vsr-single`` maps (B, C, h, w) -> (B, C, s h, s w).

References: K. C. K. Chan, X. Wang, K. Yu, C. Dong, C. C. Loy, "BasicVSR: The Search for Essential Components in
Video Super-Resolution and Beyond", CVPR 2021 (bidirectional propagation with flow-based feature alignment);
A. Ranjan, M. J. Black, "Optical Flow Estimation using a Spatial Pyramid Network", CVPR 2017 (SpyNet); J.
Caballero et al., "Real-Time Video Super-Resolution with Spatio-Temporal Networks and Motion Compensation", CVPR
2017 (VESPCN: a motion-compensation network trained end to end with a warping loss); B. D. Lucas, T. Kanade, "An
Iterative Image Registration Technique with an Application to Stereo Vision", IJCAI 1981.
Repository: https://github.com/ckkelvinchan/BasicVSR-IconVSR (Apache-2.0); the network here is srkit's own, much
smaller, and its layout (key names) is srkit's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale
from srkit.errors import ShapeError

__all__ = [
    "FAMILY",
    "FlowNet",
    "RecurrentVSR",
    "SingleFrameSR",
    "build_recurrent_vsr",
    "build_recurrent_vsr_single",
    "detect_recurrent_vsr",
    "flow_warp",
]

PAPER = ("Chan, Wang, Yu, Dong, Loy, 'BasicVSR: The Search for Essential Components in Video Super-Resolution and "
         "Beyond', CVPR 2021 (srkit's tiny variant; flow by a SpyNet-like pyramid trained end to end)")
REPO = "https://github.com/ckkelvinchan/BasicVSR-IconVSR"
LICENSE = "Apache-2.0"

#: Output frames per window when the engine runs a video through ``recurrent-vsr`` (`ModelInfo.frames`).
WINDOW = 16
#: Frames of context the engine adds on each side of a window and discards (`ModelInfo.frame_context`).
CONTEXT = 8


# --------------------------------------------------------------------------------------------- pure functions


def flow_warp(x: Tensor, flow: Tensor) -> Tensor:
    """Sample `x` at each pixel moved by `flow`: ``out[p] = x[p + flow[p]]`` (bilinear, borders replicated).

    Args:
        x: (B, C, H, W) float.
        flow: (B, 2, H, W) displacements in pixels, (dx, dy).

    Returns:
        (B, C, H, W) in x's dtype. A flow that is zero everywhere gives back `x` itself (no resampling), so
        identical frames stay exactly identical.
    """
    if x.ndim != 4 or flow.shape != (x.shape[0], 2, *x.shape[-2:]):
        raise ShapeError(f"flow_warp expects (B, C, H, W) and (B, 2, H, W), got {tuple(x.shape)} and "
                         f"{tuple(flow.shape)}")
    if not bool(flow.detach().any()):
        return x
    b, _, h, w = x.shape
    ys = torch.arange(h, device=x.device, dtype=torch.float32)
    xs = torch.arange(w, device=x.device, dtype=torch.float32)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    f = flow.float()
    # align_corners=True: -1 and 1 are the centres of the first and last pixels
    nx = (gx + f[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    ny = (gy + f[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([nx, ny], dim=-1)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(x.dtype)


def _warp_macs(channels: int) -> int:
    """MACs per pixel of a bilinear warp of `channels` channels (4 taps each)."""
    return 4 * channels


# --------------------------------------------------------------------------------------------- modules


def _conv(cin: int, cout: int, k: int = 3, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)


class ResBlock(nn.Module):
    """conv 3x3 - LeakyReLU(0.1) - conv 3x3, plus the input (no normalisation, as BasicVSR's)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _conv(channels, channels)
        self.conv2 = _conv(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.1))


class _Trunk(nn.Module):
    """A fusion conv (``cin -> channels``), LeakyReLU, then `blocks` residual blocks."""

    def __init__(self, cin: int, channels: int, blocks: int):
        super().__init__()
        self.fuse = _conv(cin, channels)
        self.blocks = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(F.leaky_relu(self.fuse(x), 0.1))


def _box(x: Tensor, k: int) -> Tensor:
    """Mean over a k x k window (k odd), borders replicated; separable (two 1-D means)."""
    r = k // 2
    x = F.avg_pool2d(F.pad(x, (r, r, 0, 0), mode="replicate"), (1, k), stride=1)
    return F.avg_pool2d(F.pad(x, (0, 0, r, r), mode="replicate"), (k, 1), stride=1)


def _gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Central differences (d/dx, d/dy) of (B, C, H, W), borders replicated."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) * 0.5, (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) * 0.5


@torch.no_grad()
def lucas_kanade_step(ref: Tensor, nbr: Tensor, flow: Tensor, window: int = 11, damping: float = 1e-2,
                      max_step: float = 1.0) -> Tensor:
    """One Gauss-Newton (Lucas-Kanade) update of `flow` so that ``flow_warp(nbr, flow)`` matches `ref`.

    Per pixel, the 2x2 normal equations of the linearised colour difference, summed over the channels and averaged
    over a `window` x `window` neighbourhood, damped by `damping` on the diagonal (Levenberg-Marquardt: flat
    regions move little), are solved; the step is clamped to `max_step` px per axis. Not differentiated (the
    caller adds it to a flow that is).

    Args:
        ref, nbr: (B, C, H, W) float, same shape.
        flow: (B, 2, H, W) current flow in px.

    Returns:
        (B, 2, H, W) float32 flow increment.
    """
    ref, nbr, flow = ref.float(), nbr.float(), flow.float()
    warped = flow_warp(nbr, flow)
    gx, gy = _gradients(0.5 * (warped + ref))
    diff = warped - ref
    a11 = _box((gx * gx).sum(1, keepdim=True), window) + damping
    a12 = _box((gx * gy).sum(1, keepdim=True), window)
    a22 = _box((gy * gy).sum(1, keepdim=True), window) + damping
    b1 = _box((gx * diff).sum(1, keepdim=True), window)
    b2 = _box((gy * diff).sum(1, keepdim=True), window)
    det = a11 * a22 - a12 * a12
    du = (a12 * b2 - a22 * b1) / det
    dv = (a12 * b1 - a11 * b2) / det
    return torch.cat([du, dv], dim=1).clamp_(-max_step, max_step)


class FlowNet(nn.Module):
    """A small coarse-to-fine optical flow estimator: (ref, nbr) (B, C, H, W) in [0, 1] -> (B, 2, H, W) flow in
    pixels such that ``flow_warp(nbr, flow)`` matches ``ref``.

    SpyNet's pyramid (`levels` levels, each half the size of the next, by 2x2 averaging; the flow so far
    upsampled x2 in size and value), where each level first takes Lucas-Kanade steps (`lucas_kanade_step`,
    ``iterations`` of them: 1 at the coarsest level, 2 at the others) and then a learned residual, a learned
    Lucas-Kanade step: three bias-free 3x3 convs (``3 C + 2 -> width -> width -> 2``, LeakyReLU) on [d, d gx,
    d gy, flow], d = warped nbr - ref and (gx, gy) its mean image's gradients. The Lucas-Kanade steps have no
    weights, so the estimator aligns from the first training step (0.14 LR px end-point error on the training
    clips' 32 x 32 LR frames, against 1.0 px for no flow); the learned residuals start at zero and are trained end
    to end to do better. Every input of a residual vanishes when the frames match, so identical frames give
    exactly zero flow, trained or not (a static clip is never "aligned" by a hallucinated motion). Its MACs are
    counted: the convs by their hooks, the warps and Lucas-Kanade arithmetic in `extra_macs`.
    """

    def __init__(self, in_channels: int = 3, width: int = 24, levels: int = 3, window: int = 11,
                 damping: float = 1e-2):
        super().__init__()
        self.levels_n, self.window, self.damping = int(levels), int(window), float(damping)
        self.in_channels = int(in_channels)
        cin = 3 * in_channels + 2
        residuals: list[nn.Module] = []
        for _ in range(self.levels_n):
            last = _conv(width, 2, bias=False)
            nn.init.zeros_(last.weight)  # the learned residual starts at zero: Lucas-Kanade alone
            residuals.append(nn.Sequential(_conv(cin, width, bias=False), nn.LeakyReLU(0.1),
                                           _conv(width, width, bias=False), nn.LeakyReLU(0.1), last))
        self.levels = nn.ModuleList(residuals)

    def iterations(self, k: int) -> int:
        """Lucas-Kanade steps at level k (0 = coarsest)."""
        return 1 if k == 0 and self.levels_n > 1 else 2

    def forward(self, ref: Tensor, nbr: Tensor) -> Tensor:
        h, w = ref.shape[-2:]
        m = 2 ** (self.levels_n - 1)
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            ref = F.pad(ref, (0, pw, 0, ph), mode="replicate")
            nbr = F.pad(nbr, (0, pw, 0, ph), mode="replicate")
        refs, nbrs = [ref], [nbr]
        for _ in range(self.levels_n - 1):
            refs.append(F.avg_pool2d(refs[-1], 2))
            nbrs.append(F.avg_pool2d(nbrs[-1], 2))
        flow = torch.zeros((ref.shape[0], 2, *refs[-1].shape[-2:]), device=ref.device)
        for k, level in enumerate(self.levels):
            r, n = refs[-1 - k], nbrs[-1 - k]
            if k:
                flow = F.interpolate(flow, size=r.shape[-2:], mode="bilinear", align_corners=False) * 2.0
            for _ in range(self.iterations(k)):
                flow = flow + lucas_kanade_step(r, n, flow, self.window, self.damping)
            warped = flow_warp(n, flow)
            d = warped - r
            gx, gy = _gradients(0.5 * (warped + r))
            flow = flow + level(torch.cat([d, d * gx, d * gy, flow.to(d.dtype)], dim=1)).float()
        return flow[..., :h, :w]

    def extra_macs(self, height: int, width: int) -> int:
        """MACs the conv hooks do not see, of one estimate on an (height, width) pair: per level the warps (one per
        Lucas-Kanade step and one for the learned residual) and each step's arithmetic (gradients, the five
        products, their separable window means, the 2x2 solve)."""
        c = self.in_channels
        step = _warp_macs(c) + 2 * c + 5 * c + 5 * 2 * self.window + 12
        residual_inputs = _warp_macs(c) + 2 * c + 2 * c  # the warp, gradients, d gx and d gy
        total, hh, ww = 0, height, width
        for k in range(self.levels_n - 1, -1, -1):
            total += hh * ww * (self.iterations(k) * step + residual_inputs)
            hh, ww = (hh + 1) // 2, (ww + 1) // 2
        return total


class _Reconstruct(nn.Module):
    """Features (B, channels, h, w) + the LR frame (B, C, h, w) -> (B, C, s h, s w): residual blocks, a 3x3 conv
    to ``C s^2`` channels and pixel shuffle, plus a bilinear upsampling of the frame."""

    def __init__(self, channels: int, blocks: int, out_channels: int, scale: int):
        super().__init__()
        self.scale = scale
        self.blocks = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        self.up = _conv(channels, out_channels * scale * scale)

    def forward(self, feat: Tensor, frame: Tensor) -> Tensor:
        y = F.pixel_shuffle(self.up(self.blocks(feat)), self.scale)
        base = F.interpolate(frame, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return y + base.to(y.dtype)


class RecurrentVSR(nn.Module):
    """Bidirectional recurrent multi-frame SR: (B, T, C, h, w) in [0, 1] -> (B, T, C, s h, s w); a 4-D input
    (B, C, h, w) is B one-frame clips.

    Per frame t: ``f_t = LReLU(conv(x_t))``; backward ``b_t = B([f_t, warp(b_{t+1}, flow(x_t -> x_{t+1}))])``;
    forward ``g_t = G([f_t, b_t, warp(g_{t-1}, flow(x_t -> x_{t-1}))])``; output ``R(g_t) + bilinear(x_t)``. B and G
    are a fusion conv and `blocks` residual blocks, R `recon_blocks` residual blocks and a pixel-shuffle conv; the
    propagated state starts at zero.

    Args:
        scale: 2, 3 or 4.
        channels: feature width.
        blocks: residual blocks in each propagation branch.
        recon_blocks: residual blocks of the reconstruction.
        flow_width, flow_levels: the flow estimator's width and pyramid levels (`FlowNet`).
        colors: image channels.
        align_loss: weight of an unsupervised alignment loss computed in training mode (`auxiliary_loss`); 0 (the
            default): none - the Lucas-Kanade steps align from the start, and on noisy aliased LR frames the
            photometric loss did not lower the flow error of the learned residual (0.137 -> 0.152 px in 60 steps).
    """

    def __init__(self, scale: int = 4, channels: int = 32, blocks: int = 2, recon_blocks: int = 1,
                 flow_width: int = 24, flow_levels: int = 3, colors: int = 3, align_loss: float = 0.0):
        super().__init__()
        self.scale, self.channels, self.colors = int(scale), int(channels), int(colors)
        self.align_loss = float(align_loss)
        self.feat = _conv(colors, channels)
        self.flow = FlowNet(colors, flow_width, flow_levels)
        self.backward_trunk = _Trunk(2 * channels, channels, blocks)
        self.forward_trunk = _Trunk(3 * channels, channels, blocks)
        self.recon = _Reconstruct(channels, recon_blocks, colors, self.scale)
        self._aux: Tensor | None = None

    # -- flows -------------------------------------------------------------------------------------------------

    def _flows(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """(backward, forward) flows of a clip (B, T, C, h, w): flow(x_t -> x_{t+1}) and flow(x_t -> x_{t-1}) for
        t = 0..T-2 and 1..T-1, each (B, T-1, 2, h, w); both estimated in one batched call."""
        b, t, c, h, w = x.shape
        if t < 2:
            return None, None
        ref = torch.cat([x[:, :-1], x[:, 1:]], dim=1).reshape(-1, c, h, w)
        nbr = torch.cat([x[:, 1:], x[:, :-1]], dim=1).reshape(-1, c, h, w)
        flows = self.flow(ref, nbr).reshape(b, 2 * (t - 1), 2, h, w)
        if self.training and self.align_loss > 0:
            warped = flow_warp(nbr, flows.reshape(-1, 2, h, w))
            self._aux = self.align_loss * (warped.float() - ref.float()).abs().mean()
        return flows[:, : t - 1], flows[:, t - 1 :]

    def auxiliary_loss(self) -> Tensor | None:
        """The weighted alignment loss of the last training forward (mean |warp(nbr, flow) - ref| over every
        neighbouring pair, times `align_loss`), then cleared; None in eval mode or for one-frame clips. The
        trainer adds it to the loss so that the flow estimator learns to align from the first steps."""
        aux, self._aux = self._aux, None
        return aux

    # -- forward -----------------------------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        single = x.ndim == 4
        if single:
            x = x[:, None]
        if x.ndim != 5 or x.shape[2] != self.colors:
            raise ShapeError(f"recurrent-vsr expects (B, T, {self.colors}, h, w) clips or (B, {self.colors}, h, w) "
                             f"images, got {tuple(x.shape)}")
        b, t, c, h, w = x.shape
        self._aux = None
        back_flows, fwd_flows = self._flows(x)
        feats = F.leaky_relu(self.feat(x.reshape(b * t, c, h, w)), 0.1).reshape(b, t, self.channels, h, w)
        backward: list[Tensor] = [feats[:, 0]] * t
        state = feats.new_zeros((b, self.channels, h, w))
        for i in range(t - 1, -1, -1):
            if i < t - 1:
                assert back_flows is not None
                state = flow_warp(state, back_flows[:, i])
            state = self.backward_trunk(torch.cat([feats[:, i], state], dim=1))
            backward[i] = state
        forward: list[Tensor] = []
        state = feats.new_zeros((b, self.channels, h, w))
        for i in range(t):
            if i > 0:
                assert fwd_flows is not None
                state = flow_warp(state, fwd_flows[:, i - 1])
            state = self.forward_trunk(torch.cat([feats[:, i], backward[i], state], dim=1))
            forward.append(state)
        # the reconstruction of all frames in one batched call (frame-major, as x is laid out)
        y = self.recon(torch.stack(forward, dim=1).flatten(0, 1), x.reshape(b * t, c, h, w))
        y = y.reshape(b, t, *y.shape[1:])
        return y[:, 0] if single else y

    def extra_macs(self, input_shape: tuple[int, ...]) -> int:
        """MACs the conv hooks do not see, for `srkit.archs.probe.count_macs`: the warps of the flow estimator and
        of the propagated features, and the bilinear skip (4 taps per output value)."""
        if len(input_shape) == 4:
            b, c, h, w = input_shape
            t = 1
        else:
            b, t, c, h, w = input_shape
        pairs = 2 * max(0, t - 1)
        flow = pairs * self.flow.extra_macs(h, w)
        propagate = pairs * h * w * _warp_macs(self.channels)
        skip = t * h * w * self.scale * self.scale * 4 * c
        return b * (flow + propagate + skip)


class SingleFrameSR(nn.Module):
    """The same network without other frames: (B, C, h, w) in [0, 1] -> (B, C, s h, s w).

    ``LReLU(conv(x))``, `blocks` residual blocks, then `RecurrentVSR`'s reconstruction (`recon_blocks` blocks,
    pixel-shuffle conv, bilinear skip).
    """

    def __init__(self, scale: int = 4, channels: int = 32, blocks: int = 8, recon_blocks: int = 1, colors: int = 3):
        super().__init__()
        self.scale, self.colors = int(scale), int(colors)
        self.feat = _conv(colors, channels)
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        self.recon = _Reconstruct(channels, recon_blocks, colors, self.scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.recon(self.body(F.leaky_relu(self.feat(x), 0.1)), x)

    def extra_macs(self, input_shape: tuple[int, ...]) -> int:
        """The bilinear skip (4 taps per output value), which no conv hook sees."""
        b, c, h, w = input_shape
        return b * h * w * self.scale * self.scale * 4 * c


# --------------------------------------------------------------------------------------------- build, detect


def build_recurrent_vsr(scale: int = 4, *, channels: int = 32, blocks: int = 2, recon_blocks: int = 1,
                        flow_width: int = 24, flow_levels: int = 3, colors: int = 3,
                        align_loss: float = 0.0) -> RecurrentVSR:
    """`RecurrentVSR` (defaults: 32 channels, 2 blocks per branch, 1 reconstruction block, flow width 24)."""
    return RecurrentVSR(scale, channels, blocks, recon_blocks, flow_width, flow_levels, colors, align_loss)


def build_recurrent_vsr_single(scale: int = 4, *, channels: int = 32, blocks: int = 8, recon_blocks: int = 1,
                               colors: int = 3) -> SingleFrameSR:
    """`SingleFrameSR` (defaults: 32 channels, 8 blocks: the cost of the default `RecurrentVSR`, 5 % more)."""
    return SingleFrameSR(scale, channels, blocks, recon_blocks, colors)


def _count(state_dict: dict[str, Tensor], prefix: str) -> int:
    """Residual blocks under `prefix` (``prefix.N.conv1.weight`` keys)."""
    names = {k[len(prefix):].split(".")[0] for k in state_dict if k.startswith(prefix) and k.endswith(".conv1.weight")}
    return len(names)


def detect_recurrent_vsr(state_dict: dict[str, Tensor]) -> tuple[str, int | None, dict] | None:
    """Recognise srkit's ``recurrent-vsr`` / ``recurrent-vsr-single`` layouts and read their options (scale from
    the pixel-shuffle conv)."""
    feat, up = state_dict.get("feat.weight"), state_dict.get("recon.up.weight")
    if feat is None or up is None or feat.dim() != 4 or up.dim() != 4:
        return None
    channels, colors = int(feat.shape[0]), int(feat.shape[1])
    scale = pixel_shuffle_scale(int(up.shape[0]), colors)
    if scale is None:
        return None
    options = {"channels": channels, "recon_blocks": _count(state_dict, "recon.blocks."), "colors": colors}
    if "flow.levels.0.0.weight" in state_dict and "forward_trunk.fuse.weight" in state_dict:
        levels = len({k.split(".")[2] for k in state_dict if k.startswith("flow.levels.")})
        options.update(blocks=_count(state_dict, "forward_trunk.blocks."), flow_levels=levels,
                       flow_width=int(state_dict["flow.levels.0.0.weight"].shape[0]))
        return "recurrent-vsr", scale, options
    if not any(k.startswith(("flow.", "forward_trunk.", "backward_trunk.")) for k in state_dict):
        options["blocks"] = _count(state_dict, "body.")
        return "recurrent-vsr-single", scale, options
    return None


def _single_rf(options: dict) -> int:
    # feat conv + 2 per block + reconstruction blocks + up conv, 1 px each; the bilinear skip reaches 1 px
    return 1 + 2 * int(options.get("blocks", 8)) + 2 * int(options.get("recon_blocks", 1)) + 1


RECURRENT_VSR_SPEC = ArchSpec(
    build=build_recurrent_vsr, family="recurrent_vsr", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=3, out_channels=3, color_space="rgb", size_multiple=1, receptive_field=None,
    safe_dtypes=("fp32", "bf16"), frames=WINDOW, frame_context=CONTEXT,
)
SINGLE_SPEC = ArchSpec(
    build=build_recurrent_vsr_single, family="recurrent_vsr", paper=PAPER, repo=REPO, license=LICENSE,
    scales=(2, 3, 4), in_channels=3, out_channels=3, color_space="rgb", size_multiple=1,
    receptive_field=_single_rf, safe_dtypes=("fp32", "bf16"),
)

FAMILY = ArchFamily(name="recurrent_vsr",
                    specs={"recurrent-vsr": RECURRENT_VSR_SPEC, "recurrent-vsr-single": SINGLE_SPEC},
                    detect=detect_recurrent_vsr)
