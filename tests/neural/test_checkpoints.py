"""Checkpoints and official weight formats: every file is built here, in tmp_path."""

from __future__ import annotations

import builtins
import functools
import hashlib
import importlib
import importlib.util
import os
import pickle
import shlex
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from restorebench.core.errors import UserError
from restorebench.neural.checkpoints import (
    PickledCheckpointError,
    checkpoint_hash,
    file_sha256,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from restorebench.neural.official import (
    MatLayer,
    read_mat_variables,
    read_matconvnet,
    read_official,
    read_pickled_model,
)
from tests import REPO

# --- models whose classes live in this test module ------------------------------------------


class TinyDnCNN(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.Conv2d(8, 1, 3, padding=1)
        )


class SharedStorage(nn.Module):
    """Buffers that are views (offset, strided, transposed) of one storage, and odd dtypes."""

    def __init__(self) -> None:
        super().__init__()
        base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
        self.register_buffer("base", base)
        self.register_buffer("rows", base[1:3])
        self.register_buffer("column", base[:, 2])
        self.register_buffer("transposed", base.t())
        self.weight = nn.Parameter(torch.linspace(-1, 1, 15).reshape(3, 5)[:, 1:4])
        self.register_buffer("scratch", torch.ones(2), persistent=False)
        self.register_buffer("fp16", torch.tensor([0.5, -2.25, 65504.0], dtype=torch.float16))
        self.register_buffer("bf16", torch.tensor([1.5, -3.0, 1e-3], dtype=torch.bfloat16))
        self.register_buffer("flags", torch.tensor([True, False, True]))
        self.register_buffer("nothing", None)
        self.inner = nn.Linear(4, 2)


def _trained_dncnn() -> TinyDnCNN:
    torch.manual_seed(0)
    model = TinyDnCNN()
    model.train()
    for _ in range(2):  # moves BatchNorm's running stats and num_batches_tracked
        model(torch.rand(2, 1, 8, 8))
    return model


def _numpy_state(model: nn.Module) -> dict[str, np.ndarray]:
    out = {}
    for name, t in model.state_dict().items():
        t = t.detach()
        out[name] = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    return out


def _assert_state_equal(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(got) == list(expected)
    for name, array in expected.items():
        assert got[name].dtype == array.dtype, name
        assert got[name].shape == array.shape, name
        np.testing.assert_array_equal(got[name], array, err_msg=name)


def _bits(t: torch.Tensor) -> bytes:
    return t.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()


# --- our safetensors checkpoints ------------------------------------------------------------


METADATA = {
    "architecture": "dncnn",
    "config": {"depth": 17, "channels": 64, "bias": True},
    "recipe": {"optimizer": "adam", "lr": 1e-3, "milestones": [30, 60]},
    "data": {"name": "BSD400 patches", "sha256": "ab" * 32},
    "steps": 1200,
    "validation": {"psnr": 31.72, "ssim": None},
    "versions": {"torch": torch.__version__, "note": "σ=25 ✓"},
}


def test_safetensors_round_trip_is_bit_identical(tmp_path):
    torch.manual_seed(1)
    shared = torch.randn(4, 4)
    state = {
        "conv.weight": torch.randn(8, 1, 3, 3, requires_grad=True),
        "conv.bias": torch.tensor([float("nan"), float("inf"), -0.0, 1e-45]),
        "half": torch.randn(5).half(),
        "brain": torch.randn(5).bfloat16(),
        "count": torch.tensor(7, dtype=torch.int64),
        "transposed": torch.randn(3, 5).t(),
        "tied_a": shared,
        "tied_b": shared,
        "slice": torch.arange(10.0)[2:5],
    }
    path = save_checkpoint(tmp_path / "sub" / "model.safetensors", state, METADATA)
    assert path == tmp_path / "sub" / "model.safetensors"
    assert os.listdir(path.parent) == ["model.safetensors"]  # no temporary files left
    loaded, metadata = load_checkpoint(path)
    assert metadata == METADATA
    assert set(loaded) == set(state)
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype and loaded[name].shape == tensor.shape
        assert _bits(loaded[name]) == _bits(tensor), name
    assert checkpoint_hash(path) == file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    import safetensors.torch

    path = save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(2)}, METADATA)
    before = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": torch.zeros(2)}, METADATA)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"config": {}}, "architecture"),
        ({"architecture": 3}, "architecture"),
        ({"architecture": "dncnn", "config": [1, 2]}, "config"),
        ({"architecture": "dncnn", "data": Path("/x")}, "JSON"),
        ({"architecture": "dncnn", "psnr": float("nan")}, "JSON"),
    ],
)
def test_save_validates_metadata(tmp_path, metadata, match):
    with pytest.raises(UserError, match=match):
        save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(1)}, metadata)
    assert os.listdir(tmp_path) == []


