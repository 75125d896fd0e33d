"""RRDBNet, the ESRGAN / Real-ESRGAN generator.

Paper: Xintao Wang, Ke Yu, Shixiang Wu, Jinjin Gu, Yihao Liu, Chao Dong, Yu Qiao, Chen Change Loy,
"ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks", ECCV Workshops (PIRM) 2018.
The x2 / x1 variants (pixel-unshuffle at the input) come from Xintao Wang, Liangbin Xie, Chao Dong, Ying Shan,
"Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data", ICCV Workshops 2021.

Original code: https://github.com/xinntao/ESRGAN (Apache-2.0) and its successor
https://github.com/XPixelGroup/BasicSR (``basicsr/archs/rrdbnet_arch.py``, Apache-2.0), which Real-ESRGAN
(https://github.com/xinntao/Real-ESRGAN, BSD-3-Clause) uses.

Keys as in BasicSR / Real-ESRGAN checkpoints (e.g. ``RealESRGAN_x4plus.pth``, under ``params_ema``):
``conv_first``, ``body.N.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
``conv_last``. Two older official layouts are converted by `convert_old_esrgan_state_dict` (and accepted
directly by `RRDBNet.load_state_dict`):

* the original ESRGAN release (``RRDB_ESRGAN_x4.pth`` as first published, "old arch"), a flattened
  ``nn.Sequential``: ``model.0`` = conv_first, ``model.1.sub.N.RDB{k}.conv{j}.0`` = body.N.rdb{k}.conv{j},
  ``model.1.sub.<num_block>`` = conv_body, then for each x2 stage [Upsample, Conv, LeakyReLU] so
  ``model.3`` = conv_up1, ``model.6`` = conv_up2, ``model.8`` = conv_hr, ``model.10`` = conv_last;
* the later xinntao/ESRGAN ``RRDBNet_arch.py`` layout (also BSRGAN / RealSR): ``RRDB_trunk.N.RDB{k}.conv{j}``,
  ``trunk_conv``, ``upconv1``, ``upconv2``, ``HRconv``.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale

__all__ = [
    "FAMILY",
    "RRDBNET_SPEC",
    "RRDB",
    "RRDBNet",
    "ResidualDenseBlock",
    "build_rrdbnet",
    "convert_old_esrgan_state_dict",
    "detect_rrdbnet",
    "rrdbnet_receptive_field",
]

# Scale -> pixel-unshuffle factor applied to the input (Real-ESRGAN's trick for x2 / x1: the trunk always
# works at 1/4 of the output resolution and always has two x2 upsampling stages).
_UNSHUFFLE = {4: 1, 2: 2, 1: 4}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs with a residual scaled by 0.2.

    Maps (B, num_feat, H, W) -> (B, num_feat, H, W); feature range unbounded.
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_feat, H, W) -> (B, num_feat, H, W)."""
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        # Residual scaling 0.2 keeps the very deep trunk stable without batch norm (paper, Sec. 3.1).
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-Residual Dense Block: three `ResidualDenseBlock` and an outer residual scaled by 0.2.

    Maps (B, num_feat, H, W) -> (B, num_feat, H, W).
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_feat, H, W) -> (B, num_feat, H, W)."""
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator.

    Maps (B, num_in_ch, H, W) in [0, 1] to (B, num_out_ch, H*scale, W*scale), nominally [0, 1] (not clamped).
    For scale 2 / 1 the input is pixel-unshuffled by 2 / 4 first (other sizes are reflect-padded at the
    bottom/right and the output cropped, as Real-ESRGAN's inference does, so any H, W works); the trunk then
    runs at 1/4 of the output resolution, followed by two (nearest x2 -> conv -> LeakyReLU) stages,
    ``conv_hr`` and ``conv_last``.

    Args:
        num_in_ch / num_out_ch: image channels.
        scale: 1, 2 or 4.
        num_feat: trunk channels (64).
        num_block: number of RRDBs (23).
        num_grow_ch: dense growth channels (32).
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, scale: int = 4, num_feat: int = 64,
                 num_block: int = 23, num_grow_ch: int = 32):
        super().__init__()
        if scale not in _UNSHUFFLE:
            raise ValueError(f"RRDBNet supports scales 1, 2, 4, got {scale}")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle ** 2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_in_ch, H, W) -> (B, num_out_ch, H*scale, W*scale)."""
        # torch's pixel_unshuffle uses the same channel order (c*r*r + i*r + j) as BasicSR's pixel_unshuffle.
        h, w = x.shape[-2:]
        u = self.unshuffle
        if u > 1:
            # Like Real-ESRGAN's inference (RealESRGANer.pre_process): reflect-pad bottom/right to a multiple of
            # the unshuffle factor, crop the output afterwards.
            ph, pw = (-h) % u, (-w) % u
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
            feat = F.pixel_unshuffle(x, u)
        else:
            feat = x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out[..., : h * self.scale, : w * self.scale]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Accept the two older official ESRGAN layouts: rename their keys in place before the normal
        # (strict) matching. `load_state_dict` hands us its own shallow copy, so the caller's dict is untouched.
        own = {k[len(prefix):]: k for k in state_dict if k.startswith(prefix)}
        if _is_old_layout(own):
            converted = convert_old_esrgan_state_dict({k: state_dict[full] for k, full in own.items()})
            for full in own.values():
                del state_dict[full]
            state_dict.update({prefix + k: v for k, v in converted.items()})
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


