"""Ahead-of-time compiles of every Triton kernel variant the planners can choose, for real GPUs.

No GPU is needed: ``triton.compile`` lowers a kernel to PTX and a cubin for a
:class:`~triton.backends.compiler.GPUTarget`, and the ``ptxas -v`` log of that very compile
reports the registers and spill bytes per thread. The variants come from the backends' own planners
(:func:`variants`): the FFT sizes, factors, rows, ``num_warps`` and ``num_stages`` each
``plan(...)`` and launch function picks, crossed with the launch-time flags (``HAS_D``, ...),
the dot precisions and the tensor dtypes.

Used by ``tests/aot/test_aot.py`` (the gate) and ``benchmarks/speed/kernel_resources.py`` (the
table). A compile runs in a worker process without ``TRITON_INTERPRET`` (under the interpreter
``@triton.jit`` functions cannot be compiled): ``python -m tests.aot.kernels`` reads a JSON list
of ``[target, variant]`` on stdin and writes one JSON result per line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from unittest import mock

TARGETS = {80: 166912, 86: 101376, 90: 232448}
"""Compute capability -> opt-in shared memory per block in bytes (A100 163 KB, GA10x 99 KB,
H100 227 KB)."""

REGS_PER_SM, MAX_WARPS_PER_SM = 65536, 64
SMEM_PER_SM = {80: 167936, 86: 102400, 90: 233472}
"""Shared memory per SM in bytes (the per-block limit plus the 1 KB the driver reserves)."""

_PRECISION_DTYPES = {"ieee": "fp32", "tf32": "bf16", "tf32x3": "fp16"}
"""Each butterfly dot precision compiled once, with the dtype it is paired with here; a dtype
only changes the loads and stores at the edges, a precision the whole body."""

_PRECISION_RANK = {None: 0, "ieee": 0, "tf32": 1, "tf32x3": 2}


@dataclass(frozen=True)
class Variant:
    """One compile: ``kernel`` (a ``@triton.jit`` function of ``module``) with ``constexprs``.

    ``data``: the pointer arguments of the tensors in the call's dtype ``dtype`` (others are
    float32); ``none``: pointer arguments passed as None (specialized to constexpr None, as a
    launch does); ``ints``: integer arguments passed as int64 (the rest int32);
    ``smem_budget``: the shared memory in bytes the planner assumed for it (None: no
    assumption); ``size``: what orders the variants of one kernel, smallest to largest;
    ``maxnreg``: the register ceiling the launch passes (None: none).
    """

    backend: str
    module: str
    kernel: str
    constexprs: tuple[tuple[str, object], ...]
    num_warps: int
    num_stages: int | None
    dtype: str = "fp32"
    data: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    ints: tuple[str, ...] = ()
    smem_budget: int | None = None
    size: int = 0
    maxnreg: int | None = None

    @property
    def name(self) -> str:
        cx = ",".join(f"{k}={v}" for k, v in self.constexprs)
        regs = f",r{self.maxnreg}" if self.maxnreg else ""
        return f"{self.kernel}[{cx},{self.dtype},w{self.num_warps},s{self.num_stages}{regs}]"

    def order(self) -> tuple:
        """Sort key within a kernel: size, then warps, flags set and dot precision."""
        flags = sum(1 for _, v in self.constexprs if v is True)
        precision = dict(self.constexprs).get("PRECISION")
        return (self.size, self.num_warps, flags, _PRECISION_RANK[precision], self.dtype)


@dataclass(frozen=True)
class Resources:
    """What one compile needs per thread and per block (``error``: why it did not compile)."""

    regs: int = 0
    spill_stores: int = 0
    spill_loads: int = 0
    stack: int = 0
    shared: int = 0
    error: str = ""

    @property
    def spills(self) -> int:
        return max(self.spill_stores, self.spill_loads)


# ----------------------------------------------------------------------------------------------
# the variants, from the planners


def _no_check(*args, **kwargs) -> None:
    """Stands in for ``check_call``: the planners are asked about a GPU this machine lacks."""


def _plans(module, calls, smem: int):
    """``module.plan`` (uncached) of each call on a CUDA device with ``smem`` bytes per block (those
it refuses left out)."""
    from seqlayers.ops import triton_utils

    patches = [mock.patch.object(module, "check_call", _no_check),
               mock.patch.object(triton_utils, "target_programs", lambda device: 4 * 132)]
    if hasattr(module, "_smem_per_block"):
        patches.append(mock.patch.object(module, "_smem_per_block", lambda device: smem))
    plan = getattr(module.plan, "__wrapped__", module.plan)
    from seqlayers.errors import Unsupported

    plans = []
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        for call in calls:
            try:
                plans.append(plan(call, False))
            except Unsupported:  # beyond what the backend takes here: nothing to compile
                pass
    return plans


def _conv_calls(totals, batches=(2,)):
    """``ConvCall`` s of float32 tensors on a CUDA device, one per total length and batch."""
    import torch

    from seqlayers.ops.conv.call import ConvCall

    device = torch.device("cuda", 0)
    return [ConvCall(b, 64, t, 1, torch.float32, torch.float32, torch.float32, device)
            for t in totals for b in batches]


def _butterfly_variants(cap: int) -> list[Variant]:
    """Every butterfly kernel variant its planner can choose on compute capability ``cap``."""
    from seqlayers.ops.conv import butterfly as bf

    smem, mod = TARGETS[cap], "seqlayers.ops.conv.butterfly"
    totals = [1 << j for j in range(8, bf.max_size(smem).bit_length())]
    kb = bf._SMEM_KB
    out = []
    for precision in bf.PRECISIONS:
        with mock.patch.dict(os.environ, {bf.PRECISION_ENV: precision}):
            sizes = {(p.n_outer, p.n_inner, p.n1, p.n2) for p in _plans(bf, _conv_calls(totals), smem)}
        dt = _PRECISION_DTYPES[precision]
        for no, ni, n1, n2 in sorted(sizes):
            w = bf._num_warps(ni)
            inner = (("N1", n1), ("N2", n2))
            if no == 1:
                for has_d in (False, True):
                    for corr in (False, True):
                        out.append(Variant("butterfly", mod, "_long_conv_fwd_kernel",
                                           (*inner, ("HAS_D", has_d), ("CORRELATE", corr), ("PRECISION", precision)),
                                           w, 1, dt, ("x_ptr", "k_ptr", "d_ptr", "y_ptr"),
                                           () if has_d else ("d_ptr",), (), 1024 * kb["fwd"][ni], ni))
                    out.append(Variant("butterfly", mod, "_long_conv_dk_kernel",
                                       (*inner, ("HAS_D", has_d), ("PRECISION", precision)),
                                       w, 1, dt, ("u_ptr", "dy_ptr"), () if has_d else ("dd_part_ptr",), (),
                                       1024 * kb["dk"][ni], ni))
                continue
            cx = (("NO", no), *inner)
            for flag in (False, True):
                out.append(Variant("butterfly", mod, "_inner_conv_kernel",
                                   (*cx, ("CORRELATE", flag), ("PRECISION", precision)), w, 1,
                                   smem_budget=1024 * kb["inner_conv"][ni], size=no * ni))
                out.append(Variant("butterfly", mod, "_inner_grad_kernel",
                                   (*cx, ("HAS_DU", flag), ("PRECISION", precision)), w, 1,
                                   none=() if flag else ("sk_ptr",),
                                   smem_budget=1024 * kb["inner_grad"][ni], size=no * ni))
            cols = bf._OUTER_TILE[precision] // no
            ox = (("NO", no), ("NI", ni), ("T", cols))
            wo = bf._OUTER_WARPS
            budget = 1024 * bf._SMEM_KB_OUTER[no]
            for flag in (False, True):
                out.append(Variant("butterfly", mod, "_outer_dft_kernel",
                                   (*ox, ("HAS_DOT", flag), ("PRECISION", precision)), wo, 1, dt,
                                   ("x_ptr", "dot_ptr"), () if flag else ("dot_ptr", "dd_part_ptr"),
                                   smem_budget=budget, size=no * ni))
                out.append(Variant("butterfly", mod, "_outer_idft_kernel",
                                   (*ox, ("HAS_D", flag), ("PRECISION", precision)), wo, 1, dt,
                                   ("out_ptr", "skip_ptr", "d_ptr"), () if flag else ("skip_ptr", "d_ptr"),
                                   smem_budget=budget, size=no * ni))
    return out


def _fft_variants(cap: int) -> list[Variant]:
    """Every fft kernel variant its planner can choose (no shared-memory assumption to check)."""
    from seqlayers.ops.conv import fft

    mod = "seqlayers.ops.conv.fft"
    totals = [1 << j for j in range(4, fft._MAX_SIZE.bit_length())]
    batches = [1 << j for j in range(0, 12)]
    plans = set(_plans(fft, _conv_calls(totals, batches), TARGETS[cap]))
    out = []
    for dt in ("fp32", "bf16"):
        for p in sorted({dataclasses.replace(p, per_program=0, groups=0) for p in plans},
                        key=lambda p: (p.n, p.rows)):
            if p.n1 == 1:
                log2n = p.n.bit_length() - 1
                w = fft._num_warps(p.rows * p.n)
                for has_d in (False, True):
                    cx = (("N", p.n), ("LOG2N", log2n), ("ROWS", p.rows), ("HAS_D", has_d))
                    out.append(Variant("fft", mod, "_long_conv_fwd_kernel", cx, w, None, dt,
                                       ("u_ptr", "k_ptr", "d_ptr", "y_ptr"), () if has_d else ("d_ptr",),
                                       size=p.n, maxnreg=fft._MAX_REGISTERS))
                    out.append(Variant("fft", mod, "_long_conv_bwd_kernel", cx, w, None, dt,
                                       ("u_ptr", "k_ptr", "d_ptr", "dy_ptr", "du_ptr"),
                                       () if has_d else ("d_ptr",), size=p.n, maxnreg=fft._MAX_REGISTERS))
                continue
            logs = (("LOG2N1", p.n1.bit_length() - 1),)
            col = (("N1", p.n1), ("N2", p.n2), *logs, ("T", p.cols))
            row = (("N1", p.n1), ("N2", p.n2), *logs, ("LOG2N2", p.n2.bit_length() - 1), ("T", p.rows))
            wc, wr = fft._num_warps(p.cols * p.n1), fft._num_warps(p.rows * p.n2)
            out.append(Variant("fft", mod, "_long_conv_col_fft_kernel", col, wc, None, dt, ("x_ptr",),
                               size=p.n, maxnreg=fft._MAX_REGISTERS))
            out.append(Variant("fft", mod, "_long_conv_row_fwd_kernel", row, wr, None, dt, size=p.n,
                               maxnreg=fft._MAX_REGISTERS))
            out.append(Variant("fft", mod, "_long_conv_row_bwd_kernel", row, wr, None, dt, size=p.n,
                               maxnreg=fft._MAX_REGISTERS))
            for has_d, has_dot in ((False, False), (True, False), (True, True)):
                none = () if has_d else ("skip_ptr", "d_ptr")
                none += () if has_dot else ("dot_ptr", "dd_part_ptr")
                out.append(Variant("fft", mod, "_long_conv_col_ifft_kernel",
                                   (*col, ("HAS_D", has_d), ("HAS_DOT", has_dot)), wc, None, dt,
                                   ("out_ptr", "skip_ptr", "d_ptr", "dot_ptr"), none, size=p.n,
                                   maxnreg=fft._MAX_REGISTERS))
    return out


def _scan_variants(cap: int) -> list[Variant]:
    """Every linear_scan kernel variant: ``BLOCK_P`` from the planner, each dtype and ``h0``."""
    import torch

    from seqlayers.ops.scan import triton as scan
    from seqlayers.ops.scan.call import ScanCall

    device = torch.device("cuda", 0)
    out = []
    for dtype in scan.SUPPORTED_DTYPES:
        calls = [ScanCall(2, 128, 1 << j, dtype, True, device) for j in range(0, 8)]
        blocks = sorted({plan[1] for plan in _plans(scan, calls, TARGETS[cap])})
        dt = "fp64" if dtype in (torch.float64, torch.complex128) else "fp32"
        for block_p in blocks:
            for has_h0 in (False, True):
                cx = (("HAS_H0", has_h0), ("IS_COMPLEX", dtype.is_complex), ("BLOCK_L", scan.BLOCK_L),
                      ("BLOCK_P", block_p))
                for name in ("_linear_scan_fwd_kernel", "_linear_scan_bwd_kernel"):
                    out.append(Variant("scan", "seqlayers.ops.scan.triton", name, cx, 4, None, dt,
                                       ("A", "X", "H0", "H", "G", "DA", "DX", "DH0"), size=block_p))
    return out


def variants(cap: int, backends=("butterfly", "fft", "scan")) -> list[Variant]:
    """Every kernel variant of ``backends`` the planners can choose on compute capability ``cap``."""
    make = {"butterfly": _butterfly_variants, "fft": _fft_variants, "scan": _scan_variants}
    return [v for b in backends for v in make[b](cap)]


def extremes(vs: list[Variant]) -> list[Variant]:
    """The smallest and the largest variant (:meth:`Variant.order`) of every kernel function."""
    by_kernel: dict[tuple[str, str], list[Variant]] = {}
    for v in vs:
        by_kernel.setdefault((v.backend, v.kernel), []).append(v)
    out = []
    for group in by_kernel.values():
        group = sorted(group, key=Variant.order)
        out += [group[0]] if len(group) == 1 else [group[0], group[-1]]
    return out


# ----------------------------------------------------------------------------------------------
# compiling (in a process without TRITON_INTERPRET)


def ptxas_path(cap: int) -> str | None:
    """The ``ptxas`` Triton compiles ``cap`` with (its bundled copy or ``$TRITON_PTXAS_PATH``),
    or None if it has none: then nothing can be compiled ahead of time."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas

        try:
            tool = get_ptxas(cap)
        except TypeError:  # older Triton: no arch argument
            tool = get_ptxas()
        path = getattr(tool, "path", tool)
    except Exception:  # noqa: BLE001 - no NVIDIA backend or no ptxas
        return None
    return path if path and os.path.exists(path) else None


