"""Where the cleaning network runs: PyTorch, or onnxruntime on a CPU (the fp32 default there).

``--runtime auto`` picks onnxruntime on a CPU in float32 when it is installed and the network
comes from a file, else PyTorch: CUDA keeps PyTorch (fp16 by default), and so does a CPU with
AMX-BF16, where ``--precision auto`` is bf16 (PyTorch + oneDNN, channels_last: faster than
onnxruntime's fp32, which has no bf16 kernels). PyTorch on a CPU always runs channels_last. A network handed over as a
``torch.nn.Module`` stays in PyTorch unless ``runtime="onnxruntime"`` is asked for (then it is
exported in memory, not cached).

The ONNX graph of a weights file is exported once (:func:`blendfix.onnx_graph.export_graph`,
checked against PyTorch within :data:`TOLERANCE`) and cached in ``onnx/`` inside the weights folder
(``BLENDFIX_WEIGHTS``, default ``~/.cache/blendfix/weights``), named by the sha256 of the weights
file (and its ``cleaner.json``), the blendfix version and :data:`GRAPH_REVISION`; written
atomically, so concurrent runs never read half a file. An ``.onnx`` file given as weights (e.g.
``cleaner.onnx`` from ``blendfix export``) is loaded by onnxruntime directly; nothing is unpickled.

Every network here is a callable ``(B, 6, S, S)`` ``[F, I]`` in ``[-1, 1]`` -> ``(B, 3, S, S)`` raw
output read as RGB in ``[-1, 1]``, S a multiple of 32 (batch and S free: one session serves every
padded size; per-size sessions measured no faster).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .checkpoints import sha256_file
from .device import resolve_precision
from .errors import BlendfixError

RUNTIMES = ("auto", "torch", "onnxruntime")
#: Bump when the exported graph changes for the same weights (invalidates the cache).
GRAPH_REVISION = 1
#: Max abs difference (raw output units) accepted between a cached graph and PyTorch.
TOLERANCE = 1e-4
_AXES = {0: "batch", 2: "size", 3: "size"}


def onnxruntime_available() -> bool:
    """Whether onnxruntime (and onnx, to export) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def default_threads() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_runtime(runtime: str, device: torch.device, dtype: torch.dtype, from_file: bool = True) -> str:
    """``auto`` -> ``onnxruntime`` on a CPU in float32 with onnxruntime installed and weights from a
    file, else ``torch``. An explicit choice is checked: onnxruntime runs on the CPU in float32 only."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    fits = device.type == "cpu" and dtype == torch.float32
    if runtime == "auto":
        return "onnxruntime" if fits and from_file and onnxruntime_available() else "torch"
    if runtime == "onnxruntime":
        if not fits:
            raise ValueError(f"--runtime onnxruntime runs on the CPU in fp32 (got device {device}, {dtype}); "
                             "use --runtime torch for CUDA or reduced precision")
        if not onnxruntime_available():
            raise ValueError("--runtime onnxruntime: onnxruntime is not installed; pip install onnx onnxruntime "
                             "(the `export` extra) or use --runtime torch")
    return runtime


def graph_cache_dir() -> Path:
    """``onnx/`` inside the weights folder (``BLENDFIX_WEIGHTS``, default ``~/.cache/blendfix/weights``)."""
    from .registry import weights_dir

    return weights_dir() / "onnx"


def cache_name(files: list[Path]) -> str:
    """File name of the cached graph for the weights ``files``: their sha256 + version + revision."""
    h = hashlib.sha256()
    for f in files:
        h.update(sha256_file(f).encode())
    return f"cleaner-{h.hexdigest()[:32]}-blendfix{__version__}-r{GRAPH_REVISION}.onnx"


class OrtNetwork:
    """An onnxruntime session with the raw network's interface (see the module docstring).

    ``graph``: ONNX bytes or a file path. Graphs with inputs ``fused``/``original`` in ``[0, 1]``
    (``blendfix export``) are adapted; graphs with one 6-channel input are run as they are.
    """

    def __init__(self, graph: bytes | str | os.PathLike, threads: int | None = None, name: str = "graph") -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        # idle worker threads sleep instead of spinning, leaving the cores to image decoding/encoding
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.name = name
        self.threads = opts.intra_op_num_threads
        try:
            self.session = ort.InferenceSession(graph if isinstance(graph, bytes) else str(graph), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable graphs
            raise BlendfixError(f"{name}: not a readable ONNX graph ({str(e).splitlines()[0]}); "
                                "re-export it with `blendfix export --format onnx`") from e
        inputs = [(i.name, i.shape) for i in self.session.get_inputs()]
        names = [n for n, _ in inputs]
        if names == ["fused", "original"]:
            self.pair = True
        elif len(inputs) == 1 and len(inputs[0][1]) == 4 and inputs[0][1][1] == 6:
            self.pair = False
        else:
            raise ValueError(f"{name}: the graph takes {inputs}; a cleaner takes (fused, original) (B, 3, S, S) "
                             "or one (B, 6, S, S) input; export it with `blendfix export --format onnx`")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.num_parameters = int(meta["parameters"]) if "parameters" in meta else self._initializer_count(graph)

    @staticmethod
    def _initializer_count(graph: bytes | str | os.PathLike) -> int:
        import onnx

        model = onnx.load_from_string(graph) if isinstance(graph, bytes) else onnx.load(str(graph))
        return int(sum(np.prod(t.dims) for t in model.graph.initializer))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 6, S, S)`` in ``[-1, 1]`` -> ``(B, 3, S, S)`` float32 on the CPU."""
        a = x.detach().float().cpu().numpy()
        if self.pair:
            f, o = (a[:, :3] + 1) / 2, (a[:, 3:] + 1) / 2
            y = self.session.run(None, {"fused": f, "original": o})[0] * 2 - 1
        else:
            y = self.session.run(None, {self.session.get_inputs()[0].name: a})[0]
        return torch.from_numpy(np.ascontiguousarray(y))


