"""Lazy loader of the native (C++ and CUDA) extension built from the repository's ``csrc/``.

The extension is optional: nothing here runs at ``import seqlayers``, and ``pip install`` never
compiles unless asked to. It is built with ``torch.utils.cpp_extension.load`` (which needs
``ninja`` and a C++ compiler; with a visible GPU and the CUDA toolkit, ``csrc/cuda/*.cu`` are
compiled into it too) the first time a build is allowed, and cached on disk under
``$TORCH_EXTENSIONS_DIR`` (default: torch's extension cache) in a folder named after a hash of
the sources, the torch and Python versions and the flags, so a changed source is rebuilt and
an unchanged one is loaded without compiling, by any later process. One build per process:
the outcome, success or the failure's reason, is kept. A failed build warns once (the
compiler's last lines and the fix) and leaves the native backends unavailable; it never raises.

When a build is allowed:

* ``SEQLAYERS_BUILD_NATIVE=1 pip install .`` (or ``-e .``): at install time (see setup.py);
* ``python -m seqlayers._native build``: build now (about 10 s on the CPU), e.g. after installing;
* asking for a native backend by name, e.g. ``linear_scan(a, b, backend="native")``;
* ``SEQLAYERS_NATIVE=1``: ``backend="auto"`` may build on first use.

Otherwise ``"auto"`` uses the extension only if it is already built (in this process or in the
cache), so that a training run never stops to compile without consent. ``SEQLAYERS_NATIVE=0``
disables the extension entirely.

The sources are found at ``<package>/_csrc`` (a wheel carries them there) or ``<package>/../csrc``
(a source checkout or an editable install).

    python -m seqlayers._native build    # build (or load the cached build) and report
    python -m seqlayers._native status   # report without building
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path

import torch

from .errors import Unsupported

ENV_VAR = "SEQLAYERS_NATIVE"
# -fopenmp: at::parallel_for runs its work on torch's OpenMP threads only in code compiled with it
# (without, the pragma is ignored and every kernel runs on one thread)
OPENMP_FLAGS = ["-fopenmp"] if sys.platform.startswith("linux") else []
EXTRA_CFLAGS = ["-O3", "-ffp-contract=fast", *OPENMP_FLAGS]
EXTRA_CUDA_CFLAGS = ["-O3"]
PACKAGE_DIR = Path(__file__).resolve().parent
# a wheel carries the sources as seqlayers/_csrc (see setup.py); a checkout has them at ../csrc
SOURCE_DIR = PACKAGE_DIR / "_csrc" if (PACKAGE_DIR / "_csrc").is_dir() else PACKAGE_DIR.parent / "csrc"
ERROR_LINES = 15  # lines of compiler output quoted in the warning
INSTALL_HINT = "pip install ninja (or pip install -e '.[native]')"
DISABLED = f"disabled by {ENV_VAR}=0"


def setting() -> str:
    """``$SEQLAYERS_NATIVE``: ``"0"`` (disabled), ``"1"`` (auto may build) or ``""`` (default)."""
    return os.environ.get(ENV_VAR, "").strip()


def _compiler() -> str:
    return "cl" if os.name == "nt" else os.environ.get("CXX", "c++")


class NativeLibrary:
    """The extension built from the ``*.cpp`` files of one source folder; loaded at most once.

    Args:
        source_dir: folder of the C++ sources (default: the repository's ``csrc/``).

    Example:
        >>> lib = NativeLibrary()
        >>> ok, reason = lib.load(build=False)  # loads a cached build, never compiles
    """

    def __init__(self, source_dir: Path = SOURCE_DIR, with_cuda: bool | None = None) -> None:
        self.source_dir = Path(source_dir)
        self._with_cuda = with_cuda
        self._result: tuple[bool, str] | None = None
        self._lock = threading.Lock()

    @functools.cached_property
    def with_cuda(self) -> bool:
        """Whether the build includes ``cuda/*.cu``: a GPU is visible and the CUDA toolkit found."""
        if self._with_cuda is not None:
            return self._with_cuda
        from torch.utils.cpp_extension import CUDA_HOME

        return torch.cuda.is_available() and CUDA_HOME is not None

    def sources(self) -> list[Path]:
        """The C++ sources (and the CUDA ones when :attr:`with_cuda`), sorted; empty if none.

        Listed once per library object (the name hashes them once too), so the checks ``"auto"``
        makes on every call do not scan the folder again.
        """
        return list(self._source_list)

    @functools.cached_property
    def _source_list(self) -> tuple[Path, ...]:
        if not self.source_dir.is_dir():
            return ()
        cuda = sorted((self.source_dir / "cuda").glob("*.cu")) if self.with_cuda else []
        return tuple(sorted(self.source_dir.glob("*.cpp")) + cuda)

    @functools.cached_property
    def name(self) -> str:
        """Extension name: ``seqlayers_native_<hash of sources, versions and flags>``."""
        digest = hashlib.sha256()
        for path in self.sources():
            digest.update(path.relative_to(self.source_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
        key = (torch.__version__, sys.version_info[:2], getattr(sys, "abiflags", ""), EXTRA_CFLAGS,
               EXTRA_CUDA_CFLAGS if self.with_cuda else None)
        digest.update(repr(key).encode())
        return f"seqlayers_native_{digest.hexdigest()[:12]}"

    def build_directory(self) -> Path:
        """Where the build lives: ``$TORCH_EXTENSIONS_DIR`` or torch's default root, then the name."""
        from torch.utils.cpp_extension import get_default_build_root

        root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
        return Path(root) / self.name

    def library_path(self) -> Path:
        """The shared library a finished build leaves."""
        return self.build_directory() / (self.name + (".pyd" if os.name == "nt" else ".so"))

    def is_built(self) -> bool:
        """A finished build of the current sources is on disk (no build in progress)."""
        return self.library_path().exists() and not (self.build_directory() / "lock").exists()

    def status(self) -> tuple[bool, str]:
        """``(ok, reason)`` without building: loaded, built, or buildable (ninja and a compiler)."""
        if setting() == "0":
            return False, DISABLED
        if self._result is not None:
            return self._result
        ok, reason = self._has_sources()
        if not ok or self.is_built():
            return ok, reason
        return self._buildable()

    def load(self, build: bool = True) -> tuple[bool, str]:
        """Load the extension, building it first if needed and ``build``; ``(ok, reason)``.

        The outcome of a load or build attempt is kept for the process; a failed build warns
        once. Without ``build`` and with no finished build on disk, nothing is attempted or
        kept, and the reason says how to build. ``SEQLAYERS_NATIVE=0`` makes it report
        unavailable, even after a load.
        """
        if setting() == "0":
            return False, DISABLED
        with self._lock:
            if self._result is not None:
                return self._result
            ok, reason = self._has_sources()
            if not ok:
                return ok, reason
            if not build and not self.is_built():
                return False, (
                    "not built yet; build it with `python -m seqlayers._native build`, ask for the "
                    f"backend by name, or set {ENV_VAR}=1 to let 'auto' build it on first use"
                )
            self._result = self._build_and_load()
            return self._result

    def has_kernel(self, op: str, device_type: str) -> bool:
        """Whether the loaded extension registered ``seqlayers::<op>`` for ``device_type`` ("CPU", "CUDA")."""
        if self._result is None or not self._result[0]:
            return False
        return torch._C._dispatch_has_kernel_for_dispatch_key(f"seqlayers::{op}", device_type)

    def _has_sources(self) -> tuple[bool, str]:
        if self.sources():
            return True, ""
        return False, (
            f"native sources not installed (no *.cpp in {self.source_dir}); "
            "reinstall seqlayers from a source checkout or a wheel built by its setup.py"
        )

    def _buildable(self) -> tuple[bool, str]:
        from torch.utils.cpp_extension import is_ninja_available

        if not is_ninja_available():
            return False, f"ninja is not installed (needed to build the extension): {INSTALL_HINT}"
        if shutil.which(_compiler()) is None:
            return False, f"no C++ compiler {_compiler()!r} on PATH (set $CXX to one)"
        return True, ""

    def _build_and_load(self) -> tuple[bool, str]:
        if self.is_built():
            try:
                torch.ops.load_library(str(self.library_path()))
            except OSError as exc:
                return self._fail(f"loading {self.library_path()} failed ({exc}); delete "
                                  f"{self.build_directory()} to rebuild it")
            return True, ""
        ok, reason = self._buildable()
        if not ok:
            return self._fail(reason)
        from torch.utils.cpp_extension import load

        try:
            self.build_directory().mkdir(parents=True, exist_ok=True)
            load(
                self.name,
                [str(path) for path in self.sources()],
                extra_cflags=EXTRA_CFLAGS,
                extra_ldflags=OPENMP_FLAGS,
                extra_cuda_cflags=EXTRA_CUDA_CFLAGS,
                build_directory=str(self.build_directory()),
                is_python_module=False,
                verbose=False,
            )
        except Exception as exc:  # any build failure: report it, never raise
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            first_error = next((line for line in lines if "error:" in line), lines[-1])
            log = self.build_directory() / "build.log"
            try:
                log.write_text("\n".join(lines) + "\n")
            except OSError:
                log = None
            return self._fail(
                f"build failed: {first_error.strip()} (full compiler output: {log or 'not saved'}; fix "
                f"the error, or set {ENV_VAR}=0 to use the PyTorch backends)",
                "\n".join(lines[-ERROR_LINES:])
                + f"\nFix the error above (a C++20 compiler; ninja: {INSTALL_HINT}).",
            )
        return True, ""

    @staticmethod
    def _fail(reason: str, details: str = "") -> tuple[bool, str]:
        """Warn (the caller keeps the result, so once per process) and return ``(False, reason)``."""
        warnings.warn(
            f"seqlayers: native extension unavailable, using the PyTorch backends instead: "
            f"{reason}\n{details + chr(10) if details else ''}Set {ENV_VAR}=0 to stop trying.",
            stacklevel=2,
        )
        return False, reason


LIBRARY = NativeLibrary()


def check_cpu_call(device: torch.device, dtype: torch.dtype, dtypes: tuple[torch.dtype, ...], *,
                   auto: bool) -> None:
    """Raise :class:`~seqlayers.errors.Unsupported` unless a native CPU backend can take a call on
    ``device`` with ``dtype``. Never builds: asked for by name (``auto=False``) it needs the
    extension loaded, built or buildable (the first run builds it); for ``"auto"`` it needs it
    loaded or built, or buildable when ``SEQLAYERS_NATIVE=1``."""
    if device.type != "cpu":
        raise Unsupported(f"tensors are on {device}; the native backend runs on the CPU")
    if dtype not in dtypes:
        raise Unsupported(f"dtype {dtype} is not one of {[str(d) for d in dtypes]}")
    ok, reason = LIBRARY.status() if not auto or setting() == "1" else LIBRARY.load(build=False)
    if not ok:
        raise Unsupported(reason)


def prepare() -> None:
    """Load the extension, building it first if needed; raise :class:`~seqlayers.errors.Unsupported`
    with the reason if that fails (the native backends' ``prepare``)."""
    ok, reason = LIBRARY.load(build=True)
    if not ok:
        raise Unsupported(reason)


def main(argv: list[str] | None = None) -> int:
    """``python -m seqlayers._native {build,status}``: build or report; exit status 0 when usable."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m seqlayers._native", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=["build", "status"])
    parser.add_argument("--source-dir", type=Path, default=SOURCE_DIR, help="folder of the sources")
    args = parser.parse_args(argv)
    lib = LIBRARY if args.source_dir == SOURCE_DIR else NativeLibrary(args.source_dir)
    ok, reason = lib.load(build=True) if args.command == "build" else lib.status()
    state = "built" if ok and lib.is_built() else ("buildable" if ok else "unavailable")
    sys.stdout.write(f"native extension: {state}{': ' + reason if reason else ''}\n")
    sys.stdout.write(f"  sources: {lib.source_dir} ({'CPU and CUDA' if lib.with_cuda else 'CPU'})\n")
    sys.stdout.write(f"  build:   {lib.build_directory()}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
