"""MATLAB ``.mat`` weights: MatConvNet SimpleNN networks and plain variables, v5 and v7.3.

v5 files are read with scipy.io, v7.3 (HDF5) with h5py. Arrays keep MATLAB's dimension
order (conv filters ``H x W x Cin x Cout``); converting to torch's ``(Cout, Cin, H, W)``
is the model's job: ``np.transpose(filters, (3, 2, 0, 1))``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorebench.core.errors import UserError
from restorebench.neural.checkpoints import existing_file

__all__ = ["MatLayer", "read_matconvnet", "read_mat_variables"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class MatLayer:
    """One MatConvNet SimpleNN layer.

    ``weights`` are float32 arrays in MATLAB's order and shape (at least 2-D): ``conv``
    ``(filters H x W x Cin x Cout, biases)``, always 4-D filters although MATLAB drops
    trailing singleton dimensions; ``bnorm`` ``(gain, bias, moments C x 2: mean, std)``.
    ``attrs`` holds the other fields (``stride``, ``pad``, ``epsilon``, ...): strings as
    str, 1-element arrays as Python scalars, vectors as 1-D arrays, empty arrays as None,
    cells as lists, structs as dicts; MATLAB logicals read as uint8 0/1 in both versions.
    """

    type: str
    name: str
    weights: tuple[np.ndarray, ...]
    attrs: dict[str, Any]


def read_matconvnet(path: str | os.PathLike[str]) -> list[MatLayer]:
    """The layers of a MatConvNet SimpleNN ``.mat`` file (variable ``net``, or ``layers``).

    >>> [l.type for l in read_matconvnet("sigma=25.mat")][:3]  # doctest: +SKIP
    ['conv', 'relu', 'conv']
    """
    path = existing_file(path, (".mat",))
    return layers_from(load_mat(path, mat_version(path)), path)


def read_mat_variables(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The numeric top-level variables of a ``.mat`` file, dtype and MATLAB shape as stored.

    >>> read_mat_variables("x3.mat")["weights_conv1"].shape  # doctest: +SKIP
    (1, 81, 64)
    """
    path = existing_file(path, (".mat",))
    return variables_from(load_mat(path, mat_version(path)), path)


# --- MATLAB .mat files -------------------------------------------------------------------

_MATLAB_NUMERIC = {
    "double": "f8",
    "single": "f4",
    "int8": "i1",
    "uint8": "u1",
    "int16": "i2",
    "uint16": "u2",
    "int32": "i4",
    "uint32": "u4",
    "int64": "i8",
    "uint64": "u8",
    "logical": "u1",
}


def mat_version(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(128)
    if head.startswith(b"\x89HDF") or head.startswith(b"MATLAB 7.3"):
        return "v73"
    if head.startswith(b"MATLAB 5.0"):
        return "v5"
    raise UserError(
        f"{path} is not a MATLAB v5 or v7.3 MAT-file (unrecognised header); "
        "re-save it in MATLAB with save(..., '-v7') or '-v7.3'."
    )


def load_mat(path: Path, version: str) -> dict[str, Any]:
    """All variables as plain values: str, ndarray, dict (struct), list (cell), None."""
    if version == "v5":
        import scipy.io
        from scipy.io.matlab import MatReadError

        try:
            raw = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False)
        except (MatReadError, ValueError, TypeError, OSError, NotImplementedError, RecursionError) as exc:
            raise UserError(f"{path} is not a readable MATLAB v5 file ({exc}).") from exc
        return {k: _from_v5(v) for k, v in raw.items() if not k.startswith("__")}
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: _from_h5(f[k], f) for k in f if not k.startswith("#")}
    except (OSError, KeyError, ValueError, TypeError, RecursionError) as exc:  # RecursionError: cyclic refs
        raise UserError(f"{path} is not a readable MATLAB v7.3 (HDF5) file ({exc}).") from exc


def _from_v5(value: Any) -> Any:
    from scipy.io.matlab import mat_struct

    if isinstance(value, mat_struct):
        return {name: _from_v5(getattr(value, name)) for name in value._fieldnames}
    if not isinstance(value, np.ndarray):
        return None  # function handles, opaque objects
    if value.dtype == object:
        items = value.ravel(order="F")
        if items.size and all(isinstance(v, mat_struct) for v in items):  # struct (array)
            return _from_v5(items[0]) if items.size == 1 else [_from_v5(v) for v in items]
        return [_from_v5(v) for v in items]  # cell
    if value.dtype.kind == "U":
        return "".join(value.ravel().tolist())
    return value if value.dtype.kind in "biufc" else None


