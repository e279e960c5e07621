"""The index of a TensorFlow V2 checkpoint (``P.index``), decoded without TensorFlow.

The index is a LevelDB-format table (SSTable): a 48-byte footer (block handles of the
meta-index and the index block, magic ``0xdb4775248b80fb57``), blocks of
prefix-compressed ``key -> value`` entries with a restart array, each block followed by a
compression byte and a masked CRC32C. Key ``""`` holds a ``BundleHeaderProto``
(``num_shards``, ``endianness``, ``version``), every other key a variable's
``BundleEntryProto`` (``dtype``, ``shape``, ``shard_id``, ``offset``, ``size``,
``crc32c``, ``slices``); both protobufs are decoded by hand here. Kept apart from
:mod:`~restorebench.neural.tf_checkpoint`, which reads the tensors these entries point at.
"""

from __future__ import annotations

from pathlib import Path

from restorebench.core.errors import UserError
from restorebench.neural.crc32c import masked_crc32c

__all__ = ["HINT", "bad_index", "bundle_entry", "bundle_header", "table_entries"]

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_TRAILER = 5  # compression type byte + masked CRC32C
_BUNDLE_VERSION = 1  # kTensorBundleVersion: the newest format a reader of TF's own understands
HINT = "re-download it, or save the checkpoint again with tf.train.Saver"
"""What to do about a damaged checkpoint, ending the errors that say it is."""


def bad_index(index: Path, what: str) -> UserError:
    """The error for an index that is damaged or not a checkpoint index, saying ``what`` is wrong."""
    return UserError(f"{index} is not a readable TensorFlow checkpoint index: {what}; {HINT}.")


def _varint(buf: bytes, pos: int, index: Path) -> tuple[int, int]:
    result = shift = 0
    while pos < len(buf) and shift < 70:
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise bad_index(index, "a varint runs past its end")


# --------------------------------------------------------------------------- the table


def table_entries(raw: bytes, index: Path) -> dict[bytes, bytes]:
    """Every ``key -> value`` of the table ``raw`` (the bytes of the file ``index``), in key order."""
    if len(raw) < _FOOTER:
        raise bad_index(
            index, f"the file has {len(raw)} bytes, fewer than the {_FOOTER}-byte table footer (truncated?)"
        )
    footer = raw[-_FOOTER:]
    if int.from_bytes(footer[-8:], "little") != _MAGIC:
        raise bad_index(index, "the table footer lacks the magic number (truncated, or not a checkpoint index)")
    _, pos = _varint(footer, _varint(footer, 0, index)[1], index)  # the meta-index handle: unused by TF
    index_block = _block(raw, *_handle(footer, pos, index), index)
    entries: dict[bytes, bytes] = {}
    for _, value in _block_entries(index_block, index):
        offset, size = _handle(value, 0, index)
        entries.update(_block_entries(_block(raw, offset, size, index), index))
    keys = list(entries)
    if keys != sorted(keys):
        raise bad_index(index, "its keys are out of order")
    return entries


def _handle(buf: bytes, pos: int, index: Path) -> tuple[int, int]:
    offset, pos = _varint(buf, pos, index)
    return offset, _varint(buf, pos, index)[0]


def _block(raw: bytes, offset: int, size: int, index: Path) -> bytes:
    end = offset + size
    if end + _TRAILER > len(raw) - _FOOTER:
        raise bad_index(index, f"a block at bytes {offset}..{end} runs past the end of the file (truncated?)")
    contents, kind = raw[offset:end], raw[end]
    if kind == 1:
        raise UserError(
            f"{index} has snappy-compressed blocks, which are not supported; read it with "
            "TensorFlow (tf.train.load_checkpoint) and save the arrays as .safetensors."
        )
    if kind != 0:
        raise bad_index(index, f"a block has unknown compression type {kind}")
    stored = int.from_bytes(raw[end + 1 : end + _TRAILER], "little")
    if stored != masked_crc32c(raw[offset : end + 1]):  # over the contents and the type byte
        raise bad_index(index, f"the block at byte {offset} fails its CRC32C check (corrupted)")
    return contents


def _block_entries(block: bytes, index: Path) -> list[tuple[bytes, bytes]]:
    """Decode a block: entries ``(shared, non_shared, value_length, key suffix, value)``, restarts."""
    if len(block) < 4:
        raise bad_index(index, "a block is too short for its restart count")
    restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 - 4 * restarts
    if restarts < 1 or end < 0:
        raise bad_index(index, f"a block claims {restarts} restart points")
    points = {int.from_bytes(block[end + 4 * i : end + 4 * i + 4], "little") for i in range(restarts)}
    out: list[tuple[bytes, bytes]] = []
    key, pos, fresh = b"", 0, set()
    while pos < end:
        start = pos
        shared, pos = _varint(block, pos, index)
        non_shared, pos = _varint(block, pos, index)
        length, pos = _varint(block, pos, index)
        if shared > len(key) or pos + non_shared + length > end:
            raise bad_index(index, f"an entry at byte {start} of a block overruns it")
        if shared == 0:
            fresh.add(start)
        key = key[:shared] + block[pos : pos + non_shared]
        out.append((key, block[pos + non_shared : pos + non_shared + length]))
        pos += non_shared + length
    if not points <= fresh | {end}:  # an empty block has its one restart point at its end
        raise bad_index(index, "a restart point is not at an unshared key")
    return out


# --------------------------------------------------------------------------- the protobufs


def _fields(buf: bytes, index: Path) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` of a serialised protobuf: varints and fixed ints as int, the rest as bytes."""
    if not isinstance(buf, bytes):
        raise bad_index(index, "a protobuf message is stored as a number")
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
            raise bad_index(index, f"a protobuf field has wire type {wire}")
        if pos > len(buf):
            raise bad_index(index, "a protobuf field runs past its message")
        out.append((tag >> 3, value))
    return out


def bundle_header(buf: bytes, index: Path) -> tuple[int, bool]:
    """``BundleHeaderProto``: (num_shards = 1, endianness = 2: 0 little / 1 big, version = 3)."""
    fields = dict(_fields(buf, index))
    shards, endianness = fields.get(1, 1), fields.get(2, 0)
    min_consumer = dict(_fields(fields.get(3, b""), index)).get(2, 0)  # VersionDef: producer 1, min_consumer 2
    if not all(isinstance(v, int) for v in (shards, endianness, min_consumer)) or shards < 1 or endianness > 1:
        raise bad_index(index, f"its header is implausible ({shards!r} shards, endianness {endianness!r})")
    if min_consumer > _BUNDLE_VERSION:
        raise UserError(
            f"{index} needs a reader of bundle version >= {min_consumer} (this one reads "
            f"{_BUNDLE_VERSION}); save it with an older TensorFlow or convert it with TF."
        )
    return shards, endianness == 1


def bundle_entry(buf: bytes, name: str, index: Path) -> dict[str, int | tuple[int, ...]]:
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
                    raise bad_index(index, f"variable {name!r} has an unknown rank")
                if dim_number == 2:
                    size = dict(_fields(dim, index)).get(1, 0)
                    dims.append(size - (1 << 64) if size >= 1 << 63 else size)
        elif number in (1, 3, 4, 5, 6):
            if not isinstance(value, int):
                raise bad_index(index, f"variable {name!r} has a malformed entry")
            entry[{1: "dtype", 3: "shard", 4: "offset", 5: "size", 6: "crc"}[number]] = value
    if any(d < 0 for d in dims):
        raise bad_index(index, f"variable {name!r} has shape {dims}")
    entry["shape"] = tuple(dims)
    return entry