_PTXAS_LINE = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS = re.compile(r"Used (\d+) registers")


def parse_ptxas(log: str) -> tuple[int, int, int, int]:
    """``(registers, spill store bytes, spill load bytes, stack bytes)`` of the one kernel that
    ``ptxas -v`` ``log`` describes (the maxima if it names several functions)."""
    frames = [tuple(map(int, m)) for m in _PTXAS_LINE.findall(log)]
    regs = [int(m) for m in _REGS.findall(log)]
    if not frames or not regs:
        raise ValueError(f"no resource usage in the ptxas output:\n{log}")
    return max(regs), max(f[1] for f in frames), max(f[2] for f in frames), max(f[0] for f in frames)


def _signature(kernel, v: Variant):
    """ASTSource arguments: signature (name -> type), constexprs (name -> value), attrs.

    Pointers are 16-byte aligned (as every fresh torch tensor), so they carry the divisibility
    hint a launch gives them; integers get none (any shape)."""
    cx = dict(v.constexprs)
    cx.update({name: None for name in v.none})
    signature, attrs = {}, {}
    for i, name in enumerate(kernel.arg_names):
        if name in cx:
            signature[name] = "constexpr"
        elif name.endswith("_ptr") or name in v.data:
            signature[name] = "*" + (v.dtype if name in v.data else "fp32")
            attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            signature[name] = "i64" if name in v.ints else "i32"
    return signature, cx, attrs


