"""The LRA suite end to end: generators against brute force, every task through its release-format
reader, DDP against one process, --resume against an uninterrupted run, bad input."""

import csv
import importlib
import json
import pickle
import random
import re
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("yaml", reason="the LRA benchmark needs PyYAML: pip install -e '.[lra]'")

from benchmarks.lra import cli  # noqa: E402
from benchmarks.lra import config as config_lib  # noqa: E402
from benchmarks.lra import make_data, train  # noqa: E402
from benchmarks.lra.data import TASKS, build_task, listops, pathfinder  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "benchmarks" / "lra" / "train.py"
TINY_MODEL = ["--set", "model.d_model=8", "--set", "model.n_layers=1"]
TINY_LISTOPS = ["--set", "data.generate.n_train=96", "--set", "data.generate.n_val=32",
                "--set", "data.generate.n_test=32", "--set", "model.d_model=16"]


@pytest.fixture
def keep_threads():
    """train.py sets torch's thread count from the config; restore it for the other tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def read_log(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# Generators against brute force ------------------------------------------------------------------

def brute_force_listops(source: str) -> int:
    """Value of a release source string by textual rewriting: drop the parentheses, then replace
    every innermost ``[OP d d ... ]`` by its digit until one digit is left."""
    text = " ".join(source.replace("(", " ").replace(")", " ").split())
    innermost = re.compile(r"\[(MIN|MAX|MED|SM)((?: \d)+) \]")

    def value(match: re.Match) -> str:
        digits = sorted(int(d) for d in match.group(2).split())
        n = len(digits)
        return str({"MIN": digits[0], "MAX": digits[-1], "SM": sum(digits) % 10,
                    "MED": digits[n // 2] if n % 2 else (digits[n // 2 - 1] + digits[n // 2]) // 2}[match.group(1)])

    while not text.isdigit():
        reduced = innermost.sub(value, text)
        assert reduced != text, f"no reducible operator left in {text[:80]!r}"
        text = reduced
    return int(text)


def test_listops_release_labels_match_brute_force(tmp_path):
    cfg = {"n_train": 150, "n_val": 20, "n_test": 20, "min_length": 5, "max_length": 200, "max_depth": 6,
           "max_args": 6}
    root = listops.write_release(tmp_path, cfg, seed=3)
    lines = (root / "basic_train.tsv").read_text().splitlines()
    assert lines[0] == "Source\tTarget" and len(lines) == 151
    labels = []
    for line in lines[1:]:
        source, label = line.split("\t")
        assert brute_force_listops(source) == int(label)
        labels.append(int(label))
    assert len(set(labels)) >= 8                           # all kinds of answers occur
    data = build_task("listops", {"l_max": 512}, tmp_path, seed=0)
    assert data.train.labels.tolist() == labels and len(data.val) == len(data.test) == 20
    rng = random.Random(7)                                 # deeper trees than the file above
    for _ in range(100):
        tree = listops.generate_tree(rng, max_depth=8, max_args=8)
        assert brute_force_listops(listops.to_source(tree)) == listops.evaluate(tree)


def connected(img: np.ndarray, a: tuple, b: tuple, reach: int) -> bool:
    """Flood fill over the drawn pixels from ``a``: can ``b`` be reached with jumps of at most
    ``reach`` pixels (Chebyshev)?"""
    side = img.shape[0]
    seen = np.zeros_like(img, dtype=bool)
    seen[a] = True
    queue = deque([a])
    while queue:
        r, c = queue.popleft()
        if (r, c) == b:
            return True
        for dr in range(-reach, reach + 1):
            for dc in range(-reach, reach + 1):
                rr, cc = r + dr, c + dc
                if 0 <= rr < side and 0 <= cc < side and img[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    queue.append((rr, cc))
    return False


@pytest.mark.parametrize("side, contour_length, distractors, gap, n", [
    (32, 14, 2, 0, 30), (32, 9, 2, 1, 20), (64, 14, 3, 1, 10), (128, 14, 4, 2, 4), (256, 10, 3, 3, 2),
])
def test_pathfinder_labels_match_flood_fill(side, contour_length, distractors, gap, n):
    spec = pathfinder.PathSpec(side=side, contour_length=contour_length, distractors=distractors, gap=gap)
    rng = np.random.default_rng(side + gap)
    for i in range(n):
        label = i % 2
        img, (a, b) = pathfinder.draw_sample(rng, spec, label)
        assert img.shape == (side, side) and img.dtype == np.uint8
        half = 3 * spec.thickness // 2
        for r, c in (a, b):                                # both markers are drawn as solid squares
            assert img[r - half : r + half + 1, c - half : c + half + 1].all()
        assert connected(img, a, b, spec.reach) == bool(label)


def test_pathfinder_generator_is_seeded_and_balanced():
    cfg = {"n_train": 20, "n_val": 4, "n_test": 4, "side": 32, "contour_length": 6, "distractors": 1, "gap": 0}
    first, second = pathfinder.generate(cfg, seed=5), pathfinder.generate(cfg, seed=5)
    assert torch.equal(first.train.images, second.train.images)
    assert not torch.equal(first.train.images, pathfinder.generate(cfg, seed=6).train.images)
    assert first.train.labels.sum() == 10
    with pytest.raises(KeyError, match="distractor"):
        pathfinder.from_config({**cfg, "distractor": 1})
    with pytest.raises(RuntimeError, match="could not place"):
        pathfinder.draw_sample(np.random.default_rng(0), pathfinder.PathSpec(32, 40, 6), 1, max_attempts=2)


def test_pathfinder_release_round_trip(tmp_path):
    pytest.importorskip("PIL")
    spec = pathfinder.PathSpec(side=64, contour_length=6, distractors=1, gap=1)
    root = pathfinder.write_release(tmp_path, spec, n=10, seed=1, per_folder=4)
    assert root == tmp_path / "pathfinder64" / "curv_baseline"
    assert sorted(p.name for p in (root / "metadata").iterdir()) == ["0.npy", "1.npy", "2.npy"]
    assert (root / "imgs" / "2" / "sample_9.png").is_file()
    images, labels = pathfinder.generate_split(spec, 10, np.random.default_rng(1))
    data = build_task("pathx", {"difficulty": "curv_baseline", "resolution": 64}, tmp_path, seed=0)
    assert data.l_max == 64 * 64 and len(data.train) + len(data.val) + len(data.test) == 10
    for ds in (data.train, data.val, data.test):
        for k, path in enumerate(ds.paths):
            i = int(path.stem.split("_")[1])                # sample_<i>.png
            pixels, label = ds[k]
            assert int(label) == labels[i] and np.array_equal(pixels.numpy(), images[i].reshape(-1))


def test_make_data_cli(tmp_path):
    root = make_data.main(["--task", "listops", "--out", str(tmp_path), "--preset", "smoke",
                           "--set", "n_train=5", "--set", "n_val=2", "--set", "n_test=2"])
    assert len((root / "basic_train.tsv").read_text().splitlines()) == 6
    with pytest.raises(cli.UserError, match="n_trian"):
        make_data.main(["--task", "listops", "--out", str(tmp_path), "--preset", "smoke", "--set", "n_trian=5"])
    with pytest.raises(cli.UserError, match="distractor"):
        make_data.main(["--task", "pathfinder", "--out", str(tmp_path), "--preset", "smoke", "--set", "distractor=5"])


# Every task through its reader ------------------------------------------------------------------

def write_tiny_release(root: Path) -> None:
    """A few examples of every task in its release layout under ``root``."""
    listops.write_release(root, {"n_train": 8, "n_val": 4, "n_test": 4, "min_length": 5, "max_length": 40,
                                 "max_depth": 3, "max_args": 4}, seed=0)
    (root / "tsv_data").mkdir()
    rows = "".join(f"{i % 2}\tid{i}\tid{i + 1}\tdocument {i}\tanother text {i}\n" for i in range(8))
    for split in ("train", "eval", "test"):
        (root / "tsv_data" / f"new_aan_pairs.{split}.tsv").write_text(rows)
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(4):
                (folder / f"{i}_7.txt").write_text(f"a {label} review number {i}")
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(cifar / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}, f)
    for side in (32, 128, 256):
        spec = pathfinder.PathSpec(side=side, contour_length=4, distractors=1, gap=side // 128)
        pathfinder.write_release(root, spec, n=10, seed=side, difficulty="curv_contour_length_14")


def test_one_step_of_every_task_through_the_readers(tmp_path, keep_threads):
    pytest.importorskip("PIL")
    write_tiny_release(tmp_path)
    try:
        importlib.import_module("sklearn")
        has_sklearn = True
    except ImportError:
        has_sklearn = False
    for task in (t for t in TASKS if t != "digits" or has_sklearn):   # digits reads scikit-learn's copy
        metrics = train.main(["--task", task, "--preset", "smoke", "--data-dir", str(tmp_path), "--max-steps", "1",
                              "--set", "train.batch_size=4", *TINY_MODEL])
        assert metrics["steps"] == 1 and 0 <= metrics["test_acc"] <= 1, task
        assert 0 <= metrics["majority_test_acc"] <= 1
        assert metrics["data"].startswith(str(tmp_path)) or task == "digits"


# DDP and resume ---------------------------------------------------------------------------------

def test_ddp_two_processes_take_the_same_steps_as_one(tmp_path, keep_threads):
    args = ["--task", "listops", "--preset", "smoke", "--max-steps", "4", "--set", "train.eval_every=1",
            "--set", "train.batch_size=8", "--set", "train.checkpoint=false", *TINY_LISTOPS]
    train.main([*args, "--out", str(tmp_path / "one")])
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(TRAIN), *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ddp.returncode == 0, ddp.stderr
    one, two = read_log(tmp_path / "one" / "log.csv"), read_log(tmp_path / "two" / "log.csv")
    assert [r["step"] for r in one] == [r["step"] for r in two] == ["1", "2", "3", "4"]
    for a, b in zip(one, two):
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), abs=1e-5)
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), abs=1e-5)
    assert float(one[0]["val_loss"]) != pytest.approx(float(one[-1]["val_loss"]), abs=1e-3)   # it did learn
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["world_size"] == 2


@pytest.mark.parametrize("task, extra", [
    ("listops", [*TINY_LISTOPS, "--set", "model.dropout=0.1"]),
    ("image", ["--pretrain", "--set", "data.generate.n_train=64", "--set", "data.generate.n_val=16",
               "--set", "data.generate.n_test=16", "--set", "data.generate.side=8", "--set", "model.dropout=0.1",
               "--set", "train.epochs=6", *TINY_MODEL]),
])
def test_resume_equals_uninterrupted(tmp_path, keep_threads, task, extra):
    args = ["--task", task, "--preset", "smoke", "--set", "train.eval_every=4", *extra]
    full = train.main([*args, "--out", str(tmp_path / "full")])
    stopped = train.main([*args, "--out", str(tmp_path / "parts"), "--stop-after", "5"])
    assert stopped["stopped"] and stopped["steps"] == 5 and not (tmp_path / "parts" / "metrics.json").exists()
    resumed = train.main([*args, "--out", str(tmp_path / "parts"), "--resume"])
    for key in ("val_acc", "test_acc", "val_loss", "test_loss", "steps"):
        assert resumed[key] == full[key], key
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in read_log(tmp_path / "full" / "log.csv")]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"}
                     for row in read_log(tmp_path / "parts" / "log.csv")]
    with pytest.raises(cli.UserError, match="another run"):
        train.main([*args, "--out", str(tmp_path / "parts"), "--resume", "--set", "optim.lr=0.5"])


# Bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--task", "sudoku"], "invalid choice: 'sudoku'"),
    (["--task", "listops", "--model", "mamba"], "invalid choice: 'mamba'"),
    (["--task", "listops", "--preset", "huge"], "invalid choice: 'huge'"),
    (["--task", "listops", "--resume", "--out", "nowhere"], "no checkpoint"),
])
def test_bad_flags_exit_with_a_message(flags, message, capsys):
    with pytest.raises(SystemExit):
        train.main(flags)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("override, error, message", [
    ("optim.lrr=1", KeyError, "optim.lrr"),
    ("model.layer=s4", KeyError, "model.layer"),
    ("train.batch_size=abc", TypeError, "train.batch_size"),
    ("optim.lr=fast", TypeError, "optim.lr"),
    ("train.amp=1", TypeError, "train.amp"),
    ("model.n_layers=2.5", TypeError, "model.n_layers"),
    ("data.l_max=long", TypeError, "data.l_max"),
])
def test_bad_config_fails_before_training(tmp_path, override, error, message):
    with pytest.raises(cli.UserError, match=re.escape(message)) as info:   # one line from the script
        train.main(["--task", "listops", "--preset", "smoke", "--out", str(tmp_path / "run"), "--set", override])
    assert isinstance(info.value.__cause__, error)
    assert not (tmp_path / "run").exists()
    config_lib.resolve("listops", "s4d", "smoke", overrides=["optim.lr=1"])   # an int is a valid float


@pytest.mark.parametrize("task, expected", [
    ("listops", "listops-1000/basic_train.tsv"),
    ("retrieval", "tsv_data/new_aan_pairs.train.tsv"),
    ("text", "aclImdb/train/neg"),
    ("image", "cifar-10-batches-py"),
    ("pathfinder", "pathfinder32/curv_contour_length_14/metadata"),
    ("pathx", "pathfinder128/curv_contour_length_14/metadata"),
    ("path256", "pathfinder256/curv_contour_length_14/metadata"),
])
def test_missing_files_are_named_before_training(tmp_path, task, expected):
    with pytest.raises(cli.UserError, match=re.escape(expected)) as info:
        train.main(["--task", task, "--preset", "smoke", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")])
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert not (tmp_path / "run").exists()


def test_bad_release_lines_name_file_and_line(tmp_path):
    root = tmp_path / "listops-1000"
    root.mkdir()
    good = "( ( [MAX 2 ) 9 ) ]\t9\n"
    for split, bad in (("train", "( ( [AVG 2 ) 9 ) ]\t9\n"), ("val", "( ( [MAX 2 ) 9 ) ]\t12\n")):
        for other in ("train", "val", "test"):
            (root / f"basic_{other}.tsv").write_text("Source\tTarget\n" + good)
        (root / f"basic_{split}.tsv").write_text("Source\tTarget\n" + good + bad)
        with pytest.raises(ValueError, match=re.escape(f"basic_{split}.tsv:3")):
            build_task("listops", {"l_max": 64}, tmp_path, seed=0)
    meta = tmp_path / "pathfinder32" / "curv_contour_length_14" / "metadata"
    meta.mkdir(parents=True)
    (meta / "0.npy").write_text("imgs/0 sample_0.png 0 1 14\nimgs/0 sample_1.png 0\n")
    with pytest.raises(ValueError, match=re.escape("0.npy:2")):
        build_task("pathfinder", {"difficulty": "curv_contour_length_14"}, tmp_path, seed=0)


def test_digits_task():
    pytest.importorskip("sklearn")
    data = build_task("digits", {}, None, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (1258, 270, 269)
    assert data.l_max == 64 and data.n_classes == 10 and data.kind == "pixels"
    assert int(data.train.images.max()) == 255 and set(data.test.labels.tolist()) == set(range(10))
    batch = data.collate([data.train[i] for i in range(3)])
    assert batch["x"].shape == (3, 64, 1) and batch["lengths"] is None