def export_raw(net: torch.nn.Module, name: str = "network") -> bytes:
    """The raw network's checked ONNX graph (input ``x``, output ``y``); ``ValueError`` beyond TOLERANCE."""
    from .onnx_graph import export_graph, graph_difference

    net = net.float().cpu().eval()
    params = sum(p.numel() for p in net.parameters())
    gen = torch.Generator().manual_seed(0)
    graph = export_graph(net, (torch.rand(1, 6, 64, 64, generator=gen) * 2 - 1,), ["x"], ["y"],
                         {"x": _AXES, "y": _AXES},
                         metadata={"blendfix_interface": "raw", "parameters": params, "blendfix": __version__})
    check = torch.rand(2, 6, 96, 96, generator=gen) * 2 - 1  # another batch and side than the traced one
    diff = graph_difference(graph, net, {"x": check})
    if not diff <= TOLERANCE:
        raise ValueError(f"{name}: its ONNX graph differs from PyTorch by {diff:.3g} (> {TOLERANCE}); "
                         "use --runtime torch")
    return graph


def cached_graph(weights_file: Path, load: Any) -> bytes | Path:
    """The cached graph of ``weights_file`` (exported with ``load() -> nn.Module`` on a miss).

    Returns the cache path, or the graph bytes with a warning when the cache folder is not writable.
    """
    from .cleaner_weights import safetensors_config
    from .io import atomic_write

    files = [weights_file] + ([safetensors_config(weights_file)] if weights_file.suffix == ".safetensors" else [])
    path = graph_cache_dir() / cache_name(files)
    if path.is_file():
        return path
    graph = export_raw(load(), str(weights_file))
    try:
        atomic_write(path, lambda: graph)
    except OSError as e:
        warnings.warn(f"could not cache the ONNX graph of {weights_file} at {path} ({e}); it will be exported "
                      "again next time. Set BLENDFIX_WEIGHTS to a writable folder to keep it.", stacklevel=3)
        return graph
    return path


