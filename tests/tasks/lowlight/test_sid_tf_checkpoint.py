"""Optional cross-check of the SID TF-checkpoint mapping against a real TensorFlow.

Skipped unless ``tensorflow`` and ``tf_slim`` are importable (they are not project
dependencies, so normally it is skipped). It builds SID's network as the official code
does (cchen156/Learning-to-See-in-the-Dark, ``train_Sony.py``: TF1 graph, ``slim.conv2d``
scopes ``g_conv{L}_{k}``, un-named ``tf.Variable`` deconvolution filters,
``depth_to_space``, an Adam optimiser, ``tf.train.Saver``), saves a randomly initialised
checkpoint, and converts it as ``restorebench convert ... --method
'lowlight/sid_unet?variant=full'`` does, twice: read back with ``tf.train.load_checkpoint``
and saved as ``.safetensors``, and straight from ``model.ckpt`` by our TF-free reader
(:mod:`restorebench.neural.tf_checkpoint`, also compared with TF's reader variable by variable). Both
give our ``SIDUNet`` TF's own forward pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorebench.commands.convert import convert_weights
from restorebench.neural.checkpoints import load_checkpoint
from restorebench.neural.tf_checkpoint import read_tf_checkpoint
from restorebench.tasks.lowlight.models import SIDUNet, sid_unet_parameter_count

tf = pytest.importorskip("tensorflow")
slim = pytest.importorskip("tf_slim")
pytestmark = pytest.mark.slow
tf1 = tf.compat.v1


def _lrelu(x):
    return tf.maximum(x * 0.2, x)


def _conv_pair(x, width, level):
    x = slim.conv2d(x, width, [3, 3], rate=1, activation_fn=_lrelu, scope=f"g_conv{level}_1")
    return slim.conv2d(x, width, [3, 3], rate=1, activation_fn=_lrelu, scope=f"g_conv{level}_2")


def _upsample_and_concat(x1, x2, output_channels, in_channels):
    deconv_filter = tf.Variable(tf1.truncated_normal([2, 2, output_channels, in_channels], stddev=0.02))
    deconv = tf.nn.conv2d_transpose(x1, deconv_filter, tf.shape(x2), strides=[1, 2, 2, 1])
    out = tf.concat([deconv, x2], 3)
    out.set_shape([None, None, None, output_channels * 2])
    return out


def _sid_network(x):
    """``network()`` of train_Sony.py: same layers, scopes and variable creation order."""
    skips = []
    for level, width in enumerate((32, 64, 128, 256, 512), start=1):
        x = _conv_pair(x, width, level)
        if level < 5:
            skips.append(x)
            x = slim.max_pool2d(x, [2, 2], padding="SAME")
    for level, width in zip(range(6, 10), (256, 128, 64, 32)):
        x = _conv_pair(_upsample_and_concat(x, skips.pop(), width, 2 * width), width, level)
    conv10 = slim.conv2d(x, 12, [1, 1], rate=1, activation_fn=None, scope="g_conv10")
    return tf1.depth_to_space(conv10, 2)


def test_official_tf_checkpoint_converts_to_the_same_network(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1, 32, 32, 4)).astype(np.float32)  # NHWC, a multiple of 16
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        tf1.set_random_seed(0)
        in_image = tf1.placeholder(tf.float32, [None, None, None, 4])
        gt_image = tf1.placeholder(tf.float32, [None, None, None, 3])
        out_image = _sid_network(in_image)
        loss = tf.reduce_mean(tf.abs(out_image - gt_image))
        tf1.train.AdamOptimizer(learning_rate=1e-4).minimize(loss)  # its slots land in the checkpoint too
        saver = tf1.train.Saver()
        sess.run(tf1.global_variables_initializer())
        for v in tf1.trainable_variables():  # slim's biases start at zero: make them matter
            if v.name.endswith("biases:0"):
                v.load(rng.normal(0, 0.05, v.shape.as_list()).astype(np.float32), sess)
        expected = sess.run(out_image, feed_dict={in_image: x})
        path = saver.save(sess, str(tmp_path / "model.ckpt"))

    reader = tf.train.load_checkpoint(path)
    names = reader.get_variable_to_shape_map()
    assert {"Variable", "Variable_3", "g_conv10/weights", "Variable/Adam", "beta1_power"} <= set(names)
    # np.asarray: scalars such as beta1_power come back as numpy scalars, which safetensors refuses
    save_file({name: np.asarray(reader.get_tensor(name)) for name in names}, str(tmp_path / "tf_names.safetensors"))

    # through TF's reader and .safetensors, and straight from the checkpoint with ours
    for source, fmt in ((tmp_path / "tf_names.safetensors", "safetensors"), (tmp_path / "model.ckpt", "tf_checkpoint")):
        out = tmp_path / f"converted_{fmt}.safetensors"
        meta = convert_weights(source, "lowlight/sid_unet?variant=full", out)
        assert meta["converted_from"]["format"] == fmt
        assert meta["config"] == {
            "base": 32,
            "depth": 5,
            "in_channels": 4,
            "out_channels": 3,
            "block": 2,
            "up_bias": False,
        }
        state, saved = load_checkpoint(out)
        net = SIDUNet(**saved["config"]).eval()
        net.load_state_dict(state, strict=True)
        assert sum(p.numel() for p in net.parameters()) == sid_unet_parameter_count(**saved["config"]) == 7_760_268
        with torch.no_grad():
            ours = net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        assert ours.shape == expected.shape == (1, 64, 64, 3)
        assert np.abs(ours - expected).max() < 1e-4, fmt
    ours_raw = read_tf_checkpoint(path)  # every variable, Adam slots and beta powers too, bit for bit
    assert sorted(ours_raw) == sorted(names)
    for name in names:
        np.testing.assert_array_equal(ours_raw[name], reader.get_tensor(name), err_msg=name)
