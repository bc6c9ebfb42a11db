"""LRA data: release loaders and generators, one module per task family.

:func:`build_task` is the single entry point: with a ``data_dir`` it reads the release, without
one it generates data (ListOps and Pathfinder from their generators; Text, Retrieval and Image
from small synthetic stand-ins that only exercise the pipeline). ``digits`` (scikit-learn's
8x8 digits as a pixel sequence) is real data that needs no download; it ignores ``data_dir``.
"""

from __future__ import annotations

from pathlib import Path

from . import digits, image, listops, pathfinder, retrieval, text
from .common import TaskData

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx", "path256", "digits")


def build_task(task: str, data_cfg: dict, data_dir: str | Path | None, seed: int) -> TaskData:
    """Splits of ``task`` from ``data_dir`` (release layout), or generated when it is ``None``.

    Args:
        task: one of :data:`TASKS`.
        data_cfg: the config's ``data`` section: ``l_max`` (token tasks), ``difficulty`` and
            ``resolution`` (Pathfinder family) and ``generate`` (the generator's settings).
        data_dir: root of the unpacked release, or ``None`` to generate.
        seed: generator seed (the release splits do not depend on it).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    if task == "digits":
        return digits.load()
    if data_dir is not None:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise FileNotFoundError(f"--data-dir {data_dir} is not a directory (expected the unpacked LRA release)")
        if task == "listops":
            return listops.load(data_dir, data_cfg["l_max"])
        if task == "text":
            return text.load(data_dir, data_cfg["l_max"])
        if task == "retrieval":
            return retrieval.load(data_dir, data_cfg["l_max"])
        if task == "image":
            return image.load(data_dir)
        return pathfinder.load(task, data_dir, data_cfg["difficulty"], data_cfg.get("resolution", 0))
    gen = data_cfg["generate"]
    if task == "listops":
        return listops.generate(gen, data_cfg["l_max"], seed)
    if task == "text":
        return text.generate(gen, data_cfg["l_max"], seed)
    if task == "retrieval":
        return retrieval.generate(gen, data_cfg["l_max"], seed)
    if task == "image":
        return image.generate(gen, seed)
    return pathfinder.generate(gen, seed)


__all__ = ["TASKS", "TaskData", "build_task", "digits", "image", "listops", "pathfinder", "retrieval", "text"]