def test_save_rejects_non_tensors_and_wrong_suffix(tmp_path):
    with pytest.raises(UserError, match="tensors under string names"):
        save_checkpoint(tmp_path / "m.safetensors", {"w": np.ones(2)}, METADATA)
    with pytest.raises(UserError, match=r"\.safetensors"):
        save_checkpoint(tmp_path / "m.pth", {"w": torch.ones(2)}, METADATA)
    assert os.listdir(tmp_path) == []


def test_safetensors_without_our_metadata(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(3)}, str(tmp_path / "plain.safetensors"))
    save_file({"w": torch.ones(3)}, str(tmp_path / "other.safetensors"), metadata={"format": "pt"})
    for name in ("plain", "other"):
        state, metadata = load_checkpoint(tmp_path / f"{name}.safetensors")
        assert metadata == {} and torch.equal(state["w"], torch.ones(3))


def test_safetensors_with_broken_metadata(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(3)}, str(tmp_path / "m.safetensors"), metadata={"restorebench": "{oops"})
    with pytest.raises(UserError, match="not valid JSON"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_read_metadata_reads_the_header_only(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(3)}, METADATA)
    assert read_metadata(path) == METADATA == load_checkpoint(path)[1]
    from safetensors.torch import save_file

    save_file({"w": torch.ones(3)}, str(tmp_path / "plain.safetensors"))
    assert read_metadata(tmp_path / "plain.safetensors") == {}
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(UserError, match="junk.safetensors is not a readable"):
        read_metadata(tmp_path / "junk.safetensors")


# --- PyTorch state dicts (weights only) -------------------------------------------------------


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(2)
    return {
        "head.weight": torch.randn(4, 1, 3, 3),
        "head.bias": torch.randn(4),
        "bn.num_batches_tracked": torch.tensor(3),
    }


