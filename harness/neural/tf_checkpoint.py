"""TensorFlow V2 checkpoints ("tensor bundles"), read without TensorFlow.

``tf.train.Saver`` (TF 1 and 2) and ``tf.train.Checkpoint`` save to a prefix ``P``:
``P.index`` maps every variable's name to where its bytes are, ``P.data-00000-of-0000N``
hold the bytes. The index is a LevelDB-format table (SSTable): a 48-byte footer (block
handles of the meta-index and the index block, magic ``0xdb4775248b80fb57``), blocks of
prefix-compressed ``key -> value`` entries with a restart array, each block followed by a
compression byte and a masked CRC32C. Key ``""`` holds a ``BundleHeaderProto``
(``num_shards``, ``endianness``, ``version``), every other key a variable's
``BundleEntryProto`` (``dtype``, ``shape``, ``shard_id``, ``offset``, ``size``,
``crc32c``, ``slices``); both protobufs are decoded by hand here.

Checked on reading: the magic, every block's CRC32C, the header's version, that each
tensor's size is its shape times its item size, that its shard exists and holds it, and
its CRC32C (masked like the blocks'; computed with numpy, many lanes at once). Not
supported, each with an error that says so: snappy-compressed blocks (TF writes
checkpoints uncompressed) and variables saved in slices (partitioned variables).
Variables of other dtypes (string, resource, variant, quantized; e.g.
``tf.train.Checkpoint``'s object graph, a string) are skipped with a logged warning; an
error only when nothing else is left. bfloat16 is returned as float32, big-endian data
(the header says so) in native order.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np

from restorebench.core.errors import UserError

__all__ = ["read_tf_checkpoint", "tf_checkpoint_prefix"]

logger = logging.getLogger(__name__)

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_TRAILER = 5  # compression type byte + masked CRC32C
_BUNDLE_VERSION = 1  # kTensorBundleVersion: the newest format a reader of TF's own understands
_DTYPES = {
    1: "<f4",
    2: "<f8",
    3: "<i4",
    4: "u1",
    5: "<i2",
    6: "i1",
    8: "<c8",
    9: "<i8",
    10: "?",
    14: "<u2",
    17: "<u2",
    18: "<c16",
    19: "<f2",
    22: "<u4",
    23: "<u8",
}  # TF DataType -> numpy
_BFLOAT16 = 14
_SKIPPED = {7: "string", 20: "resource", 21: "variant"}
_DATA_FILE = re.compile(r"\.data-\d{5}-of-\d{5}$")
_HINT = "re-download it, or save the checkpoint again with tf.train.Saver"


def tf_checkpoint_prefix(path: str | os.PathLike[str]) -> Path | None:
    """The checkpoint prefix ``path`` names, or None when it names no TF checkpoint.

    ``P.index`` and ``P.data-00000-of-00001`` name ``P``; so does ``P`` itself when no
    file ``P`` exists but ``P.index`` does (``model.ckpt`` in SID's release: an existing
    ``model.ckpt`` file is a PyTorch checkpoint instead).

    >>> tf_checkpoint_prefix("checkpoint/Sony/model.ckpt.index")
    PosixPath('checkpoint/Sony/model.ckpt')
    """
    path = Path(path)
    if path.name.endswith(".index"):
        return path.with_name(path.name.removesuffix(".index"))
    if m := _DATA_FILE.search(path.name):
        return path.with_name(path.name[: m.start()])
    if path.name and not path.exists() and path.with_name(path.name + ".index").is_file():
        return path
    return None


def read_tf_checkpoint(prefix: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """All variables of a TF V2 checkpoint as ``name -> array`` (in name order), no TF needed.

    ``prefix`` is what ``saver.save`` returned (``P``), or ``P.index``. Arrays keep TF's
    shapes (conv filters ``H x W x Cin x Cout``) and dtypes (bfloat16 -> float32).

    >>> state = read_tf_checkpoint("checkpoint/Sony/model.ckpt")  # doctest: +SKIP
    >>> state["g_conv1_1/weights"].shape  # doctest: +SKIP
    (3, 3, 4, 32)
    """
    prefix = tf_checkpoint_prefix(prefix) or Path(prefix)
    index = prefix.with_name(prefix.name + ".index")
    try:
        raw = index.read_bytes()
    except OSError as exc:
        raise UserError(
            f"cannot read the TensorFlow checkpoint index {index}: {exc.strerror or exc}; "
            "check the path (a checkpoint is PREFIX.index + PREFIX.data-*)."
        ) from None
    entries = _table_entries(raw, index)
    if b"" not in entries:
        raise _bad(index, "it has no bundle header (key '')")
    num_shards, big_endian = _header(entries.pop(b""), index)
    wanted, skipped = {}, []
    for key, value in entries.items():
        if key.startswith(b"\x00"):  # one slice of a partitioned variable: refused at its full entry
            continue
        name = key.decode("utf-8", "replace")
        entry = _entry(value, name, index)
        dtype = entry["dtype"]
        if dtype in _DTYPES:
            wanted[name] = entry
        else:
            skipped.append(f"{name} ({_SKIPPED.get(dtype, f'dtype {dtype}')})")
    if skipped:
        logger.warning(
            "%s: skipped the variables without numeric values (%d): %s", index, len(skipped), ", ".join(skipped)
        )
    if not wanted:
        raise UserError(
            f"{index} holds no numeric variables (only {', '.join(skipped) or 'nothing'}); "
            "it is not a checkpoint of weights."
        )
    return _read_tensors(prefix, wanted, num_shards, ">" if big_endian else "<")


# --------------------------------------------------------------------------- the table


def _bad(index: Path, what: str) -> UserError:
    return UserError(f"{index} is not a readable TensorFlow checkpoint index: {what}; {_HINT}.")


def _varint(buf: bytes, pos: int, index: Path) -> tuple[int, int]:
    result = shift = 0
    while pos < len(buf) and shift < 70:
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise _bad(index, "a varint runs past its end")


def _table_entries(raw: bytes, index: Path) -> dict[bytes, bytes]:
    if len(raw) < _FOOTER:
        raise _bad(index, f"the file has {len(raw)} bytes, fewer than the {_FOOTER}-byte table footer (truncated?)")
    footer = raw[-_FOOTER:]
    if int.from_bytes(footer[-8:], "little") != _MAGIC:
        raise _bad(index, "the table footer lacks the magic number (truncated, or not a checkpoint index)")
    _, pos = _varint(footer, _varint(footer, 0, index)[1], index)  # the meta-index handle: unused by TF
    index_block = _block(raw, *_handle(footer, pos, index), index)
    entries: dict[bytes, bytes] = {}
    for _, value in _block_entries(index_block, index):
        offset, size = _handle(value, 0, index)
        entries.update(_block_entries(_block(raw, offset, size, index), index))
    keys = list(entries)
    if keys != sorted(keys):
        raise _bad(index, "its keys are out of order")
    return entries


def _handle(buf: bytes, pos: int, index: Path) -> tuple[int, int]:
    offset, pos = _varint(buf, pos, index)
    return offset, _varint(buf, pos, index)[0]


def _block(raw: bytes, offset: int, size: int, index: Path) -> bytes:
    end = offset + size
    if end + _TRAILER > len(raw) - _FOOTER:
        raise _bad(index, f"a block at bytes {offset}..{end} runs past the end of the file (truncated?)")
    contents, kind = raw[offset:end], raw[end]
    if kind == 1:
        raise UserError(
            f"{index} has snappy-compressed blocks, which are not supported; read it with "
            "TensorFlow (tf.train.load_checkpoint) and save the arrays as .safetensors."
        )
    if kind != 0:
        raise _bad(index, f"a block has unknown compression type {kind}")
    stored = int.from_bytes(raw[end + 1 : end + _TRAILER], "little")
    if stored != _masked_crc32c(raw[offset : end + 1]):  # over the contents and the type byte
        raise _bad(index, f"the block at byte {offset} fails its CRC32C check (corrupted)")
    return contents


def _block_entries(block: bytes, index: Path) -> list[tuple[bytes, bytes]]:
    """Decode a block: entries ``(shared, non_shared, value_length, key suffix, value)``, restarts."""
    if len(block) < 4:
        raise _bad(index, "a block is too short for its restart count")
    restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 - 4 * restarts
    if restarts < 1 or end < 0:
        raise _bad(index, f"a block claims {restarts} restart points")
    points = {int.from_bytes(block[end + 4 * i : end + 4 * i + 4], "little") for i in range(restarts)}
    out: list[tuple[bytes, bytes]] = []
    key, pos, fresh = b"", 0, set()
    while pos < end:
        start = pos
        shared, pos = _varint(block, pos, index)
        non_shared, pos = _varint(block, pos, index)
        length, pos = _varint(block, pos, index)
        if shared > len(key) or pos + non_shared + length > end:
            raise _bad(index, f"an entry at byte {start} of a block overruns it")
        if shared == 0:
            fresh.add(start)
        key = key[:shared] + block[pos : pos + non_shared]
        out.append((key, block[pos + non_shared : pos + non_shared + length]))
        pos += non_shared + length
    if not points <= fresh | {end}:  # an empty block has its one restart point at its end
        raise _bad(index, "a restart point is not at an unshared key")
    return out


# --------------------------------------------------------------------------- the protobufs


def _fields(buf: bytes, index: Path) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` of a serialised protobuf: varints and fixed ints as int, the rest as bytes."""
    if not isinstance(buf, bytes):
        raise _bad(index, "a protobuf message is stored as a number")
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos, index)
        wire = tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, index)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = int.from_bytes(buf[pos : pos + width], "little"), pos + width
        elif wire == 2:
            length, pos = _varint(buf, pos, index)
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise _bad(index, f"a protobuf field has wire type {wire}")
        if pos > len(buf):
            raise _bad(index, "a protobuf field runs past its message")
        out.append((tag >> 3, value))
    return out


