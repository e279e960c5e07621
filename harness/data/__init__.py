"""data: the image sources a suite names as ``scheme:target?key=value``.

One module per scheme, each registering its ``Source``: ``bundled:`` (scikit-image's
photos), ``synthetic:`` (seeded dead leaves), ``folder:`` (local files) and ``hf:``
(Hugging Face datasets); :mod:`~restorebench.data.images` decodes files into the
harness convention (float32 HWC in [0, 1]). Tasks add schemes of their own (``sid:``).

May import: core.
"""