@pytest.mark.parametrize(
    ("suffix", "wrap"),
    [
        (".pth", lambda s: s),
        (".pt", lambda s: {"params": s}),
        (".ckpt", lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}, "epoch": 9}),
        (".bin", lambda s: {"params": {k: v * 0 for k, v in s.items()}, "params_ema": s}),
        (".pth", lambda s: {"net": s, "generator": {k: v + 1 for k, v in s.items()}, "iter": 5}),
        (".pth", lambda s: {"model": s, "optimizer": {"state": {}, "param_groups": []}}),
    ],
    ids=["plain", "params", "lightning+module", "ema-preferred", "net-over-generator", "model"],
)
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torch_state_dicts_load(tmp_path, suffix, wrap, legacy):
    path = tmp_path / f"weights{suffix}"
    torch.save(wrap(_state()), path, _use_new_zipfile_serialization=not legacy)
    state, metadata = load_checkpoint(path)
    assert metadata == {}
    assert list(state) == list(_state())
    for name, tensor in _state().items():
        assert torch.equal(state[name], tensor)
    weights = read_official(path)
    assert weights.source_format == "state_dict"
    _assert_state_equal(weights.state_dict, {k: v.numpy() for k, v in _state().items()})


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_every_pickle_protocol_loads_without_a_warning(tmp_path, protocol, legacy):
    """torch.load warned "Detected pickle protocol N" on every run, and its weights-only reader
    refused protocols 4 and 5 (no FRAME opcode) as "not a readable PyTorch file"."""
    import argparse
    import warnings

    save = functools.partial(torch.save, pickle_protocol=protocol, _use_new_zipfile_serialization=not legacy)
    save({"state_dict": _state(), "epoch": 3}, tmp_path / "weights.pth")
    model = _trained_dncnn()
    save(model, tmp_path / "model.pth")
    save({"state_dict": _state(), "args": argparse.Namespace(lr=0.1)}, tmp_path / "with_args.pth")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state, _ = load_checkpoint(tmp_path / "weights.pth")
        for pickled in ("model.pth", "with_args.pth"):  # the weights-only rule holds for every protocol
            with pytest.raises(PickledCheckpointError, match="restorebench convert"):
                load_checkpoint(tmp_path / pickled)
        official = read_official(tmp_path / "model.pth")
    assert [str(w.message) for w in caught if "pickle protocol" in str(w.message)] == []
    assert list(state) == list(_state()) and all(torch.equal(state[k], v) for k, v in _state().items())
    assert official.source_format == "pickled_model"
    _assert_state_equal(official.state_dict, _numpy_state(model))
    with warnings.catch_warnings(record=True) as caught:  # the filter is lifted after each load
        warnings.simplefilter("always")
        warnings.warn("Detected pickle protocol 4 in the checkpoint", UserWarning, stacklevel=1)
    assert len(caught) == 1


def test_torch_payload_without_state_dict(tmp_path):
    path = tmp_path / "opt.pth"
    torch.save({"optimizer": {"lr": 0.1}, "epoch": 3}, path)
    with pytest.raises(UserError, match="no state dict") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_whole_model_is_refused_with_convert_hint_then_read_safely(tmp_path, legacy):
    model = _trained_dncnn()
    path = tmp_path / "dncnn.pth"
    torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(PickledCheckpointError, match="restorebench convert") as info:
        load_checkpoint(path)
    assert isinstance(info.value, UserError) and str(path) in str(info.value)
    assert "pickled Python objects" in str(info.value)
    weights = read_official(path)
    assert weights.source_format == "pickled_model"
    _assert_state_equal(weights.state_dict, _numpy_state(model))


# --- whole pickled models, read without their code ---------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_read_pickled_sequential_equals_state_dict(tmp_path, legacy):
    model = _trained_dncnn()
    path = tmp_path / "model.pt"
    torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    state = read_pickled_model(path)
    _assert_state_equal(state, _numpy_state(model))
    assert int(state["1.num_batches_tracked"]) == 2 and state["1.num_batches_tracked"].dtype == np.int64


