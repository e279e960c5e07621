"""TensorFlow V2 checkpoints read without TensorFlow (:mod:`restorebench.neural.tf_checkpoint`).

The fixture ``tests/fixtures/tf_bundle/model.ckpt`` was written by real TensorFlow
(``tests/fixtures/make_tf_bundle.py``); what every variable holds comes from that script's
numpy-only :func:`fixture_variables`. Damaged files are made from copies in tmp_path;
tables TF would not write (several blocks from a small index, slices, big-endian) are
built with a small writer of the same table format here. One test needs TensorFlow and
is skipped without it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from restorebench.commands.convert import convert_weights
from restorebench.core.errors import UserError
from restorebench.neural.checkpoints import file_sha256, load_checkpoint
from restorebench.neural.crc32c import crc32c, masked_crc32c
from restorebench.neural.official import read_official
from restorebench.neural.tf_checkpoint import read_tf_checkpoint, tf_checkpoint_prefix
from tests import FIXTURES as DATA

FIXTURE = DATA / "tf_bundle" / "model.ckpt"
INDEX = FIXTURE.with_name("model.ckpt.index")
SHARD = FIXTURE.with_name("model.ckpt.data-00000-of-00001")
TF_BLOCK_SIZE = 262_144  # TF's table::Options block_size: an index spans several blocks above it


def _expected() -> dict[str, tuple[str, np.ndarray]]:
    spec = importlib.util.spec_from_file_location("make_tf_bundle", DATA / "make_tf_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fixture_variables()


def _assert_fixture(state: dict[str, np.ndarray]) -> None:
    expected = _expected()
    numeric = {name: value for name, (dtype, value) in expected.items() if dtype != "string"}
    assert list(state) == sorted(numeric)  # the index's order: bytewise by name
    for name, value in numeric.items():
        got = state[name]
        assert (got.dtype, got.shape) == (value.dtype, value.shape), name  # bfloat16 -> its float32
        np.testing.assert_array_equal(got, value, err_msg=name)
        assert got.flags.writeable, name
    dtypes = {dtype for dtype, _ in expected.values()}
    assert {"float32", "float64", "int32", "int64", "float16", "bool", "bfloat16", "string"} <= dtypes
    assert state["scalar/int64"].shape == () and state["shapes/empty"].shape == (0, 3)
    assert state["shapes/four_d"].ndim == 4


def _copy_fixture(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for path in (INDEX, SHARD):
        shutil.copy(path, folder / path.name)
    return folder / FIXTURE.name


# --- reading the real TF checkpoint ---------------------------------------------------------


def test_reads_every_variable_of_the_real_tf_checkpoint(caplog):
    with caplog.at_level(logging.WARNING, logger="restorebench.neural.tf_checkpoint"):
        state = read_tf_checkpoint(FIXTURE)
    _assert_fixture(state)
    assert "strings/label (string)" in caplog.text  # skipped, said so


@pytest.mark.parametrize("name", ["model.ckpt", "model.ckpt.index", "model.ckpt.data-00000-of-00001"])
def test_read_official_by_prefix_index_or_data_file(name):
    weights = read_official(FIXTURE.with_name(name))
    assert weights.source_format == "tf_checkpoint"
    assert weights.path == INDEX
    _assert_fixture(weights.state_dict)
    assert tf_checkpoint_prefix(FIXTURE.with_name(name)) == FIXTURE


def test_an_existing_ckpt_file_is_still_pytorch(tmp_path):
    prefix = _copy_fixture(tmp_path)
    torch.save({"w": torch.ones(3)}, prefix)  # model.ckpt beside model.ckpt.index
    weights = read_official(prefix)
    assert weights.source_format == "state_dict" and list(weights.state_dict) == ["w"]
    assert tf_checkpoint_prefix(prefix) is None


def test_convert_reads_the_prefix_and_hashes_the_index(tmp_path):
    meta = convert_weights(FIXTURE, "lowlight/sid_unet?variant=full", tmp_path / "sid.safetensors")
    assert meta["converted_from"] == {"path": str(FIXTURE), "sha256": file_sha256(INDEX), "format": "tf_checkpoint"}
    assert meta["config"] == {"base": 2, "depth": 3, "in_channels": 4, "out_channels": 3, "block": 2, "up_bias": False}
    state, _ = load_checkpoint(tmp_path / "sid.safetensors")
    conv = _expected()["g_conv1_1/weights"][1]
    np.testing.assert_array_equal(state["conv1_1.weight"].numpy(), conv.transpose(3, 2, 0, 1))


def test_crc32c_many_lanes_equal_byte_by_byte():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    table = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ (0x82F63B78 if n & 1 else 0)
        table.append(n)
    rng = np.random.default_rng(0)
    for size in (4095, 4096, 4100, 70_001, 300_000):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        reg = 0xFFFFFFFF
        for byte in data:
            reg = (reg >> 8) ^ table[(reg ^ byte) & 0xFF]
        assert crc32c(data) == reg ^ 0xFFFFFFFF, size


# --- tables TF writes only for big or unusual checkpoints, built here -------------------------


def _varints(*values: int) -> bytes:
    out = bytearray()
    for value in values:
        value &= (1 << 64) - 1
        while value >= 0x80:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def _block(items: list[tuple[bytes, bytes]]) -> bytes:
    """A table block as LevelDB / TF write it: a restart point every 16 keys, shared prefixes."""
    body, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(items):
        shared = len(os.path.commonprefix([previous, key])) if i % 16 else 0
        if not i % 16:
            restarts.append(len(body))
        body += _varints(shared, len(key) - shared, len(value)) + key[shared:] + value
        previous = key
    restarts = restarts or [0]
    return bytes(body) + b"".join(r.to_bytes(4, "little") for r in [*restarts, len(restarts)])


def _write_table(path: Path, entries: dict[bytes, bytes], per_block: int = 1000) -> None:
    out, index = bytearray(), []

    def append(block: bytes) -> bytes:
        handle = _varints(len(out), len(block))
        out.extend(block + b"\0" + masked_crc32c(block + b"\0").to_bytes(4, "little"))
        return handle

    items = sorted(entries.items())
    for start in range(0, len(items), per_block):
        index.append(
            (items[min(start + per_block, len(items)) - 1][0], append(_block(items[start : start + per_block])))
        )
    footer = append(_block([])) + append(_block(index))
    path.write_bytes(bytes(out) + footer.ljust(40, b"\0") + (0xDB4775248B80FB57).to_bytes(8, "little"))


def _entries_of(index: Path) -> dict[bytes, bytes]:
    from restorebench.neural.tf_bundle_index import table_entries

    return table_entries(index.read_bytes(), index)


def test_an_index_of_several_blocks(tmp_path):
    prefix = _copy_fixture(tmp_path)
    _write_table(prefix.with_name("model.ckpt.index"), _entries_of(INDEX), per_block=20)
    _assert_fixture(read_tf_checkpoint(prefix))


def _one_tensor_bundle(tmp_path: Path, header: bytes, entry_extra: bytes = b"", order: str = "<") -> Path:
    data = np.arange(6, dtype=f"{order}f4").tobytes()
    shape = b"".join(b"\x12" + _varints(2) + b"\x08" + _varints(d) for d in (2, 3))
    entry = (
        b"\x08\x01\x12"
        + _varints(len(shape))
        + shape
        + b"\x28"
        + _varints(len(data))
        + b"\x35"
        + masked_crc32c(data).to_bytes(4, "little")
        + entry_extra
    )
    prefix = tmp_path / "one.ckpt"
    prefix.with_name("one.ckpt.data-00000-of-00001").write_bytes(data)
    _write_table(prefix.with_name("one.ckpt.index"), {b"": header, b"w": entry, b"x": b"\x08\x07\x12\x00"})
    return prefix


def test_big_endian_and_non_numeric_entries(tmp_path):
    little = read_tf_checkpoint(_one_tensor_bundle(tmp_path, b"\x08\x01"))
    big = read_tf_checkpoint(_one_tensor_bundle(tmp_path, b"\x08\x01\x10\x01", order=">"))
    for state in (little, big):
        assert list(state) == ["w"] and state["w"].dtype == np.float32 and state["w"].dtype.isnative
        np.testing.assert_array_equal(state["w"], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_sliced_variables_and_strings_only_are_refused(tmp_path):
    prefix = _one_tensor_bundle(tmp_path, b"\x08\x01", entry_extra=b"\x3a\x00")  # slices = 7: one empty slice
    with pytest.raises(UserError, match="'w' is saved in slices") as info:
        read_tf_checkpoint(prefix)
    assert str(prefix.with_name("one.ckpt.index")) in str(info.value)
    _write_table(prefix.with_name("one.ckpt.index"), {b"": b"\x08\x01", b"x": b"\x08\x07\x12\x00"})
    with pytest.raises(UserError, match=r"no numeric variables \(only x \(string\)\)"):
        read_tf_checkpoint(prefix)
    _write_table(prefix.with_name("one.ckpt.index"), {b"": b"\x08\x01\x1a\x04\x08\x05\x10\x03"})  # min_consumer 3
    with pytest.raises(UserError, match="bundle version >= 3"):
        read_tf_checkpoint(prefix)


# --- damaged files ------------------------------------------------------------------------


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: b[:30], "fewer than the 48-byte table footer"),
        (lambda b: b[:-60], "lacks the magic number"),
        (lambda b: b"", "fewer than the 48-byte"),
        (lambda b: _flip(b, len(b) - 1), "lacks the magic number"),
        (lambda b: _flip(b, 100), "fails its CRC32C check"),
        (lambda b: b[:200] + b"\x07" * 50 + b[250:], "fails its CRC32C check"),
    ],
    ids=["truncated", "tail-cut", "empty", "bad-magic", "bit-flip", "overwritten"],
)
def test_damaged_index_names_the_file(tmp_path, damage, match):
    prefix = _copy_fixture(tmp_path)
    index = prefix.with_name("model.ckpt.index")
    index.write_bytes(damage(INDEX.read_bytes()))
    for reader in (read_tf_checkpoint, read_official):
        with pytest.raises(UserError, match=match) as info:
            reader(prefix)
        assert str(index) in str(info.value)


def test_snappy_blocks_are_refused(tmp_path):
    prefix = _copy_fixture(tmp_path)
    raw = bytearray(INDEX.read_bytes())
    raw[_block_end(raw)] = 1  # the first data block's compression byte: snappy
    prefix.with_name("model.ckpt.index").write_bytes(bytes(raw))
    with pytest.raises(UserError, match="snappy-compressed blocks, which are not supported"):
        read_tf_checkpoint(prefix)


def _block_end(raw: bytes | bytearray) -> int:
    """Where the first data block ends (the fixture's index has one, at offset 0)."""
    from restorebench.neural.tf_bundle_index import _block_entries, _handle, _varint

    index = Path("index")
    footer = bytes(raw[-48:])
    offset, size = _handle(footer, _varint(footer, _varint(footer, 0, index)[1], index)[1], index)
    entries = _block_entries(bytes(raw[offset : offset + size]), index)
    start, size = _handle(entries[0][1], 0, index)
    return start + size


def test_missing_or_damaged_data_names_the_file(tmp_path):
    prefix = _copy_fixture(tmp_path)
    shard = prefix.with_name(SHARD.name)
    shard.unlink()
    for reader in (read_tf_checkpoint, read_official):
        with pytest.raises(UserError, match="lacks its data file") as info:
            reader(prefix)
        assert str(shard) in str(info.value)
    shard.write_bytes(SHARD.read_bytes()[:-100])
    with pytest.raises(UserError, match="is truncated") as info:
        read_tf_checkpoint(prefix)
    assert str(shard) in str(info.value)
    shard.write_bytes(_flip(SHARD.read_bytes(), 1000))
    with pytest.raises(UserError, match="fails its CRC32C check; the file is corrupted") as info:
        read_tf_checkpoint(prefix)
    assert str(shard) in str(info.value)


def test_missing_index_names_it(tmp_path):
    with pytest.raises(UserError, match="cannot read the TensorFlow checkpoint index") as info:
        read_tf_checkpoint(tmp_path / "nowhere.ckpt")
    assert str(tmp_path / "nowhere.ckpt.index") in str(info.value)
    with pytest.raises(UserError, match="does not exist"):  # no model.ckpt, no model.ckpt.index: a missing file
        read_official(tmp_path / "nowhere.ckpt")


# --- against TensorFlow itself, when it is installed ---------------------------------------


@pytest.mark.slow
def test_real_tf_index_of_several_blocks(tmp_path):
    tf = pytest.importorskip("tensorflow")
    names = [f"layer_{i:05d}/" + "x" * 60 for i in range(4000)]
    tf.raw_ops.SaveV2(
        prefix=str(tmp_path / "big"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant([float(i), -i], dtype=tf.float64) for i in range(len(names))],
    )
    assert (tmp_path / "big.index").stat().st_size > TF_BLOCK_SIZE
    state = read_tf_checkpoint(tmp_path / "big")
    assert list(state) == names
    np.testing.assert_array_equal(np.stack(list(state.values())), np.stack([np.arange(4000.0), -np.arange(4000.0)], 1))