def _quietly(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` with its warnings dropped (already given once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def warn_slow_bf16(device: torch.device, dtype: torch.dtype) -> None:
    """Warn that bf16 asked for on a CPU without AMX-BF16 is emulated: measured with oneDNN capped below
    AMX on this project's CPU, the paper network at 1024² took 1.4x (AVX-512 BF16), 4x (AVX-512) and
    12x (AVX2) the fp32 time (BENCHMARKS.md)."""
    from .device import cpu_bf16_native

    if device.type == "cpu" and dtype == torch.bfloat16 and not cpu_bf16_native():
        warnings.warn("bf16 on this CPU (no AMX-BF16) is emulated and 1.4-12x slower than fp32; use --precision "
                      "auto or fp32", stacklevel=3)


def for_torch_inference(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` ready to run in PyTorch on ``device`` (eval mode): a MAResU-Net's inference copy
    (:meth:`~blendfix.nets.maresunet.MAResUNet.for_inference`: BatchNorm folded, ReLUs in place; the
    module passed in is left as it was), and on a CPU its weights in channels_last, oneDNN's fast
    layout (MAResU-Net at 1024²: 1.45x faster in fp32, and needed for AMX in bf16). Inputs follow
    (:func:`to_input_layout`)."""
    from .nets.maresunet import MAResUNet

    count = sum(p.numel() for p in net.parameters())
    net = net.for_inference() if isinstance(net, MAResUNet) else net.eval()
    net.num_parameters = count  # as trained (folding drops the BatchNorm parameters)
    net = net.to(device)
    return net.to(memory_format=torch.channels_last) if device.type == "cpu" else net


def to_input_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory layout :func:`for_torch_inference` gave the network (channels_last on a CPU)."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" and x.ndim == 4 else x


def build_network(weights: str, network: torch.nn.Module | None, device: torch.device, precision: str = "auto",
                  runtime: str = "auto", threads: int | None = None,
                  load_torch: Callable[[str, torch.device], torch.nn.Module] | None = None
                  ) -> tuple[Any, str, torch.dtype]:
    """The cleaner's network, the runtime it runs in (``"torch"`` or ``"onnxruntime"``) and its precision.

    ``network`` (a module) takes precedence over ``weights`` (registered name, run folder, export
    folder, checkpoint, ``.safetensors`` or ``.onnx`` file). ``precision`` ``auto``: fp16 on CUDA; on a
    CPU with AMX-BF16, bf16 in PyTorch for weights loaded here unless ``runtime`` is ``onnxruntime``
    (the shipped cleaner's scores move by under 0.01 dB, docs/evaluation.md), else fp32 (onnxruntime
    by default). A module passed in runs in fp32 on a CPU unless bf16 is asked for. ``threads``
    (default: all cores) sets onnxruntime's threads, and PyTorch's when given. ``load_torch(weights,
    device)`` loads the PyTorch network (default: :func:`blendfix.cleaning.load_network`'s rules,
    sha256 checked).
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if network is not None:
        dtype = resolve_precision(precision, device)
        chosen = resolve_runtime(runtime, device, dtype, from_file=False)
        if chosen == "onnxruntime":
            return OrtNetwork(export_raw(network), threads, name="network"), chosen, dtype
        warn_slow_bf16(device, dtype)
        if threads is not None:
            torch.set_num_threads(threads)
        return for_torch_inference(network, device), chosen, dtype
    from .checkpoints import verify_sha256
    from .cleaner_weights import export_meta, load_cleaner, resolve_cleaner_file
    from .registry import CHECKPOINTS, checkpoint_path

    def torch_network(dtype: torch.dtype) -> tuple[Any, str, torch.dtype]:
        warn_slow_bf16(device, dtype)
        if threads is not None:
            torch.set_num_threads(threads)
        net = load_torch(weights, device) if load_torch is not None else load_cleaner(source, device)
        return for_torch_inference(net, device), "torch", dtype

    bf16_ok = runtime != "onnxruntime"
    if runtime == "torch" and load_torch is not None:
        return torch_network(resolve_precision(precision, device, cpu_bf16=bf16_ok))
    path = Path(weights).expanduser()
    if path.exists():
        source = resolve_cleaner_file(path)
    else:  # a registered name: its sha256 is checked before use
        source = resolve_cleaner_file(checkpoint_path(weights))
        verify_sha256(source, CHECKPOINTS[weights].sha256 if weights in CHECKPOINTS else None)
    if source.suffix == ".onnx":
        if runtime == "torch":
            raise ValueError(f"{source}: an ONNX graph runs in onnxruntime only; drop --runtime torch, or give "
                             "the .safetensors export for PyTorch")
        dtype = resolve_precision(precision, device)
        resolve_runtime("onnxruntime", device, dtype)
        return OrtNetwork(source, threads, name=str(source)), "onnxruntime", dtype
    dtype = resolve_precision(precision, device, cpu_bf16=bf16_ok)
    chosen = resolve_runtime(runtime, device, dtype)
    if chosen == "onnxruntime":
        if source.suffix == ".safetensors":
            export_meta(source)  # its below_identity warning, which a cached graph would skip
        graph = cached_graph(source, lambda: _quietly(load_cleaner, source, "cpu"))
        return OrtNetwork(graph, threads, name=str(source)), chosen, dtype
    return torch_network(dtype)