@pytest.mark.parametrize("pickled_as", ["parameter_class", "rebuild_parameter", "rebuild_with_hooks", "with_state"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_parameters_pickled_by_any_pytorch_read_as_tensors(tmp_path, legacy, pickled_as, monkeypatch):
    """torch.save(model) of old and new PyTorch: the DnCNN authors' model.pth (PyTorch 0.4)
    stores Parameter(data, requires_grad) itself; newer ones _rebuild_parameter(...)."""
    import collections

    import torch._utils as tu

    reducers = {
        "parameter_class": lambda p, proto: (nn.Parameter, (p.data, p.requires_grad)),
        "rebuild_parameter": lambda p, proto: (
            tu._rebuild_parameter,
            (p.data, p.requires_grad, collections.OrderedDict()),
        ),
        "rebuild_with_hooks": lambda p, proto: (
            tu._rebuild_parameter,
            (p.data, p.requires_grad, collections.OrderedDict([(0, print)])),
        ),
        "with_state": lambda p, proto: (
            tu._rebuild_parameter_with_state,
            (p.data, p.requires_grad, collections.OrderedDict(), {"tag": 1}),
        ),
    }
    model = _trained_dncnn()
    monkeypatch.setattr(nn.Parameter, "__reduce_ex__", reducers[pickled_as])
    path = tmp_path / "model.pth"
    torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    monkeypatch.undo()
    raw = path.read_bytes()
    if not legacy:
        raw = zipfile.ZipFile(path).read(next(n for n in zipfile.ZipFile(path).namelist() if n.endswith("data.pkl")))
    assert (b"torch.nn.parameter\nParameter" in raw) == (pickled_as == "parameter_class")
    assert (b"_rebuild_parameter" in raw) == (pickled_as != "parameter_class")
    state = read_pickled_model(path)  # was: "0.weight is a torch.nn.parameter.Parameter object (not imported)"
    _assert_state_equal(state, _numpy_state(model))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_read_pickled_views_shared_storage_and_dtypes(tmp_path, legacy):
    model = SharedStorage()
    path = tmp_path / "shared.pth"
    torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    if not legacy:  # the views really share one storage in the file
        storages = [n for n in zipfile.ZipFile(path).namelist() if "/data/" in n]
        assert len(storages) < len(model.state_dict())
    state = read_pickled_model(path)
    _assert_state_equal(state, _numpy_state(model))
    assert "scratch" not in state and "nothing" not in state
    assert state["transposed"].flags.c_contiguous and state["bf16"].dtype == np.float32


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_read_pickled_model_whose_module_is_gone(tmp_path, legacy):
    folder = tmp_path / "code"
    folder.mkdir()
    name = f"vanishing_arch_{'legacy' if legacy else 'zip'}"
    (folder / f"{name}.py").write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.PReLU(c))
                self.scale = nn.Parameter(torch.full((1, c, 1, 1), 0.1))

        class VanishingNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.head = nn.Conv2d(3, 4, 3, padding=1, bias=False)
                self.blocks = nn.ModuleList([Block(4), Block(4)])
                self.norm = nn.BatchNorm2d(4)
                self.register_buffer("mean", torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1))
    """)
    )
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(name)
        torch.manual_seed(3)
        model = module.VanishingNet()
        path = tmp_path / "vanishing.pth"
        torch.save(model, path, _use_new_zipfile_serialization=not legacy)
        expected = _numpy_state(model)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)
    (folder / f"{name}.py").unlink()
    importlib.invalidate_caches()
    assert importlib.util.find_spec(name) is None
    state = read_pickled_model(path)
    _assert_state_equal(state, expected)
    assert name not in sys.modules


def test_read_pickled_plain_dict_and_data_parallel(tmp_path):
    torch.save(_state(), tmp_path / "sd.pth")
    _assert_state_equal(read_pickled_model(tmp_path / "sd.pth"), {k: v.numpy() for k, v in _state().items()})
    model = _trained_dncnn()
    torch.save({"model": nn.DataParallel(model), "epoch": 4}, tmp_path / "dp.pth")
    _assert_state_equal(read_pickled_model(tmp_path / "dp.pth"), _numpy_state(model))


class _Shell:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.sentinel))}",))


class _Writer:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (builtins.open, (str(self.sentinel), "w"))


def _malicious_files(tmp_path: Path, sentinel: Path) -> list[Path]:
    files = []
    for i, payload in enumerate((_Shell(sentinel), _Writer(sentinel))):
        raw = tmp_path / f"raw{i}.pth"
        raw.write_bytes(pickle.dumps(payload, protocol=2))
        files.append(raw)
        for legacy in (False, True):
            path = tmp_path / f"torch{i}{'_legacy' if legacy else ''}.pth"
            torch.save({"weight": torch.ones(2), "payload": payload}, path, _use_new_zipfile_serialization=not legacy)
            files.append(path)
    return files


def test_malicious_pickles_never_run(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    files = _malicious_files(tmp_path, sentinel)
    assert not sentinel.exists()
    for path in files:
        for reader in (load_checkpoint, read_pickled_model, read_official):
            with pytest.raises(UserError) as info:
                reader(path)
            assert str(path) in str(info.value), (reader.__name__, path)
            assert not sentinel.exists(), (reader.__name__, path)
    with pytest.raises(UserError, match="convert"):
        load_checkpoint(files[1])


def test_malicious_payload_beside_weights_stays_inert(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "mixed.pth"
    torch.save({"params": {"w": torch.arange(3.0)}, "hook": _Shell(sentinel)}, path)
    assert read_pickled_model(path)["w"].tolist() == [0.0, 1.0, 2.0]
    assert not sentinel.exists()


def test_read_pickled_refuses_garbage(tmp_path):
    (tmp_path / "junk.pth").write_bytes(os.urandom(256))
    (tmp_path / "fake.pth").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    for name in ("junk.pth", "fake.pth"):
        with pytest.raises(UserError) as info:
            read_pickled_model(tmp_path / name)
        assert name in str(info.value)


# --- MATLAB files ----------------------------------------------------------------------------


def _dncnn_layers() -> list[dict]:
    rng = np.random.default_rng(4)

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def conv(name, cin, cout):
        filters = f32(3, 3, cin, cout) if cout > 1 else f32(3, 3, cin)  # MATLAB drops a trailing 1
        return {
            "type": "conv",
            "name": name,
            "weights": [filters, f32(1, cout)],
            "stride": np.array([[1.0, 1.0]]),
            "pad": np.array([[1.0, 1.0, 1.0, 1.0]]),
            "dilate": 1.0,
            "precious": np.array([[0]], np.uint8),
            "opts": [],
        }

    def relu(name):
        return {"type": "relu", "name": name, "leak": 0.0, "weights": []}

    bnorm = {
        "type": "bnorm",
        "name": "bnorm2",
        "weights": [f32(16, 1), f32(16, 1), np.abs(f32(16, 2))],
        "epsilon": 1e-4,
        "learningRate": np.array([[1.0, 1.0, 1.0]]),
        "precious": np.array([[0]], np.uint8),
    }
    return [conv("conv1", 1, 16), relu("relu1"), conv("conv2", 16, 16), bnorm, relu("relu2"), conv("conv3", 16, 1)]


def _cell(items: list) -> np.ndarray:
    cell = np.empty((1, len(items)) if items else (0, 0), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def _to_v5(value):
    if isinstance(value, dict):
        return {k: _to_v5(v) for k, v in value.items()}
    if isinstance(value, list):
        return _cell([_to_v5(v) for v in value])
    return value


def _write_v5(path: Path, variables: dict) -> Path:
    import scipy.io

    scipy.io.savemat(path, {k: _to_v5(v) for k, v in variables.items()})
    return path


_MATLAB_CLASSES = {np.float64: "double", np.float32: "single", np.uint8: "uint8", np.int32: "int32"}


class _H5Writer:
    """Writes values the way MATLAB's save -v7.3 does: structs as groups, cells as object
    references into #refs#, chars as uint16, dimensions reversed, MATLAB_class attributes."""

    def __init__(self, f, refs=None) -> None:
        self.f = f
        self.refs = f.create_group("#refs#") if refs is None else refs
        self.count = len(self.refs)

    def put_struct_array(self, parent, name: str, items: list[dict]) -> object:
        """A 1xN struct array: one dataset of references per field, no MATLAB_class on them."""
        import h5py

        group = self._cls(parent.create_group(name), "struct")
        for key in items[0]:
            refs = []
            for item in items:
                self.count += 1
                refs.append(self.put(self.refs, f"r{self.count}", item[key]).ref)
            group.create_dataset(key, data=np.array(refs, dtype=h5py.ref_dtype).reshape(-1, 1))
        return group

    def put(self, parent, name: str, value) -> object:
        import h5py

        if isinstance(value, dict):
            obj = parent.create_group(name)
            for key, item in value.items():
                self.put(obj, key, item)
            return self._cls(obj, "struct")
        if isinstance(value, list):
            if not value:
                return self._empty(parent, name, "cell", (0, 0))
            refs = []
            for item in value:
                self.count += 1
                refs.append(self.put(self.refs, f"r{self.count}", item).ref)
            obj = parent.create_dataset(name, data=np.array(refs, dtype=h5py.ref_dtype).reshape(-1, 1))
            return self._cls(obj, "cell")
        if isinstance(value, str):
            if not value:
                return self._empty(parent, name, "char", (0, 0))
            codes = np.array([ord(c) for c in value], np.uint16).reshape(-1, 1)
            return self._cls(parent.create_dataset(name, data=codes), "char")
        array = np.atleast_2d(np.asarray(value, np.float64) if isinstance(value, float) else value)
        cls = _MATLAB_CLASSES[array.dtype.type]
        if array.size == 0:
            return self._empty(parent, name, cls, array.shape)
        return self._cls(parent.create_dataset(name, data=array.T), cls)

    def _empty(self, parent, name, cls, shape):
        obj = parent.create_dataset(name, data=np.array(shape, np.uint64))
        obj.attrs.create("MATLAB_empty", np.uint8(1))
        return self._cls(obj, cls)

    @staticmethod
    def _cls(obj, cls):
        obj.attrs.create("MATLAB_class", np.bytes_(cls))
        return obj


