"""The colour statistics of the training images: the smoothed ab-bin prior and the mean ab.

Both are stored in ``prior.json`` beside this module, with the sources they were
computed from and the command that computes them again::

    python -m restorebench.tasks.colorize.prior ../shared/data/train/BSDS400 ../shared/data/train/T91

The prior gives the class-rebalancing weights of training (the ``auc_rebal`` metric weighs by the
evaluated set's own class distribution instead);
the mean ab is the ``colorize/mean_ab`` baseline's colour.
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from restorebench.tasks.colorize.color import ab_bins, empirical_prior, is_gray, rebalancing_weights, rgb_to_lab

PRIOR_FILE = Path(__file__).with_name("prior.json")
PIXELS_PER_IMAGE = 20_000  # a seeded sample of each image's pixels


@lru_cache(maxsize=1)
def stored() -> dict[str, Any]:
    """``prior.json``: ``prior`` (313 floats), ``mean_ab`` (2 floats), ``sources``, ``images``, ``command``."""
    data = json.loads(PRIOR_FILE.read_text())
    if len(data["prior"]) != len(ab_bins()):
        raise ValueError(f"{PRIOR_FILE} holds {len(data['prior'])} bins, not {len(ab_bins())}")
    return data


def prior() -> np.ndarray:
    return np.asarray(stored()["prior"], dtype=np.float64)


@lru_cache(maxsize=1)
def weights() -> np.ndarray:
    """The class-rebalancing weight of each bin (from the stored prior)."""
    return rebalancing_weights(prior())


def statistics(images: list[np.ndarray], seed: int = 0) -> dict[str, Any]:
    """The prior and mean ab of colour ``images`` (HxWx3 in [0, 1]); gray ones are left out."""
    rng = np.random.default_rng(seed)
    samples = []
    for image in images:
        if is_gray(image):
            continue
        ab = rgb_to_lab(image)[..., 1:].reshape(-1, 2)
        samples.append(ab[rng.choice(len(ab), size=min(PIXELS_PER_IMAGE, len(ab)), replace=False)])
    if not samples:
        raise ValueError("no colour image to take statistics of")
    ab = np.concatenate(samples)
    return {"prior": empirical_prior(ab).tolist(), "mean_ab": ab.mean(axis=0).tolist(), "images": len(samples)}


def fit(folders: list[str]) -> dict[str, Any]:
    """The statistics of the images in ``folders``, with what they were computed from (the
    folders' names, a hash of their files, the command); a folder without images is a UserError."""
    import skimage.io

    from restorebench import UserError

    files = sorted(
        p for folder in folders for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp")
    )
    if not files:
        raise UserError(f"no images in {', '.join(folders)}", hint="give folders of colour training photos")
    images = [np.atleast_3d(skimage.io.imread(path))[..., :3].astype(np.float32) / 255.0 for path in files]
    digest = hashlib.sha256(
        "\n".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in files).encode()
    )
    stats = statistics(images)
    stats.update(
        sources=[Path(f).name for f in folders],
        data_sha256=digest.hexdigest(),
        pixels_per_image=PIXELS_PER_IMAGE,
        command="python -m restorebench.tasks.colorize.prior " + " ".join(folders),
    )
    return stats


def write(stats: dict[str, Any], path: Path = PRIOR_FILE) -> Path:
    """Store ``stats`` as ``prior.json`` (what :func:`stored` reads)."""
    path.write_text(json.dumps(stats, indent=1) + "\n")
    stored.cache_clear()
    weights.cache_clear()
    return path


if __name__ == "__main__":  # pragma: no cover - the command of the module docstring
    from restorebench import UserError

    try:
        fitted = fit(sys.argv[1:])
    except UserError as exc:
        sys.exit(f"error: {exc}")
    print(f"wrote {write(fitted)}: {fitted['images']} colour images, mean ab {np.round(fitted['mean_ab'], 2).tolist()}")
