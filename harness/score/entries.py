"""The engine's metric entries (psnr, ssim, psnr_y, psnr_y_matlab, ssim_y, niqe) and scoring one output with named metrics.

A metric's name and version fix its colour space, crop border, data range and rounding;
results under different versions are never compared (see :mod:`restorebench.commands.compare`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restorebench.core.build import build_metric
from restorebench.core.errors import UserError
from restorebench.core.interfaces import Degraded, Metric, ScoreFn
from restorebench.core.registry import register
from restorebench.score import metrics, niqe


def _register(name: str, version: str, unit: str, description: str) -> Callable[[ScoreFn], ScoreFn]:
    def deco(fn: ScoreFn) -> ScoreFn:
        register(Metric(name, fn, version, "higher", description, unit=unit))
        return fn

    return deco


@_register("psnr", "1", "dB", "PSNR on RGB (or gray), 8-bit outputs, data range 1, crop border from the task")
def _psnr(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.psnr(restored, clean, data_range=1.0, crop_border=d.crop_border)


@_register("ssim", "1", "", "SSIM on RGB (mean over channels), Gaussian 11x11 sigma 1.5, valid region")
def _ssim(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.ssim(restored, clean, data_range=1.0, crop_border=d.crop_border)


@_register("psnr_y", "1", "dB", "PSNR on BT.601 Y (MATLAB rgb2ycbcr, not rounded), crop border from the task")
def _psnr_y(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.psnr(restored, clean, crop_border=d.crop_border, y_channel=True)


@_register(
    "psnr_y_matlab", "1", "dB", "PSNR on Y rounded as MATLAB rgb2ycbcr on uint8 (the classic tables), crop border"
)
def _psnr_y_matlab(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.psnr_y_matlab(restored, clean, crop_border=d.crop_border)


@_register("ssim_y", "1", "", "SSIM on BT.601 Y, crop border from the task")
def _ssim_y(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.ssim(restored, clean, crop_border=d.crop_border, y_channel=True)


def _niqe_metric(model: niqe.PristineModel, version: str) -> Metric:
    def fn(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
        return niqe.niqe(restored, model)

    return Metric(
        "niqe",
        fn,
        version,
        "lower",
        "NIQE (Mittal et al. 2013) as the authors' MATLAB release computes it, on the output alone (no reference)",
        configure=_niqe_with_model,
        parameters="model=FILE",
        reference=False,
    )


def _niqe_with_model(metric: Metric, params: Mapping[str, Any]) -> Metric:
    """``niqe?model=FILE``: another pristine model, e.g. the authors' ``modelparameters.mat``."""
    unknown = sorted(set(params) - {"model"})
    if unknown:
        raise UserError(f"metric niqe: unknown parameter(s) {', '.join(unknown)}; valid parameters: model")
    try:
        model = niqe.read_model(str(params["model"]))
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(
            f"niqe?model={params['model']}: cannot read a pristine model ({exc})",
            hint="give the authors' modelparameters.mat (mu_prisparam, cov_prisparam), an .npz of the same, "
            "or a .json written by python -m restorebench.score.niqe",
        ) from None
    return _niqe_metric(model, f"{NIQE_VERSION}+model.sha256:{model.digest}")


NIQE_VERSION = "1"
_MODEL = niqe.default_model()
register(_niqe_metric(_MODEL, f"{NIQE_VERSION}+model.sha256:{_MODEL.digest}"))


@dataclass
class Scores:
    """One output's scores: per-image values, set-level metrics' per-image statistics, and
    why each metric that could not be computed failed."""

    values: dict[str, float] = field(default_factory=dict)
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def score(
    restored: np.ndarray,
    clean: np.ndarray | None,
    degraded: Degraded,
    names: Sequence[str],
    *,
    quantize: bool = True,
) -> Scores:
    """Score ``restored`` against ``clean`` with each named metric (a metric reference), each on its own
    (``clean`` None: a photo with no reference; only no-reference metrics can score it).

    One failing metric (e.g. SSIM of an image smaller than its window) never costs the
    others: its reason is kept in ``errors``. Outputs are clipped and rounded to the 8-bit
    grid first when ``quantize`` (the convention of published numbers), so a method cannot
    gain from sub-level values.
    """
    if clean is not None and restored.shape != clean.shape:
        raise ValueError(f"method returned shape {restored.shape}, expected the clean image's {clean.shape}")
    out = metrics.quantize_8bit(restored) if quantize else np.asarray(restored, dtype=np.float32)
    scores = Scores()
    for name in names:
        try:
            metric = build_metric(name)
            if clean is None and metric.reference:
                raise ValueError("it compares the output with a reference, and this image has none")
            value, stats = metric.score(out, clean, degraded)
        except Exception as exc:  # recorded with the metric's row, the unit's other scores stay
            scores.errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        scores.values[name] = value
        if stats is not None:
            scores.stats[name] = stats
    return scores


ORACLE_PREFIX = "oracle_"


def score_samples(
    samples: np.ndarray,
    clean: np.ndarray | None,
    degraded: Degraded,
    names: Sequence[str],
    *,
    quantize: bool = True,
) -> Scores:
    """Score each of a method's samples (``N x H x W x C``): a metric's value is the mean
    over the samples (a set-level metric's statistics too), ``oracle_<metric>`` the best
    sample's by the metric's direction, an upper bound that needs the ground truth to pick,
    never a result. A descriptive statistic has no oracle."""
    per = [score(sample, clean, degraded, names, quantize=quantize) for sample in samples]
    out = Scores(errors={k: v for s in per for k, v in s.errors.items()})
    for name in names:
        if name in out.errors:
            continue
        metric = build_metric(name)
        values = np.array([s.values[name] for s in per])
        if metric.set_level:
            out.stats[name] = np.mean([s.stats[name] for s in per], axis=0)
            out.values[name] = metric.group_value(out.stats[name][None, :])
        else:
            out.values[name] = float(np.mean(values))
        if metric.ranked:
            best = int(np.nanargmax(metric.goodness(values)))
            out.values[ORACLE_PREFIX + name] = float(values[best])
            if metric.set_level:
                out.stats[ORACLE_PREFIX + name] = per[best].stats[name]
    return out


def metric_versions(names: Sequence[str]) -> dict[str, str]:
    """``{metric: version}`` for the unit id and the results table."""
    return {name: build_metric(name).version for name in names}
