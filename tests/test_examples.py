"""The short examples run as a new user would run them (the training ones with tiny settings),
and the README's code examples run as written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def run_example(name, *args, cwd):
    """Run ``examples/<name>`` in a fresh interpreter with plain progress lines; return the result."""
    env = {k: v for k, v in os.environ.items() if k != "SEQLAYERS_DEBUG"}
    env.update({"OMP_NUM_THREADS": "1", "SEQLAYERS_PROGRESS_EVERY": "0"})
    return subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize("name", ["backends.py", "drop_in.py", "generate.py"])
def test_example_runs(name, tmp_path):
    result = run_example(name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()


def test_train_digits_prints_plan_and_progress(tmp_path):
    pytest.importorskip("sklearn")
    result = run_example("train_digits.py", "--epochs", "1", "--d-model", "8", "--n-layers", "1", "--batch-size", "512",
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("plan: ") and "1 thread" in result.stdout and "test accuracy" in result.stdout
    assert "steps/s" in result.stderr and "left" in result.stderr        # progress with rate and time left


def test_compare_layers_table_explains_rows_near_chance(tmp_path):
    result = run_example("compare_layers.py", "--steps", "2", "--length", "16", "--d-model", "8",
                         "--only", "S4D", "SGConv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout.split("note")[-1]
    assert "S4D " in table and "SGConv " in table and "chance: 0.250" in table
    # two steps teach nothing: every row stays near chance and carries its reason
    assert "lr hint 1e-3" in table and "decay=0.5" in table


def test_example_user_error_is_one_line(tmp_path):
    result = run_example("compare_layers.py", "--only", "Transformer", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: --only: unknown rows ['Transformer']")


def readme_block(marker: str) -> str:
    """The README's python code block that contains ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one README python block with {marker!r}, found {len(found)}"
    return found[0]


def test_readme_model_examples_run():
    import torch

    scope: dict = {}
    exec(readme_block("seqlayers.SequenceModel(20, 10"), scope)
    assert scope["logits"].shape == (8, 10)
    exec(readme_block("class Block(nn.Module)"), scope)
    block = scope["Block"](16)
    assert block(torch.randn(2, 50, 16)).shape == (2, 50, 16)
