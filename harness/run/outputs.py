"""``--save-outputs``: every restored image as a PNG under ``RUN_DIR/outputs``.

An image keeps its own name (``ünïcødé_图像.png`` stays that), so a user can match each output
to its input and two inputs never share an output: the name is the image's key (its path in a
folder, its key in a manifest) with ``.png`` added unless it already ends so. Only what is
unsafe in one path component is escaped, percent-style and reversibly: ``%``, ``/``, ``\\``,
control and other invisible characters, ``<>:"|?*`` and a leading ``.`` (``sub/a.png`` ->
``sub%2Fa.png``, ``../x.png`` -> ``%2E.%2Fx.png``). A name longer than a file system takes
(255 bytes) is cut and gets a hash of the whole key. (A dataset whose keys include both ``K``
and ``K.png``, possible only with keys a manifest names, would give both the name ``K.png``.)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restorebench.run.units import WorkUnit

MAX_NAME_BYTES = 255  # ext4, APFS, NTFS (in UTF-16 units, fewer than these bytes), most object stores
_UNSAFE = set('%/\\<>:"|?*')


def output_name(key: str) -> str:
    """The file name of one image's output: its key, one safe path component, ending in ``.png``.

    >>> output_name("sub/baby.png"), output_name("baby.bmp"), output_name("../../etc/passwd")
    ('sub%2Fbaby.png', 'baby.bmp.png', '%2E.%2F..%2Fetc%2Fpasswd.png')
    """
    stem = key[: -len(".png")] if key.endswith(".png") and len(key) > len(".png") else key
    name = _escape(stem)
    if len(name.encode()) + len(".png") > MAX_NAME_BYTES:
        digest = "~" + hashlib.sha256(key.encode()).hexdigest()[:16]
        room = MAX_NAME_BYTES - len(digest) - len(".png")
        name = name.encode()[:room].decode(errors="ignore")
        name = re.sub(r"%[0-9A-F]?$", "", name) + digest  # never half an escape
    return f"{name}.png"


def folder_name(ref: str) -> str:
    """One path component for a dataset, degradation or method reference: as
    :func:`restorebench.core.refs.slug` spells ASCII (``gaussian?sigma=25`` ->
    ``gaussian_sigma-25``), with letters of other scripts kept (``folder:/data/Bilder-ü``
    -> ``folder_data_Bilder-ü``) instead of dropped."""
    text = ref.replace("?", "_").replace("=", "-").replace("&", "_")
    text = "".join(c if _plain(c) else "\0" for c in text)
    text = re.sub("\0+", "_", text).strip("_").lstrip("._") or "x"
    if len(text.encode()) > MAX_NAME_BYTES:
        digest = "~" + hashlib.sha256(ref.encode()).hexdigest()[:16]
        text = text.encode()[: MAX_NAME_BYTES - len(digest)].decode(errors="ignore") + digest
    return text


def output_path(root: Path, unit: WorkUnit, method: str) -> Path:
    """Where ``--save-outputs`` puts one restored image: ``DATASET/DEGRADATION/METHOD/IMAGE.png``."""
    return (
        root
        / folder_name(unit.dataset)
        / folder_name(unit.degradation)
        / folder_name(method)
        / output_name(unit.image.key)
    )


def save_output(root: Path, unit: WorkUnit, method: str, png: bytes) -> Path:
    """Write one restored image (PNG bytes from the worker), atomically."""
    import os
    import uuid

    path = output_path(root, unit, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{uuid.uuid4().hex[:8]}.tmp")  # short: the name itself may be near the limit
    tmp.write_bytes(png)
    os.replace(tmp, path)
    return path


def _escape(text: str) -> str:
    out = ["%" + "".join(f"{b:02X}" for b in c.encode()) if c in _UNSAFE or not c.isprintable() else c for c in text]
    if out and out[0] == ".":  # never hidden, never ``.`` or ``..``
        out[0] = "%2E"
    return "".join(out)


def _plain(c: str) -> bool:
    """A character a folder name keeps: ASCII letters, digits and ``._-``, or a printable
    character of another script."""
    if c.isascii():
        return c.isalnum() or c in "._-"
    return c.isprintable() and not c.isspace()
