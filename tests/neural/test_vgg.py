"""The VGG-16 perceptual and style terms: a user's local weights file (torchvision's layout)
loaded, a wrong file refused, the paper's two terms computed, a training step that uses them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorebench import UserError
from restorebench.neural.vgg import VGG16Features, load_vgg16, perceptual_and_style


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A torchvision-layout VGG-16 state dict (random weights), with the classifier's keys too."""
    torch.manual_seed(0)
    net = VGG16Features()
    state = {f"features.{k}": v for k, v in net.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 8)  # a whole vgg16() file has more than the features
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save(state, path)
    return path, net


def test_a_torchvision_vgg16_file_loads_and_gives_pool1_to_pool3(vgg_file):
    path, reference = vgg_file
    net = load_vgg16(path)
    x = torch.rand(1, 3, 32, 40)
    feats = net(x)
    assert [tuple(f.shape) for f in feats] == [(1, 64, 16, 20), (1, 128, 8, 10), (1, 256, 4, 5)]
    with torch.no_grad():
        expected = reference.features[:17](
            (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        )
    torch.testing.assert_close(feats[2], expected)
    assert not any(p.requires_grad for p in net.parameters())


def test_a_file_that_is_not_vgg16_is_refused_by_name(tmp_path, vgg_file):
    _, reference = vgg_file
    partial = {f"features.{k}": v for k, v in reference.features.state_dict().items() if not k.startswith("14.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(
        UserError, match=r"partial.pth is not a VGG-16 state dict: it lacks features.14.bias \(and 1 more\)"
    ):
        load_vgg16(tmp_path / "partial.pth")
    wrong = {f"features.{k}": torch.zeros(2, 2) for k in reference.features.state_dict()}
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(UserError, match="wrong.pth does not fit VGG-16"):
        load_vgg16(tmp_path / "wrong.pth")


def test_the_perceptual_and_style_terms_are_the_papers(vgg_file):
    net = load_vgg16(vgg_file[0])
    torch.manual_seed(1)
    target, output, composite = torch.rand(3, 2, 3, 16, 16).unbind(0)
    perceptual, style = perceptual_and_style(net, output, composite, target)
    # by hand: sum over pool1-3 and over (output, composite) of the mean |feature difference|,
    # and of the mean |Gram difference| with the Gram matrix normalised by C * H * W
    want_p, want_s = 0.0, 0.0
    with torch.no_grad():
        real = net(target)
        for image in (output, composite):
            for f, g in zip(net(image), real):
                want_p += float((f - g).abs().mean())
                n, c, h, w = f.shape
                fg = [t.reshape(n, c, h * w) for t in (f, g)]
                grams = [np.einsum("nci,ndi->ncd", t.numpy(), t.numpy()) / (c * h * w) for t in fg]
                want_s += float(np.abs(grams[0] - grams[1]).mean())
    assert perceptual.item() == pytest.approx(want_p, rel=1e-5)
    assert style.item() == pytest.approx(want_s, rel=1e-4)
    zero_p, zero_s = perceptual_and_style(net, target, target, target)
    assert zero_p.item() == 0.0 and zero_s.item() == 0.0
    gray = perceptual_and_style(net, output[:, :1], composite[:, :1], target[:, :1])  # gray goes through as RGB
    assert all(torch.isfinite(t) and t > 0 for t in gray)


@pytest.mark.parametrize("method", ["pconv", "vae"])
def test_a_recipe_given_a_vgg16_file_adds_both_terms_to_its_loss(vgg_file, method):
    from restorebench.core.build import build_method
    from restorebench.tasks.inpaint.models import InpaintVAE, PConvUNet

    recipe = build_method(f"inpaint/{method}?vgg16={vgg_file[0]}").recipe()
    assert "VGG-16" in recipe.notes
    plain = build_method(f"inpaint/{method}").recipe()
    assert "no VGG-16" in plain.notes
    torch.manual_seed(0)
    net = PConvUNet((4, 8), (5, 3)) if method == "pconv" else InpaintVAE((4, 8), (5, 3), latent=2, posterior_width=4)
    y = torch.rand(2, 3, 32, 32)
    mask = (torch.rand(2, 1, 32, 32) > 0.4).float()
    x = torch.cat([y * mask, mask], 1)
    loss, terms = recipe.objective(net, x, y)
    _, without = plain.objective(net, x, y)
    assert terms["perceptual"] > 0 and terms["style"] > 0 and "perceptual" not in without
    if method == "pconv":  # the same network and input: the loss is the plain one plus the weighted terms
        expected = sum(w * without[k] for k, w in (("valid", 1), ("hole", 6), ("tv", 0.1)))
        assert loss.item() == pytest.approx(expected + 0.05 * terms["perceptual"] + 120 * terms["style"], rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
