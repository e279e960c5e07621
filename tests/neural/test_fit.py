"""Whether a checkpoint fits a network: config against tensors before any build, bounded builds,
legacy layouts normalised, short mismatch lines, and what convert says without a mapping."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.modules import module as torch_modules

from restorebench.core.build import build_method
from restorebench.core.errors import UserError
from restorebench.neural.checkpoints import load_checkpoint, save_checkpoint
from restorebench.neural.fit import describe_mismatch, normalise_state
from restorebench.neural.inference import NeuralMethod
from tests import REPO

# ---------------------------------------------------------------- every task's networks


@pytest.mark.parametrize(
    ("ref", "checkpoint", "key", "value", "said"),
    [
        ("denoise/dncnn", "denoise/checkpoints/dncnn_blind_gray.safetensors", "depth", 10**9, "depth=15"),
        ("superres/srcnn", "superres/checkpoints/srcnn_915_x3.safetensors", "n1", 10**9, "n1=64"),
        ("lowlight/sid_unet", "lowlight/checkpoints/sid_unet_light.safetensors", "depth", 10**9, "depth=4"),
        ("lowlight/deepupe", "lowlight/checkpoints/deepupe_light.safetensors", "features", 2 * 10**9, "features=32"),
        ("inpaint/pconv", "inpaint/checkpoints/pconv_light.safetensors", "widths", [128] * 10**5, "widths=[32, 64,"),
        ("inpaint/vae", "inpaint/checkpoints/vae_light.safetensors", "kernels", [3] * 10**5, "kernels=[7, 5, 5,"),
        ("colorize/eccv16", "colorize/checkpoints/eccv16_light.safetensors", "widths", [10**9] * 8, "widths=[16,"),
        (
            "colorize/deoldify",
            "colorize/checkpoints/deoldify_light.safetensors",
            "depths",
            [10**9, 1, 1, 1],
            "depths=[1, 1,",
        ),
    ],
)
def test_a_config_contradicting_the_tensors_is_refused_before_building(tmp_path, ref, checkpoint, key, value, said):
    state, meta = load_checkpoint(REPO / "tasks" / checkpoint)
    path = save_checkpoint(tmp_path / "liar.safetensors", state, {**meta, "config": {**meta["config"], key: value}})
    method = build_method(f"{ref}?checkpoint={path}")
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        method._network(path)
    message = str(info.value).splitlines()[0]
    assert message.startswith(f"{path}: its metadata config has {key}=") and f"but its tensors say {said}" in message
    assert len(message) < 400 and time.perf_counter() - start < 2.0


class _Chain(nn.Module):
    def __init__(self, layers: int = 2, width: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(*(nn.Conv2d(width if i else 1, width, 3, padding=1) for i in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _ChainMethod(NeuralMethod):
    """A method that reads nothing from the tensors: only the bounded build stands guard."""

    task = "denoise"
    name = "chain"
    architecture = "chain"

    def build_network(self, config: dict) -> nn.Module:
        return _Chain(**config)


def test_a_network_the_method_cannot_check_is_built_with_a_bound(tmp_path):
    path = save_checkpoint(
        tmp_path / "chain.safetensors",
        _Chain(layers=3).state_dict(),
        {"architecture": "chain", "config": {"layers": 3}},
    )
    method = _ChainMethod(_ChainMethod.Params(checkpoint=str(path)))
    assert method.check_checkpoint(path) == (1, 4, 64, 64)  # an honest file loads and runs

    liar = save_checkpoint(
        tmp_path / "liar.safetensors",
        _Chain(layers=3).state_dict(),
        {"architecture": "chain", "config": {"layers": 10**9, "width": 4}},
    )
    method = _ChainMethod(_ChainMethod.Params(checkpoint=str(liar)))
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        method._network(liar)
    assert str(info.value).splitlines()[0] == (
        f"{liar}: its metadata config builds more than 268 parameters and buffers in denoise/chain, but its "
        "tensors number 6 (largest value in the config: layers=1000000000); denoise/chain is not built from it"
    )
    assert time.perf_counter() - start < 1.0
    assert not torch_modules._global_parameter_registration_hooks  # the counting hooks are gone
    assert not torch_modules._global_module_registration_hooks


# ---------------------------------------------------------------- legacy layouts, short lines


def test_legacy_buffers_and_names_are_brought_to_the_network():
    expected = {
        "bn.weight": (4,),
        "bn.num_batches_tracked": (),
        "other_bn.num_batches_tracked": (),
        "sn.weight_orig": (4, 2, 3, 3),
        "sn.weight_u": (4,),
        "wn.weight_g": (4, 1, 1, 1),
        "wn.weight_v": (4, 2, 1, 1),
        "gamma": (1,),
    }
    state = {
        "module.bn.weight": torch.ones(4),
        "bn.num_batches_tracked": torch.tensor([7]),  # PyTorch 0.4
        "sn.parametrizations.weight.original": torch.ones(4, 2, 3, 3),
        "sn.parametrizations.weight.0._u": torch.ones(4),
        "wn.parametrizations.weight.original0": torch.ones(4, 1, 1, 1),
        "wn.parametrizations.weight.original1": torch.ones(4, 2, 1, 1),
        "gamma": torch.tensor(0.5),  # a scalar where (1,) is kept
    }
    out = normalise_state(state, expected)
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert int(out["bn.num_batches_tracked"]) == 7 and int(out["other_bn.num_batches_tracked"]) == 0
    assert float(out["gamma"][0]) == 0.5
    # a real mismatch is left for the shape check to report
    assert tuple(normalise_state({"bn.weight": torch.ones(2)}, {"bn.weight": (4,)})["bn.weight"].shape) == (2,)


def test_a_mismatch_is_counted_not_listed():
    expected = {f"layer{i}.weight": (3,) for i in range(500)}
    stored = {"layer0.weight": (2,), "stray.bias": (1,)}
    assert describe_mismatch(expected, stored) == (
        "499 missing (layer1.weight, layer2.weight, layer3.weight, ... 496 more); 1 unexpected (stray.bias); "
        "1 of another shape (layer0.weight: stored (2,), expected (3,))"
    )
    assert describe_mismatch(expected, dict.fromkeys(expected, (3,))) == ""


# ---------------------------------------------------------------- convert without a mapping


@pytest.mark.parametrize("ref", ["inpaint/pconv", "inpaint/vae?samples=2"])
def test_convert_without_a_mapping_says_which_methods_have_one_and_what_to_do(tmp_path, ref):
    from restorebench.commands.convert import convert_weights

    with pytest.raises(UserError) as info:
        convert_weights(tmp_path / "weights.pth", ref, tmp_path / "out.safetensors")
    name = ref.split("?")[0]
    assert str(info.value.args[0]) == (
        f"{name} has no mapping for released weights; `restorebench convert` maps released weights onto "
        "colorize/deoldify, colorize/eccv16, denoise/dncnn, lowlight/sid_unet, superres/srcnn only"
    )
    assert info.value.hint == (
        f"train it with `restorebench train {name}` or pass a restorebench checkpoint with "
        f"--method '{name}?checkpoint=FILE.safetensors'"
    )
    assert list(Path(tmp_path).iterdir()) == []


def test_convert_of_a_classical_method_names_the_neural_ones(tmp_path):
    from restorebench.commands.convert import convert_weights

    with pytest.raises(UserError, match=r"denoise/median is not a neural method; .* onto colorize/deoldify, "):
        convert_weights(tmp_path / "weights.pth", "denoise/median", tmp_path / "out.safetensors")
