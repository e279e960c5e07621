"""``restorebench train``: gather images, fit a neural method's recipe, write its checkpoint.

The recipe (network, patches, optimisation) belongs to the method's task; this module
only feeds it data, logs progress to MLflow (experiment ``restorebench-training``) and
writes the weights-only checkpoint with metadata that says how to reproduce it.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorebench import __version__
from restorebench.core.errors import UserError
from restorebench.track.training import TrainingTracker

log = logging.getLogger(__name__)


@dataclass
class TrainSummary:
    """What ``restorebench train`` wrote: the checkpoint, its metadata, the MLflow run."""

    checkpoint: Path
    metadata: dict[str, Any]
    mlflow_run_id: str | None = None
    tracking_error: str | None = None

    def describe(self) -> str:
        """The lines the command prints."""
        metrics = self.metadata["metrics"]
        given = metrics["val_psnr_input"]
        text = (
            f"wrote {self.checkpoint}: {self.metadata['steps']} steps in {self.metadata['seconds']} s, "
            f"validation PSNR {metrics['val_psnr']:.2f} dB" + (f" (input {given:.2f} dB)" if given is not None else "")
        )
        if self.mlflow_run_id:
            text += f"\nMLflow run {self.mlflow_run_id} (experiment restorebench-training)"
        return text


def load_training_images(datasets: list[str]) -> tuple[list[np.ndarray], list[str], dict[str, Any]]:
    """Every image of the given sources, their content hashes (the keys of the train /
    validation split: the same images are held out however their folder is named, and a
    duplicate never lands on both sides), and a description with the hashes by name."""
    from restorebench.core.build import build_source

    images, keys, files = [], [], {}
    for ref in datasets:
        source = build_source(ref)
        for image in source.list_images():
            try:
                images.append(source.load(image))
            except Exception as exc:  # one bad file does not stop training
                log.warning("skipping %s: %s", image.key, exc)
                continue
            keys.append(image.content_hash)
            files[f"{source.ref}/{image.key}"] = image.content_hash
    if not images:
        raise UserError(f"no training images found in {', '.join(datasets)}")
    combined = hashlib.sha256("\n".join(f"{h}  {k}" for k, h in sorted(files.items())).encode()).hexdigest()
    return images, keys, {"sources": list(datasets), "images": len(images), "sha256": combined, "files": files}


def train_method(
    method_ref: str,
    *,
    data: list[str] | None = None,
    steps: int | None = None,
    out: Path | None = None,
    seed: int = 0,
    tracking_uri: str | None = None,
    tracking: bool = True,
    threads: int | None = None,
    init: Path | None = None,
) -> TrainSummary:
    """Train the checkpoint of ``method_ref`` (e.g. ``superres/srcnn?scale=3``).

    ``threads``: torch's CPU threads (default: all cores); recorded in the metadata, since
    float sums, and so the last bits of the weights, depend on it. ``init``: start from
    that checkpoint of the same network (its recipe's schedule runs again); the metadata
    keeps its hash, command and steps, so the chain that made the weights stays readable.
    """
    from restorebench.core.build import build_method

    method = build_method(_trainable(method_ref))
    recipe = method.recipe()
    target = checked_output(Path(out) if out else default_output(method))
    datasets = list(data) if data else list(recipe.default_data)
    images, keys, data_info = load_training_images(datasets)
    if recipe.needs_colour:
        images, keys = colour_only(images, keys, datasets, method.qualified_name)
    network = method.build_network(recipe.config)
    started_from = _start_from(init, network, recipe) if init is not None else None
    command = " ".join(
        ["restorebench", "train", shlex.quote(method.build_ref)]
        + [f"--data {shlex.quote(d)}" for d in datasets]
        + ([f"--steps {steps}"] if steps is not None else [])
        + [f"--seed {seed}"]
        + ([f"--threads {threads}"] if threads is not None else [])
        + ([f"--init {shlex.quote(str(init))}"] if init is not None else [])
    )

    run = TrainingTracker(tracking_uri, method.build_ref, recipe, data_info).open() if tracking else None
    from restorebench.neural.training import fit
    from restorebench.report.console import TrainingLines

    lines = TrainingLines(recipe.steps if steps is None else steps)

    def validated(step: int, record: dict[str, float]) -> None:
        lines.validation(step, record)
        if run:
            run.log(step, record)

    result = fit(
        recipe, network, images, keys, steps=steps, seed=seed, num_threads=threads, log_fn=validated, step_fn=lines.step
    )
    import torch

    held_out = set(result.val_keys)
    metadata = {
        "architecture": recipe.architecture,
        "config": recipe.config,
        "method": method.build_ref,
        "command": command,
        "recipe": recipe.describe(),
        "data": {**data_info, "validation": sorted(k for k, h in data_info["files"].items() if h in held_out)},
        "seed": seed,
        "threads": torch.get_num_threads(),
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "metrics": {"val_psnr": result.val_psnr, "val_psnr_input": result.val_psnr_input},
        "history": result.history,
        "versions": {
            "restorebench": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    if started_from is not None:
        metadata["init"] = started_from
    if run is not None:
        metadata["mlflow"] = run.ids()
    from restorebench.neural.checkpoints import save_checkpoint

    save_checkpoint(target, result.state_dict, metadata)
    summary = TrainSummary(target, metadata)
    if run is not None:
        summary.mlflow_run_id, summary.tracking_error = run.finish(target, result)
    return summary


def colour_only(images: list[np.ndarray], keys: list[str], datasets: list[str], method: str) -> tuple[list, list]:
    """The colour images of a colorization recipe's data: gray ones (one channel, or three equal
    ones) teach no colour and are left out with a warning; none left is a UserError."""
    colour = [i for i, img in enumerate(images) if img.ndim == 3 and img.shape[2] == 3 and not _equal_channels(img)]
    if not colour:
        raise UserError(
            f"{method} learns colours, but every one of the {len(images)} training images of "
            f"{', '.join(datasets)} is gray",
            hint="train on colour images, e.g. --data folder:../shared/data/train/BSDS400",
        )
    if len(colour) < len(images):
        log.warning(
            "%d of %d training images are gray and are left out: %s learns colours",
            len(images) - len(colour),
            len(images),
            method,
        )
    return [images[i] for i in colour], [keys[i] for i in colour]


def _equal_channels(img: np.ndarray) -> bool:
    return bool(np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]))


def _trainable(method_ref: str) -> str:
    """``method_ref`` when it names a neural method; else a UserError listing the ones that train."""
    from restorebench.core.errors import choices
    from restorebench.core.refs import Ref
    from restorebench.core.registry import METHODS

    name = Ref.parse(method_ref, what="method").name
    neural = [n for n, cls in METHODS.items() if cls.kind == "neural"]
    if name not in neural:
        what = "a classical method, which has nothing to train" if name in METHODS else "not a method"
        raise UserError(f"cannot train {name!r}: {what}; trainable methods: {choices(neural)}")
    return method_ref


def default_output(method: Any) -> Path:
    """Where a checkpoint goes without ``--out``: a new file under ``runs/train/``, never the
    committed checkpoint (``--out`` that path to replace it on purpose)."""
    from datetime import datetime

    from restorebench.core.refs import slug

    stamp = f"{slug(method.build_ref)}-{datetime.now():%Y%m%d-%H%M%S}"
    return Path("runs") / "train" / stamp / method.training_output().name


def checked_output(target: Path) -> Path:
    """``target`` if a checkpoint can be written there, checked before the first step (a
    training run is minutes to hours): a ``.safetensors`` file in a folder that can be made."""
    if target.is_dir():
        raise UserError(f"--out {target} is a folder", hint=f"give a file, e.g. {target / 'model.safetensors'}")
    if target.suffix != ".safetensors":
        raise UserError(
            f"--out {target}: checkpoints are written as .safetensors",
            hint=f"e.g. --out {target.with_suffix('.safetensors')}",
        )
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {target}: cannot create its folder {folder} ({exc.strerror or exc})") from None
    import os

    if not os.access(folder, os.W_OK):
        raise UserError(f"--out {target}: its folder {folder} is not writable")
    return target


def _start_from(path: Path, network: Any, recipe: Any) -> dict[str, Any]:
    """Load ``path`` into ``network`` (same architecture and configuration, else a
    UserError); what the metadata records of it."""
    from restorebench.neural.checkpoints import file_sha256, load_checkpoint

    state, meta = load_checkpoint(path)
    adopted = False
    adopt = getattr(network, "adopt", None)  # a network that can start from a related one's weights
    if adopt is not None and meta.get("architecture") == recipe.architecture and meta.get("config") != recipe.config:
        try:
            state, adopted = adopt(state, meta.get("config")), True
        except (ValueError, KeyError):  # not a network it can adopt: refused below
            pass
    if meta.get("architecture") != recipe.architecture or (meta.get("config") != recipe.config and not adopted):
        raise UserError(
            f"--init {path} holds a {meta.get('architecture')} network with {meta.get('config')}, "
            f"not this recipe's {recipe.architecture} with {recipe.config}",
            hint="give a checkpoint of the same method and variant",
        )
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"--init {path} does not fit the network: {first}") from None
    return {
        "sha256": file_sha256(path),
        "command": meta.get("command"),
        "steps": meta.get("steps"),
        "val_psnr": (meta.get("metrics") or {}).get("val_psnr"),
        "init": meta.get("init"),
        **({"adopted_from_config": meta.get("config")} if adopted else {}),
    }
