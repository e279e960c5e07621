"""Neural methods: checkpoint resolution, device, batching and tiling in one adapter.

A task's neural method subclasses :class:`NeuralMethod` and says only what is special
about it: how to build its network from a checkpoint's ``config``, which checkpoint
fits an input, and how an input becomes a tensor and back (:meth:`prepare` /
:meth:`finish`). Everything else (weights-only loading, CUDA when present, batching of
equal-sized inputs, tiling with overlap for large images) lives here once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from restorebench.core.errors import UserError
from restorebench.core.interfaces import Degraded, Method, Params, Resources


class NeuralParams(Params):
    """Options every neural method takes."""

    checkpoint: str | None = None  # a checkpoint file; None = the committed default
    tile: int = Field(0, ge=0)  # tile side in pixels of the network input; 0 = whole image
    tile_overlap: int = Field(16, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_gpus: float = Field(0.0, ge=0)  # what a Ray worker reserves (fractions allowed)
    num_cpus: float = Field(1.0, gt=0)


@lru_cache(maxsize=64)
def _file_hash(path: str, mtime: float, size: int) -> str:
    from restorebench.neural.checkpoints import file_sha256

    return file_sha256(path)


def checkpoint_sha256(path: str | Path) -> str:
    """SHA-256 of a checkpoint file (cached while the file is unchanged)."""
    st = os.stat(path)
    return _file_hash(str(path), st.st_mtime, st.st_size)


class NeuralMethod(Method):
    """Base of the neural methods: one network per checkpoint, loaded once per worker."""

    kind = "neural"
    Params: ClassVar[type[Params]] = NeuralParams
    unlabelled_params: ClassVar[frozenset[str]] = frozenset({"device", "num_gpus", "num_cpus", "checkpoint"})
    architecture: ClassVar[str] = ""
    checkpoint_dir: ClassVar[Path | None] = None  # where the committed checkpoints live

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self._nets: dict[str, Any] = {}
        self._channels: dict[str, int | None] = {}  # input channels each network expects
        self._device: Any = None

    # ------------------------------------------------------------ to override

    def build_network(self, config: dict[str, Any]) -> Any:
        """The torch module for a checkpoint's ``config``."""
        raise NotImplementedError

    def default_checkpoints(self) -> list[Path]:
        """Every committed checkpoint this method may use (hashed into unit ids)."""
        raise NotImplementedError

    def checkpoint_for(self, item: Degraded) -> Path:
        """The checkpoint that fits this input (default: the only one)."""
        return self.checkpoints()[0]

    def prepare(self, item: Degraded) -> tuple[np.ndarray, Any]:
        """Network input (C, H, W float32) and whatever :meth:`finish` needs."""
        return np.ascontiguousarray(item.image.transpose(2, 0, 1)), None

    def finish(self, output: np.ndarray, context: Any, item: Degraded) -> np.ndarray:
        """The restored image (H, W, C) from the network output (C, H, W)."""
        return output.transpose(1, 2, 0)

    scale: ClassVar[int] = 1  # network output size / input size

    def recipe(self) -> Any:
        """The :class:`restorebench.neural.training.Recipe` that trains this variant's checkpoint."""
        raise UserError(f"{self.qualified_name} has no training recipe")

    def training_output(self) -> Path:
        """Where ``restorebench train`` writes by default: this variant's committed checkpoint."""
        return self.default_checkpoints()[0]

    def convert_official(self, weights: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Map released weights (:class:`restorebench.neural.official.OfficialWeights`) onto this
        architecture: returns a torch state dict and the network ``config``. By default there is
        none (``restorebench convert`` says which methods have one)."""
        raise UserError(
            f"{self.qualified_name} has no mapping for released weights",
            hint=f"pass a restorebench checkpoint with --method '{self.qualified_name}?checkpoint=FILE.safetensors'",
        )

    def config_from_tensors(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """What a checkpoint's tensor names and shapes say about config keys (e.g. DnCNN's
        ``depth`` is its number of convolutions), read without building anything: a config
        that contradicts them is refused before the network is built. ``{}``: nothing said
        (the build is still bounded by :func:`restorebench.neural.fit.bounded_build`)."""
        return {}

    def probe_input(self, network: Any, channels: int | None) -> Any:
        """A small seeded input for the forward pass that proves a converted checkpoint
        (``1 x C x 64 x 64`` in [0, 1]; ``C`` the config's channels, else the first
        convolution's input channels)."""
        import torch

        if channels is None:
            found = (getattr(m, "in_channels", None) for m in network.modules())
            channels = next((c for c in found if isinstance(c, int)), 3)
        return torch.rand((1, channels, 64, 64), generator=torch.Generator().manual_seed(0))

    @classmethod
    def maps_released_weights(cls) -> bool:
        """Whether ``restorebench convert`` can map released weights onto this method."""
        return cls.convert_official is not NeuralMethod.convert_official

    # ------------------------------------------------------------ the adapter

    def checkpoints(self) -> list[Path]:
        """The checkpoint given as a parameter, or the committed defaults."""
        if self.params.checkpoint:
            path = Path(self.params.checkpoint).expanduser()
            if not path.is_file():
                raise UserError(f"checkpoint {path} of {self.qualified_name} does not exist")
            return [path]
        paths = self.default_checkpoints()
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise UserError(
                f"{self.qualified_name}: committed checkpoint {missing[0]} is missing",
                hint=f"train it with `restorebench train {self.qualified_name}` or pass ?checkpoint=PATH",
            )
        return paths

    def describe_checkpoints(self) -> list[dict[str, Any]]:
        """What each checkpoint is: file, SHA-256, training steps and time, the validation
        PSNR it reached, the command that trains it and its MLflow training run."""
        from restorebench.neural.checkpoints import read_metadata

        rows = []
        for path in self.checkpoints():
            meta = read_metadata(path)
            rows.append(
                {
                    "file": str(path),
                    "sha256": checkpoint_sha256(path)[:12],
                    "architecture": meta.get("architecture", "?"),
                    "steps": meta.get("steps", "-"),
                    "seconds": meta.get("seconds", "-"),
                    "val_psnr": (meta.get("metrics") or {}).get("val_psnr"),
                    "command": meta.get("command", "-"),
                    "mlflow_run": (meta.get("mlflow") or {}).get("run_id") or "-",
                }
            )
        return rows

    def identity(self) -> dict[str, Any]:
        """Adds the checkpoints' SHA-256 and the inference threads (``num_cpus``): CPU results
        differ in their last bits between thread counts, so they are different units."""
        ident = super().identity()
        ident["checkpoints"] = sorted(checkpoint_sha256(p) for p in self.checkpoints())
        ident["threads"] = max(1, int(self.params.num_cpus))
        return ident

    def required_resources(self) -> Resources:
        return Resources(num_cpus=self.params.num_cpus, num_gpus=self.params.num_gpus)

    def parameter_count(self) -> int | None:
        """Parameters of the largest network this method may run (e.g. DnCNN's colour model
        beside its gray one): the leaderboard's size of the method. Read from a
        ``.safetensors`` header without building the network (the driver never loads one)."""
        from restorebench.neural.checkpoints import parameter_count

        try:
            paths = self.checkpoints()
        except UserError:
            if self.params.checkpoint:
                raise
            return self.architecture_parameter_count()  # no committed weights: the architecture's size
        counts = []
        for path in paths:
            if path.suffix == ".safetensors":
                counts.append(parameter_count(path))
            else:  # a plain state dict given by the user: build it to count
                counts.append(int(sum(p.numel() for p in self._network(path).parameters())))
        return max(counts)

    def architecture_parameter_count(self) -> int:
        """Parameters of the network built with the variant's default config, on torch's meta
        device (no memory): the size of e.g. a released architecture whose weights are not shipped."""
        import torch

        with torch.device("meta"):
            net = self.build_network({})
        return int(sum(p.numel() for p in net.parameters()))

    def setup(self) -> None:
        import torch

        want = self.params.device
        if want == "cuda" and not torch.cuda.is_available():
            raise UserError(f"{self.qualified_name}: device=cuda asked for, but no CUDA device is visible")
        self._device = torch.device(
            "cuda" if want == "cuda" or (want == "auto" and torch.cuda.is_available()) else "cpu"
        )
        self.checkpoints()  # fail early on a missing file

    def device_name(self) -> str:
        import torch

        if self._device is not None and self._device.type == "cuda":
            return f"cuda:{torch.cuda.get_device_name(self._device)}"
        return "cpu"

    def _network(self, path: Path) -> Any:
        key = str(path)
        if key not in self._nets:
            from restorebench.neural.checkpoints import load_checkpoint

            state, meta = load_checkpoint(path)
            config = meta.get("config", {})
            skeleton, state = self.fit_checkpoint(path, config, state, converted=bool(meta))
            # Materialise the checked skeleton (one build); a network with buffers the state
            # does not hold (non-persistent ones) is built again for real, so they are set.
            persistent = set(skeleton.state_dict())
            net = skeleton.to_empty(device="cpu") if all(n in persistent for n, _ in skeleton.named_buffers()) else None
            net = net if net is not None else self.build_network(config)
            self._channels[key] = config.get("channels")
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise UserError(
                    f"{path} does not fit {self.qualified_name}: {str(exc).splitlines()[0]}",
                    hint=f"official weights go through `restorebench convert {path} --method {self.qualified_name}` first",
                ) from None
            net.eval()
            if self._device is None:
                self.setup()
            self._nets[key] = net.to(self._device)
        return self._nets[key]

    def fit_checkpoint(
        self, path: str | Path, config: Any, state: dict[str, Any], *, converted: bool = False, hint: str | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """The network of ``config`` built on torch's meta device (no memory) and ``state``
        brought to its layout, checked: config keys against what the tensors say, the build
        bounded by the number of tensors, then every name and shape. A checkpoint whose
        metadata asks for a huge network is refused before anything is allocated.
        ``converted``: the file is one of ours (restorebench metadata), not released weights;
        ``hint``: what a mismatch error suggests instead of converting or re-creating the file.
        """
        from restorebench.neural.fit import bounded_build, check_config, describe_mismatch, normalise_state

        if not isinstance(config, dict):
            raise UserError(f"{path}: its metadata config is a {type(config).__name__}, not a dict; re-create the file")
        stored = {k: tuple(v.shape) for k, v in state.items()}
        check_config(path, config, self.config_from_tensors(stored), self.qualified_name)
        try:
            skeleton = bounded_build(
                lambda: self.build_network(config),
                tensors=len(stored),
                config=config,
                path=path,
                name=self.qualified_name,
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise UserError(
                f"{path}: its config {config} does not build {self.qualified_name}: {type(exc).__name__}: {exc}",
                hint="the checkpoint's metadata is damaged or was written for another architecture",
            ) from None
        expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
        state = normalise_state(state, expected)
        stored = {k: tuple(v.shape) for k, v in state.items()}
        detail = describe_mismatch(expected, stored, optional=lambda k: k.endswith("num_batches_tracked"))
        if detail:
            hint = hint or (
                "re-create it from the released weights with "
                f"`restorebench convert WEIGHTS --method {self.qualified_name} --out FILE.safetensors`"
                if converted
                else f"official weights go through `restorebench convert {path} --method {self.qualified_name}` first"
            )
            raise UserError(f"{path} does not fit {self.qualified_name} with its config {config}: {detail}", hint=hint)
        return skeleton, state

    def check_checkpoint(self, path: str | Path) -> tuple[int, ...]:
        """Load ``path`` as a run does and run one forward pass on :meth:`probe_input`: the
        proof ``restorebench convert`` gives before it says "wrote". Returns the output's
        shape; a UserError when the file does not load, the forward fails, or it gives NaN
        or infinite values."""
        import torch

        path = Path(path)
        net = self._network(path)
        x = self.probe_input(net, self._channels.get(str(path)))
        shape = "x".join(map(str, x.shape))
        try:
            with torch.inference_mode():
                y = tiled_forward(net, x.to(self._device), tile=0, overlap=0, scale=self.scale)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise UserError(
                f"{path}: a forward pass of {self.qualified_name} on a {shape} input fails: {first}"
            ) from None
        outputs = list(y) if isinstance(y, (tuple, list)) else [y]
        if not all(bool(torch.isfinite(t).all()) for t in outputs if isinstance(t, torch.Tensor)):
            raise UserError(
                f"{path}: {self.qualified_name} gives NaN or infinite values on a {shape} input; the weights are "
                "damaged (e.g. a negative batch-norm variance) or belong to another network"
            )
        return tuple(outputs[0].shape)

    def restore(self, batch: Sequence[Degraded]) -> list[np.ndarray]:
        """Run equal-sized inputs that use the same checkpoint as one batch."""
        import torch

        prepared = [self.prepare(item) for item in batch]
        outputs: list[np.ndarray | None] = [None] * len(batch)
        groups: dict[tuple, list[int]] = {}
        for i, (item, (x, _)) in enumerate(zip(batch, prepared)):
            groups.setdefault((str(self.checkpoint_for(item)), x.shape), []).append(i)
        with torch.inference_mode():
            for (path, _), idx in groups.items():
                net = self._network(Path(path))
                x = torch.from_numpy(np.stack([prepared[i][0] for i in idx])).to(self._device)
                x, restore_channels = _match_channels(x, self._channels.get(path))
                y = tiled_forward(net, x, tile=self.params.tile, overlap=self.params.tile_overlap, scale=self.scale)
                y = restore_channels(y).float().cpu().numpy()
                for j, i in enumerate(idx):
                    outputs[i] = self.finish(y[j], prepared[i][1], batch[i])
        return [np.asarray(o, dtype=np.float32) for o in outputs]


def _match_channels(x: Any, expected: int | None) -> tuple[Any, Any]:
    """Fit a batch to a network's channels, and the function that undoes it on the output.

    Gray through a colour network: the channel repeated three times, the output averaged.
    Colour through a gray network: each channel on its own (folded into the batch).
    """
    n, c, h, w = x.shape
    if expected is None or expected == c:
        return x, lambda y: y
    if c == 1 and expected == 3:
        return x.expand(n, 3, h, w).contiguous(), lambda y: y.mean(dim=1, keepdim=True)
    if expected == 1:
        return x.reshape(n * c, 1, h, w), lambda y: y.reshape(n, c, *y.shape[2:])
    raise UserError(f"a {c}-channel input cannot go through a network trained on {expected} channels")


def tiled_forward(net: Any, x: Any, *, tile: int, overlap: int, scale: int = 1) -> Any:
    """``net(x)``, or tile by tile for large images.

    ``tile`` is the side of an input tile; 0 (or an image no larger than a tile) runs the
    whole image at once. Neighbouring tiles overlap by ``overlap`` pixels and each keeps
    only its inner part (half the overlap is dropped on every inner side), so the result
    equals the whole-image forward wherever the network's receptive-field radius is at
    most ``overlap // 2``.
    """
    import torch  # noqa: F401  (tensors come in)

    n, _, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return net(x)
    if overlap >= tile:
        raise UserError(f"tile_overlap ({overlap}) must be smaller than tile ({tile})")
    out = None
    for top, t0, t1 in _spans(h, tile, overlap):
        for left, l0, l1 in _spans(w, tile, overlap):
            patch = net(x[:, :, top : top + tile, left : left + tile])
            if out is None:
                out = patch.new_zeros((n, patch.shape[1], h * scale, w * scale))
            out[:, :, (top + t0) * scale : (top + t1) * scale, (left + l0) * scale : (left + l1) * scale] = patch[
                :, :, t0 * scale : t1 * scale, l0 * scale : l1 * scale
            ]
    return out


def _spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """(start, keep_from, keep_to) per tile along one axis; the kept parts cover 0..size."""
    if size <= tile:
        return [(0, 0, size)]
    starts = list(range(0, size - tile, tile - overlap)) + [size - tile]
    lo, hi = overlap // 2, overlap - overlap // 2
    return [(s, 0 if s == 0 else lo, tile if s + tile == size else tile - hi) for s in starts]
