"""Losses for SR training: pixel/frequency, VGG19 perceptual, adversarial (both sides), LDL artifacts.

* `srkit.losses.pixel`: L1, MSE, Charbonnier, Fourier-space L1, image-gradient L1;
* `srkit.losses.perceptual`: VGG19 perceptual loss (torchvision layout, weights never downloaded);
* `srkit.losses.adversarial`: vanilla / LSGAN / hinge / RaGAN losses for D and G, discriminator feature matching;
* `srkit.losses.artifact`: the LDL artifact loss (needs the EMA generator's output);
* `srkit.losses.composite`: `LossTerm` and `CompositeLoss`, the ``loss:`` list of a run config.

The adversarial, feature-matching and LDL terms are not `LossTerm` names: they need the discriminator or the EMA
model, so the trainer adds them from the run config's ``gan:`` section (`srkit.train.gan`).
"""

from __future__ import annotations

from srkit.losses.adversarial import (
    GAN_LOSSES,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
)
from srkit.losses.artifact import ldl_artifact_map, ldl_loss, local_variance
from srkit.losses.composite import LOSS_NAMES, CompositeLoss, LossTerm
from srkit.losses.perceptual import (
    DEFAULT_LAYER_WEIGHTS,
    VGG19_CONV_LAYERS,
    PerceptualLoss,
    build_vgg19_features,
    default_vgg19_path,
    perceptual_loss,
    vgg19_features,
)
from srkit.losses.pixel import charbonnier_loss, fft_loss, gradient_loss, l1_loss, mse_loss

__all__ = [
    "DEFAULT_LAYER_WEIGHTS",
    "GAN_LOSSES",
    "LOSS_NAMES",
    "VGG19_CONV_LAYERS",
    "CompositeLoss",
    "LossTerm",
    "PerceptualLoss",
    "build_vgg19_features",
    "charbonnier_loss",
    "default_vgg19_path",
    "discriminator_loss",
    "feature_matching_loss",
    "fft_loss",
    "generator_loss",
    "gradient_loss",
    "l1_loss",
    "ldl_artifact_map",
    "ldl_loss",
    "local_variance",
    "mse_loss",
    "perceptual_loss",
    "vgg19_features",
]
