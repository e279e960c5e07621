"""Training recipes as code: seeded patch sampling, optimisation and validation.

A neural method describes how its checkpoint is trained with a :class:`Recipe`; the
harness's ``restorebench train`` gathers the images, calls :func:`fit` and writes the
checkpoint with its metadata. Nothing here knows about MLflow: progress goes to the
``log`` callback.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from restorebench.imaging.color import bt601_luma

log = logging.getLogger(__name__)

PairFn = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
# objective(network, x, y) -> (loss to minimise, its named terms as floats for the log)
ObjectiveFn = Callable[[Any, Any, Any], tuple[Any, dict[str, float]]]


@dataclass(frozen=True)
class Recipe:
    """How one checkpoint is trained.

    ``make_pair(clean_patch, rng)`` turns a clean HWC float32 patch (already converted
    to ``channels``) into the network's (input, target), both CHW float32; every random
    draw comes from ``rng``. The loss is ``loss(network(x), y)`` (``mse`` or ``l1``), or
    ``objective(network, x, y)`` when a method's loss needs more than the output (e.g.
    DeepUPE's terms on its illumination map); validation always scores ``network(x)``.
    ``grad_clip``: clip the gradients' global norm (None: off). ``prepare(network)`` runs once
    before the first step (e.g. to freeze the encoder's batch norm in a fine-tuning phase).
    """

    architecture: str
    config: dict[str, Any]
    make_pair: PairFn
    patch_size: int
    batch_size: int
    steps: int
    lr: float
    channels: Literal["rgb", "gray", "y"] = "rgb"
    loss: Literal["mse", "l1"] = "mse"
    objective: ObjectiveFn | None = None
    predict: Callable[[Any, Any], Any] | None = None  # what validation scores: network(x) by default
    prepare: Callable[[Any], None] | None = None
    grad_clip: float | None = None
    lr_milestones: tuple[float, ...] = (0.6, 0.85)  # fractions of steps where lr drops x0.1
    weight_decay: float = 0.0
    val_every: int = 500
    val_patches: int = 64
    val_fraction: float = 0.05
    augment: bool = True
    default_data: tuple[str, ...] = ("bundled:photos-train", "synthetic:deadleaves?n=64&size=256&seed=7")
    needs_colour: bool = False  # the targets are colours (colorization): gray images are left out, none is refused
    notes: str = ""

    def describe(self) -> dict[str, Any]:
        """The recipe as JSON-able metadata (functions by their qualified names)."""
        functions = ("make_pair", "objective", "predict", "prepare")
        data = {k: v for k, v in asdict(self).items() if k not in functions}
        data["make_pair"] = _qualified_name(self.make_pair)
        data["objective"] = _qualified_name(self.objective) if self.objective is not None else None
        for name in ("predict", "prepare"):
            if getattr(self, name) is not None:
                data[name] = _qualified_name(getattr(self, name))
        return data


def _qualified_name(fn: Callable[..., Any]) -> str:
    """``module.qualname``, with built-in modules named inside the package (``tasks.superres.neural.f``
    for ``restorebench.tasks.superres.neural.f``), so the recorded name does not depend on the
    import name the package is installed under."""
    module = fn.__module__.removeprefix("restorebench.")
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


@dataclass
class FitResult:
    state_dict: dict[str, Any]
    steps: int
    val_psnr: float
    val_psnr_input: float | None  # the input scored as it is (None when it is not an image of the target's shape)
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    val_keys: list[str] = field(default_factory=list)  # the keys of the images held out for validation


def to_channels(image: np.ndarray, channels: str) -> np.ndarray:
    """An HWC [0, 1] image as the recipe's channels: rgb (gray repeated), gray, or BT.601 Y in [0, 1]."""
    if channels == "rgb":
        return image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    if image.shape[2] == 1:
        return image
    if channels == "gray":
        return (image @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    y = bt601_luma(image) / 255.0
    return y[..., None].astype(np.float32)


def split_train_val(keys: Sequence[str], fraction: float) -> tuple[list[int], list[int]]:
    """Deterministic split by SHA-256 of each image's key (stable when images are added).
    ``restorebench train`` keys images by their content hash; before, by the source reference
    and file name, so naming the same folder another way (relative, absolute) held out other
    images."""
    scores = [int(hashlib.sha256(k.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for k in keys]
    val = [i for i, s in enumerate(scores) if s < fraction]
    if not val and len(keys) > 1:
        val = [int(np.argmin(scores))]
    train = [i for i in range(len(keys)) if i not in set(val)]
    return train, val


def _crop(image: np.ndarray, size: int, rng: np.random.Generator, augment: bool) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
    patch = image[top : top + size, left : left + size]
    if augment:
        patch = np.rot90(patch, k=int(rng.integers(4)))
        if rng.integers(2):
            patch = patch[:, ::-1]
    return np.ascontiguousarray(patch)


def _batch(images: Sequence[np.ndarray], recipe: Recipe, rng: np.random.Generator, n: int, augment: bool):
    xs, ys = [], []
    for _ in range(n):
        image = images[int(rng.integers(len(images)))]
        x, y = recipe.make_pair(_crop(image, recipe.patch_size, rng, augment), rng)
        xs.append(x)
        ys.append(y)
    return np.stack(xs), np.stack(ys)


def _psnr(a: Any, b: Any) -> float:
    mse = float(((a.clamp(0, 1) - b) ** 2).mean())
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def _output_loss(kind: str) -> ObjectiveFn:
    """The plain objective: ``mse`` or ``l1`` between ``network(x)`` and ``y``."""
    import torch

    loss_fn = torch.nn.MSELoss() if kind == "mse" else torch.nn.L1Loss()

    def objective(network: Any, x: Any, y: Any) -> tuple[Any, dict[str, float]]:
        return loss_fn(network(x), y), {}

    return objective


def fit(
    recipe: Recipe,
    network: Any,
    images: Sequence[np.ndarray],
    keys: Sequence[str],
    *,
    steps: int | None = None,
    seed: int = 0,
    num_threads: int | None = None,
    log_fn: Callable[[int, dict[str, float]], None] | None = None,
    step_fn: Callable[[int, float, float], None] | None = None,
) -> FitResult:
    """Train ``network`` on patches of ``images`` (HWC float32 in [0, 1]) by ``recipe``.

    ``num_threads``: torch's intra-op threads (None: torch's default, all cores).
    ``log_fn(step, record)`` after each validation; ``step_fn(step, loss, seconds)`` after each
    step (and after that step's validation), ``seconds`` since training began.
    """
    import torch

    if num_threads is not None:
        torch.set_num_threads(max(1, int(num_threads)))
    steps = recipe.steps if steps is None else steps
    usable = [i for i, img in enumerate(images) if min(img.shape[:2]) >= recipe.patch_size]
    if len(usable) < 2:
        from restorebench.core.errors import UserError

        raise UserError(f"training needs at least 2 images of at least {recipe.patch_size}x{recipe.patch_size} px")
    prepared = [to_channels(images[i], recipe.channels) for i in usable]
    usable_keys = [keys[i] for i in usable]
    train_idx, val_idx = split_train_val(usable_keys, recipe.val_fraction)
    train = [prepared[i] for i in train_idx]
    val = [prepared[i] for i in val_idx]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    val_x, val_y = _batch(val, recipe, np.random.default_rng(seed + 1), recipe.val_patches, augment=False)
    val_x, val_y = torch.from_numpy(val_x), torch.from_numpy(val_y)
    optimiser = torch.optim.Adam(network.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    milestones = sorted({max(1, int(m * steps)) for m in recipe.lr_milestones})
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones=milestones, gamma=0.1)
    objective = recipe.objective or _output_loss(recipe.loss)
    history: list[dict[str, float]] = []
    input_psnr = _psnr(val_x, val_y) if val_x.shape == val_y.shape else None

    def validate() -> float:
        network.eval()
        with torch.inference_mode():
            predict = recipe.predict or (lambda net, x: net(x))
            out = torch.cat([predict(network, val_x[i : i + 16]) for i in range(0, len(val_x), 16)])
        network.train()
        return _psnr(out, val_y)

    if recipe.prepare is not None:
        recipe.prepare(network)
    started = time.perf_counter()
    network.train()
    running: dict[str, float] = {}
    count = 0
    for step in range(1, steps + 1):
        x, y = _batch(train, recipe, rng, recipe.batch_size, recipe.augment)
        loss, terms = objective(network, torch.from_numpy(x), torch.from_numpy(y))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(network.parameters(), recipe.grad_clip)
        optimiser.step()
        schedule.step()
        count += 1
        loss_value = loss.item()
        for name, value in {"loss": loss_value, **terms}.items():
            running[name] = running.get(name, 0.0) + float(value)
        if step % recipe.val_every == 0 or step == steps:
            record = {
                **{k: v / count for k, v in running.items()},
                "val_psnr": validate(),
                "lr": optimiser.param_groups[0]["lr"],
                "seconds": time.perf_counter() - started,
            }
            running, count = {}, 0
            history.append({"step": step, **record})
            log.info("step %d: %s", step, record)
            if log_fn:
                log_fn(step, record)
        if step_fn:
            step_fn(step, loss_value, time.perf_counter() - started)
    network.eval()
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    final = history[-1]["val_psnr"] if history else validate()
    held_out = [usable_keys[i] for i in val_idx]
    return FitResult(state, steps, final, input_psnr, history, time.perf_counter() - started, held_out)