def _from_h5(obj: Any, f: Any) -> Any:
    import h5py

    cls = obj.attrs.get("MATLAB_class")
    cls = cls.decode() if isinstance(cls, bytes) else (str(cls) if cls is not None else None)
    if isinstance(obj, h5py.Group):
        fields = {k: obj[k] for k in obj}
        if fields and all(
            isinstance(d, h5py.Dataset) and d.dtype == h5py.ref_dtype and "MATLAB_class" not in d.attrs
            for d in fields.values()
        ):
            refs = {k: d[()].T.ravel(order="F") for k, d in fields.items()}  # struct array
            n = min(len(r) for r in refs.values())
            items = [{k: _from_h5(f[r[i]], f) for k, r in refs.items()} for i in range(n)]
            return items[0] if n == 1 else items
        return {k: _from_h5(v, f) for k, v in fields.items()} if cls in (None, "struct") else None
    if "MATLAB_sparse" in obj.attrs:
        logger.warning("skipping sparse MATLAB array %s", obj.name)
        return None
    if obj.attrs.get("MATLAB_empty", 0):
        dims = tuple(int(d) for d in np.asarray(obj[()]).ravel())
        return {"cell": [], "char": "", "struct": {}}.get(cls, np.zeros(dims, _MATLAB_NUMERIC.get(cls, "f8")))
    data = obj[()]
    if cls == "cell":
        return [_from_h5(f[ref], f) for ref in np.asarray(data).T.ravel(order="F")]
    if cls == "char":
        return "".join("".join(map(chr, row)) for row in np.atleast_2d(np.asarray(data).T))
    if cls in _MATLAB_NUMERIC:
        array = np.asarray(data)
        if array.dtype.names and {"real", "imag"} <= set(array.dtype.names):
            array = array["real"] + 1j * array["imag"]
        return array.T.astype(np.uint8) if cls == "logical" else array.T  # uint8, as scipy reads v5
    logger.warning("skipping MATLAB value %s of class %s", obj.name, cls)
    return None


def layers_from(tree: dict[str, Any], path: Path) -> list[MatLayer]:
    net = tree.get("net")
    layers = net.get("layers") if isinstance(net, dict) else tree.get("layers")
    layers = [layers] if isinstance(layers, dict) else layers
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise UserError(
            f"{path} has no MatConvNet SimpleNN network (a 'net' struct whose 'layers' is a cell array of structs)."
        )
    if any("block" in layer for layer in layers):
        raise UserError(
            f"{path} holds a MatConvNet DagNN network, which is not supported; "
            "convert it to SimpleNN in MATLAB or use a PyTorch release of the weights."
        )
    return [_layer(i, layer, path) for i, layer in enumerate(layers)]


def _layer(index: int, fields: dict[str, Any], path: Path) -> MatLayer:
    kind, name = fields.get("type"), fields.get("name")
    if not isinstance(kind, str):
        raise UserError(f"{path}: layer {index + 1} has no 'type' string; not a MatConvNet SimpleNN file.")
    weights = fields.get("weights")
    if weights is None and "filters" in fields:  # MatConvNet before beta-12
        weights = [fields["filters"], fields.get("biases")]
    arrays = []
    for w in [weights] if isinstance(weights, np.ndarray) else (weights or []):
        if w is None:
            continue
        if not isinstance(w, np.ndarray) or w.dtype.kind not in "biuf":
            raise UserError(f"{path}: layer {index + 1} ({kind}) has a non-numeric weight {type(w).__name__}.")
        arrays.append(np.array(w, dtype=np.float32))
    if kind in ("conv", "convt") and arrays and 0 < arrays[0].ndim < 4:
        arrays[0] = arrays[0].reshape(arrays[0].shape + (1,) * (4 - arrays[0].ndim))
    skip = {"type", "name", "weights", "filters", "biases"}
    attrs = {k: _attr(v) for k, v in fields.items() if k not in skip}
    return MatLayer(kind, name if isinstance(name, str) else f"layer{index + 1}", tuple(arrays), attrs)


def _attr(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _attr(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_attr(v) for v in value]
    if not isinstance(value, np.ndarray):
        return value
    if value.size == 0:
        return None
    if value.size == 1:
        return value.item()
    if sum(d > 1 for d in value.shape) == 1:
        return value.ravel(order="F")
    return value


def variables_from(tree: dict[str, Any], path: Path) -> dict[str, np.ndarray]:
    found = {k: v for k, v in tree.items() if isinstance(v, np.ndarray) and v.dtype.kind in "biufc"}
    if not found:
        raise UserError(
            f"{path} holds no numeric variables (found: {', '.join(tree) or 'nothing'}); "
            "it is neither a MatConvNet network nor a file of weight arrays."
        )
    return found