def _write_v73(path: Path, variables: dict, *, userblock: bool = True) -> Path:
    import h5py

    with h5py.File(path, "w", userblock_size=512 if userblock else 0) as f:
        writer = _H5Writer(f)
        for name, value in variables.items():
            writer.put(f, name, value)
    if userblock:
        text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
        header = text.ljust(116, b" ") + bytes(8) + b"\x00\x02IM"
        with path.open("r+b") as f:
            f.write(header.ljust(512, b"\x00"))
    return path


def _assert_same(got, expected, where="") -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), where
        for key in expected:
            _assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert type(got) is type(expected) and len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == expected.dtype, where
        np.testing.assert_array_equal(got, expected, err_msg=where)
        assert got.shape == expected.shape, where
    else:
        assert type(got) is type(expected) and got == expected, where


def _expected_layers() -> list[MatLayer]:
    layers = []
    for spec in _dncnn_layers():
        weights = [np.array(w, np.float32) for w in spec["weights"]]
        if spec["type"] == "conv" and weights[0].ndim == 3:
            weights[0] = weights[0][..., np.newaxis]
        attrs = {k: v for k, v in spec.items() if k not in ("type", "name", "weights")}
        for key, value in attrs.items():
            if isinstance(value, np.ndarray):
                attrs[key] = value.item() if value.size == 1 else value.ravel()
        layers.append(MatLayer(spec["type"], spec["name"], tuple(weights), attrs))
    return layers


