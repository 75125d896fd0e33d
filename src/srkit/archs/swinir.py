"""SwinIR: image super-resolution with residual groups of shifted-window transformer blocks.

Paper: Jingyun Liang, Jiezhang Cao, Guolei Sun, Kai Zhang, Luc Van Gool, Radu Timofte, "SwinIR: Image
Restoration Using Swin Transformer", ICCV Workshops (AIM) 2021.
Original code: https://github.com/JingyunLiang/SwinIR (``models/network_swinir.py``, built on Swin Transformer
by Ze Liu et al.), Apache-2.0.

Keys as in the official SwinIR checkpoints (e.g. ``001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth`` under
``params``): ``conv_first``, ``patch_embed.norm``, ``layers.N.residual_group.blocks.M.{norm1, attn.qkv,
attn.proj, attn.relative_position_bias_table, attn.relative_position_index, norm2, mlp.fc1, mlp.fc2}``,
``layers.N.conv`` (``.0/.2/.4`` for "3conv"), ``norm``, ``conv_after_body``, then per upsampler
``conv_before_upsample.0`` + ``upsample.{0,2,..}`` + ``conv_last`` ("pixelshuffle"), ``upsample.0``
("pixelshuffledirect"), or ``conv_before_upsample.0`` + ``conv_up1/2`` + ``conv_hr`` + ``conv_last``
("nearest+conv", real-world x4).

Buffers and strict loading: the official code registers ``relative_position_index`` (persistent, identical in
every checkpoint: kept here as the same persistent buffer) and, in every shifted block, ``attn_mask``: the
shifted-window mask for the *training* patch size (e.g. 64x64 -> (64, 64, 64)). Here the mask depends on the
input actually given, so it is computed once per forward pass for the (padded) input size and is not a buffer;
`SwinTransformerBlock` drops an incoming ``attn_mask`` key while loading. Official checkpoints therefore load
with ``load_state_dict(strict=True)`` unchanged, and this module's own state dict has no ``attn_mask`` keys.
The input mean is a non-persistent buffer (the official code keeps it as a plain attribute: not in the
checkpoint either).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torch.nn import functional as F

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale

__all__ = [
    "FAMILY",
    "RSTB",
    "SWINIR_LIGHT_SPEC",
    "SWINIR_SPEC",
    "SwinIR",
    "SwinTransformerBlock",
    "WindowAttention",
    "build_swinir",
    "build_swinir_light",
    "detect_swinir",
    "shifted_window_mask",
]

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, nW, ws*ws, C) non-overlapping windows in raster order (H, W multiples of ws)."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // ws) * (w // ws), ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """(B, nW, ws*ws, C) -> (B, H, W, C), the inverse of `window_partition`."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def relative_position_index(ws: int) -> torch.Tensor:
    """(ws*ws, ws*ws) int64 index into the (2ws-1)^2 relative-position bias table, as in Swin Transformer:
    (dy + ws - 1) * (2ws - 1) + (dx + ws - 1) for the offset between query and key token."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)  # 2, N, N
    return rel[0] * (2 * ws - 1) + rel[1]


def shifted_window_mask(h: int, w: int, ws: int, shift: int, device=None) -> torch.Tensor:
    """Attention mask (nW, ws*ws, ws*ws) for shifted windows on an (h, w) token grid: 0 between tokens that
    were neighbours before the cyclic shift, -100 (as in the official code) between tokens the roll brought
    together from opposite borders."""
    img = torch.zeros(1, h, w, 1, device=device)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    regions = window_partition(img, ws)[0, :, :, 0]  # nW, N
    diff = regions[:, None, :] - regions[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


def _drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    # Stochastic depth on whole samples (timm's DropPath); identity at inference.
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ws x ws windows with a learned relative-position bias.

    Maps (B, nW, N, C) tokens (N = ws*ws) to the same shape; `mask` (nW, N, N) of 0 / -100 or None.
    """

    relative_position_index: torch.Tensor  # buffer

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # Persistent, as in the official code, so checkpoints carry the same key.
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, nW, N, C) -> (B, nW, N, C)."""
        b, nw, n, c = x.shape
        qkv = self.qkv(x).view(b, nw, n, 3, self.num_heads, c // self.num_heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv.unbind(0)  # each B, nW, nH, N, hd
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1)  # nH, N, N
        if mask is not None:
            bias = bias.unsqueeze(0) + mask.unsqueeze(1).to(bias.dtype)  # nW, nH, N, N
        # softmax(q k^T * hd^-0.5 + bias + mask) v, as the official code (which scales q before the product).
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return self.proj(out.transpose(2, 3).reshape(b, nw, n, c))


class Mlp(nn.Module):
    """Linear -> GELU -> Linear on (..., C) tokens."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C)."""
        return self.fc2(self.act(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    """Pre-norm (shifted-)window attention + MLP, both residual.

    Maps (B, H*W, C) tokens of an (H, W) grid (multiples of window_size) to the same shape. Blocks with
    shift_size > 0 roll the grid by -shift before partitioning and use the shifted-window mask.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 8, shift_size: int = 0,
                 mlp_ratio: float = 2.0, qkv_bias: bool = True, drop_path: float = 0.0):
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C); `mask` is the shifted-window mask for (H, W), used if shifted."""
        h, w = x_size
        b, n, c = x.shape
        ws, s = self.window_size, self.shift_size
        y = self.norm1(x).view(b, h, w, c)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = self.attn(window_partition(y, ws), mask if s else None)
        y = window_reverse(y, ws, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + _drop_path(y.reshape(b, n, c), self.drop_path, self.training)
        return x + _drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Official checkpoints store the training-size shifted-window mask as a buffer; it is recomputed here
        # for every input size, so drop it (load_state_dict works on its own copy of the dict).
        state_dict.pop(prefix + "attn_mask", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class BasicLayer(nn.Module):
    """`depth` Swin blocks alternating unshifted / shifted (by window_size // 2) windows; (B, L, C) -> same."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
                 qkv_bias: bool, drop_path: list[float]):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio,
                                 qkv_bias, drop_path[i])
            for i in range(depth)])

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C)."""
        for blk in self.blocks:
            x = blk(x, x_size, mask)
        return x


def _resi_conv(dim: int, resi_connection: str) -> nn.Module:
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if resi_connection == "3conv":
        # Bottleneck used by SwinIR-L (real-world SR) to save parameters.
        return nn.Sequential(nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
                             nn.Conv2d(dim // 4, dim // 4, 1, 1, 0), nn.LeakyReLU(0.2, inplace=True),
                             nn.Conv2d(dim // 4, dim, 3, 1, 1))
    raise ValueError(f"resi_connection must be '1conv' or '3conv', got {resi_connection!r}")


def _to_image(x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
    # (B, H*W, C) tokens -> (B, C, H, W) (the official PatchUnEmbed with patch size 1).
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *x_size)


class RSTB(nn.Module):
    """Residual Swin Transformer Block: a `BasicLayer`, a conv in image space, and a residual.

    Maps (B, H*W, C) tokens to the same shape.
    """

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
                 qkv_bias: bool, drop_path: list[float], resi_connection: str):
        super().__init__()
        self.residual_group = BasicLayer(dim, depth, num_heads, window_size, mlp_ratio, qkv_bias, drop_path)
        self.conv = _resi_conv(dim, resi_connection)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C)."""
        y = self.conv(_to_image(self.residual_group(x, x_size, mask), x_size))
        return y.flatten(2).transpose(1, 2) + x


class PatchEmbed(nn.Module):
    """Flatten (B, C, H, W) to (B, H*W, C) tokens and LayerNorm them (patch size 1; key ``patch_embed.norm``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, H*W, C)."""
        return self.norm(x.flatten(2).transpose(1, 2))


class SwinIR(nn.Module):
    """SwinIR for super-resolution.

    Maps (B, in_chans, H, W) in [0, 1] to (B, in_chans, H*upscale, W*upscale), nominally [0, 1] (not clamped).
    H and W are reflect-padded at the bottom/right to a multiple of window_size internally and the output is
    cropped, so any size works (callers may also pad themselves: the spec's size_multiple is window_size).
    The input is shifted by the DIV2K RGB mean (zeros for in_chans != 3) and multiplied by img_range.

    Args:
        upscale: 2, 3, 4 or 8 ("pixelshuffle"); any ("pixelshuffledirect"); 4 ("nearest+conv").
        in_chans: image channels.
        embed_dim: token channels (180 SwinIR, 60 SwinIR-light, 240 SwinIR-L).
        depths / num_heads: Swin blocks and heads of each RSTB.
        window_size: attention window (8 for SR).
        mlp_ratio: MLP hidden / embed_dim (2).
        qkv_bias: bias in the qkv projection.
        drop_path_rate: stochastic depth, linear from 0 to this over all blocks (official default 0.1;
            training only).
        img_range: 1.0 for all official SR weights.
        upsampler: "pixelshuffle" (classical), "pixelshuffledirect" (lightweight), "nearest+conv" (real-world).
        resi_connection: "1conv" or "3conv".
        num_feat: channels of the reconstruction head (64; unused by "pixelshuffledirect").
    """

    mean: torch.Tensor  # buffer (not saved)

    def __init__(self, upscale: int = 4, in_chans: int = 3, embed_dim: int = 180,
                 depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6), num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
                 window_size: int = 8, mlp_ratio: float = 2.0, qkv_bias: bool = True, drop_path_rate: float = 0.1,
                 img_range: float = 1.0, upsampler: str = "pixelshuffle", resi_connection: str = "1conv",
                 num_feat: int = 64):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError("depths and num_heads must have the same length")
        self.upscale = upscale
        self.upsampler = upsampler
        self.window_size = window_size
        self.img_range = img_range
        mean = DIV2K_MEAN if in_chans == 3 else (0.0,) * in_chans
        self.register_buffer("mean", torch.tensor(mean).view(1, in_chans, 1, 1), persistent=False)

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim)
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            start = sum(depths[:i])
            self.layers.append(RSTB(embed_dim, depth, heads, window_size, mlp_ratio, qkv_bias,
                                    dpr[start:start + depth], resi_connection))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = _resi_conv(embed_dim, resi_connection)

        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1),
                                                      nn.LeakyReLU(inplace=True))  # slope 0.01, as official
            self.upsample = _pixelshuffle_stages(upscale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            # One conv + one pixel shuffle straight from the features (saves parameters).
            self.upsample = nn.Sequential(nn.Conv2d(embed_dim, upscale ** 2 * in_chans, 3, 1, 1),
                                          nn.PixelShuffle(upscale))
        elif upsampler == "nearest+conv":
            if upscale != 4:
                raise ValueError("the nearest+conv upsampler supports x4 only")
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1),
                                                      nn.LeakyReLU(inplace=True))
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        else:
            raise ValueError(f"unknown upsampler {upsampler!r}")
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim, H, W) -> (B, embed_dim, H, W): the RSTBs and the final LayerNorm (no residual)."""
        x_size = (x.shape[2], x.shape[3])
        # One mask for all shifted blocks (same window and shift everywhere), built for this input size.
        mask = shifted_window_mask(*x_size, self.window_size, self.window_size // 2, x.device)
        t = self.patch_embed(x)
        for layer in self.layers:
            t = layer(t, x_size, mask)
        return _to_image(self.norm(t), x_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H*upscale, W*upscale)."""
        h, w = x.shape[-2:]
        ws = self.window_size
        ph, pw = (-h) % ws, (-w) % ws
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        if self.upsampler == "pixelshuffle":
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        elif self.upsampler == "pixelshuffledirect":
            x = self.upsample(x)
        else:
            x = self.conv_before_upsample(x)
            x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
            x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
            x = self.conv_last(self.lrelu(self.conv_hr(x)))
        x = x / self.img_range + mean
        return x[..., : h * self.upscale, : w * self.upscale]


def _pixelshuffle_stages(scale: int, num_feat: int) -> nn.Sequential:
    # Official `Upsample`: log2(scale) x (conv -> 4C, shuffle 2) for powers of two, one (conv -> 9C, shuffle 3) for 3.
    if scale & (scale - 1) == 0 and scale > 1:
        layers: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        return nn.Sequential(*layers)
    if scale == 3:
        return nn.Sequential(nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3))
    raise ValueError(f"the pixelshuffle upsampler supports scales 2^n and 3, got {scale}")


def _init_weights(m: nn.Module) -> None:
    # Official init: truncated normal (std 0.02) for Linear weights, zero biases, LayerNorm (1, 0); convs keep
    # PyTorch's default.
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def build_swinir(scale: int = 4, *, in_chans: int = 3, embed_dim: int = 180,
                 depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6), num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
                 window_size: int = 8, mlp_ratio: float = 2.0, qkv_bias: bool = True, drop_path_rate: float = 0.1,
                 img_range: float = 1.0, upsampler: str = "pixelshuffle", resi_connection: str = "1conv",
                 num_feat: int = 64) -> SwinIR:
    """Classical SwinIR (SwinIR-M: 6 RSTBs of 6 blocks, 180 channels, 6 heads, window 8): 11,900,199 params at
    x4 (11,752,487 x2, 11,937,127 x3, 12,047,911 x8), of which 48,600 are relative-position bias tables.
    Maps (B, 3, H, W) in [0, 1] to (B, 3, sH, sW). Options as `SwinIR`."""
    return SwinIR(scale, in_chans, embed_dim, tuple(depths), tuple(num_heads), window_size, mlp_ratio, qkv_bias,
                  drop_path_rate, img_range, upsampler, resi_connection, num_feat)


def build_swinir_light(scale: int = 4, *, in_chans: int = 3, embed_dim: int = 60,
                       depths: tuple[int, ...] = (6, 6, 6, 6), num_heads: tuple[int, ...] = (6, 6, 6, 6),
                       window_size: int = 8, mlp_ratio: float = 2.0, qkv_bias: bool = True,
                       drop_path_rate: float = 0.1, img_range: float = 1.0, upsampler: str = "pixelshuffledirect",
                       resi_connection: str = "1conv", num_feat: int = 64) -> SwinIR:
    """Lightweight SwinIR (4 RSTBs of 6 blocks, 60 channels, one-step pixel-shuffle head).

    929,628 parameters at x4 (910,152 x2, 918,267 x3). The paper's 897K / 878K / 886K are these minus the
    24 x 225 x 6 = 32,400 relative-position bias table entries (897,228 / 877,752 / 885,867), which its count
    leaves out. Maps (B, 3, H, W) in [0, 1] to (B, 3, sH, sW). Options as `SwinIR`.
    """
    return SwinIR(scale, in_chans, embed_dim, tuple(depths), tuple(num_heads), window_size, mlp_ratio, qkv_bias,
                  drop_path_rate, img_range, upsampler, resi_connection, num_feat)


_LAYER = re.compile(r"^layers\.(\d+)\.residual_group\.blocks\.(\d+)\.")


def detect_swinir(state_dict: dict[str, torch.Tensor]) -> tuple[str, int, dict] | None:
    """Recognise an official SwinIR super-resolution checkpoint and read its configuration from shapes.

    embed_dim and in_chans from ``conv_first``; depths from the block indices of each RSTB; num_heads from
    each RSTB's first ``relative_position_bias_table`` (columns); window_size from that table's length
    (2ws - 1)^2; mlp_ratio from ``mlp.fc1``; resi_connection from ``conv_after_body`` vs
    ``conv_after_body.0``; the upsampler from which head keys exist; the scale from the head's out-channels
    (9C -> x3, else 2^(number of upsample convs); ``pixelshuffledirect``: sqrt(out / in_chans); nearest+conv:
    x4). All official SR weights use img_range 1.0. Returns "swinir-light" for the pixelshuffledirect head,
    else "swinir"; the options are complete (they rebuild the exact network with either builder). Denoising /
    JPEG checkpoints (no upsampler) return None. ``attn_mask`` keys may be present (they are ignored).
    """
    sd = state_dict
    table0 = "layers.0.residual_group.blocks.0.attn.relative_position_bias_table"
    if "conv_first.weight" not in sd or table0 not in sd or "patch_embed.norm.weight" not in sd:
        return None
    embed_dim, in_chans = (int(v) for v in sd["conv_first.weight"].shape[:2])
    blocks: dict[int, set[int]] = {}
    for k in sd:
        if m := _LAYER.match(k):
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    n_layers = max(blocks) + 1
    if set(blocks) != set(range(n_layers)) or any(b != set(range(len(b))) for b in blocks.values()):
        return None
    depths = tuple(len(blocks[i]) for i in range(n_layers))
    num_heads = tuple(int(sd[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"].shape[1])
                      for i in range(n_layers))
    side = math.isqrt(int(sd[table0].shape[0]))
    if side * side != sd[table0].shape[0] or side % 2 == 0:
        return None
    window_size = (side + 1) // 2
    mlp_ratio = sd["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0] / embed_dim
    qkv_bias = "layers.0.residual_group.blocks.0.attn.qkv.bias" in sd
    if "conv_after_body.weight" in sd:
        resi_connection = "1conv"
    elif "conv_after_body.0.weight" in sd:
        resi_connection = "3conv"
    else:
        return None
    num_feat = 64
    scale: int | None
    if "conv_up1.weight" in sd:
        upsampler, scale = "nearest+conv", 4
        num_feat = int(sd["conv_up1.weight"].shape[0])
    elif "conv_before_upsample.0.weight" in sd:
        upsampler = "pixelshuffle"
        num_feat = int(sd["conv_before_upsample.0.weight"].shape[0])
        n_convs = sum(1 for k in sd if re.fullmatch(r"upsample\.\d+\.weight", k))
        scale = 3 if pixel_shuffle_scale(int(sd["upsample.0.weight"].shape[0]), num_feat) == 3 else 2 ** n_convs
    elif "upsample.0.weight" in sd:
        upsampler = "pixelshuffledirect"
        scale = pixel_shuffle_scale(int(sd["upsample.0.weight"].shape[0]), in_chans)
    else:
        return None  # denoising / JPEG artefact removal models: not super-resolution
    if scale is None:
        return None
    options = {"in_chans": in_chans, "embed_dim": embed_dim, "depths": depths, "num_heads": num_heads,
               "window_size": window_size, "mlp_ratio": float(mlp_ratio), "qkv_bias": qkv_bias, "img_range": 1.0,
               "upsampler": upsampler, "resi_connection": resi_connection, "num_feat": num_feat}
    return ("swinir-light" if upsampler == "pixelshuffledirect" else "swinir"), scale, options


_SWINIR_PAPER = ("Liang, Cao, Sun, Zhang, Van Gool, Timofte, SwinIR: Image Restoration Using Swin Transformer, "
                 "ICCV Workshops 2021")

# dtypes: bf16 has fp32's exponent range, so the residual stream and attention logits cannot overflow. fp16 is
# left out: the residual stream through 36 blocks (plus img_range / mean shifting) is not normalised and has not
# been validated against the official weights in fp16 here; spandrel, the widely used loader, also marks SwinIR
# as not fp16-safe. (The -100 mask and the softmax itself are fine in fp16: SDPA accumulates in fp32.)
SWINIR_SPEC = ArchSpec(
    build=build_swinir,
    family="swinir",
    paper=_SWINIR_PAPER,
    repo="https://github.com/JingyunLiang/SwinIR",
    license="Apache-2.0",
    scales=(2, 3, 4, 8),
    in_channels=3,
    out_channels=3,
    color_space="rgb",
    size_multiple=8,  # window_size; the module also pads itself
    receptive_field=None,  # shifted windows chain across the image
    safe_dtypes=("fp32", "bf16"),
)

SWINIR_LIGHT_SPEC = ArchSpec(
    build=build_swinir_light,
    family="swinir",
    paper=_SWINIR_PAPER + " (lightweight variant)",
    repo="https://github.com/JingyunLiang/SwinIR",
    license="Apache-2.0",
    scales=(2, 3, 4),
    in_channels=3,
    out_channels=3,
    color_space="rgb",
    size_multiple=8,
    receptive_field=None,
    safe_dtypes=("fp32", "bf16"),
)


FAMILY = ArchFamily(
    name="swinir",
    specs={"swinir": SWINIR_SPEC, "swinir-light": SWINIR_LIGHT_SPEC},
    detect=detect_swinir,
)
