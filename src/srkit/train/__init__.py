"""Training: configs (`RunConfig`, `load_config`), the loop (`fit`), EMA, checkpoints and distillation.

    from srkit.train import fit, load_config
    result = fit(load_config("configs/tiny-x4.yaml", ["train.steps=2000"]), "runs/tiny-x4")
"""

from srkit.train.config import (
    DataCfg,
    DistillCfg,
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
    "DistillCfg",
    "FitResult",
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