def _assert_layers(got: list[MatLayer], expected: list[MatLayer]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert (a.type, a.name) == (b.type, b.name)
        _assert_same(a.weights, b.weights, a.name)
        _assert_same(a.attrs, b.attrs, a.name)


def test_matconvnet_v5_and_v73_read_the_same(tmp_path):
    net = {"layers": _dncnn_layers(), "meta": {"inputSize": np.array([[40.0, 40.0, 1.0]]), "note": "sigma=25"}}
    v5 = _write_v5(tmp_path / "sigma25_v5.mat", {"net": net})
    v73 = _write_v73(tmp_path / "sigma25_v73.mat", {"net": net})
    assert v5.read_bytes().startswith(b"MATLAB 5.0") and v73.read_bytes().startswith(b"MATLAB 7.3")
    layers = read_matconvnet(v5)
    _assert_layers(layers, _expected_layers())
    _assert_layers(read_matconvnet(v73), layers)
    first, last = layers[0], layers[-1]
    assert first.weights[0].shape == (3, 3, 1, 16) and last.weights[0].shape == (3, 3, 16, 1)
    assert [layer.type for layer in layers] == ["conv", "relu", "conv", "bnorm", "relu", "conv"]
    assert layers[3].weights[2].shape == (16, 2) and layers[1].weights == ()
    assert read_official(v5).source_format == "matconvnet_v5"
    assert read_official(v73).source_format == "matconvnet_v73"


def test_matconvnet_top_level_layers_variable(tmp_path):
    path = _write_v73(tmp_path / "old.mat", {"layers": _dncnn_layers()[:2]}, userblock=False)
    assert path.read_bytes().startswith(b"\x89HDF")
    _assert_layers(read_matconvnet(path), _expected_layers()[:2])
    _assert_layers(
        read_matconvnet(_write_v5(tmp_path / "old5.mat", {"layers": _dncnn_layers()[:2]})), _expected_layers()[:2]
    )


def _srcnn_variables() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "weights_conv1": rng.standard_normal((81, 64)),
        "biases_conv1": rng.standard_normal((64, 1)),
        "weights_conv2": rng.standard_normal((64, 32)),
        "biases_conv2": rng.standard_normal((32, 1)),
        "weights_conv3": rng.standard_normal((32, 25)),
        "biases_conv3": rng.standard_normal((1, 1)),
        "filter3d": rng.standard_normal((5, 4, 3)).astype(np.float32),
    }


