"""SRCNN (``superres/srcnn``): the network, released weight layouts, the method, training.

Every weight file is built here in tmp_path; the forward passes the converted networks
must reproduce are computed here independently, filter by filter with
``scipy.signal.correlate2d``, following the released MATLAB test code ``SRCNN.m``
(``imfilter(..., 'same', 'replicate')`` and column-major ``reshape``), MatConvNet's
``vl_nnconv`` (correlation, no padding) and PyTorch's ``conv2d`` (correlation).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from restorebench.commands.convert import convert_weights
from restorebench.core.build import build_degradation, build_method
from restorebench.core.errors import UserError
from restorebench.imaging import imresize, rgb_to_ycbcr, ycbcr_to_rgb
from restorebench.neural.checkpoints import load_checkpoint, save_checkpoint
from restorebench.tasks.superres.models import SRCNN, srcnn_parameter_count
from restorebench.tasks.superres.neural import SRCNNMethod, _srcnn_pair
from tests import REPO

CONFIG_915 = {"f1": 9, "f2": 1, "f3": 5, "n1": 64, "n2": 32, "channels": 1, "padding": "replicate"}


# ---------------------------------------------------------------- the network


@pytest.mark.parametrize("variant, f2, count", [("9-1-5", 1, 8129), ("9-5-5", 5, 57281)])
def test_same_size_output_and_parameter_count(variant, f2, count):
    method = build_method(f"superres/srcnn?variant={variant}")
    net = method.build_network({})
    assert method.config()["f2"] == f2
    assert net(torch.rand(2, 1, 23, 17)).shape == (2, 1, 23, 17)
    assert sum(p.numel() for p in net.parameters()) == count == srcnn_parameter_count(f2=f2)
    assert count == 9 * 9 * 64 + 64 + f2 * f2 * 64 * 32 + 32 + 5 * 5 * 32 + 1
    assert list(net.state_dict()) == [f"conv{i}.{k}" for i in (1, 2, 3) for k in ("weight", "bias")]


def test_replicate_padding_keeps_a_constant_image_constant():
    net = SRCNN(f1=3, f2=1, f3=3, n1=2, n2=1)
    with torch.no_grad():
        for conv in (net.conv1, net.conv2, net.conv3):
            conv.weight.fill_(1.0 / conv.weight[0].numel())
            conv.bias.zero_()
        out = net(torch.full((1, 1, 8, 8), 0.5))
    np.testing.assert_allclose(out.numpy(), 0.5, atol=1e-6)  # zero padding would darken the border


def test_bad_config_is_a_user_error():
    with pytest.raises(UserError, match="does not fit SRCNN"):
        build_method("superres/srcnn").build_network({"depth": 3})


# ---------------------------------------------------------------- released weight layouts


def _imfilter_replicate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``imfilter(image, kernel, 'same', 'replicate')``: correlation, odd kernel."""
    p = kernel.shape[0] // 2
    return correlate2d(np.pad(image, p, mode="edge"), kernel, mode="valid")


