"""DnCNN: the model, released-weight conversion (PyTorch port, KAIR, MatConvNet), the method, training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from restorebench.core.build import build_method
from restorebench.core.interfaces import Degraded
from restorebench.neural.checkpoints import load_checkpoint, save_checkpoint
from restorebench.tasks.denoise import neural
from restorebench.tasks.denoise.models import BN_EPS, DnCNN
from restorebench.tasks.denoise.neural import DnCNNMethod


def _randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights, biases and BN statistics, so that every mapped value matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=gen) * (0.1 if name.endswith("weight") else 0.05))
    return net.eval()


def _image(channels: int, seed: int = 1, size: int = 24) -> torch.Tensor:
    return torch.rand((1, channels, size, size), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- model


def test_shapes_and_layout():
    net = DnCNN(depth=5, features=8, channels=3)
    assert net(_image(3)).shape == (1, 3, 24, 24)
    keys = list(net.state_dict())
    assert keys[:2] == ["dncnn.0.weight", "dncnn.0.bias"]
    assert "dncnn.2.weight" in keys and "dncnn.2.bias" not in keys
    assert {"dncnn.3.weight", "dncnn.3.bias", "dncnn.3.running_mean", "dncnn.3.running_var"} <= set(keys)
    assert keys[-1] == "dncnn.11.weight"  # last conv at 3 * depth - 4, no bias


def test_residual_learning_returns_input_when_last_conv_is_zero():
    net = _randomised(DnCNN(depth=4, features=8, channels=1))
    with torch.no_grad():
        net.dncnn[-1].weight.zero_()
    x = _image(1) * 3 - 1  # noisy inputs leave [0, 1]
    assert torch.equal(net(x), x)


def test_bfloat16_training_autocast_leaves_evaluation_in_float32():
    net = _randomised(DnCNN(depth=4, features=8, channels=1))
    x = _image(1)
    with torch.no_grad():
        reference = net(x)
        net.train_bfloat16 = True
        assert torch.equal(net(x), reference)  # eval mode: float32 as before
        net.train()  # training mode: batch statistics, convolutions in bfloat16
        out = net(x)
        net.train_bfloat16 = False
        full = net(x)
    assert out.dtype == torch.float32 and 0 < float((out - full).abs().max()) < 0.05


def test_full_model_parameter_count():
    c, f, d = 1, 64, 17
    first = 9 * c * f + f  # conv with bias
    middle = (d - 2) * (9 * f * f + 2 * f)  # conv without bias + BN gain and shift
    last = 9 * f * c  # conv without bias
    net = DnCNN(depth=d, features=f, channels=c)
    assert sum(p.numel() for p in net.parameters()) == first + middle + last == 556_096


# ---------------------------------------------------------------- released weights


def _check_converted(tmp_path: Path, source: Path, reference: nn.Module, **config) -> None:
    from restorebench.commands.convert import convert_weights

    out = tmp_path / "converted.safetensors"
    meta = convert_weights(source, "denoise/dncnn", out)
    assert {k: meta["config"][k] for k in config} == config
    state, saved = load_checkpoint(out)
    net = DnCNNMethod().build_network(saved["config"])
    net.load_state_dict(state, strict=True)
    net.eval()
    channels = config["channels"]
    x = _image(channels, seed=5) + 0.1 * torch.randn((1, channels, 24, 24), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x), atol=1e-5, rtol=0)


def test_converts_the_official_pytorch_port(tmp_path):
    reference = _randomised(DnCNN(depth=5, features=16, channels=1))
    path = tmp_path / "model.pth"
    torch.save(reference.state_dict(), path)
    _check_converted(tmp_path, path, reference, depth=5, features=16, channels=1, batch_norm=True)


class _KairDnCNN(nn.Module):
    """KAIR's network_dncnn.DnCNN layout: every conv has a bias; act_mode 'BR' or 'R'."""

    def __init__(self, channels: int, features: int, depth: int, bn: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1))
            layers += [nn.BatchNorm2d(features, eps=BN_EPS), nn.ReLU()] if bn else [nn.ReLU()]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.model(x)