@pytest.mark.parametrize("version", ["v5", "v73"])
def test_read_mat_variables(tmp_path, version):
    variables = {**_srcnn_variables(), "comment": "SRCNN x3"}
    path = tmp_path / "x3.mat"
    (_write_v5 if version == "v5" else _write_v73)(path, variables)
    got = read_mat_variables(path)
    expected = _srcnn_variables()
    assert set(got) == set(expected)
    for name, array in expected.items():
        _assert_same(got[name], array, name)
    weights = read_official(path)
    assert weights.source_format == f"mat_variables_{version}" and weights.layers is None
    assert set(weights.variables) == set(expected)


def test_load_checkpoint_refuses_mat(tmp_path):
    path = _write_v5(tmp_path / "x3.mat", _srcnn_variables())
    with pytest.raises(UserError, match="restorebench convert") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


# --- bad inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reader", [load_checkpoint, read_official, read_pickled_model, read_matconvnet, read_mat_variables, file_sha256]
)
def test_missing_file_names_the_path(tmp_path, reader):
    suffix = ".mat" if reader in (read_matconvnet, read_mat_variables) else ".pth"
    path = tmp_path / f"nowhere{suffix}"
    with pytest.raises(UserError) as info:
        reader(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("reader", [load_checkpoint, read_official, read_pickled_model])
def test_unknown_extension_lists_accepted(tmp_path, reader):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")
    with pytest.raises(UserError, match=r"\.pth") as info:
        reader(path)
    assert str(path) in str(info.value) and "unknown extension" in str(info.value)


def test_corrupt_safetensors(tmp_path):
    good = save_checkpoint(tmp_path / "good.safetensors", {"w": torch.ones(64)}, METADATA)
    (tmp_path / "truncated.safetensors").write_bytes(good.read_bytes()[:-40])
    (tmp_path / "noise.safetensors").write_bytes(os.urandom(300))
    for name in ("truncated", "noise"):
        path = tmp_path / f"{name}.safetensors"
        for reader in (load_checkpoint, read_official):
            with pytest.raises(UserError) as info:
                reader(path)
            assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[:100], lambda b: b[:-50], lambda b: b"", lambda b: b"\x80\x02\xf4garbage", lambda b: b"\x80\x02R."],
    ids=["head", "tail", "empty", "bad-opcode", "empty-stack"],
)
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_corrupt_pth(tmp_path, damage, legacy):
    path = tmp_path / "broken.pth"
    torch.save(_state(), path, _use_new_zipfile_serialization=not legacy)
    path.write_bytes(damage(path.read_bytes()))
    for reader in (load_checkpoint, read_pickled_model, read_official):
        with pytest.raises(UserError) as info:
            reader(path)
        assert str(path) in str(info.value)
    with pytest.raises(UserError, match="not a readable PyTorch file"):
        load_checkpoint(path)


