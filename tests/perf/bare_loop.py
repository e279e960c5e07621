"""The benchmarks' bare loop: a suite's loads, degradations, restorations and metrics with no
harness around them (what the harness's figures are compared against)."""

from __future__ import annotations

from collections.abc import Sequence


def run_bare(
    dataset: str,
    degradations: Sequence[str],
    methods: Sequence[str],
    *,
    part: int = 0,
    parts: int = 1,
    y_channel: bool = False,
) -> None:
    """Every ``parts``-th image of ``dataset`` from ``part`` on: load, degrade with the run's
    seeds, restore, round to 8 bits, PSNR and SSIM (and on Y with ``y_channel``)."""
    from restorebench.core.build import build_degradation, build_method, build_source
    from restorebench.run.units import degradation_rng
    from restorebench.score import metrics

    source = build_source(dataset)
    built_degradations = [build_degradation(d) for d in degradations]
    built_methods = [build_method(m) for m in methods]
    for image in source.list_images()[part::parts]:
        clean = source.load(image)
        for deg in built_degradations:
            degraded = deg.apply(clean, degradation_rng(0, image, deg.identity()))
            for method in built_methods:
                out = metrics.quantize_8bit(method.restore_one(degraded))
                metrics.psnr(out, clean), metrics.ssim(out, clean)
                if y_channel:
                    metrics.psnr(out, clean, y_channel=True), metrics.ssim(out, clean, y_channel=True)