def build_rrdbnet(scale: int = 4, *, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                  num_block: int = 23, num_grow_ch: int = 32) -> RRDBNet:
    """ESRGAN / Real-ESRGAN RRDBNet with the paper's defaults (23 RRDBs, 64 ch, growth 32): 16,697,987 params
    at x4. Maps (B, 3, H, W) in [0, 1] to (B, 3, sH, sW) for any H, W (see `RRDBNet`)."""
    return RRDBNet(num_in_ch=num_in_ch, num_out_ch=num_out_ch, scale=scale, num_feat=num_feat,
                   num_block=num_block, num_grow_ch=num_grow_ch)


def rrdbnet_receptive_field(options: dict) -> int:
    """LR pixels of context on each side for an RRDBNet built with `options` (``scale``, ``num_block``).

    Every RDB chains five 3x3 convs (conv1 -> ... -> conv5 through the dense concatenations), so the trunk has
    c = 15 * num_block + 2 convs (conv_first, the RRDBs, conv_body) at 1/4 of the output resolution, each
    reaching one trunk pixel = u LR pixels (u = pixel-unshuffle factor 1 / 2 / 4 for x4 / x2 / x1). The HR
    convs (conv_up1 at x2, conv_up2 / conv_hr / conv_last at x4: 1.25 trunk pixels) and the position inside
    the unshuffle cell add the constant. Exact integers at the centre pixel, as measured by
    `srkit.archs.probe.measure_receptive_field` (checked in the tests): 348 LR pixels at x4 with 23 blocks.
    """
    c = 15 * int(options.get("num_block", 23)) + 2
    u = _UNSHUFFLE[int(options.get("scale", 4))]
    return {1: c + 1, 2: 2 * c + 3, 4: 4 * c + 6}[u]


_OLD_UP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_OLD_BODY = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_MID_BODY = re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)$")
_MID_NAMES = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr",
              "conv_first": "conv_first", "conv_last": "conv_last"}


def _is_old_layout(sd) -> bool:
    return "model.0.weight" in sd or "RRDB_trunk.0.RDB1.conv1.weight" in sd


