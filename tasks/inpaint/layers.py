"""The partial convolution (Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018).

For a window with input ``X``, mask ``M`` (1 = valid) and weights ``W``::

    out = W^T (X * M) * sum(1) / sum(M) + b    where sum(M) > 0
    out = 0                                    otherwise
    new mask = 1 where sum(M) > 0, else 0

``sum(1)`` is the window's size over every input channel (``C_in * k_h * k_w``) and
``sum(M)`` the number of valid entries in it. The mask may have one channel shared by all
input channels, one per input channel, or one per *part* of a concatenated input (the
U-Net's skip connections join features and image, each with its own mask): ``parts``
gives the channels of each part. The output mask has one channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Module):
    """A 2-D partial convolution; ``forward(x, mask) -> (out, new_mask)``.

    State-dict keys: ``conv.weight`` and ``conv.bias`` (a plain ``nn.Conv2d`` holds them).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
        parts: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.parts = tuple(parts) if parts is not None else None
        if self.parts is not None and sum(self.parts) != in_channels:
            raise ValueError(f"parts {self.parts} do not add up to in_channels={in_channels}")

    def _mask_sum(self, mask: torch.Tensor) -> torch.Tensor:
        """``sum(M)`` of every output window, counted over all input channels."""
        k, c_in = self.conv.kernel_size, self.conv.in_channels
        channels = mask.shape[1]
        if channels == 1:
            counts = [c_in]
        elif self.parts is not None and channels == len(self.parts):
            counts = list(self.parts)
        elif channels == c_in:
            counts = [1] * c_in
        else:
            raise ValueError(f"a mask of {channels} channels for {c_in} input channels (parts {self.parts})")
        weight = mask.new_tensor(counts).view(1, channels, 1, 1).expand(1, channels, *k).contiguous()
        return F.conv2d(mask, weight, stride=self.conv.stride, padding=self.conv.padding)

    def _full_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The mask spread over the input channels (for ``X * M``)."""
        if mask.shape[1] == 1 or mask.shape[1] == self.conv.in_channels:
            return mask
        repeats = torch.tensor(self.parts, device=mask.device)
        return mask.repeat_interleave(repeats, dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            total = self._mask_sum(mask)
            valid = total > 0
            window = float(self.conv.in_channels * self.conv.kernel_size[0] * self.conv.kernel_size[1])
            ratio = torch.where(valid, window / total.clamp(min=1.0), torch.zeros_like(total))
        raw = self.conv(x * self._full_mask(mask))
        if self.conv.bias is None:
            return raw * ratio, valid.to(x.dtype)
        bias = self.conv.bias.view(1, -1, 1, 1)
        out = ((raw - bias) * ratio + bias) * valid
        return out, valid.to(x.dtype)
