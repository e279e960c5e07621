"""neural: what every learned method shares.

- :mod:`~restorebench.neural.inference`: ``NeuralMethod``, the adapter (checkpoint
  resolution, device, batching, tiling);
- :mod:`~restorebench.neural.checkpoints`: restorebench's checkpoint format (weights-only
  ``.safetensors`` with JSON metadata) and plain state dicts, never unpickling objects
  (:mod:`~restorebench.neural.files`: the extensions and state-dict picking they share with
  the readers of released weights);
- :mod:`~restorebench.neural.fit`: whether a checkpoint fits a network, decided from its
  tensor names and shapes before anything is built (config checks, bounded builds,
  legacy layouts, short mismatch lines);
- :mod:`~restorebench.neural.official`: the formats papers released weights in (whole
  pickled PyTorch models via :mod:`~restorebench.neural.torch_pickle`, MatConvNet/MATLAB
  via :mod:`~restorebench.neural.matlab`, TensorFlow checkpoints via
  :mod:`~restorebench.neural.tf_checkpoint`), read without running code from the file
  (their parts: ``torch_archive``, ``torch_unpickler``, ``torch_stubs``; ``tf_bundle_index``,
  ``crc32c``);
- :mod:`~restorebench.neural.training`: the seeded patch-training loop recipes run in;
- :mod:`~restorebench.neural.imagenet`: the ImageNet normalisation statistics.

Nothing here imports torch until a function needs it. May import: core.
"""