def compile_variant(cap: int, v: Variant) -> Resources:
    """Compile ``v`` for ``cap`` and read its resources from the compile's own ``ptxas -v`` log.

    The log is the one Triton's ``make_cubin`` writes for the cubin it builds (``ptxas`` with the
    flags the installed Triton passes: Triton 3.9 adds ``--regAllocOptLevel=2``, which changes
    the spills of some kernels), so the gate reads the resources of the code a GPU would run. The
    compile bypasses Triton's cache, which would skip ``ptxas`` and its log."""
    import importlib

    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel = getattr(importlib.import_module(v.module), v.kernel)
    signature, cx, attrs = _signature(kernel, v)
    options = {"num_warps": v.num_warps}
    if v.num_stages is not None:
        options["num_stages"] = v.num_stages
    if v.maxnreg is not None:
        options["maxnreg"] = v.maxnreg
    knobs.compilation.always_compile = True
    knobs.nvidia.dump_ptxas_log = True
    log = io.StringIO()
    try:
        src = ASTSource(fn=kernel, signature=signature, constexprs=cx, attrs=attrs)
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(src, target=GPUTarget("cuda", cap, 32), options=options)
    except Exception as exc:  # noqa: BLE001 - reported per variant, the gate fails on it
        return Resources(error=f"{type(exc).__name__}: {str(exc)[-2000:]}")
    try:
        regs, stores, loads, stack = parse_ptxas(log.getvalue())
    except ValueError as exc:
        return Resources(error=f"Triton printed no ptxas log: {exc}")
    return Resources(regs, stores, loads, stack, int(compiled.metadata.shared))