@pytest.mark.parametrize("bn", [True, False])
def test_converts_kair_layouts(tmp_path, bn):
    reference = _randomised(_KairDnCNN(3, 8, 4, bn), seed=2)
    path = tmp_path / "dncnn_color.pth"
    torch.save(reference.state_dict(), path)
    _check_converted(tmp_path, path, reference, depth=4, features=8, channels=3, batch_norm=bn)


def _cell(items: list) -> np.ndarray:
    cell = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def _matconvnet_layers(net: DnCNN) -> list[dict]:
    """The inverse of the converter: a torch DnCNN as MatConvNet SimpleNN layers."""
    layers: list[dict] = []
    modules = list(net.dncnn)
    for i, m in enumerate(modules):
        if isinstance(m, nn.Conv2d):
            filters = m.weight.detach().numpy().transpose(2, 3, 1, 0)  # Cout Cin H W -> H W Cin Cout
            if filters.shape[3] == 1:
                filters = filters[..., 0]  # MATLAB drops a trailing singleton dimension
            bias = m.bias.detach().numpy() if m.bias is not None else np.zeros(m.out_channels, np.float32)
            layers.append(
                {
                    "type": "conv",
                    "name": f"conv{i}",
                    "weights": _cell([filters, bias.reshape(-1, 1)]),
                    "stride": np.array([[1.0, 1.0]]),
                    "pad": np.array([[1.0, 1.0, 1.0, 1.0]]),
                }
            )
        elif isinstance(m, nn.BatchNorm2d):
            sigma = np.sqrt(m.running_var.numpy() + m.eps)  # MatConvNet moments hold sqrt(var + eps)
            moments = np.stack([m.running_mean.numpy(), sigma], axis=1)
            layers.append(
                {
                    "type": "bnorm",
                    "name": f"bnorm{i}",
                    "epsilon": 1e-4,
                    "weights": _cell(
                        [m.weight.detach().numpy().reshape(-1, 1), m.bias.detach().numpy().reshape(-1, 1), moments]
                    ),
                }
            )
        else:
            layers.append({"type": "relu", "name": f"relu{i}", "leak": 0.0})
    return layers + [{"type": "loss", "name": "loss"}]  # left in by the training code


@pytest.mark.parametrize("bn", [True, False])
def test_converts_matconvnet_release(tmp_path, bn):
    import scipy.io

    reference = _randomised(DnCNN(depth=5, features=8, channels=1, batch_norm=bn), seed=3)
    if bn:
        with torch.no_grad():  # one nearly dead channel: sigma^2 < eps takes the gain-scaling path
            reference.dncnn[3].running_var[0] = 1e-6
    path = tmp_path / "sigma=25.mat"
    scipy.io.savemat(path, {"net": {"layers": _cell(_matconvnet_layers(reference))}})
    _check_converted(tmp_path, path, reference, depth=5, features=8, channels=1, batch_norm=bn)


def test_matconvnet_last_bias_is_kept(tmp_path):
    import scipy.io

    reference = _randomised(DnCNN(depth=4, features=8, channels=1, last_bias=True), seed=4)
    path = tmp_path / "net.mat"
    scipy.io.savemat(path, {"net": {"layers": _cell(_matconvnet_layers(reference))}})
    _check_converted(tmp_path, path, reference, depth=4, features=8, channels=1, last_bias=True)