def test_mat_that_is_neither(tmp_path):
    noise = tmp_path / "noise.mat"
    noise.write_bytes(os.urandom(512))
    text_only = _write_v5(tmp_path / "text.mat", {"comment": "no weights here"})
    text_only_73 = _write_v73(tmp_path / "text73.mat", {"comment": "no weights here"})
    weights_only = _write_v5(tmp_path / "vars.mat", _srcnn_variables())
    cases = [
        (read_official, noise),
        (read_matconvnet, noise),
        (read_mat_variables, noise),
        (read_official, text_only),
        (read_official, text_only_73),
        (read_matconvnet, weights_only),
    ]
    for reader, path in cases:
        with pytest.raises(UserError) as info:
            reader(path)
        assert str(path) in str(info.value), (reader.__name__, path)


def _dagnn_layers() -> list[dict]:
    return [
        {
            "name": f"conv{i}",
            "type": "dagnn.Conv",
            "inputs": [f"x{i - 1}"],
            "outputs": [f"x{i}"],
            "params": [f"conv{i}_f", f"conv{i}_b"],
            "block": {"size": np.array([[3.0, 3.0, 1.0, 64.0]])},
        }
        for i in (1, 2)
    ]


def test_dagnn_is_refused(tmp_path):
    layers = _dagnn_layers()  # DagNN keeps its layers in a struct array, not a cell
    record = np.zeros((1, len(layers)), dtype=[(key, object) for key in layers[0]])
    for i, layer in enumerate(layers):
        for key, value in layer.items():
            record[0, i][key] = _to_v5(value)
    v5 = _write_v5(tmp_path / "dag.mat", {"net": {"layers": record, "vars": [], "params": []}})
    v73 = tmp_path / "dag73.mat"
    _write_v73(v73, {"net": {"vars": [], "params": []}})
    import h5py

    with h5py.File(v73, "r+") as f:
        _H5Writer(f, refs=f["#refs#"]).put_struct_array(f["net"], "layers", layers)
    for path in (v5, v73):
        with pytest.raises(UserError, match="DagNN"):
            read_matconvnet(path)


def test_modules_do_not_import_heavy_libraries():
    code = (
        "import sys, restorebench.neural, restorebench.neural.checkpoints, restorebench.neural.official; "
        "heavy = [m for m in ('torch', 'safetensors', 'scipy.io', 'h5py') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_parameter_count_from_the_header_equals_the_built_networks():
    """The leaderboard's size of a neural method comes from the checkpoint header, without a
    network: it must equal what torch counts on the network built from that checkpoint."""
    from restorebench.core.build import build_method
    from restorebench.core.registry import METHODS
    from restorebench.neural.checkpoints import parameter_count

    checked = 0
    for name, cls in METHODS.items():
        if cls.kind != "neural" or name.startswith("tinynet"):
            continue
        method = build_method(name)
        for path in method.checkpoints():
            if not path.is_file():
                continue
            built = sum(p.numel() for p in method._network(path).parameters())
            assert parameter_count(path) == built, path
            checked += 1
    assert checked >= 6  # DnCNN gray + rgb, SRCNN x2/x3/x4, SID U-Net, DeepUPE