def _compile_one(job: tuple[int, dict]) -> dict:
    cap, fields = job
    v = _variant_from_json(fields)
    return dataclasses.asdict(compile_variant(cap, v))


def _variant_from_json(fields: dict) -> Variant:
    fields = dict(fields)
    fields["constexprs"] = tuple(tuple(kv) for kv in fields["constexprs"])
    for key in ("data", "none", "ints"):
        fields[key] = tuple(fields[key])
    return Variant(**fields)


def jobs() -> int:
    """Compile processes: ``$SEQLAYERS_AOT_JOBS``, else up to 2 (the CPUs CI has)."""
    return int(os.environ.get("SEQLAYERS_AOT_JOBS", min(2, os.cpu_count() or 1)))


def compile_all(pairs: list[tuple[int, Variant]], timeout: float = 3600) -> list[Resources]:
    """Compile each ``(cap, variant)`` in worker processes without ``TRITON_INTERPRET``."""
    if not pairs:
        return []
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # the default launches get, without the warning
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    payload = json.dumps([[cap, dataclasses.asdict(v)] for cap, v in pairs])
    done = subprocess.run([sys.executable, "-m", "tests.aot.kernels"], input=payload, env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"the compile worker failed:\n{done.stderr[-4000:]}")
    return [Resources(**json.loads(line)) for line in done.stdout.splitlines() if line.strip()]


def occupancy(cap: int, num_warps: int, r: Resources) -> int:
    """Resident warps per SM that ``r`` allows: registers (allocated per warp in units of 256,
    65536 per SM), shared memory per SM and the 64-warp cap, in whole blocks of ``num_warps``."""
    regs_per_warp = 256 * math.ceil(max(r.regs, 1) * 32 / 256)
    blocks = REGS_PER_SM // (regs_per_warp * num_warps)
    if r.shared:
        blocks = min(blocks, SMEM_PER_SM[cap] // (r.shared + 1024))
    blocks = min(blocks, MAX_WARPS_PER_SM // num_warps)
    return blocks * num_warps


def _main() -> None:
    """Worker: JSON ``[[cap, variant fields], ...]`` on stdin, one JSON result per line out."""
    todo = [(cap, fields) for cap, fields in json.load(sys.stdin)]
    with ProcessPoolExecutor(max_workers=max(1, min(jobs(), len(todo)))) as pool:
        for result in pool.map(_compile_one, todo):
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _main()
