"""The LRA benchmark: ListOps generator/evaluator/tokenizer, release-format loaders on tiny files,
configuration merging, pretraining objectives, and short smoke runs of train.py."""

import json
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("yaml", reason="the LRA benchmark needs PyYAML: pip install -e '.[lra]'")

from benchmarks.lra import cli  # noqa: E402
from benchmarks.lra import config as config_lib  # noqa: E402
from benchmarks.lra import objectives, train  # noqa: E402
from benchmarks.lra.data import build_task, image, listops, pathfinder, retrieval, text  # noqa: E402
from benchmarks.lra.data.common import EOS_ID, MASK_ID, PAD_ID, SPECIALS, UNK_ID  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY_LISTOPS = [
    "--set", "data.generate.n_train=96", "--set", "data.generate.n_val=32", "--set", "data.generate.n_test=32",
    "--set", "model.d_model=16",
]


@pytest.fixture
def keep_threads():
    """train.py sets torch's thread count from the config; restore it for the other tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ListOps generator, evaluator, tokenizer -------------------------------------------------------

def test_operators():
    assert listops.apply_operator("[MIN", [3, 1, 7]) == 1
    assert listops.apply_operator("[MAX", [3, 1, 7]) == 7
    assert listops.apply_operator("[MED", [3, 1, 7]) == 3
    assert listops.apply_operator("[MED", [1, 2, 9, 4]) == 3      # median 3.0
    assert listops.apply_operator("[MED", [1, 2]) == 1            # int(1.5)
    assert listops.apply_operator("[SM", [9, 8, 5]) == 2          # 22 mod 10
    with pytest.raises(ValueError, match="unknown ListOps operator"):
        listops.apply_operator("[AVG", [1])


def test_source_format_and_tokens():
    tree = ("[MAX", [2, 9])
    source = listops.to_source(tree)
    assert source == "( ( [MAX 2 ) 9 ) ]"
    assert listops.tokenize(source) == ["[MAX", "2", "9", "]"]
    ids = listops.encode(source, l_max=16)
    assert ids.tolist() == [listops.TOKEN_IDS[t] for t in ("[MAX", "2", "9", "]")] + [EOS_ID]
    assert listops.encode("( [MIN 3 ) 4 ) X ]", 16)[3] == UNK_ID
    assert len(listops.encode(source, l_max=3)) == 3
    assert len(listops.VOCAB) == len(SPECIALS) + 15


def test_generator_labels_match_token_evaluation():
    rng = random.Random(0)
    for _ in range(200):
        tree = listops.generate_tree(rng, max_depth=5, max_args=5)
        assert not isinstance(tree, int)                  # the root is an operator
        tokens = listops.tokenize(listops.to_source(tree))
        assert listops.evaluate_tokens(tokens) == listops.evaluate(tree)
    nested = ("[SM", [("[MIN", [4, 7]), ("[MED", [1, 5, 9]), 8])
    assert listops.evaluate(nested) == (4 + 5 + 8) % 10
    with pytest.raises(ValueError):
        listops.evaluate_tokens(["[MAX", "2"])


def test_generator_respects_length_range_and_depth():
    rng = random.Random(1)
    for _ in range(50):
        source, label = listops.sample_expression(rng, 20, 60, max_depth=4, max_args=5)
        tokens = listops.tokenize(source)
        assert 20 <= len(tokens) <= 60 and 0 <= label <= 9
        depth = max_depth = 0
        for t in tokens:
            depth += t in listops.OPERATORS
            depth -= t == listops.CLOSE
            max_depth = max(max_depth, depth)
        assert max_depth <= 4
    with pytest.raises(RuntimeError, match="no expression"):
        listops.sample_expression(rng, 500, 600, max_depth=1, max_args=2, max_tries=20)


# Release-format loaders on tiny files -----------------------------------------------------------

def test_listops_loader(tmp_path):
    root = tmp_path / "listops-1000"
    root.mkdir()
    rows = ["( ( [MAX 2 ) 9 ) ]\t9", "( ( ( [SM 4 ) 7 ) ( ( [MIN 5 ) 1 ) ] ) ]\t2"]
    for split in ("train", "val", "test"):
        (root / f"basic_{split}.tsv").write_text("Source\tTarget\n" + "\n".join(rows) + "\n")
    data = build_task("listops", {"l_max": 2048}, tmp_path, seed=0)
    assert data.train.labels.tolist() == [9, 2] and data.vocab_size == len(listops.VOCAB)
    for tokens, label in (data.train[0], data.train[1]):
        words = [listops.VOCAB[i] for i in tokens.tolist()[:-1]]
        assert listops.evaluate_tokens(words) == int(label)
    batch = data.collate([data.train[0], data.train[1]])
    assert batch["x"].shape == (2, 9) and batch["lengths"].tolist() == [5, 9]
    assert batch["x"][0, 5:].eq(PAD_ID).all()
    (root / "basic_val.tsv").write_text("src\tlabel\n")
    with pytest.raises(ValueError, match="expected the header"):
        build_task("listops", {"l_max": 2048}, tmp_path, seed=0)
    with pytest.raises(FileNotFoundError, match="basic_"):
        build_task("listops", {"l_max": 2048}, tmp_path / "listops-1000", seed=0)


def test_retrieval_loader(tmp_path):
    root = tmp_path / "tsv_data"
    root.mkdir()
    for split in retrieval.SPLITS:
        (root / f"new_aan_pairs.{split}.tsv").write_text("1.0\tA\tB\tabc\tdefgh\n0\tC\tD\txy\tz\n")
    data = build_task("retrieval", {"l_max": 4}, tmp_path, seed=0)
    assert data.paired and data.train.first.labels.tolist() == [1, 0]
    batch = data.collate([data.train[0], data.train[1]])
    assert batch["x"].shape == (4, 4) and batch["lengths"].tolist() == [3, 2, 4, 1]
    assert batch["x"][0, :3].tolist() == [ord(c) + len(SPECIALS) for c in "abc"]
    (root / "new_aan_pairs.eval.tsv").write_text("1\tonly\tthree\n")
    with pytest.raises(ValueError, match="5 tab-separated columns"):
        build_task("retrieval", {"l_max": 4}, tmp_path, seed=0)


def test_text_loader(tmp_path):
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            folder = tmp_path / "aclImdb" / split / label
            folder.mkdir(parents=True)
            (folder / "0_1.txt").write_text(f"{label} review é")
    data = text.load(tmp_path, l_max=100)
    assert data.train.labels.tolist() == [0, 1] and data.val is data.test
    assert len(data.train[1][0]) == len("pos review é".encode())
    with pytest.raises(FileNotFoundError, match="aclImdb"):
        text.load(tmp_path / "nowhere", l_max=100)


def test_image_loaders(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(20) % 10
    np.savez(tmp_path / "cifar10.npz", x_train=rgb, y_train=labels, x_test=rgb[:4], y_test=labels[:4])
    data = image.load(tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 4) and data.l_max == 1024
    gray = image.to_gray(rgb[:4]).reshape(4, -1)
    assert torch.equal(data.test.images, torch.from_numpy(gray))
    batch = data.collate([data.test[i] for i in range(4)])
    assert batch["x"].shape == (4, 1024, 1) and batch["lengths"] is None

    release = tmp_path / "py" / "cifar-10-batches-py"
    release.mkdir(parents=True)
    planes = rgb[:2].transpose(0, 3, 1, 2).reshape(2, -1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(release / name, "wb") as f:
            pickle.dump({b"data": planes, b"labels": [3, 5]}, f)
    data = image.load(tmp_path / "py")
    assert len(data.test) == 2 and torch.equal(data.test.images, torch.from_numpy(gray[:2]))
    with pytest.raises(FileNotFoundError, match="cifar10.npz"):
        image.load(tmp_path / "py" / "cifar-10-batches-py")
    (release / "data_batch_3").write_bytes(b"\x80\x04truncated")
    with pytest.raises(ValueError, match="data_batch_3: not a CIFAR-10 python batch"):
        image.load(tmp_path / "py")


def test_pathfinder_loader(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    root = tmp_path / "pathfinder32" / "curv_contour_length_14"
    (root / "imgs" / "0").mkdir(parents=True)
    (root / "metadata").mkdir()
    lines = []
    for i in range(10):
        pil.fromarray(np.full((32, 32), 20 * i, dtype=np.uint8)).save(root / "imgs" / "0" / f"sample_{i}.png")
        lines.append(f"imgs/0 sample_{i}.png 0 {i % 2} 14")
    lines.append("imgs/0 sample_missing.png 0 1 14")
    (root / "metadata" / "0.npy").write_text("\n".join(lines) + "\n")
    data = build_task("pathfinder", {"difficulty": "curv_contour_length_14"}, tmp_path, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (8, 1, 1)
    pixels, label = data.train[0]
    assert pixels.shape == (1024,) and pixels.dtype == torch.uint8
    assert int(pixels[0]) // 20 % 2 == int(label)
    with pytest.raises(FileNotFoundError, match="metadata"):
        pathfinder.load("pathx", tmp_path, "curv_contour_length_14")


def test_generators_make_every_task():
    for task in ("text", "retrieval", "image", "pathfinder"):
        cfg = config_lib.resolve(task, "s4d", "smoke", overrides=["data.generate.n_train=4"])
        data = build_task(task, cfg["data"], None, seed=0)
        batch = data.collate([data.train[i] for i in range(4)])
        assert len(batch["y"]) == 4 and batch["x"].shape[0] == (8 if data.paired else 4)


# Configuration ----------------------------------------------------------------------------------

def test_config_merge_and_overrides(tmp_path):
    cfg = config_lib.resolve("listops", "longconv", "paper", overrides=["optim.lr=1e-3", "model.layer_kwargs.smooth=5"])
    assert cfg["model"]["n_layers"] == 8 and cfg["optim"]["lr"] == 0.001
    assert cfg["model"]["layer_kwargs"] == {"channels": 2, "lr": 0.0005, "squash_lambda": 0.002, "kernel_dropout": 0.2,
                                            "smooth": 5}
    assert config_lib.resolve("listops", "s4d", "smoke")["model"]["d_model"] == 64
    user = tmp_path / "user.yaml"
    user.write_text("train: {epochs: 3}\n")
    assert config_lib.resolve("image", "s5", "paper", user)["train"]["epochs"] == 3
    with pytest.raises(KeyError, match="optim.lrr"):
        config_lib.resolve("listops", "s4d", "paper", overrides=["optim.lrr=1"])
    with pytest.raises(ValueError, match="section.key=value"):
        config_lib.parse_override("optim.lr")
    for task in ("listops", "text", "retrieval", "image", "pathfinder", "pathx", "path256"):
        for model in config_lib.MODELS:
            config_lib.resolve(task, model, "paper")


# Pretraining objectives -------------------------------------------------------------------------

class Echo(torch.nn.Module):
    """A stand-in model: one-hot logits of its input tokens, or its first pixel channel."""

    def forward(self, x, lengths=None):
        if x.is_floating_point():
            return x[..., :1]
        return torch.nn.functional.one_hot(x, len(listops.VOCAB)).float() * 50


def test_pretraining_targets():
    x = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    batch = {"x": x, "lengths": torch.tensor([4, 2]), "y": torch.zeros(2, dtype=torch.long)}
    causal = objectives.pretrain(Echo(), batch, causal=True, mask_ratio=0.1)
    assert int(causal.count) == 3 + 1 and int(causal.correct) == 0      # echo never predicts the next token
    gen = torch.Generator().manual_seed(0)
    masked = objectives.pretrain(Echo(), batch, causal=False, mask_ratio=0.5, generator=gen)
    assert 0 < int(masked.count) <= 6 and int(masked.correct) == 0       # inputs there are <mask>
    assert MASK_ID not in x.tolist()
    pixels = {"x": torch.ones(2, 8, 1), "lengths": None, "y": torch.zeros(2, dtype=torch.long)}
    out = objectives.pretrain(Echo(), pixels, causal=False, mask_ratio=0.5, generator=gen)
    assert out.correct is None and out.loss.item() == pytest.approx(1.0)  # masked pixels enter as 0


# train.py ---------------------------------------------------------------------------------------

def test_smoke_run_writes_metrics(tmp_path, keep_threads):
    metrics = train.main(["--task", "listops", "--preset", "smoke", "--max-steps", "6", "--out", str(tmp_path),
                          *TINY_LISTOPS, "--set", "train.eval_every=3"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("task", "model", "val_acc", "test_acc", "steps", "seconds", "config"):
        assert key in saved
    assert saved["task"] == "listops" and saved["model"] == "s4d" and saved["steps"] == 6
    assert 0.0 <= saved["test_acc"] <= 1.0 and saved["test_acc"] == metrics["test_acc"]
    assert saved["config"]["model"]["d_model"] == 16
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "config.yaml").is_file()


def test_pretrain_then_finetune(tmp_path, keep_threads):
    spt = tmp_path / "spt"
    metrics = train.main(["--task", "listops", "--preset", "smoke", "--pretrain", "--max-steps", "3",
                          "--out", str(spt), *TINY_LISTOPS])
    assert metrics["objective"] == "pretrain-next" and metrics["val_loss"] > 0
    state = torch.load(spt / "best.pt", weights_only=True)["model"]
    assert state["decoder.weight"].shape[0] == len(listops.VOCAB)
    metrics = train.main(["--task", "listops", "--preset", "smoke", "--init-from", str(spt / "best.pt"),
                          "--max-steps", "2", *TINY_LISTOPS])
    assert metrics["objective"] == "classify"

    tiny_image = ["--set", "data.generate.n_train=32", "--set", "data.generate.n_val=16",
                  "--set", "data.generate.n_test=16", "--set", "data.generate.side=8", "--set", "model.d_model=8"]
    spt = tmp_path / "spt_image"
    metrics = train.main(["--task", "image", "--preset", "smoke", "--pretrain", "--max-steps", "2",
                          "--out", str(spt), *tiny_image])
    assert metrics["objective"] == "pretrain-masked" and metrics["val_acc"] is None
    train.main(["--task", "image", "--preset", "smoke", "--init-from", str(spt / "best.pt"), "--max-steps", "1",
                *tiny_image])


def test_pretrain_kind_can_be_named(tmp_path, keep_threads):
    metrics = train.main(["--task", "listops", "--preset", "smoke", "--pretrain", "masked", "--max-steps", "2",
                          "--out", str(tmp_path / "masked"), *TINY_LISTOPS])
    assert metrics["objective"] == "pretrain-masked"
    with pytest.raises(cli.UserError, match="needs a causal model"):
        train.main(["--task", "listops", "--preset", "smoke", "--pretrain", "causal", "--max-steps", "1",
                    "--set", "model.bidirectional=true", *TINY_LISTOPS])


def test_cli_runs_as_a_script(tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks" / "lra" / "train.py"), "--task", "retrieval", "--preset", "smoke",
           "--max-steps", "2", "--out", str(tmp_path), "--set", "data.generate.n_train=32",
           "--set", "data.generate.n_val=8", "--set", "data.generate.n_test=8"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "test_acc" in result.stdout and (tmp_path / "metrics.json").is_file()
    bad = subprocess.run(cmd[:2] + ["--task", "listops", "--init-from", str(tmp_path / "none.pt")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode != 0 and "no such checkpoint" in bad.stderr