def _matlab_reshape(vector: np.ndarray, f: int) -> np.ndarray:
    """MATLAB ``reshape(vector, f, f)``: element k (0-based) goes to row k mod f, column k div f."""
    out = np.empty((f, f))
    for k in range(f * f):
        out[k % f, k // f] = vector[k]
    return out


def _srcnn_m(image: np.ndarray, v: dict[str, np.ndarray]) -> np.ndarray:
    """SRCNN.m (9-1-5 and 9-5-5 releases), loop for loop."""
    w1, w2, w3 = v["weights_conv1"], v["weights_conv2"], v["weights_conv3"]
    f1, n1 = round(np.sqrt(w1.shape[0])), w1.shape[1]
    conv1 = [
        np.maximum(_imfilter_replicate(image, _matlab_reshape(w1[:, i], f1)) + v["biases_conv1"][i, 0], 0)
        for i in range(n1)
    ]
    n2 = w2.shape[-1]
    conv2 = []
    for i in range(n2):
        acc = np.zeros_like(image)
        for j in range(n1):
            if w2.ndim == 2:
                acc += w2[j, i] * conv1[j]
            else:
                f2 = round(np.sqrt(w2.shape[1]))
                acc += _imfilter_replicate(conv1[j], _matlab_reshape(w2[j, :, i], f2))
        conv2.append(np.maximum(acc + v["biases_conv2"][i, 0], 0))
    f3 = round(np.sqrt(w3.shape[1]))
    out = sum(_imfilter_replicate(conv2[i], _matlab_reshape(w3[i, :], f3)) for i in range(n2))
    return out + v["biases_conv3"][0, 0]


def _correlate_valid(maps: list[np.ndarray], weight: np.ndarray, bias: np.ndarray, relu: bool) -> list[np.ndarray]:
    """One conv layer without padding; ``weight[o, i]`` correlates map i into map o."""
    out = []
    for o in range(weight.shape[0]):
        acc = sum(correlate2d(maps[i], weight[o, i], mode="valid") for i in range(weight.shape[1])) + bias[o]
        out.append(np.maximum(acc, 0) if relu else acc)
    return out


def _converted_forward(path: Path, image: np.ndarray) -> tuple[np.ndarray, dict]:
    out = path.with_suffix(".converted.safetensors")
    meta = convert_weights(path, "superres/srcnn", out)
    state, saved = load_checkpoint(out)
    assert saved["config"] == meta["config"] and saved["architecture"] == "srcnn"
    net = SRCNN(**saved["config"])
    net.load_state_dict(state)
    with torch.no_grad():
        y = net(torch.from_numpy(image[None, None].astype(np.float32)))[0, 0].double().numpy()
    return y, saved["config"]


@pytest.mark.parametrize("f2", [1, 3])
def test_matlab_release_variables(tmp_path, f2):
    import scipy.io

    rng = np.random.default_rng(1)
    n1, n2 = 12, 6
    variables = {
        "weights_conv1": rng.normal(0, 0.1, (81, n1)),
        "biases_conv1": rng.normal(0, 0.1, (n1, 1)),
        "weights_conv2": rng.normal(0, 0.2, (n1, n2) if f2 == 1 else (n1, f2 * f2, n2)),
        "biases_conv2": rng.normal(0, 0.1, (n2, 1)),
        "weights_conv3": rng.normal(0, 0.1, (n2, 25)),
        "biases_conv3": np.array([[0.05]]),
    }
    path = tmp_path / "x3.mat"
    scipy.io.savemat(path, variables)
    image = rng.random((21, 26))
    got, config = _converted_forward(path, image)
    assert config == {**CONFIG_915, "f2": f2, "n1": n1, "n2": n2}
    np.testing.assert_allclose(got, _srcnn_m(image, variables), atol=1e-4)  # whole image: replicate = SRCNN.m


def _mat_cell(items: list) -> np.ndarray:
    cell = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def test_matconvnet_simplenn(tmp_path):
    import scipy.io

    rng = np.random.default_rng(2)
    shapes = [(9, 9, 1, 10), (1, 1, 10, 5), (5, 5, 5)]  # MATLAB drops the trailing singleton Cout
    filters = [rng.normal(0, 0.15, s).astype(np.float32) for s in shapes]
    biases = [rng.normal(0, 0.1, (1, n)).astype(np.float32) for n in (10, 5, 1)]

    def conv(i):
        return {
            "type": "conv",
            "name": f"conv{i + 1}",
            "weights": _mat_cell([filters[i], biases[i]]),
            "stride": np.array([[1.0, 1.0]]),
            "pad": np.array([[0.0, 0.0, 0.0, 0.0]]),
        }

    relu = {"type": "relu", "name": "relu", "weights": _mat_cell([])}
    layers = [conv(0), relu, conv(1), relu, conv(2), {"type": "euclideanloss", "name": "loss"}]
    path = tmp_path / "srcnn_mcn.mat"
    scipy.io.savemat(path, {"net": {"layers": _mat_cell(layers)}})
    image = rng.random((24, 20))
    got, config = _converted_forward(path, image)
    assert config == {**CONFIG_915, "n1": 10, "n2": 5}

    # vl_nnconv: y(i, j, k) = b(k) + sum_{u, v, d} w(u, v, d, k) x(i + u, j + v, d), no padding
    maps = [image]
    for i, relu_after in enumerate((True, True, False)):
        w = filters[i].reshape(shapes[i] + (1,) * (4 - len(shapes[i])))
        out = []
        for k in range(w.shape[3]):
            acc = sum(correlate2d(maps[d], w[:, :, d, k], mode="valid") for d in range(w.shape[2]))
            acc = acc + biases[i][0, k]
            out.append(np.maximum(acc, 0) if relu_after else acc)
        maps = out
    m = 4 + 0 + 2  # the border that padding reaches
    np.testing.assert_allclose(got[m:-m, m:-m], maps[0], atol=1e-4)


def test_pytorch_state_dict(tmp_path):
    rng = np.random.default_rng(3)
    w = [rng.normal(0, 0.1, s).astype(np.float32) for s in ((16, 1, 9, 9), (8, 16, 3, 3), (1, 8, 5, 5))]
    b = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16, 8, 1)]
    names = ("features.0", "map.0", "reconstruction")  # a common re-implementation's module names
    state = {
        f"module.{n}.{k}": torch.from_numpy(a)
        for n, wi, bi in zip(names, w, b)
        for k, a in (("weight", wi), ("bias", bi))
    }
    path = tmp_path / "srcnn_x3.pth"
    torch.save({"state_dict": state}, path)
    image = rng.random((22, 25))
    got, config = _converted_forward(path, image)
    assert config == {**CONFIG_915, "f2": 3, "n1": 16, "n2": 8}
    maps = _correlate_valid([image], w[0], b[0], relu=True)
    maps = _correlate_valid(maps, w[1], b[1], relu=True)
    expected = _correlate_valid(maps, w[2], b[2], relu=False)[0]
    m = 4 + 1 + 2
    np.testing.assert_allclose(got[m:-m, m:-m], expected, atol=1e-4)


