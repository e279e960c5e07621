"""The neural-method framework: tiling, weights loaded once per actor, GPU scheduling on Ray."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
import torch

from restorebench.neural.inference import tiled_forward
from restorebench.neural.training import Recipe, fit

PLUGIN = textwrap.dedent(
    """
    import os
    from pathlib import Path

    import torch

    from restorebench.neural.inference import NeuralMethod


    class Blur(torch.nn.Module):
        def __init__(self, channels=3):
            super().__init__()
            self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)

        def forward(self, x):
            return self.conv(x)


    class TinyNet(NeuralMethod):
        '''A 3x3 blur as a neural method; counts its weight loads in a log file.'''

        name = "tinynet"
        task = "denoise"
        architecture = "blur"

        def default_checkpoints(self):
            return [Path(os.environ["TINYNET_CHECKPOINT"])]

        def build_network(self, config):
            with open(os.environ["TINYNET_LOG"], "a") as log:
                log.write(f"{os.getpid()}\\n")
            return Blur(**config)
    """
)


@pytest.fixture(scope="module")
def tinynet(tmp_path_factory):
    from restorebench.neural.checkpoints import save_checkpoint

    folder = tmp_path_factory.mktemp("tinynet")
    (folder / "tinynet_plugin.py").write_text(PLUGIN)
    weight = torch.full((3, 1, 3, 3), 1 / 9)
    save_checkpoint(
        folder / "blur.safetensors", {"conv.weight": weight}, {"architecture": "blur", "config": {"channels": 3}}
    )
    os.environ["TINYNET_CHECKPOINT"] = str(folder / "blur.safetensors")
    os.environ["TINYNET_LOG"] = str(folder / "loads.log")
    return folder


def test_tiled_forward_equals_whole_image_forward():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1))
    x = torch.rand(2, 3, 70, 53)
    with torch.inference_mode():
        whole = net(x)
        tiled = tiled_forward(net, x, tile=32, overlap=8)
        pointwise = torch.nn.Conv2d(3, 3, 1)
        exact = tiled_forward(pointwise, x, tile=16, overlap=4)
        expected_exact = pointwise(x)
        too_little = tiled_forward(net, x, tile=32, overlap=2)
    assert tiled.shape == whole.shape
    # The receptive-field radius (2 px) fits in half the overlap: identical everywhere.
    assert torch.allclose(tiled, whole, atol=1e-6)
    assert not torch.allclose(too_little, whole, atol=1e-3)  # too little overlap
    assert torch.allclose(exact, expected_exact, atol=1e-6)


def test_upscaling_tiles_land_at_scaled_positions():
    class Up(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    x = torch.rand(1, 1, 40, 40)
    with torch.inference_mode():
        assert torch.equal(tiled_forward(Up(), x, tile=16, overlap=4, scale=2), Up()(x))


@pytest.mark.ray
def test_neural_actor_loads_weights_once_and_lands_on_the_gpu_node(tinynet, image_folder, tmp_path, monkeypatch):
    """num_gpus=1 is honoured: the actor runs on the (fake-)GPU node of a simulated cluster."""
    import ray
    from ray.cluster_utils import Cluster

    from restorebench.run.pipeline import RunOptions, run_suite

    monkeypatch.syspath_prepend(str(tinynet))
    path = os.pathsep.join([str(tinynet), os.environ.get("PYTHONPATH", "")])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
    ray.init(address=cluster.address, runtime_env={"env_vars": {"PYTHONPATH": path}}, log_to_driver=False)
    try:
        for i in range(6):  # enough units for several batches
            (image_folder / f"x{i}.png").write_bytes((image_folder / "a_astronaut.png").read_bytes())
        (tinynet / "loads.log").write_text("")
        summary = run_suite(
            RunOptions(
                tasks=("denoise",),
                datasets=(f"folder:{image_folder}",),
                degradations=("gaussian?sigma=25",),
                methods=("tinynet_plugin:TinyNet?num_gpus=1", "denoise/box"),
                out=tmp_path / "run",
                executor="ray",
                tracking=False,
            )
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    units = summary.results.drop_duplicates("unit_id")
    neural = units[units["method"] == "denoise/tinynet"]
    assert len(neural) == 9 and (neural["status"] == "ok").all(), neural[["image", "error"]].values.tolist()
    assert set(neural["node"]) == {gpu_node.node_id}
    assert len(set(units.loc[units["method"] == "denoise/box", "node"])) >= 1
    loads = [pid for pid in (tinynet / "loads.log").read_text().split() if pid != str(os.getpid())]
    assert len(loads) == 1  # one actor, weights loaded once for all its batches (the driver counts parameters)


def test_neural_method_needing_a_gpu_fails_clearly_without_one(
    tinynet, image_folder, tmp_path, monkeypatch, ray_runtime
):
    from restorebench.run.pipeline import RunOptions, run_suite

    monkeypatch.syspath_prepend(str(tinynet))
    summary = run_suite(
        RunOptions(
            tasks=("denoise",),
            datasets=(f"folder:{image_folder}",),
            degradations=("gaussian?sigma=25",),
            methods=("tinynet_plugin:TinyNet?num_gpus=1",),
            out=tmp_path / "run",
            executor="ray",
            tracking=False,
        )
    )
    units = summary.results.drop_duplicates("unit_id")
    assert (units["status"] == "failed").all()
    assert units["error"].str.contains("needs 1 GPU").all()


def test_neural_plugin_through_the_local_executor_matches_a_bare_forward(tinynet, image_folder, tmp_path, monkeypatch):
    import cv2

    from restorebench.core.build import build_method, build_source
    from restorebench.run.pipeline import RunOptions, run_suite

    monkeypatch.syspath_prepend(str(tinynet))
    summary = run_suite(
        RunOptions(
            tasks=("denoise",),
            datasets=(f"folder:{image_folder}",),
            degradations=("gaussian?sigma=0",),
            methods=("tinynet_plugin:TinyNet",),
            out=tmp_path / "run",
            executor="local",
            tracking=False,
        )
    )
    method = build_method("tinynet_plugin:TinyNet")
    assert method.parameter_count() == 27
    source = build_source(f"folder:{image_folder}")
    image = next(i for i in source.list_images() if i.key == "a_astronaut.png")
    clean = source.load(image)
    expected = cv2.blur(clean, (3, 3), borderType=cv2.BORDER_CONSTANT)  # zero padding, as the conv
    q = np.round(np.clip(expected, 0, 1) * 255) / 255
    psnr = 10 * np.log10(1 / np.mean((q.astype(np.float64) - clean) ** 2))
    got = summary.results.query("image == 'a_astronaut.png' and metric == 'psnr'")["value"].item()
    assert got == pytest.approx(psnr, abs=1e-3)


def test_checkpoint_path_is_not_part_of_the_label_but_its_content_is_in_the_id(tinynet, tmp_path, monkeypatch):
    import shutil

    from restorebench.core.build import build_method
    from restorebench.neural.checkpoints import save_checkpoint

    monkeypatch.syspath_prepend(str(tinynet))
    copy = tmp_path / "copy.safetensors"
    shutil.copy(tinynet / "blur.safetensors", copy)
    other = tmp_path / "other.safetensors"
    save_checkpoint(
        other, {"conv.weight": torch.full((3, 1, 3, 3), 0.1)}, {"architecture": "blur", "config": {"channels": 3}}
    )
    default = build_method("tinynet_plugin:TinyNet")
    same = build_method(f"tinynet_plugin:TinyNet?checkpoint={copy}")
    changed = build_method(f"tinynet_plugin:TinyNet?checkpoint={other}&num_gpus=0.5")
    assert default.ref == same.ref == changed.ref == "denoise/tinynet"
    assert default.identity() == same.identity() != changed.identity()
    assert changed.required_resources().num_gpus == 0.5


def _identity_pair(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    return noisy.transpose(2, 0, 1).copy(), clean.transpose(2, 0, 1).copy()


def _fit_tiny(steps: int = 3, **recipe_args):
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    recipe = Recipe(
        architecture="tiny",
        config={},
        make_pair=_identity_pair,
        patch_size=8,
        batch_size=2,
        steps=steps,
        lr=1e-2,
        val_every=1,
        val_patches=4,
        **recipe_args,
    )
    images = [np.random.default_rng(i).random((16, 16, 3), dtype=np.float32) for i in range(4)]
    result = fit(recipe, net, images, [f"img{i}" for i in range(4)], seed=0, num_threads=1)
    return before, result


def test_fit_uses_the_recipe_objective_and_logs_its_terms():
    calls = []

    def objective(network, x, y):
        calls.append(tuple(x.shape))
        out = network(x)
        mse = ((out - y) ** 2).mean()
        return mse + 0.0 * out.sum(), {"half_mse": float(mse.detach()) / 2}

    _, result = _fit_tiny(objective=objective)
    assert calls == [(2, 3, 8, 8)] * 3  # one call per step, on the training batch
    assert [sorted(h) for h in result.history] == [["half_mse", "loss", "lr", "seconds", "step", "val_psnr"]] * 3
    for h in result.history:  # one step per record: the logged term is the loss's half
        assert abs(h["half_mse"] - h["loss"] / 2) < 1e-9
    plain = _fit_tiny()[1]
    assert [h["loss"] for h in plain.history] == [h["loss"] for h in result.history]  # same loss, same steps
    assert torch.get_num_threads() == 1
    torch.set_num_threads(os.cpu_count() or 1)


def test_fit_clips_gradients():
    before, clipped = _fit_tiny(grad_clip=0.0)  # gradients scaled to norm 0: Adam does not move
    assert all(torch.equal(before[k], v) for k, v in clipped.state_dict.items())
    before, free = _fit_tiny()
    assert not all(torch.equal(before[k], v) for k, v in free.state_dict.items())


def _lying_checkpoint(path, config):
    """A small DnCNN state dict whose metadata claims ``config``."""
    from restorebench.neural.checkpoints import save_checkpoint
    from restorebench.tasks.denoise.models import DnCNN

    net = DnCNN(depth=3, features=4, channels=1)
    return save_checkpoint(path, net.state_dict(), {"architecture": "dncnn", "config": config})


def test_a_checkpoint_claiming_a_huge_network_is_refused_before_allocation(tmp_path):
    import resource
    import time

    from restorebench.core.build import build_method
    from restorebench.core.errors import UserError

    path = _lying_checkpoint(tmp_path / "liar.safetensors", {"depth": 3, "features": 200_000, "channels": 1})
    method = build_method(f"denoise/dncnn?checkpoint={path}")
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(UserError, match=r"its metadata config has features=200000 but its tensors say features=4"):
        method._network(path)
    # 200,000 features would be ~1.4 GB of float32 weights: nothing of the kind was allocated
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    assert time.perf_counter() - start < 5


def test_an_unknown_config_key_is_a_clear_error(tmp_path):
    from restorebench.core.build import build_method
    from restorebench.core.errors import UserError

    path = _lying_checkpoint(tmp_path / "odd.safetensors", {"depth": 3, "features": 4, "channels": 1, "colour": 2})
    with pytest.raises(UserError, match=r"its config .* does not build denoise/dncnn: TypeError: .*colour"):
        build_method(f"denoise/dncnn?checkpoint={path}")._network(path)


def test_fit_prepares_the_network_once_before_the_first_step():
    seen = []

    def freeze(network):
        seen.append(network.weight.detach().clone())
        network.bias.requires_grad_(False)

    before, result = _fit_tiny(prepare=freeze)
    assert len(seen) == 1 and torch.equal(seen[0], before["weight"])  # called once, on the untrained network
    assert torch.equal(result.state_dict["bias"], before["bias"])  # what it froze stayed
    assert not torch.equal(result.state_dict["weight"], before["weight"])
