"""The command-line experience of the LRA scripts: one-line user errors with exit code 2, the
preset chosen without --preset, --help with defaults, thread choice, progress lines, and data
writers that leave no partial set when interrupted."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("yaml", reason="the LRA benchmark needs PyYAML: pip install -e '.[lra]'")

from benchmarks.lra import cli, make_data, train  # noqa: E402
from benchmarks.lra.data import common, listops, pathfinder  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "benchmarks" / "lra" / "train.py"
TINY = ["--set", "data.generate.n_train=64", "--set", "data.generate.n_val=16", "--set", "data.generate.n_test=16",
        "--set", "model.d_model=8", "--set", "model.n_layers=1"]


def run_script(*args, env=None, cwd=None):
    """Run a script in a fresh interpreter the way a user would; return the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items() if k != cli.DEBUG_ENV}
    full_env.update({"OMP_NUM_THREADS": "1", **(env or {})})
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=full_env,
                          cwd=cwd or REPO, timeout=120)


# One-line errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--set", "optim.lrr=0.1"], "unknown config key 'optim.lrr'"),
    (["--set", "optim.lr=abc"], "'optim.lr' must be a float"),
    (["--data-dir", "/nonexistent"], "--data-dir /nonexistent is not a directory"),
])
def test_train_user_errors_are_one_line_with_exit_code_2(flags, message, tmp_path):
    result = run_script(TRAIN, "--task", "listops", *flags, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and message in first


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    result = run_script(TRAIN, "--task", "listops", "--set", "optim.lrr=0.1", env={cli.DEBUG_ENV: "1"},
                        cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr and "optim.lrr" in result.stderr
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.debug_requested(["--task", "listops", "--debug"]) and not cli.debug_requested(["--task", "x"])


def test_make_data_user_error_is_one_line(tmp_path):
    result = run_script("-m", "benchmarks.lra.make_data", "--task", "listops", "--out", tmp_path,
                        "--set", "n_trian=3")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "n_trian" in result.stderr
    assert not (tmp_path / "listops-1000").exists()


def test_run_turns_user_errors_into_exit_2(capsys, monkeypatch):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)

    def main(argv):
        with cli.user_errors():
            raise KeyError("no such key 'x'")

    with pytest.raises(SystemExit) as info:
        cli.run(main, [])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[0] == "error: no such key 'x'"

    def buggy(argv):
        raise KeyError("a bug")            # outside user_errors: a bug keeps its traceback

    with pytest.raises(KeyError):
        cli.run(buggy, [])


# Presets, --help --------------------------------------------------------------------------------

def test_preset_is_chosen_by_device():
    assert train.choose_preset("paper", "listops", "cpu")[0] == "paper"
    preset, why = train.choose_preset(None, "listops", "cpu")
    assert preset == "small" and "--preset paper" in why
    assert train.choose_preset(None, "digits", "cpu")[0] == "small"
    assert train.choose_preset(None, "pathx", "cpu")[0] == "smoke"      # 'small' not timed there
    assert train.choose_preset(None, "listops", "cuda")[0] == "paper"


def test_default_preset_run_finishes(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        metrics = train.main(["--task", "listops", "--device", "cpu", "--max-steps", "3", "--out", str(tmp_path),
                              *TINY])
    finally:
        torch.set_num_threads(threads)      # train.py sets the thread count: restore it for other tests
    assert metrics["preset"] == "small" and metrics["steps"] == 3
    out = capsys.readouterr().out
    for part in ("preset: small", "threads: ", "data: listops", "model: s4d", "plan: "):
        assert part in out, part


def test_help_shows_defaults_and_presets(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = capsys.readouterr().out
    assert "(default: s4d)" in text and "(default: 0)" in text      # --model, --seed
    for preset in ("smoke", "small", "paper"):
        assert f"  {preset} " in text


# Threads ----------------------------------------------------------------------------------------

def test_thread_choice_precedence(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cli.choose_threads(2, configured=1) == (2, "--threads")
    assert cli.choose_threads(None, configured=1) == (3, "OMP_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cli.choose_threads(None, configured=1) == (1, "the configuration")
    n, why = cli.choose_threads(None)
    assert 1 <= n <= cli.MAX_DEFAULT_THREADS and n <= (os.cpu_count() or 1) and "physical cores" in why
    with pytest.raises(cli.UserError):
        cli.choose_threads(0)


# Progress ---------------------------------------------------------------------------------------

def test_plain_progress_lines_have_rate_and_time_left():
    stream = io.StringIO()                      # not a terminal: plain lines, no tqdm
    bar = cli.Progress(4, "train", every=0.0, stream=stream)
    for _ in range(3):
        bar.update(loss="0.5")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("train: 1/4 steps (25%)") and "steps/s" in lines[0] and "left" in lines[0]
    assert "loss 0.5" in lines[0]
    assert lines[-1].startswith("train: 3/4 steps in ")


def test_tqdm_bar_on_a_terminal():
    pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = cli.Progress(10, "draw", unit="image", stream=stream)
    assert bar.bar is not None
    bar.update(5)
    bar.close()
    assert "5/10" in stream.getvalue() or "10/10" in stream.getvalue()


def test_duration_format():
    assert [cli.duration(s) for s in (9.4, 75, 4000)] == ["9s", "1m15s", "1h06m"]


# Atomic data writers ----------------------------------------------------------------------------

def test_atomic_dir_leaves_nothing_on_failure_and_keeps_the_old_set(tmp_path):
    final = tmp_path / "set"
    with common.atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with common.atomic_dir(final) as tmp:
            (tmp / "a.txt").write_text("new")
            raise RuntimeError("interrupted midway")
    assert (final / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]            # no temporary folder left
    with common.atomic_dir(final) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]


def test_interrupted_pathfinder_writer_leaves_no_partial_set(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    from PIL import Image

    saved = []
    real_save = Image.Image.save

    def save_then_interrupt(self, path, *args, **kwargs):
        if len(saved) == 3:
            raise KeyboardInterrupt         # as Ctrl-C would, midway through the images
        saved.append(path)
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_then_interrupt)
    spec = pathfinder.PathSpec(side=32, contour_length=4, distractors=0)
    with pytest.raises(KeyboardInterrupt):
        pathfinder.write_release(tmp_path, spec, n=8, seed=0)
    assert len(saved) == 3
    assert list((tmp_path / "pathfinder32").iterdir()) == []                # no metadata/, no partial folder
    monkeypatch.setattr(Image.Image, "save", real_save)
    root = pathfinder.write_release(tmp_path, spec, n=8, seed=0)
    assert len(list((root / "metadata").glob("*.npy"))) == 1 and len(list(root.rglob("*.png"))) == 8


def test_interrupted_listops_writer_leaves_no_partial_set(tmp_path, monkeypatch):
    cfg = {"n_train": 4, "n_val": 2, "n_test": 2, "min_length": 5, "max_length": 40, "max_depth": 3, "max_args": 3}
    calls = []

    def interrupt(k):
        calls.append(k)
        if len(calls) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        listops.write_release(tmp_path, cfg, seed=0, progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_make_data_reports_plan_and_progress(tmp_path, capsys, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.setenv(cli.PROGRESS_EVERY_ENV, "0")
    root = make_data.main(["--task", "pathfinder", "--out", str(tmp_path), "--n", "6", "--preset", "smoke"])
    captured = capsys.readouterr()
    assert "plan: 6 Pathfinder images 32x32" in captured.out and f"wrote {root}" in captured.out
    assert "image steps/s" in captured.err
    assert len(list(root.rglob("*.png"))) == 6


def test_generated_pathfinder_batch_matches_single_draws():
    """Drawing many images at once keeps every image's label check (flood fill in test_lra_suite)."""
    spec = pathfinder.PathSpec(side=32, contour_length=9, distractors=1)
    labels = np.arange(40) % 2
    images, centers = pathfinder.draw_images(np.random.default_rng(0), spec, labels)
    assert images.shape == (40, 32, 32) and centers.shape == (40, 2, 2)
    half = 3 * spec.thickness // 2
    for img, pair in zip(images, centers):
        for r, c in pair:
            assert img[r - half: r + half + 1, c - half: c + half + 1].all()
