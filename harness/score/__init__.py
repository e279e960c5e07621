"""score: the metrics.

:mod:`~restorebench.score.metrics` holds the metric functions, pure functions on arrays
that import nothing of the engine (PSNR, SSIM, BT.601 Y, 8-bit quantisation);
:mod:`~restorebench.score.entries` registers the engine's metrics (``psnr``, ``ssim``,
``psnr_y``, ``ssim_y``) with their protocol versions and scores one output.

May import: core.
"""
