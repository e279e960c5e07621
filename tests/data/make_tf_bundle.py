"""Writes ``tests/data/tf_bundle/model.ckpt`` (``.index`` + ``.data-00000-of-00001``) with real TensorFlow.

Needs TensorFlow (not a project dependency); the committed fixture was made with
tensorflow-cpu 2.21 in a separate virtual environment, from the repository root::

    /tmp/tfenv/bin/python tests/data/make_tf_bundle.py

It saves the variables of :func:`fixture_variables` as the official SID code saved its
weights: a TF1 graph (``tf.compat.v1``), ``tf.compat.v1.train.Saver().save``, which writes
a V2 checkpoint ("tensor bundle"). Then it removes the ``checkpoint`` state file and the
``.meta`` graph, which a reader of the weights does not need.

:func:`fixture_variables` needs numpy only: ``tests/test_tf_checkpoint.py`` imports it to
know what every variable must hold, so the test runs without TensorFlow. The names are
long and share prefixes (prefix compression and restart points in the index's blocks),
cover several dtypes, a scalar, a 4-D tensor, an empty tensor and a string, which our
reader skips, and include a small SID U-Net under the official code's names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "tf_bundle" / "model.ckpt"

_DTYPES = ("float32", "float64", "int32", "int64", "float16", "bool", "bfloat16", "uint8", "int8", "int16")


def _value(name: str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """A deterministic array from the name alone; exact in every dtype used (bfloat16 too)."""
    k = 1 + sum(name.encode()) % 7
    i = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    if dtype == "bool":
        return ((i + k) % 3 == 0).reshape(shape)
    if dtype in ("float16", "float32", "float64", "bfloat16"):
        # multiples of 1/4 below 16 in magnitude: exact in bfloat16's 8-bit significand
        values = ((i % 17) - 8) * k / 4
        return values.reshape(shape).astype("float32" if dtype == "bfloat16" else dtype)
    values = (i * k) % 200 - (100 if dtype.startswith("int") else 0)
    return values.reshape(shape).astype(dtype)


def fixture_variables() -> dict[str, tuple[str, np.ndarray]]:
    """``name -> (TF dtype name, value)``; a ``bfloat16`` value is given as the float32 it equals."""
    out: dict[str, tuple[str, np.ndarray]] = {}

    def add(name: str, shape: tuple[int, ...], dtype: str = "float32") -> None:
        out[name] = (dtype, _value(name, shape, dtype))

    # SID's names and shapes for a U-Net of depth 3, base 2 (SID: depth 5, base 32), which
    # restorebench convert maps onto SIDUNet: g_conv{L}_{k}/weights (3 x 3 x Cin x Cout),
    # /biases, the deconvolution filters Variable, Variable_1 (2 x 2 x Cout x Cin), g_conv6.
    widths, cin = (2, 4, 8), 4
    for level, width in enumerate(widths, start=1):
        for k, c in ((1, cin), (2, width)):
            add(f"g_conv{level}_{k}/weights", (3, 3, c, width))
            add(f"g_conv{level}_{k}/biases", (width,))
        cin = width
    for i, width in enumerate(reversed(widths[:-1])):
        level = len(widths) + 1 + i
        add("Variable" if i == 0 else f"Variable_{i}", (2, 2, width, 2 * width))
        for k, c in ((1, 2 * width), (2, width)):
            add(f"g_conv{level}_{k}/weights", (3, 3, c, width))
            add(f"g_conv{level}_{k}/biases", (width,))
    add(f"g_conv{2 * len(widths)}/weights", (1, 1, widths[0], 12))
    add(f"g_conv{2 * len(widths)}/biases", (12,))
    for i in range(200):  # long shared prefixes, each dtype in turn
        add(f"a_rather_long_scope_name/with/nested/sub_blocks/var_{i:03d}", (1 + i % 5,), _DTYPES[i % len(_DTYPES)])
    add("scalar/float64", (), "float64")
    add("scalar/int64", (), "int64")
    add("shapes/four_d", (2, 3, 2, 2))
    add("shapes/empty", (0, 3))
    add("shapes/matrix_f16", (3, 4), "float16")
    add("shapes/bool_cube", (2, 2, 2), "bool")
    out["strings/label"] = ("string", np.array(b"not a number"))
    return out


def main() -> None:
    import tensorflow as tf

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for old in OUT.parent.iterdir():
        old.unlink()
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        for name, (dtype, value) in fixture_variables().items():
            initial = tf.constant(value)
            if dtype == "bfloat16":
                initial = tf.cast(initial, tf.bfloat16)
            tf1.Variable(initial, name=name)
        sess.run(tf1.global_variables_initializer())
        tf1.train.Saver().save(sess, str(OUT), write_meta_graph=False)
    (OUT.parent / "checkpoint").unlink()
    for path in sorted(OUT.parent.iterdir()):
        print(path, path.stat().st_size)


if __name__ == "__main__":
    main()
