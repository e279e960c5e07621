"""The neural low-light methods: SID U-Net (``lowlight/sid_unet``) and DeepUPE-style (``lowlight/deepupe``).

Networks, released-weight layouts (built here: a ``torch.save`` state dict and the SID
TF checkpoint's names, whose forward pass is recomputed here from TF's definitions of
``conv2d_transpose`` and ``depth_to_space``), the DeepUPE output and loss terms, the
methods on tiny degraded inputs, and a few steps of both recipes. Nothing here needs
../shared (the training data) or the committed checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restorebench.commands.convert import convert_weights
from restorebench.core.build import build_degradation, build_method
from restorebench.core.errors import UserError
from restorebench.neural.checkpoints import load_checkpoint, save_checkpoint
from restorebench.tasks.lowlight.degradations import LowLight
from restorebench.tasks.lowlight.models import (
    DEEPUPE_WEIGHTS,
    DeepUPELight,
    SIDUNet,
    colour_angle_loss,
    deepupe_loss_terms,
    deepupe_objective,
    sid_unet_parameter_count,
    smoothness_loss,
)
from restorebench.tasks.lowlight.neural import deepupe_training_pair, sid_training_pair
from tests import REPO


def _randomised(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return net.eval()


def _image(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    noise = np.random.default_rng(seed).random((h, w, 3)) * 0.1
    return (np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.7 - 0.5 * x * y], axis=-1) + noise).astype(np.float32)


# ---------------------------------------------------------------- SID U-Net


@pytest.mark.parametrize("size", [(8, 8), (7, 9), (13, 6), (3, 5), (1, 1)])
def test_unet_output_is_twice_the_packed_input(size):
    net = SIDUNet(base=4, depth=3).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 4, *size))
    assert out.shape == (2, 3, 2 * size[0], 2 * size[1])


def test_padding_keeps_aligned_inputs_unchanged():
    net = _randomised(SIDUNet(base=4, depth=3))
    x = torch.rand(1, 4, 9, 11)
    with torch.no_grad():
        padded = F.pad(x, (0, 1, 0, 3), mode="reflect")  # what forward pads to (multiple of 4)
        assert torch.allclose(net(x), net(padded)[..., :18, :22], atol=1e-6)


def test_full_sid_parameter_count():
    widths = [32, 64, 128, 256, 512]
    down = sum(9 * cin * c + c + 9 * c * c + c for cin, c in zip([4] + widths[:-1], widths))
    up = sum(4 * cin * c + 9 * 2 * c * c + c + 9 * c * c + c for cin, c in zip(widths[:0:-1], widths[-2::-1]))
    out = 32 * 12 + 12
    official = down + up + out  # the TF code's transposed convolutions have no bias
    assert official == 7_760_268
    net = build_method("lowlight/sid_unet?variant=full").build_network({})
    assert sum(p.numel() for p in net.parameters()) == official == sid_unet_parameter_count(up_bias=False)
    assert sid_unet_parameter_count(up_bias=True) == official + 256 + 128 + 64 + 32
    keys = list(net.state_dict())
    assert keys[:2] == ["conv1_1.weight", "conv1_1.bias"] and keys[-2:] == ["conv10_1.weight", "conv10_1.bias"]
    assert "upv6.weight" in keys and "upv6.bias" not in keys


def test_state_dict_round_trip_through_convert(tmp_path):
    net = _randomised(SIDUNet(base=4, depth=3, up_bias=True))
    path = tmp_path / "sid.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # a DataParallel save
    meta = convert_weights(path, "lowlight/sid_unet", tmp_path / "sid.safetensors")
    assert meta["config"]["base"] == 4 and meta["config"]["depth"] == 3 and meta["config"]["up_bias"] is True
    state, saved = load_checkpoint(tmp_path / "sid.safetensors")
    assert saved["architecture"] == "sid_unet"
    for k, v in net.state_dict().items():
        assert torch.equal(state[k], v)
    method = build_method(f"lowlight/sid_unet?checkpoint={tmp_path / 'sid.safetensors'}")
    x = torch.rand(1, 4, 6, 10)
    loaded = method.build_network(saved["config"])
    loaded.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), net(x))


def _tf_reference(tf: dict[str, np.ndarray], x: np.ndarray, depth: int) -> np.ndarray:
    """SID's TF network from its definitions (NHWC): slim conv2d SAME + lrelu, max_pool 2x2,
    conv2d_transpose out[2y+i, 2x+j, o] = sum_c x[y, x, c] f[i, j, o, c], concat [up, skip],
    1x1 conv, depth_to_space out[2y+i, 2x+j, c] = in[y, x, (2i+j) C + c]."""

    def conv(t: np.ndarray, name: str, act: bool = True) -> np.ndarray:
        w, b = tf[f"{name}/weights"], tf[f"{name}/biases"]
        k = w.shape[0]
        p = np.pad(t, ((k // 2, k // 2), (k // 2, k // 2), (0, 0)))
        out = (
            sum(
                np.einsum("hwc,co->hwo", p[i : i + t.shape[0], j : j + t.shape[1]], w[i, j])
                for i in range(k)
                for j in range(k)
            )
            + b
        )
        return np.maximum(out, 0.2 * out) if act else out

    skips, t = [], x
    for level in range(1, depth + 1):
        t = conv(conv(t, f"g_conv{level}_1"), f"g_conv{level}_2")
        if level < depth:
            skips.append(t)
            t = t.reshape(t.shape[0] // 2, 2, t.shape[1] // 2, 2, -1).max(axis=(1, 3))
    for n, level in enumerate(range(depth + 1, 2 * depth)):
        f = tf["Variable" if n == 0 else f"Variable_{n}"]
        up = np.zeros((t.shape[0] * 2, t.shape[1] * 2, f.shape[2]))
        for i in range(2):
            for j in range(2):
                up[i::2, j::2] = np.einsum("hwc,oc->hwo", t, f[i, j])
        t = conv(conv(np.concatenate([up, skips.pop()], axis=2), f"g_conv{level}_1"), f"g_conv{level}_2")
    t = conv(t, f"g_conv{2 * depth}", act=False)
    h, w, c4 = t.shape
    c = c4 // 4
    out = np.zeros((2 * h, 2 * w, c))
    for i in range(2):
        for j in range(2):
            out[i::2, j::2] = t[..., (2 * i + j) * c : (2 * i + j + 1) * c]
    return out


def test_official_tf_names_are_mapped(tmp_path):
    rng = np.random.default_rng(0)
    depth, widths = 3, [4, 8, 16]
    tf: dict[str, np.ndarray] = {}
    cin = 4
    for level, c in enumerate(widths, start=1):
        tf[f"g_conv{level}_1/weights"], tf[f"g_conv{level}_2/weights"] = (
            rng.normal(0, 0.3, (3, 3, cin, c)),
            rng.normal(0, 0.3, (3, 3, c, c)),
        )
        tf[f"g_conv{level}_1/biases"], tf[f"g_conv{level}_2/biases"] = rng.normal(0, 0.1, c), rng.normal(0, 0.1, c)
        cin = c
    for n, level in enumerate(range(depth + 1, 2 * depth)):
        c = widths[2 * depth - level - 1]
        tf["Variable" if n == 0 else f"Variable_{n}"] = rng.normal(0, 0.3, (2, 2, c, cin))
        tf[f"g_conv{level}_1/weights"], tf[f"g_conv{level}_2/weights"] = (
            rng.normal(0, 0.3, (3, 3, 2 * c, c)),
            rng.normal(0, 0.3, (3, 3, c, c)),
        )
        tf[f"g_conv{level}_1/biases"], tf[f"g_conv{level}_2/biases"] = rng.normal(0, 0.1, c), rng.normal(0, 0.1, c)
        cin = c
    tf[f"g_conv{2 * depth}/weights"], tf[f"g_conv{2 * depth}/biases"] = (
        rng.normal(0, 0.3, (1, 1, cin, 12)),
        rng.normal(0, 0.1, 12),
    )
    path = tmp_path / "sid_tf.pth"
    torch.save({f"{k}:0": torch.from_numpy(v.astype(np.float32)) for k, v in tf.items()}, path)
    meta = convert_weights(path, "lowlight/sid_unet?variant=full", tmp_path / "out.safetensors")
    assert meta["config"] == {"base": 4, "depth": 3, "in_channels": 4, "out_channels": 3, "block": 2, "up_bias": False}
    state, saved = load_checkpoint(tmp_path / "out.safetensors")
    net = SIDUNet(**saved["config"]).eval()
    net.load_state_dict(state)
    x = rng.random((8, 12, 4))
    with torch.no_grad():
        ours = net(torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32)))[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(ours, _tf_reference(tf, x, depth), rtol=1e-4, atol=1e-4)


def test_foreign_weights_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.0.weight": torch.zeros(4, 4, 3, 3)}, path)
    with pytest.raises(UserError, match="not a SID U-Net weight"):
        convert_weights(path, "lowlight/sid_unet", tmp_path / "x.safetensors")


# ---------------------------------------------------------------- DeepUPE


def _constant_s(c: float, eps: float = 1e-3) -> DeepUPELight:
    net = DeepUPELight(features=8, eps=eps).eval()
    last = net.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(math.log((c - eps) / (1 - c)))  # eps + (1 - eps) sigmoid(b) = c
    return net


def test_deepupe_output_is_input_over_illumination():
    net = _constant_s(0.25)
    image = torch.rand(2, 3, 19, 23) * 0.24
    with torch.no_grad():
        s = net.illumination(image)
        out = net(image)
    assert torch.allclose(s, torch.full_like(s, 0.25), atol=1e-6)
    assert torch.allclose(out, image / 0.25, rtol=1e-6, atol=1e-7)
    bright = torch.full((1, 3, 8, 8), 0.6)  # S < I: S is raised to I, the output saturates at 1
    with torch.no_grad():
        assert torch.allclose(net(bright), torch.ones_like(bright))
        assert torch.equal(net(torch.zeros(1, 3, 5, 5)), torch.zeros(1, 3, 5, 5))


def test_deepupe_clamp_passes_gradient_to_s():
    s = torch.full((1, 3, 4, 4), 0.3, requires_grad=True)
    image = torch.full((1, 3, 4, 4), 0.6)
    out = DeepUPELight.apply_illumination(image, s)
    assert torch.equal(out.detach(), torch.ones_like(out))
    ((out - 0.5) ** 2).sum().backward()
    assert (s.grad < 0).all()  # the output is too bright: a descent step raises S


def test_loss_terms_on_simple_inputs():
    image = torch.rand(1, 3, 16, 16) * 0.5 + 0.1
    target = torch.rand(1, 3, 16, 16)
    flat_s = torch.full_like(image, 0.4)
    terms = deepupe_loss_terms(image, flat_s, target, target)
    assert float(terms["reconstruction"]) == 0.0 and float(terms["smoothness"]) == 0.0
    assert float(terms["colour"]) < 1e-3
    assert float(colour_angle_loss(target * 0.3, target)) < 1e-3  # brightness does not change hue
    red, green = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    red[:, 0], green[:, 1] = 1.0, 0.5
    assert math.isclose(float(colour_angle_loss(red, green)), math.pi / 2, rel_tol=1e-6)
    # S may change where the input has an edge, not where it is flat
    step_image = torch.full((1, 3, 8, 8), 0.2)
    step_image[..., 4:] = 0.6
    s_at_edge, s_in_flat = torch.full_like(step_image, 0.5), torch.full_like(step_image, 0.5)
    s_at_edge[..., 4:] = 0.9
    s_in_flat[..., 6:] = 0.9
    at_edge, in_flat = float(smoothness_loss(s_at_edge, step_image)), float(smoothness_loss(s_in_flat, step_image))
    assert 0 < at_edge < in_flat / 100


def test_smoothness_loss_against_a_float64_reference():
    rng = np.random.default_rng(4)
    image, s_map = rng.uniform(0.0, 0.5, (1, 3, 5, 6)), rng.uniform(0.1, 1.0, (1, 3, 5, 6))
    log_l = np.log(0.2989 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2] + 1e-4)[:, None]
    wx = 1 / (np.abs(np.diff(log_l, axis=3)) ** 1.2 + 1e-4)
    wy = 1 / (np.abs(np.diff(log_l, axis=2)) ** 1.2 + 1e-4)
    expected = 0.5 * ((wx * np.diff(s_map, axis=3) ** 2).mean() + (wy * np.diff(s_map, axis=2) ** 2).mean())
    got = smoothness_loss(torch.from_numpy(s_map), torch.from_numpy(image))
    assert math.isclose(float(got), expected, rel_tol=1e-12)


def test_objective_is_the_weighted_sum_of_the_paper_terms():
    torch.manual_seed(0)
    net = DeepUPELight(features=8).train()
    image, target = torch.rand(2, 3, 16, 16) * 0.3, torch.rand(2, 3, 16, 16)
    total, logged = deepupe_objective(net, image, target)
    with torch.no_grad():
        s = net.illumination(image)
        terms = deepupe_loss_terms(image, s, DeepUPELight.apply_illumination(image, s), target)
    assert set(logged) == {"reconstruction", "smoothness", "colour"}
    for k, v in terms.items():
        assert math.isclose(logged[k], float(v), rel_tol=1e-6)
    assert math.isclose(total.item(), sum(DEEPUPE_WEIGHTS[k] * float(v) for k, v in terms.items()), rel_tol=1e-6)
    with torch.no_grad():
        assert math.isclose(logged["reconstruction"], float(F.mse_loss(net(image), target)), rel_tol=1e-6)
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


# ---------------------------------------------------------------- methods


def _checkpoint(tmp_path: Path, method: str, net: torch.nn.Module) -> Path:
    path = tmp_path / f"{method}.safetensors"
    save_checkpoint(path, net.state_dict(), {"architecture": method, "config": net.config})
    return path


@pytest.fixture(scope="module")
def raw_item():
    return LowLight(LowLight.Params(ratio=100)).apply(_image(64, 64), np.random.default_rng(0))


@pytest.fixture(scope="module")
def srgb_item():
    return build_degradation("underexpose?ratio=8").apply(_image(30, 34), np.random.default_rng(0))


def test_sid_method_restores_a_lowlight_input(tmp_path, raw_item):
    path = _checkpoint(tmp_path, "sid_unet", _randomised(SIDUNet(base=4, depth=3), seed=1))
    method = build_method(f"lowlight/sid_unet?checkpoint={path}")
    assert method.uses_true_level and method.scale == 2
    x, _ = method.prepare(raw_item)
    np.testing.assert_array_equal(x, np.minimum(raw_item.image * np.float32(100), 1).transpose(2, 0, 1))
    (out,) = method.restore([raw_item])
    assert out.shape == raw_item.reference.shape == (64, 64, 3)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    odd = LowLight(LowLight.Params(ratio=300)).apply(_image(46, 54), np.random.default_rng(1))  # 23 x 27 packed
    assert method.restore([odd])[0].shape == odd.reference.shape == (46, 54, 3)
    # the network needs the packed raw and the ratio, not the raw file the camera pipelines render
    no_file = dataclasses.replace(raw_item, extras={})
    np.testing.assert_array_equal(method.restore([no_file])[0], out)
    with pytest.raises(ValueError, match=r"needs params\['ratio'\] of its 'lowlight' input"):
        method.prepare(dataclasses.replace(no_file, params={}))


def test_deepupe_method_restores_srgb_inputs(tmp_path, srgb_item):
    path = _checkpoint(tmp_path, "deepupe_light", DeepUPELight(features=8))
    method = build_method(f"lowlight/deepupe?checkpoint={path}")
    assert not method.uses_true_level
    (out,) = method.restore([srgb_item])
    assert out.shape == srgb_item.image.shape and 0 <= out.min() and out.max() <= 1
    gray = build_degradation("underexpose?ratio=4").apply(_image(20, 24)[..., :1], np.random.default_rng(0))
    assert method.restore([gray])[0].shape == (20, 24, 1)


def test_methods_reject_the_other_kind_of_input(tmp_path, raw_item, srgb_item):
    sid = build_method(f"lowlight/sid_unet?checkpoint={_checkpoint(tmp_path, 'sid_unet', SIDUNet(base=4, depth=2))}")
    upe = build_method(
        f"lowlight/deepupe?checkpoint={_checkpoint(tmp_path, 'deepupe_light', DeepUPELight(features=4))}"
    )
    with pytest.raises(ValueError, match="packed raw inputs.*lowlight/deepupe"):
        sid.restore([srgb_item])
    with pytest.raises(ValueError, match="sRGB inputs.*lowlight/sid_unet"):
        upe.restore([raw_item])


def test_missing_full_checkpoint_says_how_to_get_one():
    method = build_method("lowlight/sid_unet?variant=full")
    method.checkpoint_dir = Path("/nonexistent")
    with pytest.raises(UserError, match="missing"):
        method.checkpoints()


# ---------------------------------------------------------------- recipes


def test_sid_pairs_are_the_lowlight_degradation():
    clean = _image(32, 32)
    x, y = sid_training_pair(clean, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    ratio = (100.0, 250.0, 300.0)[int(rng.integers(3))]
    ref = LowLight(LowLight.Params(ratio=ratio)).apply(clean, rng)
    assert x.shape == (4, 16, 16) and y.shape == (3, 32, 32) and x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(x, np.minimum(ref.image * np.float32(ratio), 1).transpose(2, 0, 1))
    np.testing.assert_array_equal(y, ref.reference.transpose(2, 0, 1))


def test_deepupe_pairs_are_darkened_and_clean_patches():
    clean = _image(24, 24)
    x, y = deepupe_training_pair(clean, np.random.default_rng(0))
    assert x.shape == y.shape == (3, 24, 24) and x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(y, clean.transpose(2, 0, 1))
    assert (x <= y + 1e-6).all() and x.mean() < 0.6 * y.mean()  # darker, on 8-bit levels
    np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-4)


@pytest.mark.parametrize("method", ["lowlight/sid_unet", "lowlight/deepupe"])
def test_recipes_train_a_few_steps(tmp_path, method):
    from restorebench.commands.train import train_method

    out = tmp_path / "smoke.safetensors"
    summary = train_method(method, data=["synthetic:deadleaves?n=4&size=96"], steps=2, out=out, tracking=False)
    state, meta = load_checkpoint(out)
    assert meta["steps"] == 2 and np.isfinite(meta["metrics"]["val_psnr"])
    assert meta["recipe"]["loss"] == ("l1" if method.endswith("sid_unet") else "mse")
    if method.endswith("deepupe"):  # the composite loss, its terms logged beside the total
        assert meta["recipe"]["objective"] == "tasks.lowlight.models.deepupe_objective"
        assert {"reconstruction", "smoothness", "colour", "loss"} <= set(meta["history"][-1])
    else:
        assert meta["recipe"]["objective"] is None and "smoothness" not in meta["history"][-1]
    restored = build_method(f"{method}?checkpoint={out}")
    net = restored.build_network(meta["config"])
    net.load_state_dict(state)
    assert summary.checkpoint == out


@pytest.mark.parametrize(
    "method, name", [("lowlight/sid_unet", "sid_unet_light"), ("lowlight/deepupe", "deepupe_light")]
)
def test_committed_checkpoints_match_their_recipes(method, name):
    path = REPO / "tasks" / "lowlight" / "checkpoints" / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path.name} is not committed")
    built = build_method(method)
    assert built.checkpoints() == [path]
    state, meta = load_checkpoint(path)
    recipe = built.recipe()
    assert meta["config"] == recipe.config and meta["steps"] == recipe.steps == meta["recipe"]["steps"]
    assert meta["recipe"]["make_pair"].endswith(recipe.make_pair.__name__)
    assert meta["recipe"].get("objective") == recipe.describe()["objective"]
    sources, images = ["folder:../shared/data/train/BSDS400"], 400
    if method.endswith("sid_unet"):  # plus synthetic dead leaves (saturated colours, hard edges)
        sources, images = [*sources, "synthetic:deadleaves?n=256&size=256&seed=7"], 400 + 256
    assert meta["data"]["sources"] == sources and meta["data"]["images"] == images
    minutes = 120 if method.endswith("sid_unet") else 30  # SID's documented budget: 40000 steps, ~80 min
    assert meta["seconds"] < minutes * 60  # reproducible on 2 cores within the documented budget
    net = built.build_network(meta["config"])
    net.load_state_dict(state)
