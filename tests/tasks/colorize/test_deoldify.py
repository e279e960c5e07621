"""DeOldify: the released generators' key/shape layout, strict loading, conversion of fastai
files without fastai, and the inference filter (luminance kept, chroma from the network)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from restorebench.commands.convert import convert_weights
from restorebench.core.build import build_degradation, build_method
from restorebench.core.errors import UserError
from restorebench.neural.checkpoints import load_checkpoint, save_checkpoint
from restorebench.tasks.colorize.models import DeOldifyGenerator
from restorebench.tasks.colorize.neural import DEOLDIFY_VARIANTS as VARIANTS

# ---------------------------------------------------------------- the tables, written down from the architecture


def _sn(prefix, out, c_in, k, bias, dims=2):
    shape = (out, c_in) + (k,) * dims
    keys = {f"{prefix}.weight_orig": shape, f"{prefix}.weight_u": (out,), f"{prefix}.weight_v": (c_in * k**dims,)}
    if bias:
        keys[f"{prefix}.bias"] = (out,)
    return keys


def _bn(prefix, c):
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def _attention(prefix, c):
    return (
        {f"{prefix}.gamma": (1,)}
        | _sn(f"{prefix}.query", c // 8, c, 1, False, 1)
        | _sn(f"{prefix}.key", c // 8, c, 1, False, 1)
        | _sn(f"{prefix}.value", c, c, 1, False, 1)
    )


def _resnet(block, depths):
    keys = {"layers.0.0.weight": (64, 3, 7, 7)} | _bn("layers.0.1", 64)
    c_in, expansion = 64, 4 if block == "bottleneck" else 1
    for s, (depth, planes) in enumerate(zip(depths, (64, 128, 256, 512)), start=4):
        for b in range(depth):
            p = f"layers.0.{s}.{b}"
            if block == "basic":
                keys |= {f"{p}.conv1.weight": (planes, c_in, 3, 3), f"{p}.conv2.weight": (planes, planes, 3, 3)}
                keys |= _bn(f"{p}.bn1", planes) | _bn(f"{p}.bn2", planes)
            else:
                keys |= {
                    f"{p}.conv1.weight": (planes, c_in, 1, 1),
                    f"{p}.conv2.weight": (planes, planes, 3, 3),
                    f"{p}.conv3.weight": (planes * 4, planes, 1, 1),
                }
                keys |= _bn(f"{p}.bn1", planes) | _bn(f"{p}.bn2", planes) | _bn(f"{p}.bn3", planes * 4)
            if b == 0 and (s > 4 or block == "bottleneck"):
                keys |= {f"{p}.downsample.0.weight": (planes * expansion, c_in, 1, 1)} | _bn(
                    f"{p}.downsample.1", planes * expansion
                )
            c_in = planes * expansion
    return keys


def artistic_table():
    t = _resnet("basic", (3, 4, 6, 3)) | _bn("layers.1", 512)
    t |= (
        _sn("layers.3.0.0", 1024, 512, 3, False)
        | _bn("layers.3.0.2", 1024)
        | _sn("layers.3.1.0", 512, 1024, 3, False)
        | _bn("layers.3.1.2", 512)
    )
    for i, (up, skip, c1_in, out) in zip(
        (4, 5, 6, 7), ((512, 256, 512, 768), (768, 128, 512, 768), (768, 64, 448, 672), (672, 64, 400, 300))
    ):
        t |= (
            _sn(f"layers.{i}.shuf.conv.0", up // 2 * 4, up, 1, False)
            | _bn(f"layers.{i}.shuf.conv.1", up // 2 * 4)
            | _bn(f"layers.{i}.bn", skip)
        )
        t |= _sn(f"layers.{i}.conv1.0", out, c1_in, 3, False) | _bn(f"layers.{i}.conv1.2", out)
        t |= _sn(f"layers.{i}.conv2.0", out, out, 3, False) | _bn(f"layers.{i}.conv2.2", out)
    t |= _attention("layers.5.conv2.3", 768)
    t |= {
        "layers.8.conv.0.bias": (1200,),
        "layers.8.conv.0.weight_g": (1200, 1, 1, 1),
        "layers.8.conv.0.weight_v": (1200, 300, 1, 1),
    }
    t |= (
        _sn("layers.10.layers.0.0", 303, 303, 3, True)
        | _sn("layers.10.layers.1.0", 303, 303, 3, True)
        | _sn("layers.11.0", 3, 303, 1, True)
    )
    return t


def stable_table():
    t = _resnet("bottleneck", (3, 4, 23, 3)) | _bn("layers.1", 2048)
    t |= (
        _sn("layers.3.0.0", 4096, 2048, 3, False)
        | _bn("layers.3.0.2", 4096)
        | _sn("layers.3.1.0", 2048, 4096, 3, False)
        | _bn("layers.3.1.2", 2048)
    )
    for i, (up, skip, shuf_out, c_in, out) in zip(
        (4, 5, 6, 7),
        ((2048, 1024, 512, 1536, 512), (512, 512, 512, 1024, 512), (512, 256, 512, 768, 512), (512, 64, 256, 320, 256)),
    ):
        t |= (
            _sn(f"layers.{i}.shuf.conv.0", shuf_out * 4, up, 1, False)
            | _bn(f"layers.{i}.shuf.conv.1", shuf_out * 4)
            | _bn(f"layers.{i}.bn", skip)
        )
        t |= _sn(f"layers.{i}.conv.0", out, c_in, 3, False) | _bn(f"layers.{i}.conv.2", out)
    t |= _attention("layers.5.conv.3", 512)
    t |= {
        "layers.8.conv.0.bias": (1024,),
        "layers.8.conv.0.weight_g": (1024, 1, 1, 1),
        "layers.8.conv.0.weight_v": (1024, 256, 1, 1),
    }
    t |= (
        _sn("layers.10.layers.0.0", 259, 259, 3, True)
        | _sn("layers.10.layers.1.0", 259, 259, 3, True)
        | _sn("layers.11.0", 3, 259, 1, True)
    )
    return t


@pytest.mark.parametrize(
    ("variant", "table", "params"), [("artistic", artistic_table, 63_646_881), ("stable", stable_table, 218_222_197)]
)
def test_the_released_layouts_and_a_strict_load(variant, table, params):
    expected = table()
    with torch.device("meta"):
        net = DeOldifyGenerator(**VARIANTS[variant])
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == expected
    assert len(expected) == {"artistic": 378, "stable": 754}[variant]
    assert sum(p.numel() for p in net.parameters()) == params
    state = {
        k: torch.empty(shape, device="meta", dtype=torch.int64 if k.endswith("num_batches_tracked") else torch.float32)
        for k, shape in expected.items()
    }
    net.load_state_dict(state, strict=True, assign=True)  # no missing, no unexpected key


def test_list_shows_the_released_sizes():
    assert build_method("colorize/deoldify?variant=artistic").parameter_count() == 63_646_881
    assert build_method("colorize/deoldify?variant=stable").parameter_count() == 218_222_197


# ---------------------------------------------------------------- fastai files, without fastai


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    torch.manual_seed(0)
    net = DeOldifyGenerator(**VARIANTS["light"]).eval()
    folder = tmp_path_factory.mktemp("deoldify")
    return net, save_checkpoint(
        folder / "light.safetensors", net.state_dict(), {"architecture": "deoldify", "config": net.config}
    )


def _fastai_file(path, state, with_model=True):
    """What fastai's Learner.save writes: {'model': state_dict, 'opt': the optimiser wrapper's state}."""
    opt = {
        "opt_state": {"state": {}, "param_groups": [{"lr": 1e-3}]},
        "opt_func": functools.partial(torch.optim.Adam, betas=(0.9, 0.99)),
        "true_wd": True,
        "bn_wd": True,
    }
    payload = {"model": state, "opt": opt} if with_model else {"opt": opt}
    torch.save(payload, path, pickle_protocol=2)
    return path


def test_a_fastai_learner_file_converts_without_fastai(light, tmp_path):
    net, _ = light
    path = _fastai_file(tmp_path / "ColorizeLight_gen.pth", net.state_dict())
    assert b"functools" in path.read_bytes()  # the optimiser wrapper pickles a partial: not a weights-only file
    out = tmp_path / "light.safetensors"
    meta = convert_weights(path, "colorize/deoldify?variant=light", out)
    assert meta["converted_from"]["format"] == "pickled_model"
    loaded = build_method(f"colorize/deoldify?checkpoint={out}")._network(out)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key].cpu(), value)


def test_bad_fastai_files_and_the_other_variants_weights(light, tmp_path):
    net, _ = light
    with pytest.raises(UserError, match="no state dict"):
        convert_weights(
            _fastai_file(tmp_path / "nomodel.pth", net.state_dict(), with_model=False),
            "colorize/deoldify?variant=light",
            tmp_path / "x.safetensors",
        )
    fake_stable = {k: torch.zeros(1) for k in stable_table() if k.startswith("layers.0.6.")}
    torch.save(fake_stable, tmp_path / "stable_body.pth")
    with pytest.raises(UserError, match="the stable generator's weights, not the artistic one's"):
        convert_weights(tmp_path / "stable_body.pth", "colorize/deoldify?variant=artistic", tmp_path / "y.safetensors")


def test_a_key_mismatch_is_one_short_line(tmp_path):
    """The artistic body without its decoder: the message counts the missing keys and names
    the first few (it listed all of them, 6 KB on one line)."""
    table = artistic_table()
    body = {k: torch.zeros(shape) for k, shape in table.items() if k.startswith("layers.0.")}
    torch.save(body, tmp_path / "body_only.pth")
    out = tmp_path / "artistic.safetensors"
    with pytest.raises(UserError) as info:
        convert_weights(tmp_path / "body_only.pth", "colorize/deoldify?variant=artistic", out)
    message = str(info.value).splitlines()[0]
    missing = [k for k in table if k not in body and not k.endswith("num_batches_tracked")]  # those are filled in
    assert len(missing) > 100 and len(message) < 400
    assert f"{len(missing)} missing ({missing[0]}, {missing[1]}, {missing[2]}, ... {len(missing) - 3} more)" in message
    assert "unexpected" not in message and not out.exists()


def test_released_variants_without_weights_say_how_to_get_them():
    with pytest.raises(UserError, match="released weights are not shipped") as info:
        build_method("colorize/deoldify?variant=artistic").checkpoints()
    assert "restorebench convert ColorizeArtistic_gen.pth" in str(info.value)


# ---------------------------------------------------------------- the inference filter


def test_the_filter_keeps_the_luminance_and_the_size(light):
    _, path = light
    clean = np.random.default_rng(0).random((70, 90, 3)).astype(np.float32)
    item = build_degradation("gray").apply(clean, np.random.default_rng(0))
    method = build_method(f"colorize/deoldify?checkpoint={path}&render_factor=8")
    (out,) = method.restore([item])
    assert out.shape == (70, 90, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    import cv2

    from restorebench.tasks.colorize.color import gray_rgb
    from restorebench.tasks.colorize.degradations import lightness

    y_in = cv2.cvtColor(gray_rgb(lightness(item)), cv2.COLOR_RGB2YUV)[..., 0].astype(int)
    out8 = np.round(out * 255).astype(np.uint8)
    y_out = cv2.cvtColor(out8, cv2.COLOR_RGB2YUV)[..., 0].astype(int)
    inside = ((out8 > 0) & (out8 < 255)).all(axis=2)  # where YUV -> RGB clipped nothing
    assert inside.mean() > 0.03  # a random network's colours are extreme: most pixels clip
    assert np.abs(y_in - y_out)[inside].max() <= 2  # the input's luminance, up to YUV -> RGB -> YUV rounding
    raw = build_method(f"colorize/deoldify?checkpoint={path}&render_factor=8&post_process=false").restore([item])[0]
    assert not np.allclose(raw, out)


def test_the_post_process_takes_luminance_from_the_input_and_chroma_from_the_network():
    import cv2

    from restorebench.tasks.colorize.color import keep_luminance

    rng = np.random.default_rng(2)
    gray = np.repeat(rng.integers(40, 215, (16, 16, 1)), 3, axis=2).astype(np.uint8)
    colour = np.clip(rng.integers(90, 160, (16, 16, 3)), 0, 255).astype(np.uint8)  # mild colours: no clipping
    out = keep_luminance(gray, colour)
    yuv_out, yuv_gray, yuv_col = (cv2.cvtColor(x, cv2.COLOR_RGB2YUV).astype(int) for x in (out, gray, colour))
    assert np.abs(yuv_out[..., 0] - yuv_gray[..., 0]).max() <= 2
    assert np.abs(yuv_out[..., 1:] - yuv_col[..., 1:]).max() <= 2


def test_render_factor_limits(light):
    _, path = light
    with pytest.raises(UserError, match="render_factor"):
        build_method("colorize/deoldify?render_factor=3")
    tiny = build_degradation("gray").apply(
        np.random.default_rng(1).random((20, 30, 3)).astype(np.float32), np.random.default_rng(0)
    )
    with pytest.raises(
        ValueError, match=r"render_factor 35 renders 560 px, more than 8x this 30x20 image; use render_factor <= 15"
    ):
        build_method(f"colorize/deoldify?checkpoint={path}&render_factor=35").restore([tiny])


def _renamed(pconv_state: dict, levels: int = 3) -> dict:
    """Inpainting's encoder levels under FeatureEncoder's names, as the committed file was made."""
    out = {}
    for key, value in pconv_state.items():
        level, _, rest = key.partition(".")
        if level.startswith("enc") and int(level[3:]) <= levels:
            i = int(level[3:]) - 1
            if rest.startswith("conv.conv."):
                out[f"convs.{i}.{rest.removeprefix('conv.conv.')}"] = value
            elif rest.startswith("bn."):
                out[f"norms.{i}.{rest.removeprefix('bn.')}"] = value
    return out


def test_the_feature_encoder_is_the_pconv_encoder_away_from_the_border():
    """Where the committed feature weights came from: with a mask of ones, inpainting's partial
    convolutions are the FeatureEncoder's plain ones away from the border."""
    from restorebench.tasks.colorize.models import FeatureEncoder
    from restorebench.tasks.inpaint.models import PConvUNet

    torch.manual_seed(0)
    config = {"widths": [8, 16, 16], "kernels": [7, 5, 3]}
    net = PConvUNet(**config).eval()
    for module in net.modules():  # non-trivial running statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    encoder = FeatureEncoder(**config).eval()
    encoder.load_state_dict(_renamed(net.state_dict()), strict=True)
    rgb = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ours = encoder(rgb)
        x, m = rgb, torch.ones(1, 1, 64, 64)
        for i, feature in enumerate(ours, start=1):
            x, m = getattr(net, f"enc{i}")(x, m)
            edge = 8 >> (i - 1)  # the border the partial convolution rescales, in this level's pixels
            assert feature.shape == x.shape
            torch.testing.assert_close(feature[..., edge:-edge, edge:-edge], x[..., edge:-edge, edge:-edge])


