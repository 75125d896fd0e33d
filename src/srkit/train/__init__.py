"""Training: configs (`RunConfig`, `load_config`), the loop (`fit`), EMA, checkpoints, distillation and GANs.

    from srkit.train import fit, load_config
    result = fit(load_config("configs/tiny-x4.yaml", ["train.steps=2000"]), "runs/tiny-x4")
"""

from srkit.train.config import (
    DataCfg,
    DiscriminatorCfg,
    DistillCfg,
    GanCfg,
    GanOptimCfg,
    ModelCfg,
    OptimCfg,
    RunConfig,
    ScheduleCfg,
    TrainCfg,
    dump_config,
    load_config,
)
from srkit.train.ema import ModelEMA
from srkit.train.loop import FitResult, TrainingError, fit, lr_at

__all__ = [
    "DataCfg",
    "DiscriminatorCfg",
    "DistillCfg",
    "FitResult",
    "GanCfg",
    "GanOptimCfg",
    "ModelCfg",
    "ModelEMA",
    "OptimCfg",
    "RunConfig",
    "ScheduleCfg",
    "TrainCfg",
    "TrainingError",
    "dump_config",
    "fit",
    "load_config",
    "lr_at",
]