def test_rgb_srcnn_and_wrong_layouts_are_refused(tmp_path):
    rgb = {
        "conv1.weight": torch.zeros(8, 3, 9, 9),
        "conv1.bias": torch.zeros(8),
        "conv2.weight": torch.zeros(4, 8, 1, 1),
        "conv2.bias": torch.zeros(4),
        "conv3.weight": torch.zeros(3, 4, 5, 5),
        "conv3.bias": torch.zeros(3),
    }
    torch.save(rgb, tmp_path / "rgb.pth")
    with pytest.raises(UserError, match="luminance"):
        convert_weights(tmp_path / "rgb.pth", "superres/srcnn", tmp_path / "o.safetensors")
    torch.save({"conv1.weight": torch.zeros(8, 1, 9, 9)}, tmp_path / "short.pth")
    with pytest.raises(UserError, match="3 conv layers"):
        convert_weights(tmp_path / "short.pth", "superres/srcnn", tmp_path / "o.safetensors")


# ---------------------------------------------------------------- the method


def _identity_checkpoint(path: Path) -> Path:
    """9-1-5 weights whose network returns its input: relu(x) - relu(-x) = x."""
    net = SRCNN(**CONFIG_915)
    state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    state["conv1.weight"][0, 0, 4, 4], state["conv1.weight"][1, 0, 4, 4] = 1.0, -1.0
    state["conv2.weight"][0, 0, 0, 0] = state["conv2.weight"][1, 1, 0, 0] = 1.0
    state["conv3.weight"][0, 0, 2, 2], state["conv3.weight"][0, 1, 2, 2] = 1.0, -1.0
    return save_checkpoint(path, state, {"architecture": "srcnn", "config": CONFIG_915})


