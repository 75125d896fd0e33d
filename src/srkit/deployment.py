"""Turn a model into its inference form: fold re-parameterisable blocks and BatchNorm into plain convolutions.

`deploy(model)` returns a copy in which

* every submodule whose class defines ``switch_to_deploy()`` (ECBSR's ECB, SPAN's Conv3XC, `SharpeningConv`,
  `RepVGGBlock`, ...) has been switched to its folded form, in place in the copy;
* every other submodule whose class defines a no-argument ``fuse()`` returning an `nn.Module` is replaced by
  that module;
* inside each `nn.Sequential`, a `nn.Conv2d` directly followed by a `nn.BatchNorm2d` (with running statistics)
  becomes one conv with the BN folded in (`srkit.archs._blocks.fuse_conv_bn`), the BN slot an `nn.Identity`
  (so indices, and the remaining state-dict keys, do not move).

Conv+BN pairs outside `nn.Sequential` are left alone: the call order of a custom module's children is not
known. The result is in eval mode and computes the same function as the input in eval mode (BN uses running
statistics), up to float rounding. The input is never modified.
"""

from __future__ import annotations

import copy
import inspect
from typing import overload

from torch import nn

from srkit.archs._blocks import fuse_conv_bn
from srkit.errors import ConfigError
from srkit.models import SRModel, same_layout

__all__ = ["deploy", "fold_batchnorm"]


def _has_method(module: nn.Module, name: str) -> bool:
    """True when the module's *class* defines `name` as a method callable without arguments.

    Looking at the class (not the instance) ignores submodules that happen to be called e.g. ``fuse``.
    """
    fn = getattr(type(module), name, None)
    if not inspect.isfunction(fn):
        return False
    params = list(inspect.signature(fn).parameters.values())[1:]
    return all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params)


def fold_batchnorm(seq: nn.Sequential) -> nn.Sequential:
    """Fold each Conv2d -> BatchNorm2d pair of `seq` in place (BN slot becomes Identity); returns `seq`."""
    for i in range(len(seq) - 1):
        conv, bn = seq[i], seq[i + 1]
        if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None
                and bn.num_features == conv.out_channels):
            seq[i] = fuse_conv_bn(conv, bn)
            seq[i + 1] = nn.Identity()
    return seq


def _deploy_inplace(module: nn.Module) -> nn.Module:
    # getattr: the methods are found by name (checked by _has_method), not through a common base class.
    if _has_method(module, "switch_to_deploy"):
        getattr(module, "switch_to_deploy")()
        return module
    if _has_method(module, "fuse"):
        fused = getattr(module, "fuse")()
        if isinstance(fused, nn.Module):
            return fused
    for name, child in list(module.named_children()):
        new = _deploy_inplace(child)
        if new is not child:
            setattr(module, name, new)
    if isinstance(module, nn.Sequential):
        fold_batchnorm(module)
    return module


def _deployed_info(info, module: nn.Module):
    """`info` with ``deploy: True`` in its options when the arch builds `module`'s folded layout that way.

    Without it `save_model(deploy(m))` would record the training-form options and the file would not load back.
    """
    import dataclasses

    from srkit.archs import ARCHS, build

    if info.arch not in ARCHS or info.options.get("deploy") is True:
        return info
    opts = {**info.options, "deploy": True}
    try:
        plain = build(info.arch, info.scale, **opts).module
    except ConfigError:  # the arch has no deploy option
        return info
    return dataclasses.replace(info, options=opts) if same_layout(plain.state_dict(), module.state_dict()) else info


@overload
def deploy(model: SRModel) -> SRModel: ...
@overload
def deploy(model: nn.Module) -> nn.Module: ...
def deploy(model: nn.Module) -> nn.Module:
    """The inference form of `model`: re-parameterised blocks and conv+BN pairs folded into single convs.

    Args:
        model: any `nn.Module`, or an `srkit.models.SRModel` (its ``.module`` is deployed and an `SRModel` with
            the same ``info`` is returned).

    Returns:
        A new module in eval mode; `model` is not modified. Same function as `model.eval()` up to rounding.
    """
    if isinstance(model, SRModel):
        module = deploy(model.module)
        return SRModel(module, _deployed_info(model.info, module)).eval()
    m = copy.deepcopy(model)
    return _deploy_inplace(m).eval()
