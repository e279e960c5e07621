"""CRC32C (Castagnoli, reflected polynomial 0x82F63B78) as LevelDB and TensorFlow use it, in numpy.

The TF checkpoint reader checks every block of a bundle's index and every tensor's bytes
with it; large tensors are checked many lanes at once, so no C extension is needed.

A CRC register started at 0 is linear in the data and ignores leading zero bytes, so the
data is zero-padded in front to a power of two, cut into lanes that numpy runs side by
side, and the lanes' registers are combined pairwise ("shift the left one by the right
one's length of zeros, xor"); the initial 0xFFFFFFFF equals flipping the first four bytes.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["crc32c", "masked_crc32c"]


@functools.cache
def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


def _apply(op: np.ndarray, regs: np.ndarray) -> np.ndarray:
    """A linear map on registers, given as the images of the 32 bits, applied to each of ``regs``."""
    out = np.zeros_like(regs)
    for bit in range(32):
        out ^= ((regs >> np.uint32(bit)) & np.uint32(1)) * op[bit]
    return out


@functools.cache
def _zeros(log2_length: int) -> np.ndarray:
    """The map "feed 2**log2_length zero bytes" on a register."""
    if log2_length == 0:
        bits = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
        return (bits >> np.uint32(8)) ^ _crc_table()[bits & np.uint32(0xFF)]
    half = _zeros(log2_length - 1)
    return _apply(half, half)


def masked_crc32c(data: bytes | bytearray) -> int:
    """The CRC32C of ``data`` masked as LevelDB and TF store it (rotated, plus a constant)."""
    crc = crc32c(data)
    return ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF


def crc32c(data: bytes | bytearray) -> int:
    """The CRC32C of ``data``.

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    n = len(data)
    if n < 4096:
        table, reg = _crc_table().tolist(), 0xFFFFFFFF
        for byte in data:
            reg = (reg >> 8) ^ table[(reg ^ byte) & 0xFF]
        return reg ^ 0xFFFFFFFF
    log2_total = (n - 1).bit_length()
    log2_lane = max(8, log2_total - 16)  # at most 65536 lanes of at least 256 bytes
    padded = np.zeros(1 << log2_total, dtype=np.uint8)
    padded[-n:] = np.frombuffer(data, dtype=np.uint8)
    padded[-n : -n + 4] ^= 0xFF
    lanes = np.ascontiguousarray(padded.reshape(-1, 1 << log2_lane).T)  # row i: byte i of every lane
    table, regs = _crc_table(), np.zeros(lanes.shape[1], dtype=np.uint32)
    for row in lanes:
        regs = (regs >> np.uint32(8)) ^ table[(regs ^ row) & np.uint32(0xFF)]
    level = log2_lane
    while regs.size > 1:
        regs = _apply(_zeros(level), regs[0::2]) ^ regs[1::2]
        level += 1
    return int(regs[0]) ^ 0xFFFFFFFF
