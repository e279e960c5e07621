"""Inpainting methods: known pixels untouched, any image size, the paper's architecture,
VAE samples scored as a mean and an oracle, and a run end to end per hole-ratio bin."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from restorebench.core.build import build_degradation, build_method
from restorebench.neural.checkpoints import save_checkpoint
from restorebench.results.board import build_leaderboard
from restorebench.run.pipeline import RunOptions, run_suite
from restorebench.tasks.inpaint.models import InpaintVAE, PConvUNet, telea_fill

CLASSICAL = ("inpaint/mean", "inpaint/telea", "inpaint/navier_stokes", "inpaint/biharmonic")


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inpaint")
    torch.manual_seed(0)
    pconv = PConvUNet(widths=(4, 8, 8), kernels=(5, 3, 3))
    vae = InpaintVAE(widths=(4, 8, 8), kernels=(5, 3, 3), latent=2, posterior_width=4)
    return {
        "pconv": save_checkpoint(
            folder / "pconv.safetensors", pconv.state_dict(), {"architecture": "pconv_unet", "config": pconv.config}
        ),
        "vae": save_checkpoint(
            folder / "vae.safetensors", vae.state_dict(), {"architecture": "inpaint_vae", "config": vae.config}
        ),
    }


def _input(h=45, w=61, channels=3, ratio="0.3-0.4", seed=0):
    clean = np.random.default_rng(seed).random((h, w, channels)).astype(np.float32)
    return clean, build_degradation(f"mask?ratio={ratio}").apply(clean, np.random.default_rng(seed))


@pytest.mark.parametrize("channels", [1, 3])
def test_every_method_keeps_the_known_pixels(tiny_checkpoints, channels):
    clean, item = _input(channels=channels)
    valid = item.extras["mask"] > 0.5
    refs = [
        *CLASSICAL,
        f"inpaint/pconv?checkpoint={tiny_checkpoints['pconv']}",
        f"inpaint/vae?checkpoint={tiny_checkpoints['vae']}&samples=2",
    ]
    for ref in refs:
        method = build_method(ref)
        method.setup()
        (out,) = method.restore([item])
        outs = out if out.ndim == 4 else out[None]
        for sample in outs:
            assert sample.shape == clean.shape, ref
            np.testing.assert_array_equal(sample[valid], clean[valid], err_msg=ref)
            assert np.isfinite(sample).all() and not np.array_equal(sample[~valid], item.image[~valid]), ref


def test_the_full_pconv_is_the_papers_and_loads_from_a_state_dict(tmp_path):
    net = build_method("inpaint/pconv?variant=full").build_network({})
    assert net.levels == 8 and sum(p.numel() for p in net.parameters()) == 32_865_236
    keys = net.state_dict()
    assert keys["enc1.conv.conv.weight"].shape == (64, 3, 7, 7) and "enc1.bn.weight" not in keys
    assert keys["enc2.conv.conv.weight"].shape == (128, 64, 5, 5) and keys["enc2.bn.running_mean"].shape == (128,)
    assert keys["enc8.conv.conv.weight"].shape == (512, 512, 3, 3)
    assert keys["dec8.conv.conv.weight"].shape == (512, 1024, 3, 3)  # up(enc8) + enc7
    assert keys["dec4.conv.conv.weight"].shape == (256, 512 + 256, 3, 3)
    assert keys["dec1.conv.conv.weight"].shape == (3, 64 + 3, 3, 3) and "dec1.bn.weight" not in keys
    path = save_checkpoint(tmp_path / "full.safetensors", keys, {"architecture": "pconv_unet", "config": net.config})
    method = build_method(f"inpaint/pconv?checkpoint={path}&variant=full")
    assert method.parameter_count() == 32_865_236
    method._network(path)  # loads strictly


@pytest.mark.parametrize(("h", "w"), [(17, 33), (64, 64), (100, 37)])
def test_the_networks_take_any_size(h, w):
    torch.manual_seed(0)
    net = PConvUNet(widths=(4, 8, 8, 8), kernels=(7, 5, 3, 3)).eval()
    x = torch.rand(1, 4, h, w)
    x[:, 3] = (torch.rand(h, w) > 0.5).float()
    assert net(x).shape == (1, 3, h, w)
    vae = InpaintVAE(widths=(4, 8), kernels=(5, 3), latent=2, posterior_width=4)
    out, kl = vae.elbo_terms(x, torch.rand(1, 3, h, w))
    assert out.shape == (1, 3, h, w) and kl.shape == (2,) and (kl >= 0).all()


@pytest.mark.parametrize(("h", "w"), [(20, 23), (5, 9)])
def test_the_padding_to_the_stride_mirrors_the_image_and_its_mask(h, w):
    # Padding with holes put a band no training patch has along the right and bottom borders.
    # A 5 x 9 image needs 27 rows mirrored in several passes (one pass mirrors at most 4).
    torch.manual_seed(0)
    net = PConvUNet(widths=(4, 8, 8, 8, 8), kernels=(7, 5, 3, 3, 3)).eval()
    x = torch.rand(1, 4, h, w)
    x[:, 3] = (torch.rand(h, w) > 0.4).float()
    padded = x
    while padded.shape[-2] < 32 or padded.shape[-1] < 32:
        ph, pw = min(32 - padded.shape[-2], padded.shape[-2] - 1), min(32 - padded.shape[-1], padded.shape[-1] - 1)
        padded = torch.nn.functional.pad(padded, (0, pw, 0, ph), mode="reflect")
    assert padded.shape[-2:] == (32, 32)
    np.testing.assert_array_equal(padded[0, :, h - 2, :w], padded[0, :, h, :w])  # mirrored about the last row
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(padded)[..., :h, :w], rtol=0, atol=1e-6)


def test_vae_samples_are_seeded_by_the_input_and_differ_between_draws(tiny_checkpoints):
    _, item = _input()
    method = build_method(f"inpaint/vae?checkpoint={tiny_checkpoints['vae']}&samples=3")
    (a,) = method.restore([item])
    (b,) = build_method(f"inpaint/vae?checkpoint={tiny_checkpoints['vae']}&samples=3").restore([item])
    assert a.shape == (3, *item.image.shape)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])
    (c,) = build_method(f"inpaint/vae?checkpoint={tiny_checkpoints['vae']}&samples=3&seed=1").restore([item])
    assert not np.array_equal(a, c)


def test_a_run_reports_each_bin_and_the_vaes_mean_and_oracle(tiny_checkpoints, image_folder, tmp_path):
    methods = ("inpaint/mean", "inpaint/telea", f"inpaint/vae?checkpoint={tiny_checkpoints['vae']}&samples=3")
    summary = run_suite(
        RunOptions(
            tasks=("inpaint",),
            datasets=(f"folder:{image_folder}",),
            degradations=("mask?ratio=0.1-0.2", "mask?ratio=0.4-0.5"),
            methods=methods,
            out=tmp_path / "run",
            executor="local",
            tracking=False,
        )
    )
    assert summary.failed == 0 and summary.computed == 3 * 2 * 3
    board = build_leaderboard(summary.results).table
    assert set(board["degradation"]) == {"mask?ratio=0.1-0.2", "mask?ratio=0.4-0.5"}
    for column in ("psnr", "ssim", "l1", "hole_psnr", "hole_ssim", "hole_l1"):
        assert board[column].notna().all(), column
    vae = board[board["method"].str.startswith("inpaint/vae")]
    assert (vae["oracle_psnr"] >= vae["psnr"]).all() and (vae["oracle_hole_l1"] <= vae["hole_l1"]).all()
    assert board[~board["method"].str.startswith("inpaint/vae")]["oracle_psnr"].isna().all()
    rows = summary.results
    one = rows[(rows["method"].str.startswith("inpaint/vae")) & (rows["metric"].isin(["psnr", "oracle_psnr"]))]
    assert set(one.groupby("unit_id")["metric"].nunique()) == {2}
    holes_worse = board.set_index(["degradation", "method"])["psnr"]
    assert holes_worse[("mask?ratio=0.4-0.5", "inpaint/telea")] < holes_worse[("mask?ratio=0.1-0.2", "inpaint/telea")]


def test_the_light_pconv_refines_a_biharmonic_fill_and_adopts_a_plain_networks_weights():
    from skimage.restoration import inpaint_biharmonic

    torch.manual_seed(0)
    plain = PConvUNet(widths=(4, 8, 8), kernels=(5, 3, 3))
    net = PConvUNet(widths=(4, 8, 8), kernels=(5, 3, 3), base="biharmonic")
    assert net.config["base"] == "biharmonic" and "base" not in plain.config
    assert net.state_dict()["enc1.conv.conv.weight"].shape == (4, 6, 5, 5)  # image, then the base fill
    assert net.state_dict()["dec1.conv.conv.weight"].shape == (3, 4 + 6, 3, 3)  # up(dec2), image, base
    state = net.adopt(plain.state_dict(), plain.config)
    net.load_state_dict(state)
    net.eval()
    clean, item = _input(h=40, w=52)
    mask = item.extras["mask"]
    x = torch.from_numpy(np.concatenate([clean * mask[..., None], mask[..., None]], 2).transpose(2, 0, 1)[None])
    with torch.no_grad():
        out = net(x)[0].numpy().transpose(1, 2, 0)
    # adopted: the last layer is zero, so the network gives the base fill, scikit-image's own
    expected = inpaint_biharmonic((clean * mask[..., None]).astype(np.float32), mask < 0.5, channel_axis=-1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    # ... and the encoder is the plain network's, with zero weights on the base channels
    np.testing.assert_array_equal(state["enc1.conv.conv.weight"][:, :3], plain.state_dict()["enc1.conv.conv.weight"])
    assert not state["enc1.conv.conv.weight"][:, 3:].any()
    with pytest.raises(ValueError, match="fewer base fills"):
        net.adopt(plain.state_dict(), {**plain.config, "widths": [4, 8, 16]})
    with pytest.raises(ValueError, match="fewer base fills"):
        net.adopt(net.state_dict(), net.config)  # nothing to add
    with pytest.raises(ValueError, match="unknown or repeated base fill"):
        PConvUNet(widths=(4,), kernels=(3,), base="patchmatch")
    with pytest.raises(ValueError, match="unknown or repeated base fill"):
        PConvUNet(widths=(4,), kernels=(3,), base="telea+telea")


def test_a_second_base_fill_is_telea_and_adopts_a_one_base_networks_weights():
    torch.manual_seed(0)
    one = PConvUNet(widths=(4, 8, 8), kernels=(5, 3, 3), base="biharmonic")
    two = PConvUNet(widths=(4, 8, 8), kernels=(5, 3, 3), base="biharmonic+telea")
    state = two.adopt(one.state_dict(), one.config)
    two.load_state_dict(state)  # strictly
    for key, channels in (("enc1.conv.conv.weight", 9), ("dec1.conv.conv.weight", 4 + 9)):
        assert state[key].shape[1] == channels  # image, biharmonic, telea (after up(dec2) in dec1)
        np.testing.assert_array_equal(state[key][:, : channels - 3], one.state_dict()[key])
        assert not state[key][:, channels - 3 :].any()  # the new fill's channels start at zero
    torch.testing.assert_close(state["dec1.conv.conv.bias"], one.state_dict()["dec1.conv.conv.bias"])
    with pytest.raises(ValueError, match="fewer base fills"):
        PConvUNet(widths=(4, 8, 8), kernels=(5, 3, 3), base="telea+biharmonic").adopt(one.state_dict(), one.config)
    # the Telea fill is inpaint/telea's own on the same input
    clean, item = _input(h=40, w=52)
    mask = item.extras["mask"]
    x = torch.from_numpy(item.image.transpose(2, 0, 1)[None].copy())
    fill = telea_fill(x, torch.from_numpy(mask[None, None].copy()))[0].numpy().transpose(1, 2, 0)
    (telea,) = build_method("inpaint/telea").restore([item])
    holes = mask < 0.5
    np.testing.assert_allclose(fill[holes], telea[holes], atol=1e-6)


def test_a_blended_pconv_adds_its_correction_to_a_per_pixel_mix_of_its_fills():
    from restorebench.tasks.inpaint.models import FIRST_FILL_LOGIT, biharmonic_fill

    torch.manual_seed(0)
    two = PConvUNet(widths=(4, 8, 8), kernels=(5, 3, 3), base="biharmonic+telea")
    blend = PConvUNet(widths=(4, 8, 8), kernels=(5, 3, 3), base="biharmonic+telea", blend=True)
    assert blend.config["blend"] is True and "blend" not in two.config
    assert blend.state_dict()["dec1.conv.conv.weight"].shape == (3 + 2, 4 + 9, 3, 3)  # image, then a logit per fill
    state = blend.adopt(two.state_dict(), two.config)
    blend.load_state_dict(state)  # strictly
    np.testing.assert_array_equal(state["dec1.conv.conv.weight"][:3], two.state_dict()["dec1.conv.conv.weight"])
    assert not state["dec1.conv.conv.weight"][3:].any()
    assert state["dec1.conv.conv.bias"][3:].tolist() == [FIRST_FILL_LOGIT, 0.0]
    # with the correction's last layer at zero, the output is the mix: logits 3 and 0 weigh
    # biharmonic 0.9526 and Telea 0.0474 everywhere
    state["dec1.conv.conv.weight"] = torch.zeros_like(state["dec1.conv.conv.weight"])
    state["dec1.conv.conv.bias"][:3] = 0
    blend.load_state_dict(state)
    blend.eval()
    clean, item = _input(h=40, w=52)
    mask = torch.from_numpy(item.extras["mask"][None, None].copy())
    image = torch.from_numpy(clean.transpose(2, 0, 1)[None].copy()) * mask
    with torch.no_grad():
        out = blend(torch.cat([image, mask], 1))
    w = float(np.exp(FIRST_FILL_LOGIT) / (np.exp(FIRST_FILL_LOGIT) + 1))
    expected = w * biharmonic_fill(image, mask) + (1 - w) * telea_fill(image, mask)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="not blended"):
        blend.adopt(blend.state_dict(), blend.config)  # nothing to add
    with pytest.raises(ValueError, match="blend weighs several base fills"):
        PConvUNet(widths=(4,), kernels=(3,), base="biharmonic", blend=True)


def test_train_init_adopts_a_plain_pconv_checkpoint(tmp_path):
    from restorebench.commands.train import train_method
    from restorebench.data.images import encode_png
    from restorebench.neural.checkpoints import load_checkpoint

    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        (data / f"{i}.png").write_bytes(encode_png(rng.random((256, 256, 3)).astype(np.float32)))
    from restorebench.tasks.inpaint.models import FILL_OPTIONS
    from restorebench.tasks.inpaint.neural import PCONV_VARIANTS

    light = {k: v for k, v in PCONV_VARIANTS["light"].items() if k not in FILL_OPTIONS}
    plain = PConvUNet(**light)
    init = save_checkpoint(
        tmp_path / "plain.safetensors", plain.state_dict(), {"architecture": "pconv_unet", "config": plain.config}
    )
    summary = train_method(
        "inpaint/pconv", data=[f"folder:{data}"], steps=1, out=tmp_path / "new.safetensors", tracking=False, init=init
    )
    state, meta = load_checkpoint(summary.checkpoint)
    assert meta["config"]["base"] == "biharmonic+telea" and meta["config"]["blend"] is True
    assert meta["init"]["adopted_from_config"] == plain.config
    assert state["enc1.conv.conv.weight"].shape[1] == 9


def test_the_finetuning_phase_freezes_the_encoders_batch_norm_statistics():
    from restorebench.tasks.inpaint.models import freeze_encoder_batch_norm

    torch.manual_seed(0)
    net = PConvUNet(widths=(4, 8, 8), kernels=(5, 3, 3))
    vae = InpaintVAE(widths=(4, 8, 8), kernels=(5, 3, 3), latent=2, posterior_width=4)
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    freeze_encoder_batch_norm(net)
    freeze_encoder_batch_norm(vae)
    net.train()
    x = torch.cat([torch.rand(2, 3, 32, 32), (torch.rand(2, 1, 32, 32) > 0.3).float()], 1)
    net(x)
    after = net.state_dict()
    encoder = [k for k in before if k.startswith("enc")]
    decoder = [k for k in before if k.startswith("dec") and k.endswith("running_mean")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert all(not torch.equal(before[k], after[k]) for k in decoder)  # the decoder's still adapt
    assert net.training and not net.enc2.bn.training and net.dec2.bn.training
    vae.train()
    assert not vae.generator.enc2.bn.training and vae.generator.dec2.bn.training
    assert all(p.requires_grad for p in net.parameters())  # scales and shifts still learn


def test_the_finetuning_recipe_is_the_papers_second_phase():
    from restorebench.tasks.inpaint.models import freeze_encoder_batch_norm

    first = build_method("inpaint/pconv").recipe()
    second = build_method("inpaint/pconv?finetune=true").recipe()
    assert (first.lr, first.steps, first.lr_milestones, first.prepare) == (5e-4, 6000, (0.7, 0.9), None)
    assert (second.lr, second.steps, second.lr_milestones) == (5e-5, 2000, ())
    assert second.prepare is freeze_encoder_batch_norm
    assert second.describe()["prepare"].endswith("freeze_encoder_batch_norm")
    assert second.config == first.config
    # a training switch only: the evaluated method is the same one
    assert build_method("inpaint/pconv?finetune=true").identity() == build_method("inpaint/pconv").identity()


def test_the_vae_objective_gives_each_latent_channel_its_free_bits():
    from restorebench.tasks.inpaint.models import inpainting_loss
    from restorebench.tasks.inpaint.neural import FREE_BITS, KL_WEIGHT, _vae_objective

    torch.manual_seed(0)
    output, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    x = torch.cat([y, (torch.rand(1, 1, 8, 8) > 0.4).float()], 1)
    kl = torch.tensor([FREE_BITS / 10, FREE_BITS * 3], requires_grad=True)  # one channel under, one over

    class Terms:  # the objective's only use of the network: its ELBO terms
        def elbo_terms(self, x_, y_):
            return output, kl

    loss, terms = _vae_objective(None)(Terms(), x, y)
    plain, _ = inpainting_loss(output, y, x[:, -1:])
    assert loss.item() == pytest.approx(plain.item() + KL_WEIGHT * (FREE_BITS + 3 * FREE_BITS) / 2, rel=1e-6)
    assert terms["kl"] == pytest.approx(FREE_BITS * 3.1 / 2)  # the log shows the KL itself
    loss.backward()
    assert kl.grad.tolist() == pytest.approx([0.0, KL_WEIGHT / 2])  # under its free bits, no pull to the prior


@pytest.mark.parametrize(("method", "name"), [("inpaint/pconv", "pconv_light"), ("inpaint/vae", "vae_light")])
def test_the_committed_checkpoints_are_their_recipes(method, name):
    """Each committed network was made by the recipe the code runs today (its last stage, from --init)."""
    from restorebench.neural.checkpoints import load_checkpoint
    from restorebench.tasks.inpaint.neural import CHECKPOINT_DIR

    built = build_method(method)
    (path,) = built.checkpoints()
    assert path == CHECKPOINT_DIR / f"{name}.safetensors"
    state, meta = load_checkpoint(path)
    recipe = json.loads(json.dumps(built.recipe().describe()))  # as stored: tuples are lists
    assert meta["config"] == recipe["config"] and meta["architecture"] == recipe["architecture"]
    for key in ("make_pair", "objective", "patch_size", "batch_size", "lr", "lr_milestones"):
        assert meta["recipe"][key] == recipe[key], key
    assert meta["recipe"]["notes"] == recipe["notes"]  # e.g. no VGG-16 terms, the VAE's free bits
    assert "vgg16" not in meta["command"] and meta["init"]["sha256"]  # trained in stages, without VGG-16
    assert sum(v.numel() for v in state.values() if v.is_floating_point()) > 1_000_000
