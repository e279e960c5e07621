"""Neural-network support shared by the learned methods: checkpoints and official weights.

:mod:`restorebench.neural.checkpoints` reads and writes restorebench's own checkpoint format
(weights-only ``.safetensors`` with JSON metadata) and loads plain PyTorch state dicts
without unpickling Python objects; :mod:`restorebench.neural.official` reads the formats that papers
released their weights in (whole pickled PyTorch models, MatConvNet ``.mat`` files of
MATLAB v5 and v7.3) without running code from the file. Nothing here imports torch
until a function needs it.
"""