def _items(scale: int):
    rng = np.random.default_rng(4)
    rgb = np.clip(rng.random((1, 1, 3)) * 0.6 + 0.2 + 0.15 * rng.standard_normal((28, 31, 3)), 0, 1)
    gray = rgb.mean(axis=2, keepdims=True)
    deg = build_degradation(f"bicubic?scale={scale}")
    return [deg.apply(img.astype(np.float32), rng) for img in (rgb, gray)]


@pytest.mark.parametrize("scale", [2, 3])
def test_identity_network_gives_bicubic(tmp_path, scale):
    ckpt = _identity_checkpoint(tmp_path / "identity.safetensors")
    srcnn = build_method(f"superres/srcnn?checkpoint={ckpt}")
    bicubic = build_method("superres/bicubic")
    items = _items(scale)
    for item, got, expected in zip(items, srcnn.restore(items), bicubic.restore(items)):
        assert got.shape == expected.shape == item.reference.shape
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_restore_shapes_rgb_and_gray_tiled(tmp_path):
    state = SRCNN(**CONFIG_915).state_dict()
    ckpt = save_checkpoint(tmp_path / "r.safetensors", state, {"architecture": "srcnn", "config": CONFIG_915})
    method = build_method(f"superres/srcnn?checkpoint={ckpt}&tile=20&tile_overlap=4")
    for scale in (2, 4):
        items = _items(scale)
        outs = method.restore(items)
        assert [o.shape for o in outs] == [i.reference.shape for i in items]
        assert all(np.isfinite(o).all() for o in outs)