def _header(buf: bytes, index: Path) -> tuple[int, bool]:
    """``BundleHeaderProto``: (num_shards = 1, endianness = 2: 0 little / 1 big, version = 3)."""
    fields = dict(_fields(buf, index))
    shards, endianness = fields.get(1, 1), fields.get(2, 0)
    min_consumer = dict(_fields(fields.get(3, b""), index)).get(2, 0)  # VersionDef: producer 1, min_consumer 2
    if not all(isinstance(v, int) for v in (shards, endianness, min_consumer)) or shards < 1 or endianness > 1:
        raise _bad(index, f"its header is implausible ({shards!r} shards, endianness {endianness!r})")
    if min_consumer > _BUNDLE_VERSION:
        raise UserError(
            f"{index} needs a reader of bundle version >= {min_consumer} (this one reads "
            f"{_BUNDLE_VERSION}); save it with an older TensorFlow or convert it with TF."
        )
    return shards, endianness == 1


def _entry(buf: bytes, name: str, index: Path) -> dict[str, int | tuple[int, ...]]:
    """``BundleEntryProto``: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6, slices 7."""
    entry: dict[str, int | tuple[int, ...]] = {"dtype": 0, "shard": 0, "offset": 0, "size": 0, "crc": 0}
    dims: list[int] = []
    for number, value in _fields(buf, index):
        if number == 7:
            raise UserError(
                f"{index}: variable {name!r} is saved in slices (a partitioned variable), which is "
                "not supported; read it with TensorFlow (tf.train.load_checkpoint) and save the "
                "arrays as .safetensors."
            )
        if number == 2:
            for dim_number, dim in _fields(value, index):  # TensorShapeProto: dim = 2, unknown_rank = 3
                if dim_number == 3 and dim:
                    raise _bad(index, f"variable {name!r} has an unknown rank")
                if dim_number == 2:
                    size = dict(_fields(dim, index)).get(1, 0)
                    dims.append(size - (1 << 64) if size >= 1 << 63 else size)
        elif number in (1, 3, 4, 5, 6):
            if not isinstance(value, int):
                raise _bad(index, f"variable {name!r} has a malformed entry")
            entry[{1: "dtype", 3: "shard", 4: "offset", 5: "size", 6: "crc"}[number]] = value
    if any(d < 0 for d in dims):
        raise _bad(index, f"variable {name!r} has shape {dims}")
    entry["shape"] = tuple(dims)
    return entry