class _AuthorsDnCNN(nn.Module):
    """The class of the authors' ``TrainingCodes/dncnn_pytorch/main_train.py``, whose whole
    model (``models/DnCNN_sigma25/model.pth``) was saved with ``torch.save(model)``."""

    def __init__(self, depth: int = 17, n_channels: int = 64, image_channels: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(image_channels, n_channels, 3, padding=1, bias=True), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(n_channels, n_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(n_channels, eps=0.0001, momentum=0.95),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(n_channels, image_channels, 3, padding=1, bias=False))
        self.dncnn = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.dncnn(x)


def _authors_pickle(path: Path, model: nn.Module, monkeypatch, *, legacy: bool) -> Path:
    """``torch.save(model)`` as PyTorch 0.4 wrote it: ``torch.nn.Parameter`` objects pickled
    as such, and every batch norm's ``num_batches_tracked`` a 1-element tensor."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.num_batches_tracked = torch.tensor([1234])
    with monkeypatch.context() as patch:
        patch.setattr(nn.Parameter, "__reduce_ex__", lambda p, proto: (nn.Parameter, (p.data, p.requires_grad)))
        torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    assert b"Parameter" in path.read_bytes() or not legacy
    return path


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_the_authors_pickled_model_converts_and_then_runs(tmp_path, monkeypatch, legacy):
    """It converted ("wrote ...") and then every unit failed: num_batches_tracked stored (1,), expected ()."""
    from restorebench.commands.convert import convert_weights
    from restorebench.neural.checkpoints import stored_shapes

    reference = _randomised(_AuthorsDnCNN(depth=5, n_channels=8), seed=13)
    path = _authors_pickle(tmp_path / "model.pth", reference, monkeypatch, legacy=legacy)
    out = tmp_path / "dncnn_sigma25.safetensors"
    meta = convert_weights(path, "denoise/dncnn", out)
    assert meta["converted_from"]["format"] == "pickled_model"
    shapes = stored_shapes(out)
    assert shapes["dncnn.3.num_batches_tracked"] == shapes["dncnn.6.num_batches_tracked"] == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dncnn_sigma25.safetensors", "model.pth"]

    item = _noisy(1)
    output = build_method(f"denoise/dncnn?checkpoint={out}").restore([item])[0]
    assert output.shape == (20, 28, 1) and np.isfinite(output).all()
    with torch.no_grad():
        expected = reference(torch.from_numpy(item.image.transpose(2, 0, 1))[None])[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_a_file_converted_before_the_fix_still_runs(tmp_path):
    """Files that the old convert wrote hold num_batches_tracked as (1,): a run accepts them, as
    torch's load_state_dict does."""
    net = _randomised(DnCNN(depth=4, features=8, channels=1), seed=15)
    state = {k: v.reshape(1) if k.endswith("num_batches_tracked") else v for k, v in net.state_dict().items()}
    config = {"depth": 4, "features": 8, "channels": 1, "batch_norm": True}
    path = save_checkpoint(tmp_path / "old.safetensors", state, {"architecture": "dncnn", "config": config})
    item = _noisy(1)
    output = build_method(f"denoise/dncnn?checkpoint={path}").restore([item])[0]
    with torch.no_grad():
        expected = net(torch.from_numpy(item.image.transpose(2, 0, 1))[None])[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_convert_refuses_weights_that_do_not_run_and_leaves_the_old_file(tmp_path, monkeypatch):
    from restorebench.commands.convert import convert_weights
    from restorebench.core.errors import UserError

    out = _tiny_checkpoint(tmp_path / "dncnn.safetensors", 1, seed=3)
    before = out.read_bytes()
    broken = _randomised(_AuthorsDnCNN(depth=4, n_channels=8), seed=14)
    with torch.no_grad():
        broken.dncnn[3].running_var[2] = -1.0  # a damaged file: sqrt(var + eps) is NaN
    path = _authors_pickle(tmp_path / "model.pth", broken, monkeypatch, legacy=True)
    with pytest.raises(UserError, match="does not run: .*gives NaN or infinite values") as info:
        convert_weights(path, "denoise/dncnn", out)
    assert f"nothing was written to {out}" in str(info.value) and ".unproven" not in str(info.value)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dncnn.safetensors", "model.pth"]


def test_a_billion_layers_in_the_metadata_are_refused_at_once(tmp_path):
    """A checkpoint whose config said depth 1e9 grew to 4.4 GB in two minutes before it was killed."""
    import time
    import tracemalloc

    from restorebench.core.errors import UserError

    net = _randomised(DnCNN(depth=4, features=8, channels=1))
    config = {"depth": 1_000_000_000, "features": 8, "channels": 1, "batch_norm": True}
    path = save_checkpoint(tmp_path / "liar.safetensors", net.state_dict(), {"architecture": "dncnn", "config": config})
    method = build_method(f"denoise/dncnn?checkpoint={path}")
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(UserError) as info:
            method.restore([_noisy(1)])
        elapsed, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(info.value).splitlines()[0] == (
        f"{path}: its metadata config has depth=1000000000 but its tensors say depth=4; "
        "denoise/dncnn is not built from it"
    )
    assert elapsed < 1.0 and peak < 20 * 2**20


# ---------------------------------------------------------------- the method


def _tiny_checkpoint(path: Path, channels: int, seed: int) -> Path:
    net = _randomised(DnCNN(depth=3, features=4, channels=channels), seed=seed)
    config = {"depth": 3, "features": 4, "channels": channels, "batch_norm": True}
    return save_checkpoint(path, net.state_dict(), {"architecture": "dncnn", "config": config})


def _noisy(channels: int, sigma: float = 25.0) -> Degraded:
    rng = np.random.default_rng(channels)
    image = (rng.random((20, 28, channels)) + rng.standard_normal((20, 28, channels)) * sigma / 255).astype(np.float32)
    return Degraded(image=image, degradation="gaussian", params={"sigma": sigma, "clip": False})


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    monkeypatch.setattr(DnCNNMethod, "checkpoint_dir", folder)
    return folder


def test_method_picks_the_checkpoint_by_channels(checkpoint_dir):
    gray = _tiny_checkpoint(checkpoint_dir / "dncnn_blind_gray.safetensors", 1, seed=7)
    rgb = _tiny_checkpoint(checkpoint_dir / "dncnn_blind_rgb.safetensors", 3, seed=8)
    method = build_method("denoise/dncnn")
    method.setup()
    items = [_noisy(1), _noisy(3)]
    assert [method.checkpoint_for(i) for i in items] == [gray, rgb]
    outputs = method.restore(items)
    assert [o.shape for o in outputs] == [(20, 28, 1), (20, 28, 3)]
    assert all(o.dtype == np.float32 for o in outputs)
    assert method.parameter_count() > 0
    assert len(method.identity()["checkpoints"]) == 2


def test_method_adapts_channels_when_one_model_exists(checkpoint_dir):
    path = _tiny_checkpoint(checkpoint_dir / "dncnn_blind_gray.safetensors", 1, seed=9)
    method = build_method("denoise/dncnn")
    colour = _noisy(3)
    out = method.restore([colour])[0]
    assert out.shape == (20, 28, 3)
    state, meta = load_checkpoint(path)
    net = DnCNN(**meta["config"])
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():  # channel by channel through the gray model
        expected = net(torch.from_numpy(colour.image.transpose(2, 0, 1)[:, None])).numpy()[:, 0].transpose(1, 2, 0)
    np.testing.assert_allclose(out, expected, atol=1e-5)

    path.unlink()
    rgb = _tiny_checkpoint(checkpoint_dir / "dncnn_blind_rgb.safetensors", 3, seed=10)
    method = build_method(f"denoise/dncnn?checkpoint={rgb}")
    assert method.restore([_noisy(1)])[0].shape == (20, 28, 1)  # 3 equal channels, averaged


def test_specific_model_uses_the_nearest_sigma(checkpoint_dir):
    s15 = _tiny_checkpoint(checkpoint_dir / "dncnn_s15_gray.safetensors", 1, seed=11)
    s50 = _tiny_checkpoint(checkpoint_dir / "dncnn_s50_gray.safetensors", 1, seed=12)
    method = build_method("denoise/dncnn?model=specific")
    assert method.uses_true_level is True
    assert DnCNNMethod.uses_true_level is False  # class-level access (restorebench list methods)
    assert build_method("denoise/dncnn").uses_true_level is False
    assert method.checkpoint_for(_noisy(1, sigma=25)) == s15
    assert method.checkpoint_for(_noisy(1, sigma=40)) == s50
    assert method.checkpoint_for(_noisy(3, sigma=45)) == s50  # colour through the gray model
    pinned = build_method("denoise/dncnn?model=specific&sigma=45")  # strings from references
    assert pinned.params.sigma == 45.0 and pinned.checkpoints() == [s50]
    assert pinned.uses_true_level is False


def test_missing_checkpoint_names_the_training_command(checkpoint_dir):
    from restorebench.core.errors import UserError

    with pytest.raises(UserError) as info:
        build_method("denoise/dncnn").setup()
    assert "restorebench train" in (info.value.hint or "")


# ---------------------------------------------------------------- training


def test_recipe_pairs():
    recipe = build_method("denoise/dncnn?model=specific&sigma=25&channels=rgb").recipe()
    clean = np.full((40, 40, 3), 0.5, np.float32)
    x, y = recipe.make_pair(clean, np.random.default_rng(0))
    assert x.shape == y.shape == (3, 40, 40) and np.all(y == 0.5)
    assert abs(float(np.std(x - y)) * 255 - 25) < 1.5
    assert recipe.patch_size == 40 and recipe.channels == "rgb" and recipe.config["channels"] == 3
    blind = build_method("denoise/dncnn").recipe()
    sigmas = [np.std(np.subtract(*blind.make_pair(clean[..., :1], np.random.default_rng(s)))) * 255 for s in range(50)]
    assert 0 <= min(sigmas) < 10 and 45 < max(sigmas) < 57
    assert build_method("denoise/dncnn?channels=rgb").training_output().name == "dncnn_blind_rgb.safetensors"


def test_smoke_training_writes_a_loadable_checkpoint(tmp_path, monkeypatch):
    from restorebench.commands.train import train_method

    monkeypatch.setattr(neural, "_LIGHT", {"gray": {"depth": 4, "features": 8, "batch_norm": True}})
    monkeypatch.setattr(neural, "_TRAINING", {"batch_size": 4, "steps": 1000, "lr": 1e-3})
    out = tmp_path / "dncnn.safetensors"
    summary = train_method(
        "denoise/dncnn?channels=gray",
        data=["synthetic:deadleaves?n=6&size=96&gray=true"],
        steps=20,
        out=out,
        tracking=False,
    )
    state, meta = load_checkpoint(out)
    assert summary.checkpoint == out and meta["architecture"] == "dncnn" and meta["steps"] == 20
    assert meta["config"]["channels"] == 1 and "noisy_pair" in meta["recipe"]["make_pair"]
    method = build_method(f"denoise/dncnn?checkpoint={out}")
    assert method.restore([_noisy(1)])[0].shape == (20, 28, 1)


DEAD_LEAVES = "synthetic:deadleaves?n=64&size=256&seed=7"


@pytest.mark.parametrize("channels, data, extra", [("gray", "Train400", None), ("rgb", "BSDS400", DEAD_LEAVES)])
def test_committed_blind_checkpoints_are_their_recipes(channels, data, extra):
    """Each committed checkpoint records the recipe that the code would run today."""
    method = build_method(f"denoise/dncnn?channels={channels}")
    path = method.training_output()
    state, meta = load_checkpoint(path)
    recipe = method.recipe()
    assert meta["config"] == recipe.config and meta["config"]["channels"] == (1 if channels == "gray" else 3)
    assert meta["steps"] == recipe.steps == meta["recipe"]["steps"]
    assert meta["recipe"]["make_pair"] == recipe.describe()["make_pair"]
    sources = [f"folder:../shared/data/train/{data}"] + ([extra] if extra else [])
    assert meta["data"]["sources"] == sources and meta["data"]["images"] == 400 + (64 if extra else 0)
    assert meta["command"] == (
        f"restorebench train 'denoise/dncnn?channels={channels}' "
        f"--data folder:../shared/data/train/{data} " + (f"--data '{extra}' " if extra else "") + "--seed 0"
    )
    assert meta["mlflow"]["run_id"]  # the training run is linked
    assert meta["seconds"] < 30 * 60  # reproducible within ~30 min on 2 cores
    net = method.build_network(meta["config"])
    net.load_state_dict(state)


def test_leaderboard_size_is_the_largest_network_the_method_runs():
    counts = {c: build_method(f"denoise/dncnn?channels={c}").parameter_count() for c in ("gray", "rgb")}
    # first conv with bias, middle convs without bias + BN (weight, bias), last conv without bias
    assert counts == {
        "gray": 1 * 32 * 9 + 32 + 13 * (32 * 32 * 9 + 2 * 32) + 32 * 9 * 1,
        "rgb": 3 * 48 * 9 + 48 + 10 * (48 * 48 * 9 + 2 * 48) + 48 * 9 * 3,
    }
    assert build_method("denoise/dncnn").parameter_count() == counts["rgb"]