def test_ycbcr_is_matlab_bt601_and_inverts():
    rgb = np.random.default_rng(5).random((4, 5, 3))
    ycbcr = rgb_to_ycbcr(rgb)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    np.testing.assert_allclose(ycbcr[..., 0], (16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255, atol=1e-6)
    np.testing.assert_allclose(ycbcr[..., 1], (128 - 37.797 * r - 74.203 * g + 112 * b) / 255, atol=1e-6)
    np.testing.assert_allclose(ycbcr_to_rgb(ycbcr), rgb, atol=1e-5)


def test_checkpoint_per_scale_and_scale_parameter():
    method = build_method("superres/srcnn")
    assert [p.name for p in method.default_checkpoints()] == [f"srcnn_915_x{s}.safetensors" for s in (2, 3, 4)]
    for scale in (2, 3, 4):
        assert method.checkpoint_for(_items(scale)[0]).name == f"srcnn_915_x{scale}.safetensors"
    one = build_method("superres/srcnn?scale=3&variant=9-5-5")
    assert one.params.scale == 3 and one.build_ref == "superres/srcnn?scale=3&variant=9-5-5"
    assert one.training_output().name == "srcnn_955_x3.safetensors"
    with pytest.raises(UserError, match="x3 inputs"):
        one.checkpoint_for(_items(2)[0])
    with pytest.raises(UserError, match="scale"):
        build_method("superres/srcnn?scale=5")
    with pytest.raises(UserError, match="scale=3"):
        build_method("superres/srcnn").recipe()
    assert SRCNNMethod.uses_true_level and SRCNNMethod.architecture == "srcnn"


def test_committed_checkpoints_are_the_t91_recipe():
    for scale in (2, 3, 4):
        state, meta = load_checkpoint(REPO / f"tasks/superres/checkpoints/srcnn_915_x{scale}.safetensors")
        assert meta["architecture"] == "srcnn" and meta["config"] == CONFIG_915
        assert meta["command"].startswith(f"restorebench train 'superres/srcnn?scale={scale}' --data folder:")
        assert meta["data"]["images"] == 91 and meta["metrics"]["val_psnr"] > meta["metrics"]["val_psnr_input"]
        assert meta["seconds"] < 30 * 60 and meta["mlflow"]["run_id"]  # reproducible in time; training run linked
        SRCNN(**meta["config"]).load_state_dict(state)


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_training_pair_is_bicubic_of_the_8bit_lr(scale):
    hr = np.random.default_rng(6).random((36, 36, 1)).astype(np.float32)
    x, y = _srcnn_pair(hr, scale)
    lr = np.round(np.clip(imresize(hr, 1 / scale) * 255, 0, 255)) / 255
    np.testing.assert_allclose(x, imresize(lr, scale).transpose(2, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(y, hr.transpose(2, 0, 1))
    assert build_method(f"superres/srcnn?scale={scale}").recipe().patch_size % scale == 0


def _check_trained(path: Path) -> dict:
    state, meta = load_checkpoint(path)
    net = SRCNN(**meta["config"])
    net.load_state_dict(state)
    assert meta["architecture"] == "srcnn" and meta["steps"] == 50
    assert meta["recipe"]["make_pair"] == "tasks.superres.neural.srcnn_pair_x3"
    assert len(meta["data"]["sha256"]) == 64
    assert meta["command"].startswith("restorebench train 'superres/srcnn?scale=3' --data")
    return meta


@pytest.fixture
def one_thread():
    """One torch thread: on a shared CPU, 2 threads spin against other jobs (5x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {**os.environ, "OMP_NUM_THREADS": "1"}
    torch.set_num_threads(before)


def test_smoke_training_in_process_and_cli(tmp_path, one_thread):
    from restorebench.commands.train import train_method

    data = "synthetic:deadleaves?n=6&size=96"
    summary = train_method(
        "superres/srcnn?scale=3", data=[data], steps=50, out=tmp_path / "s.safetensors", tracking=False
    )
    assert _check_trained(tmp_path / "s.safetensors")["command"] == summary.metadata["command"]

    out = tmp_path / "cli.safetensors"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "restorebench.cli",
            "train",
            "superres/srcnn?scale=3",
            "--data",
            data,
            "--steps",
            "50",
            "--out",
            str(out),
            "--no-tracking",
        ],
        cwd=REPO,
        env=one_thread,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "validation PSNR" in proc.stdout
    meta = _check_trained(out)
    assert meta["data"]["sha256"] == summary.metadata["data"]["sha256"]
    assert "step 50/50: loss" in proc.stderr  # the progress line of the last validation
    assert "step 1/50 (2%): loss" in proc.stderr  # and the lines between validations, from the first step


def test_training_longer_from_a_checkpoint_keeps_the_chain(tmp_path, one_thread):
    import torch

    from restorebench.commands.train import train_method
    from restorebench.core.build import build_method
    from restorebench.core.errors import UserError
    from restorebench.neural.checkpoints import file_sha256, load_checkpoint

    data = ["synthetic:deadleaves?n=6&size=96"]
    first = tmp_path / "first.safetensors"
    train_method("superres/srcnn?scale=3", data=data, steps=20, out=first, tracking=False)
    second = tmp_path / "second.safetensors"
    summary = train_method("superres/srcnn?scale=3", data=data, steps=1, out=second, tracking=False, init=first)
    chain = summary.metadata["init"]
    assert chain["sha256"] == file_sha256(first) and chain["steps"] == 20 and chain["init"] is None
    assert summary.metadata["command"].endswith(f"--init {first}")
    # one Adam step moves each weight by about the learning rate: the second starts from the first
    lr = build_method("superres/srcnn?scale=3").recipe().lr
    before, after = load_checkpoint(first)[0], load_checkpoint(second)[0]
    assert max(float((after[k] - v).abs().max()) for k, v in before.items()) <= 1.5 * lr
    assert any(not torch.equal(after[k], v) for k, v in before.items())
    with pytest.raises(UserError, match="holds a srcnn network with .* not this recipe's"):
        train_method(
            "superres/srcnn?scale=2&variant=9-5-5",
            data=data,
            steps=5,
            out=tmp_path / "x.safetensors",
            tracking=False,
            init=first,
        )
