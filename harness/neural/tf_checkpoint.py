"""TensorFlow V2 checkpoints ("tensor bundles"), read without TensorFlow.

``tf.train.Saver`` (TF 1 and 2) and ``tf.train.Checkpoint`` save to a prefix ``P``:
``P.index`` maps every variable's name to where its bytes are (decoded by
:mod:`~restorebench.neural.tf_bundle_index`), ``P.data-00000-of-0000N`` hold the bytes,
read here.

Checked on reading: the magic, every block's CRC32C, the header's version, that each
tensor's size is its shape times its item size, that its shard exists and holds it, and
its CRC32C (masked like the blocks'; :mod:`~restorebench.neural.crc32c`). Not
supported, each with an error that says so: snappy-compressed blocks (TF writes
checkpoints uncompressed) and variables saved in slices (partitioned variables).
Variables of other dtypes (string, resource, variant, quantized; e.g.
``tf.train.Checkpoint``'s object graph, a string) are skipped with a logged warning; an
error only when nothing else is left. bfloat16 is returned as float32, big-endian data
(the header says so) in native order.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np

from restorebench.core.errors import UserError
from restorebench.neural.crc32c import masked_crc32c
from restorebench.neural.tf_bundle_index import HINT, bad_index, bundle_entry, bundle_header, table_entries

__all__ = ["read_tf_checkpoint", "tf_checkpoint_prefix"]

logger = logging.getLogger(__name__)

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
    entries = table_entries(raw, index)
    if b"" not in entries:
        raise bad_index(index, "it has no bundle header (key '')")
    num_shards, big_endian = bundle_header(entries.pop(b""), index)
    wanted, skipped = {}, []
    for key, value in entries.items():
        if key.startswith(b"\x00"):  # one slice of a partitioned variable: refused at its full entry
            continue
        name = key.decode("utf-8", "replace")
        entry = bundle_entry(value, name, index)
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


# --------------------------------------------------------------------------- the data


def _read_tensors(prefix: Path, wanted: dict[str, dict], num_shards: int, order: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    files: dict[int, tuple[Path, BinaryIO, int]] = {}
    try:
        for name, e in sorted(wanted.items(), key=lambda item: (item[1]["shard"], item[1]["offset"])):
            shard = e["shard"]
            if not 0 <= shard < num_shards:
                raise bad_index(
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
            f"{expected}; the checkpoint is damaged ({HINT})."
        )
    if offset + size > file_size:
        raise UserError(
            f"{path} has {file_size} bytes but variable {name!r} needs bytes {offset}..{offset + size}; "
            f"the file is truncated ({HINT})."
        )
    buf = bytearray(size)
    f.seek(offset)
    f.readinto(buf)
    if masked_crc32c(buf) != e["crc"]:
        raise UserError(f"{path}: variable {name!r} fails its CRC32C check; the file is corrupted ({HINT}).")
    array = np.frombuffer(buf, dtype=dtype).reshape(shape)
    if e["dtype"] == _BFLOAT16:  # the upper half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))
