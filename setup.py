"""Install hooks of seqlayers (everything else is in pyproject.toml).

* Wheels carry the native sources: ``csrc/`` is copied into the package as ``seqlayers/_csrc`` so
  that a non-editable install can still build the optional extension on demand.
* ``SEQLAYERS_BUILD_NATIVE=1 pip install .`` builds the native extension ahead of time, against
  the torch of the environment being installed into, into torch's extension cache (where the
  first use finds it). Without the variable nothing is compiled and no compiler is needed. With
  it, a failed build fails the install with the compiler's reason: it was asked for.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SOURCES = ROOT / "csrc"


def _target_environment() -> dict:
    """The environment of a child that sees the install's target site-packages, not pip's isolated ones."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONNOUSERSITE"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(ROOT)  # import seqlayers from these sources
    return env


def build_native_ahead_of_time() -> None:
    if os.environ.get("SEQLAYERS_BUILD_NATIVE", "").strip() != "1":
        return
    cmd = [sys.executable, "-m", "seqlayers._native", "build", "--source-dir", str(SOURCES)]
    result = subprocess.run(cmd, env=_target_environment(), cwd=str(ROOT), capture_output=True, text=True)
    sys.stderr.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(
            "SEQLAYERS_BUILD_NATIVE=1: building the native extension failed (output above). Fix it, "
            "or install without SEQLAYERS_BUILD_NATIVE to use the PyTorch backends."
        )


class BuildPyWithNative(build_py):
    def run(self):
        super().run()
        if SOURCES.is_dir() and not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "seqlayers" / "_csrc"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(SOURCES, target, ignore=shutil.ignore_patterns("__pycache__", "*.o"))
        build_native_ahead_of_time()


setup(cmdclass={"build_py": BuildPyWithNative})