# --------------------------------------------------------------------------- the data


def _read_tensors(prefix: Path, wanted: dict[str, dict], num_shards: int, order: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    files: dict[int, tuple[Path, BinaryIO, int]] = {}
    try:
        for name, e in sorted(wanted.items(), key=lambda item: (item[1]["shard"], item[1]["offset"])):
            shard = e["shard"]
            if not 0 <= shard < num_shards:
                raise _bad(
                    prefix.with_name(prefix.name + ".index"), f"variable {name!r} is in shard {shard} of {num_shards}"
                )
            if shard not in files:
                path = prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}")
                try:
                    f = path.open("rb")
                except OSError as exc:
                    raise UserError(
                        f"the TensorFlow checkpoint {prefix} lacks its data file {path} "
                        f"({exc.strerror or exc}); put it beside {prefix.name}.index."
                    ) from None
                files[shard] = (path, f, os.fstat(f.fileno()).st_size)
            path, f, file_size = files[shard]
            out[name] = _tensor(name, e, path, f, file_size, order)
    finally:
        for _, f, _ in files.values():
            f.close()
    return {name: out[name] for name in wanted}  # name order, as in the index


def _tensor(name: str, e: dict, path: Path, f: BinaryIO, file_size: int, order: str) -> np.ndarray:
    dtype = np.dtype(_DTYPES[e["dtype"]]).newbyteorder(order)
    shape, offset, size = e["shape"], e["offset"], e["size"]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size != expected:
        raise UserError(
            f"{path}: variable {name!r} of shape {list(shape)} takes {size} bytes, not "
            f"{expected}; the checkpoint is damaged ({_HINT})."
        )
    if offset + size > file_size:
        raise UserError(
            f"{path} has {file_size} bytes but variable {name!r} needs bytes {offset}..{offset + size}; "
            f"the file is truncated ({_HINT})."
        )
    buf = bytearray(size)
    f.seek(offset)
    f.readinto(buf)
    if _masked_crc32c(buf) != e["crc"]:
        raise UserError(f"{path}: variable {name!r} fails its CRC32C check; the file is corrupted ({_HINT}).")
    array = np.frombuffer(buf, dtype=dtype).reshape(shape)
    if e["dtype"] == _BFLOAT16:  # the upper half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


# --------------------------------------------------------------------------- CRC32C

# CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as LevelDB and TF use it. A CRC
# register started at 0 is linear in the data and ignores leading zero bytes, so the data
# is zero-padded in front to a power of two, cut into lanes that numpy runs side by side,
# and the lanes' registers are combined pairwise ("shift the left one by the right one's
# length of zeros, xor"); the initial 0xFFFFFFFF equals flipping the first four bytes.


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


def _masked_crc32c(data: bytes | bytearray) -> int:
    """The CRC32C of ``data`` masked as LevelDB and TF store it (rotated, plus a constant)."""
    crc = _crc32c(data)
    return ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF


def _crc32c(data: bytes | bytearray) -> int:
    """The CRC32C of ``data``."""
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
