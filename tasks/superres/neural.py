"""``superres/srcnn``: SRCNN (Dong et al. 2014/2016) on the luminance, one checkpoint per scale.

As the paper, the network refines the MATLAB-bicubic upscaling of the LR image on the Y
channel of BT.601 YCbCr; Cb and Cr stay bicubic. The committed checkpoints
(``checkpoints/srcnn_915_x{2,3,4}.safetensors``) are trained by :meth:`SRCNNMethod.recipe`
with ``restorebench train 'superres/srcnn?scale=S' --data folder:T91``; each file records
its exact command, data hashes and validation PSNR. The network is
:class:`restorebench.tasks.superres.models.SRCNN`; torch is imported only when a network is built.

References
----------
C. Dong, C. C. Loy, K. He, X. Tang, "Image Super-Resolution Using Deep Convolutional
Networks", IEEE TPAMI 38(2), 2016 (ECCV 2014 for the 9-1-5 model).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import field_validator

from restorebench import Degraded, UserError, register
from restorebench.imaging import imresize, rgb_to_ycbcr, ycbcr_to_rgb
from restorebench.neural.inference import NeuralMethod, NeuralParams
from restorebench.neural.training import Recipe
from restorebench.tasks.superres.baselines import _scale
from restorebench.tasks.superres.degradations import SCALES

__all__ = ["SRCNNMethod", "SRCNNParams"]

_VARIANTS: dict[str, dict[str, Any]] = {
    "9-1-5": {"f1": 9, "f2": 1, "f3": 5, "n1": 64, "n2": 32, "channels": 1, "padding": "replicate"},
    "9-5-5": {"f1": 9, "f2": 5, "f3": 5, "n1": 64, "n2": 32, "channels": 1, "padding": "replicate"},
}


class SRCNNParams(NeuralParams):
    """``variant``: 9-1-5 (the committed checkpoints) or 9-5-5 (trainable, none committed).

    ``scale`` picks the checkpoint to train (``restorebench train 'superres/srcnn?scale=3'``);
    at inference None means the scale of each input, and a given scale refuses inputs of
    another one.
    """

    variant: Literal["9-1-5", "9-5-5"] = "9-1-5"
    scale: Literal[2, 3, 4] | None = None

    @field_validator("scale", mode="before")
    @classmethod
    def _scale_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return int(text) if text.isdigit() else (None if text.lower() in ("", "none") else text)
        return value


@register
class SRCNNMethod(NeuralMethod):
    """SRCNN: a 3-layer CNN that sharpens the bicubic upscaling of the luminance.

    ``prepare`` upscales the LR image with MATLAB bicubic :func:`imresize` and gives the
    network its Y channel (BT.601, [0, 1] scale; a gray image's only channel);
    ``finish`` puts the predicted Y together with the bicubic Cb and Cr and converts back
    to RGB (MATLAB ``ycbcr2rgb``). Each scale has its own checkpoint, chosen by the
    input's true scale (``uses_true_level``).

    Example
    -------
    >>> from restorebench.core.build import build_method
    >>> method = build_method("superres/srcnn")  # doctest: +SKIP
    >>> method.restore([bicubic_x3_item])[0].shape  # doctest: +SKIP
    (99, 75, 3)
    """

    task = "superres"
    name = "srcnn"
    version = "1"
    description = "SRCNN 9-1-5 (Dong et al. 2014) on Y after bicubic upscaling, trained on T91"
    architecture = "srcnn"
    uses_true_level = True
    Params = SRCNNParams
    checkpoint_dir: ClassVar[Path] = Path(__file__).with_name("checkpoints")

    # ------------------------------------------------------------ network and checkpoints

    def config(self) -> dict[str, Any]:
        """The network configuration of this variant."""
        return dict(_VARIANTS[self.params.variant])

    def build_network(self, config: dict[str, Any]) -> Any:
        from restorebench.tasks.superres.models import SRCNN

        try:
            return SRCNN(**{**self.config(), **config})
        except (TypeError, ValueError) as exc:
            raise UserError(f"{self.qualified_name}: checkpoint config {config} does not fit SRCNN ({exc})") from None

    def config_from_tensors(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """Filter sizes, widths and channels, from the shapes of ``conv1``-``conv3``."""
        weights = [shapes.get(f"conv{i}.weight") for i in (1, 2, 3)]
        if any(w is None or len(w) != 4 for w in weights):
            return {}
        (n1, channels, f1, _), (n2, _, f2, _), (_, _, f3, _) = weights
        return {"f1": f1, "f2": f2, "f3": f3, "n1": n1, "n2": n2, "channels": channels}

    def checkpoint_path(self, scale: int) -> Path:
        """The committed checkpoint of this variant for ``scale``."""
        return self.checkpoint_dir / f"srcnn_{self.params.variant.replace('-', '')}_x{scale}.safetensors"

    def default_checkpoints(self) -> list[Path]:
        scales = SCALES if self.params.scale is None else (self.params.scale,)
        return [self.checkpoint_path(s) for s in scales]

    def checkpoint_for(self, item: Degraded) -> Path:
        scale = _scale(item)
        if self.params.checkpoint:
            return self.checkpoints()[0]
        if self.params.scale is not None and scale != self.params.scale:
            raise UserError(
                f"{self.ref} is for x{self.params.scale} inputs, got an x{scale} input; "
                "leave scale out to follow each input's scale"
            )
        if scale not in SCALES:
            raise UserError(f"{self.qualified_name} has checkpoints for x{', x'.join(map(str, SCALES))}, not x{scale}")
        return self.checkpoint_path(scale)

    # ------------------------------------------------------------ colour handling

    def prepare(self, item: Degraded) -> tuple[np.ndarray, Any]:
        lr = np.asarray(item.image, dtype=np.float32)
        if lr.ndim == 2:
            lr = lr[..., None]
        if lr.ndim != 3 or lr.shape[2] not in (1, 3):
            raise ValueError(f"expected an HxWx1 or HxWx3 image, got shape {lr.shape}")
        up = imresize(lr, _scale(item))  # keeps the channel axis
        if up.shape[2] == 1:
            return np.ascontiguousarray(up.transpose(2, 0, 1), dtype=np.float32), None
        ycbcr = rgb_to_ycbcr(up)
        return np.ascontiguousarray(ycbcr[..., :1].transpose(2, 0, 1)), ycbcr[..., 1:]

    def finish(self, output: np.ndarray, context: Any, item: Degraded) -> np.ndarray:
        y = output.transpose(1, 2, 0)
        return y if context is None else ycbcr_to_rgb(np.concatenate([y, context], axis=2))

    # ------------------------------------------------------------ training

    def _training_scale(self) -> int:
        if self.params.scale is None:
            raise UserError(
                f"{self.qualified_name} trains one checkpoint per scale; name it",
                hint="restorebench train 'superres/srcnn?scale=3'",
            )
        return self.params.scale

    def training_output(self) -> Path:
        return self.checkpoint_path(self._training_scale())

    def recipe(self) -> Recipe:
        """Adam on batches of 16 36x36 Y patches (36: a multiple of 2, 3 and 4), MSE loss.

        The paper trains with SGD (lr 1e-4, 1e-5 for conv3) for ~10^8 back-propagations
        on 33x33 sub-images of T91 (x3). Here Adam, lr 2e-3 dropped x0.1 at 50 % and 85 %
        of 4000 steps (about 4 minutes on 2 idle CPU cores per scale; timings in the
        README). Evidence, x3 on T91: for the same compute batch 16 x 3000 steps beat
        batch 32 x 1500 (val 28.91 vs 28.84 dB); lr 3e-3 beat 1e-3 early (400 steps: 28.66
        vs 28.46 dB) but diverged for a while when held for 4200 steps (val 28.64 dB after
        6000), hence 2e-3 for 2000 steps.
        """
        scale = self._training_scale()
        return Recipe(
            architecture=self.architecture,
            config=self.config(),
            make_pair=_PAIRS[scale],
            patch_size=36,
            batch_size=16,
            steps=4000,
            lr=2e-3,
            channels="y",
            loss="mse",
            lr_milestones=(0.5, 0.85),
            val_every=500,
            notes=f"SRCNN {self.params.variant} x{scale}: input = MATLAB bicubic x{scale} of the 8-bit "
            f"bicubic x1/{scale} LR of a Y patch; target = the Y patch",
        )

    # ------------------------------------------------------------ released weights

    def convert_official(self, weights: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Map released SRCNN weights onto :class:`~restorebench.tasks.superres.models.SRCNN`.

        Accepted (filter sizes and widths are read from the shapes, so 9-1-5, 9-3-5,
        9-5-5 and other widths all work; the network must take and give one channel):

        ======================  ==================================================
        released as             mapped how
        ======================  ==================================================
        MATLAB variables        ``weights_conv1`` (f1^2 x n1, or 1 x f1^2 x n1),
        (the authors' release,  ``weights_conv2`` (n1 x n2, or n1 x f2^2 x n2),
        ``SRCNN.m``)            ``weights_conv3`` (n2 x f3^2), ``biases_conv1..3``;
                                each f^2 column reshaped column-major to f x f
                                (MATLAB ``reshape``), applied as ``imfilter``
                                correlation = torch's ``conv2d``
        MatConvNet ``net``      the three ``conv`` layers' ``H x W x Cin x Cout``
        (SimpleNN)              filters transposed ``(3, 2, 0, 1)``; ReLU and loss
                                layers carry no weights and are skipped
        PyTorch state dict      the three 4-D ``*.weight`` tensors in file order,
                                with their ``*.bias``: ``conv1/conv2/conv3``
                                (e.g. yjn870/SRCNN-pytorch), ``conv1.0/conv2.0/
                                conv3``, ``layer1.0/layer2.0/layer3``,
                                ``features.0/map.0/reconstruction``,
                                ``features.0/features.2/features.4``, ...
        ======================  ==================================================

        The result uses replicate padding, as ``SRCNN.m``; re-implementations that pad
        with zeros differ from it only within ``f1 // 2 + f2 // 2 + f3 // 2`` pixels of
        the border.
        """
        from restorebench.tasks.superres.models import srcnn_from_official

        return srcnn_from_official(weights)


@lru_cache(maxsize=32)
def _resize_matrices(size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(down, up)`` with ``imresize(x, 1/scale) == down @ x @ down.T`` for a ``size``
    square and ``imresize(lr, scale) == up @ lr @ up.T``: MATLAB bicubic is separable and
    linear, so training applies it as two small matrix products per patch."""
    down = imresize(np.eye(size), output_shape=(size // scale, size))
    up = imresize(np.eye(size // scale), output_shape=(size, size // scale))
    return down, up


def _srcnn_pair(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(bicubic upscaling of the 8-bit bicubic LR, HR), both 1xPxP, of a PxPx1 Y patch."""
    if hr.shape[0] != hr.shape[1] or hr.shape[0] % scale:
        raise ValueError(f"SRCNN training patches must be square multiples of {scale}, got {hr.shape}")
    down, up = _resize_matrices(hr.shape[0], scale)
    target = hr[..., 0].astype(np.float64)
    lr = np.round(np.clip(down @ target @ down.T * 255.0, 0.0, 255.0)) / 255.0
    return (up @ lr @ up.T)[None].astype(np.float32), target[None].astype(np.float32)


def srcnn_pair_x2(hr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Training pair for x2 (deterministic: ``rng`` is unused)."""
    return _srcnn_pair(hr, 2)


def srcnn_pair_x3(hr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Training pair for x3 (deterministic: ``rng`` is unused)."""
    return _srcnn_pair(hr, 3)


def srcnn_pair_x4(hr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Training pair for x4 (deterministic: ``rng`` is unused)."""
    return _srcnn_pair(hr, 4)


_PAIRS = {2: srcnn_pair_x2, 3: srcnn_pair_x3, 4: srcnn_pair_x4}