def convert_old_esrgan_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of an old official ESRGAN checkpoint to the BasicSR names `RRDBNet` uses.

    Handles the original flattened-Sequential layout (``model.0.weight``, ``model.1.sub.N.RDB1.conv1.0.weight``,
    ``model.1.sub.<nb>.weight``, ``model.3``/``model.6`` (x2 stages), ``model.8``, ``model.10``) and the later
    xinntao/ESRGAN layout (``RRDB_trunk``, ``trunk_conv``, ``upconv1/2``, ``HRconv``). A dict already in the
    BasicSR layout is returned unchanged (as a new dict). Raises ValueError on an old-layout key it cannot
    place; only the two-stage (x4 trunk) layout maps onto `RRDBNet`.
    """
    if not _is_old_layout(sd):
        return dict(sd)
    out: dict[str, torch.Tensor] = {}
    if "model.0.weight" in sd:
        # In the flattened Sequential: 0 conv_first, 1 trunk, then [Upsample, Conv, LReLU] per x2 stage,
        # then conv_hr, LReLU, conv_last: convs of the stages sit at 3, 6, ... and hr/last after them.
        tops = sorted({int(m.group(1)) for k in sd if (m := _OLD_UP.match(k))})
        n_up = (max(tops) - 4) // 3 if tops else -1
        top_names = {0: "conv_first", max(tops) - 2: "conv_hr", max(tops): "conv_last"}
        top_names.update({3 * (i + 1): f"conv_up{i + 1}" for i in range(n_up)})
        trunk_idx = max((int(m.group(1)) for k in sd if (m := _OLD_TRUNK.match(k))), default=None)
        for k, v in sd.items():
            if m := _OLD_BODY.match(k):
                n, r, c, kind = m.groups()
                out[f"body.{n}.rdb{r}.conv{c}.{kind}"] = v
            elif (m := _OLD_TRUNK.match(k)) and int(m.group(1)) == trunk_idx:
                out[f"conv_body.{m.group(2)}"] = v
            elif (m := _OLD_UP.match(k)) and int(m.group(1)) in top_names:
                out[f"{top_names[int(m.group(1))]}.{m.group(2)}"] = v
            else:
                raise ValueError(f"unexpected key in old ESRGAN state dict: {k}")
        return out
    for k, v in sd.items():
        if m := _MID_BODY.match(k):
            n, r, c, kind = m.groups()
            out[f"body.{n}.rdb{r}.conv{c}.{kind}"] = v
        else:
            name, _, kind = k.partition(".")
            if name not in _MID_NAMES:
                raise ValueError(f"unexpected key in ESRGAN state dict: {k}")
            out[f"{_MID_NAMES[name]}.{kind}"] = v
    return out


_BODY_KEY = re.compile(r"^body\.(\d+)\.rdb[123]\.conv[1-5]\.(weight|bias)$")
_TOP = {"conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"}


def detect_rrdbnet(state_dict: dict[str, torch.Tensor]) -> tuple[str, int, dict] | None:
    """Recognise an RRDBNet checkpoint (BasicSR / Real-ESRGAN layout, or an old ESRGAN layout).

    Returns ("rrdbnet", scale, options) with num_feat / num_block / num_grow_ch / num_in_ch / num_out_ch read
    from shapes; the scale comes from conv_first's in-channels relative to conv_last's out-channels (3 -> x4,
    12 -> x2, 48 -> x1: the pixel-unshuffle factor). Old layouts are recognised too (`RRDBNet.load_state_dict`
    converts them itself; `convert_old_esrgan_state_dict` does it explicitly). Returns None for other
    layouts, including variants that do not have exactly two x2 stages (e.g. the original x8 / x2 ESRGAN,
    BSRGAN x2). Official weights take [0, 1] RGB input: no range option is needed.
    """
    sd = state_dict
    if _is_old_layout(sd):
        try:
            sd = convert_old_esrgan_state_dict(sd)
        except ValueError:
            return None
    blocks = set()
    for k in sd:
        if m := _BODY_KEY.match(k):
            blocks.add(int(m.group(1)))
        elif k.partition(".")[0] not in _TOP or k.partition(".")[2] not in ("weight", "bias"):
            return None
    if not blocks or any(f"{t}.weight" not in sd for t in _TOP):
        return None
    num_block = max(blocks) + 1
    if blocks != set(range(num_block)):
        return None
    num_feat, in_total = sd["conv_first.weight"].shape[:2]
    num_grow_ch = sd["body.0.rdb1.conv1.weight"].shape[0]
    num_out_ch = sd["conv_last.weight"].shape[0]
    unshuffle = pixel_shuffle_scale(int(in_total), int(num_out_ch))  # x4: none, x2: by 2, x1: by 4
    scale = None if unshuffle is None else {1: 4, 2: 2, 4: 1}.get(unshuffle)
    if scale is None:
        return None
    options = {"num_in_ch": num_out_ch, "num_out_ch": num_out_ch, "num_feat": int(num_feat),
               "num_block": num_block, "num_grow_ch": int(num_grow_ch)}
    return "rrdbnet", scale, options


RRDBNET_SPEC = ArchSpec(
    build=build_rrdbnet,
    family="rrdbnet",
    paper="Wang et al., ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks, ECCV Workshops 2018; "
          "x2/x1 pixel-unshuffle variant from Wang et al., Real-ESRGAN, ICCV Workshops 2021",
    repo="https://github.com/xinntao/Real-ESRGAN",
    license="BSD-3-Clause (Real-ESRGAN); BasicSR / ESRGAN code Apache-2.0",
    scales=(1, 2, 4),
    in_channels=3,
    out_channels=3,
    color_space="rgb",
    # x2 / x1 unshuffle by 2 / 4, but the module pads for that itself (as RealESRGANer does).
    size_multiple=1,
    receptive_field=rrdbnet_receptive_field,
    # Real-ESRGAN's own inference runs this net in fp16 by default; activations stay O(1) (0..1 input,
    # residuals scaled by 0.2).
    safe_dtypes=("fp32", "bf16", "fp16"),
)


FAMILY = ArchFamily(
    name="rrdbnet",
    specs={"rrdbnet": RRDBNET_SPEC},
    detect=detect_rrdbnet,
)
