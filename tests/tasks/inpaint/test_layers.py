"""The partial convolution against its formula, on small hand-made inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restorebench.tasks.inpaint.layers import PartialConv2d


def _reference(layer: PartialConv2d, x: torch.Tensor, mask: torch.Tensor):
    """out = W^T (X * M) * sum(1) / sum(M) + b where sum(M) > 0, else 0; new mask = [sum(M) > 0],
    written as loops over output positions (mask given per input channel)."""
    w, b = layer.conv.weight.detach().double(), layer.conv.bias.detach().double()
    k, s, p = layer.conv.kernel_size[0], layer.conv.stride[0], layer.conv.padding[0]
    xp = F.pad(x.double(), (p, p, p, p))
    mp = F.pad(mask.double(), (p, p, p, p))
    n, c_in, h, wd = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
    out = torch.zeros(n, w.shape[0], oh, ow, dtype=torch.float64)
    new = torch.zeros(n, 1, oh, ow, dtype=torch.float64)
    for i, j in itertools.product(range(oh), range(ow)):
        xw = xp[:, :, i * s : i * s + k, j * s : j * s + k]
        mw = mp[:, :, i * s : i * s + k, j * s : j * s + k]
        total = mw.sum(dim=(1, 2, 3))
        raw = torch.einsum("ncij,ocij->no", xw * mw, w)
        for q in range(n):
            if total[q] > 0:
                out[q, :, i, j] = raw[q] * (c_in * k * k) / total[q] + b
                new[q, 0, i, j] = 1.0
    return out, new


@pytest.mark.parametrize(("kernel", "stride"), [(3, 1), (3, 2), (5, 2)])
def test_against_the_formula(kernel, stride):
    torch.manual_seed(0)
    layer = PartialConv2d(2, 3, kernel, stride=stride)
    x = torch.randn(2, 2, 9, 8)
    mask = (torch.rand(2, 2, 9, 8) > 0.5).float()
    mask[0, :, :5, :5] = 0.0  # a window that is all hole
    mask[1] = 1.0  # a window that is all valid (everywhere in this sample)
    out, new = layer(x, mask)
    ref_out, ref_new = _reference(layer, x, mask)
    np.testing.assert_allclose(out.detach().double(), ref_out, atol=1e-5)
    np.testing.assert_array_equal(new.double(), ref_new)
    assert (out[0, :, 0, 0] == 0).all() and new[0, 0, 0, 0] == 0  # the all-hole window


def test_a_one_channel_mask_is_shared_by_every_input_channel():
    torch.manual_seed(1)
    layer = PartialConv2d(3, 4, 3)
    x = torch.randn(1, 3, 7, 7)
    mask = (torch.rand(1, 1, 7, 7) > 0.3).float()
    shared, _ = layer(x, mask)
    spread, _ = layer(x, mask.expand(1, 3, 7, 7))
    torch.testing.assert_close(shared, spread)


def test_parts_give_each_concatenated_input_its_own_mask():
    torch.manual_seed(2)
    layer = PartialConv2d(5, 2, 3, parts=(2, 3))
    x = torch.randn(1, 5, 6, 6)
    masks = (torch.rand(1, 2, 6, 6) > 0.4).float()
    by_parts, new = layer(x, masks)
    full = torch.cat([masks[:, :1].expand(1, 2, 6, 6), masks[:, 1:].expand(1, 3, 6, 6)], 1)
    ref, ref_new = _reference(layer, x, full)
    np.testing.assert_allclose(by_parts.detach().double(), ref, atol=1e-5)
    np.testing.assert_array_equal(new.double(), ref_new)


def test_with_an_all_valid_mask_it_is_a_plain_convolution():
    torch.manual_seed(3)
    layer = PartialConv2d(3, 4, 3, stride=1, padding=0)
    x = torch.randn(2, 3, 8, 10)
    out, new = layer(x, torch.ones(2, 1, 8, 10))
    torch.testing.assert_close(out, layer.conv(x))
    assert (new == 1).all()
    padded = PartialConv2d(3, 4, 3)  # with zero padding, the interior is still a plain convolution
    padded.load_state_dict(layer.state_dict())
    inner, _ = padded(x, torch.ones(2, 1, 8, 10))
    torch.testing.assert_close(inner[..., 1:-1, 1:-1], layer.conv(x)[..., :, :])


def test_a_bad_mask_shape_is_refused():
    with pytest.raises(ValueError, match="do not add up"):
        PartialConv2d(5, 2, 3, parts=(2, 2))
    with pytest.raises(ValueError, match="a mask of 2 channels"):
        PartialConv2d(3, 2, 3)(torch.zeros(1, 3, 4, 4), torch.ones(1, 2, 4, 4))
