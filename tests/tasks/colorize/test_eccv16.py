"""ECCV16: the release's state-dict layout, conversion of released weights, the task end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorebench.commands.convert import convert_weights
from restorebench.core.build import build_degradation, build_method
from restorebench.core.errors import SkipUnit, UserError
from restorebench.neural.checkpoints import save_checkpoint
from restorebench.results.board import build_leaderboard
from restorebench.run.pipeline import RunOptions, run_suite
from restorebench.tasks.colorize.color import ab_bins
from restorebench.tasks.colorize.models import ECCV16

# The release's keys and shapes (colorizers/eccv16.py), written down from the architecture.
RELEASE = {
    "model1.0": (64, 1),
    "model1.2": (64, 64),
    "model2.0": (128, 64),
    "model2.2": (128, 128),
    "model3.0": (256, 128),
    "model3.2": (256, 256),
    "model3.4": (256, 256),
    "model4.0": (512, 256),
    "model4.2": (512, 512),
    "model4.4": (512, 512),
    **{f"model{b}.{i}": (512, 512) for b in (5, 6, 7) for i in (0, 2, 4)},
    "model8.2": (256, 256),
    "model8.4": (256, 256),
}
NORMS = {
    "model1.4": 64,
    "model2.4": 128,
    "model3.6": 256,
    "model4.6": 512,
    "model5.6": 512,
    "model6.6": 512,
    "model7.6": 512,
}


def release_state_dict(seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, (c_out, c_in) in RELEASE.items():
        state[f"{key}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * 0.02
        state[f"{key}.bias"] = torch.zeros(c_out)
    for key, c in NORMS.items():
        state.update(
            {
                f"{key}.weight": torch.ones(c),
                f"{key}.bias": torch.zeros(c),
                f"{key}.running_mean": torch.zeros(c),
                f"{key}.running_var": torch.ones(c),
            }
        )
    state["model8.0.weight"] = torch.randn(512, 256, 4, 4, generator=g) * 0.02  # ConvTranspose: in x out
    state["model8.0.bias"] = torch.zeros(256)
    state["model8.6.weight"] = torch.randn(313, 256, 1, 1, generator=g) * 0.1
    state["model8.6.bias"] = torch.zeros(313)
    state["model_out.weight"] = torch.from_numpy(ab_bins().T / 110).float()[:, :, None, None]
    return state


def test_the_release_layout_loads_strictly_into_the_full_network():
    net = ECCV16()
    assert sum(p.numel() for p in net.parameters()) == 32_236_011
    state = release_state_dict()
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert unexpected == [] and all(k.endswith("num_batches_tracked") for k in missing)
    assert set(net.state_dict()) - set(state) == {k for k in net.state_dict() if k.endswith("num_batches_tracked")}


def test_released_weights_convert_and_decode_as_the_release_does(tmp_path):
    state = release_state_dict()
    path = tmp_path / "colorization_release_v2.pth"
    torch.save(state, path)
    out = tmp_path / "eccv16_full.safetensors"
    convert_weights(path, "colorize/eccv16?variant=full", out)
    method = build_method(f"colorize/eccv16?variant=full&checkpoint={out}")
    net = method._network(out)
    # the release's logits already carry 1 / 0.38: divided out, so the annealed mean at
    # T = 0.38 here equals the release's plain softmax mean
    torch.testing.assert_close(net.model8[6].weight, state["model8.6.weight"] / 2.606)
    lightness = torch.rand(1, 1, 32, 40)
    release = ECCV16()
    release.load_state_dict(state, strict=False)
    release.eval()
    with torch.inference_mode():
        ours = net.ab(net.logits(lightness))
        theirs = release.model_out(torch.softmax(release.logits(lightness), dim=1)) * 110  # the release's forward
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_the_input_and_output_normalisation_is_the_releases():
    net = ECCV16(widths=(4, 4, 4, 4, 4, 4, 4, 4)).eval()
    seen = {}
    net.model1[0].register_forward_hook(lambda m, i, o: seen.update(input=i[0]))  # returns None: output kept
    with torch.inference_mode():
        rgb = net(torch.full((1, 1, 16, 16), 0.75))
    assert torch.allclose(seen["input"], torch.full((1, 1, 16, 16), (75.0 - 50.0) / 100.0))
    assert rgb.shape == (1, 3, 16, 16)
    np.testing.assert_allclose(net.model_out.weight[:, :, 0, 0].T.numpy() * 110, ab_bins(), atol=1e-4)


def test_a_checkpoint_with_another_number_of_bins_is_a_clear_error(tmp_path):
    state = release_state_dict()
    state["model8.6.weight"] = state["model8.6.weight"][:300]
    state["model8.6.bias"] = state["model8.6.bias"][:300]
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(UserError, match="313 bin logits .* this file has 300 bins"):
        convert_weights(tmp_path / "odd.pth", "colorize/eccv16?variant=full", tmp_path / "odd.safetensors")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    net = ECCV16(widths=(4, 4, 8, 8, 8, 8, 8, 8))
    path = tmp_path_factory.mktemp("eccv") / "tiny.safetensors"
    return save_checkpoint(path, net.state_dict(), {"architecture": "eccv16", "config": net.config})


@pytest.mark.parametrize(("h", "w"), [(5, 3), (37, 50)])
def test_any_size_even_smaller_than_the_stride(tiny, h, w):
    clean = np.random.default_rng(0).random((h, w, 3)).astype(np.float32)
    item = build_degradation("gray").apply(clean, np.random.default_rng(0))
    (out,) = build_method(f"colorize/eccv16?checkpoint={tiny}").restore([item])
    assert out.shape == (h, w, 3) and np.isfinite(out).all()


def test_a_gray_source_image_is_skipped_with_a_message():
    with pytest.raises(SkipUnit, match="a gray image"):
        build_degradation("gray").apply(np.full((8, 8, 3), 0.4, np.float32), np.random.default_rng(0))


def test_the_task_end_to_end(tiny, image_folder, tmp_path):
    methods = ("colorize/gray", "colorize/mean_ab", f"colorize/eccv16?checkpoint={tiny}&decode=mode")
    summary = run_suite(
        RunOptions(
            tasks=("colorize",),
            datasets=(f"folder:{image_folder}",),
            degradations=("gray",),
            methods=methods,
            out=tmp_path / "run",
            executor="local",
            tracking=False,
        )
    )
    assert summary.failed == 0 and len(summary.skipped) == 3  # b_camera.png is gray, for each method
    assert all("b_camera.png: a gray image" in s for s in summary.skipped)
    board = build_leaderboard(summary.results).table.set_index("method")
    assert (board["images"] == 2).all()
    assert board.loc["colorize/gray", "colorfulness"] < 1 and board.loc["colorize/gray", "saturation"] < 0.01
    for column in ("auc", "auc_rebal", "psnr", "ab_hist_iou", "colorfulness_gap"):
        assert board[column].notna().all()


def test_the_committed_checkpoint_colorizes_in_a_fresh_process():
    """The first import of the models happens while the checkpoint is checked on torch's meta
    device; nothing of the module may stay there (a fresh interpreter, as a Ray worker is)."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from restorebench import load_plugins\n"
        "from restorebench.core.build import build_degradation, build_method\n"
        "load_plugins()\n"
        "rgb = np.random.default_rng(0).random((40, 52, 3)).astype(np.float32)\n"
        "item = build_degradation('gray', task='colorize').apply(rgb, np.random.default_rng(0))\n"
        "(out,) = build_method('colorize/eccv16').restore([item])\n"
        "assert out.shape == (40, 52, 3) and np.isfinite(out).all()\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