def test_the_feature_network_is_colorizations_own_file_and_module():
    # retraining inpaint/pconv must not change what the DeOldify recipe optimises: the encoder
    # it uses is a file and a module of colorization's own, under its own parameter names
    import torch.nn.functional as F

    from restorebench.tasks.colorize import neural

    assert neural.FEATURE_CHECKPOINT.parent.parent.name == "colorize"
    state, meta = load_checkpoint(neural.FEATURE_CHECKPOINT)
    assert sorted({k.split(".")[0] for k in state}) == ["convs", "norms"]
    assert state["convs.0.weight"].shape == (32, 3, 7, 7)  # RGB in, no base-fill channels
    assert meta["source"]["sha256"] == "3fee124bc671027d2597b40069b4e4ee3d42340c657440474866972c4bd38c39"
    rgb = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        feats = neural.feature_encoder()(rgb)
        x = rgb  # the same conv (stride 2) -> batch norm (running statistics) -> ReLU, written out
        for i, feature in enumerate(feats):
            w = state[f"convs.{i}.weight"]
            x = F.conv2d(x, w, state[f"convs.{i}.bias"], stride=2, padding=w.shape[-1] // 2)
            if i:
                x = F.batch_norm(
                    x, state[f"norms.{i}.running_mean"], state[f"norms.{i}.running_var"],
                    state[f"norms.{i}.weight"], state[f"norms.{i}.bias"],
                )  # fmt: skip
            x = F.relu(x)
            torch.testing.assert_close(feature, x, rtol=0, atol=0)
    assert [f.shape[1] for f in feats] == [32, 64, 128]
