"""Knowledge distillation: a frozen teacher's output (and optionally its features) as extra training targets.

`Distiller(cfg, student)` loads the teacher with `srkit.load_model`, so any loadable model works (srkit
safetensors, an authors' checkpoint, a shipped model), whatever its architecture or size. For feature matching it
hooks named submodules of both networks and learns a 1x1 conv adapter (student channels -> teacher channels) per
pair where the channel counts differ; the adapters are trained with the student and saved in checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srkit.errors import ConfigError
from srkit.models import SRModel, load_model
from srkit.train.config import DistillCfg

__all__ = ["Distiller"]


def _find_module(model: SRModel, name: str, role: str) -> nn.Module:
    """Submodule `name` of the network inside `model` (`model.module`); a leading `module.` is accepted."""
    modules = dict(model.module.named_modules())
    key = name.removeprefix("module.")
    if key not in modules or key == "":
        sample = ", ".join(n for n in list(modules)[1:9])
        raise ConfigError(f"distill.feature_layers: the {role} has no module {name!r} (e.g. {sample}, ...)")
    return modules[key]


class _Capture:
    """Forward hook that keeps the latest output of one module."""

    def __init__(self, module: nn.Module):
        self.value: torch.Tensor | None = None
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, args, output) -> None:
        if isinstance(output, (tuple, list)):
            output = output[0]
        self.value = output


class Distiller(nn.Module):
    """Distillation terms for one student.

    Call `teach(lr)` *before* the student's forward pass on the same batch (it runs the teacher without
    gradients), then `loss(student_sr)` after it: returns (weighted loss, {"distill": ..., "distill_feat": ...}).

    The trainable part of this module is the adapters (`self.adapters`); add `self.parameters()` to the
    optimiser. The teacher is not a registered submodule, so it is never in `state_dict()` or `parameters()`.

    Args:
        cfg: the `distill` section of the run config.
        student: the student `SRModel` (unwrapped); hooks go on its `module`.
        device: where the teacher runs.
        in_channels: channels of the LR batches (1 for Y training, 3 for RGB) - the probe pass uses it.
    """

    def __init__(self, cfg: DistillCfg, student: SRModel, device: torch.device | str = "cpu", in_channels: int = 3):
        super().__init__()
        self.cfg = cfg
        teacher = load_model(cfg.teacher)
        if teacher.info.scale != student.info.scale:
            raise ConfigError(
                f"distill.teacher: {cfg.teacher} is x{teacher.info.scale}, the student is x{student.info.scale}"
            )
        teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        # A plain attribute list keeps the teacher out of state_dict(), parameters() and .to() of this module.
        self._teacher = [teacher]
        self._teacher_out: torch.Tensor | None = None
        self.adapters = nn.ModuleList()
        self._pairs: list[tuple[_Capture, _Capture]] = []
        self.use_features = cfg.feature_weight > 0 and bool(cfg.feature_layers)
        if self.use_features:
            for s_name, t_name in cfg.feature_layers:
                s_mod = _find_module(student, s_name, "student")
                t_mod = _find_module(teacher, t_name, "teacher")
                self._pairs.append((_Capture(s_mod), _Capture(t_mod)))
            self._build_adapters(student, teacher, device, in_channels)

    @property
    def teacher(self) -> SRModel:
        return self._teacher[0]

    @torch.no_grad()
    def _build_adapters(self, student: SRModel, teacher: SRModel, device, in_channels: int) -> None:
        # One small probe pass tells the feature shapes; the adapters are created in the order of feature_layers,
        # from torch's global RNG, which the trainer seeds from the config seed just before this.
        probe = torch.zeros(1, in_channels, 16, 16, device=device)
        was_training = student.training
        student.eval()
        student(probe)
        teacher(probe)
        student.train(was_training)
        for (s_cap, t_cap), (s_name, t_name) in zip(self._pairs, self.cfg.feature_layers, strict=True):
            s, t = s_cap.value, t_cap.value
            if s is None or t is None or s.ndim != 4 or t.ndim != 4:
                raise ConfigError(
                    f"distill.feature_layers: {s_name} / {t_name} do not both output (B, C, H, W) feature maps"
                )
            if s.shape[-2:] != t.shape[-2:]:
                raise ConfigError(
                    f"distill.feature_layers: {s_name} gives {s.shape[-2]}x{s.shape[-1]} maps, {t_name} "
                    f"{t.shape[-2]}x{t.shape[-1]} (for a 16x16 input); pick layers at the same resolution"
                )
            adapter = nn.Conv2d(s.shape[1], t.shape[1], 1) if s.shape[1] != t.shape[1] else nn.Identity()
            self.adapters.append(adapter.to(device))
            s_cap.value = t_cap.value = None

    @torch.no_grad()
    def teach(self, lr: torch.Tensor) -> None:
        """Run the teacher on the LR batch (B, C, h, w) in [0, 1]; keeps its output and hooked features."""
        self._teacher_out = self.teacher(lr)

    def loss(self, student_sr: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted distillation loss for the student's output (B, C, sh, sw) of the batch given to `teach`.

        Returns:
            (scalar fp32 tensor, {"distill": output L1, "distill_feat": mean feature L1 (only with features)}).
        """
        if self._teacher_out is None:
            raise RuntimeError("Distiller.loss called before teach()")
        t_out = self._teacher_out.float()
        out_l1 = F.l1_loss(student_sr.float(), t_out)
        total = self.cfg.weight * out_l1
        terms = {"distill": float(out_l1.detach())}
        if self.use_features:
            feats = []
            for (s_cap, t_cap), adapter in zip(self._pairs, self.adapters, strict=True):
                # Hooked features may be bf16 (autocast); the adapter and the loss run in fp32.
                s_val, t_val = s_cap.value, t_cap.value
                if s_val is None or t_val is None:
                    raise RuntimeError("Distiller.loss: a hooked feature is missing; run teach() and the student first")
                s = adapter(s_val.float())
                feats.append(F.l1_loss(s, t_val.float()))
                s_cap.value = t_cap.value = None
            feat = torch.stack(feats).mean()
            total = total + self.cfg.feature_weight * feat
            terms["distill_feat"] = float(feat.detach())
        self._teacher_out = None
        return total, terms

    def close(self) -> None:
        """Remove the forward hooks from student and teacher."""
        for s_cap, t_cap in self._pairs:
            s_cap.handle.remove()
            t_cap.handle.remove()
        self._pairs = []
