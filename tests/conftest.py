"""Shared test set-up: the shared folder (fixtures, data) and the CI rule for missing material.

``BLENDFIX_SHARED`` points at the shared folder (default ``../shared`` from the project root).
Tests that need it skip with a reason when it is absent, except under ``CI=true``, where a
missing shared folder is a failure so CI never passes by skipping. The same holds for optional
modules (``@pytest.mark.requires_module("mediapipe", why)``); a missing CLI verb is always a
failure (:func:`require_verb`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BLENDFIX_SHARED", ROOT.parent / "shared")).resolve()


def need(path: Path, what: str) -> Path:
    """Return ``path`` if it exists; else skip (or fail under CI=true) naming what is missing."""
    if path.exists():
        return path
    msg = f"{what} not found at {path} (set BLENDFIX_SHARED to the shared folder)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def pytest_configure(config: pytest.Config) -> None:
    from blendfix.device import CPU_BF16_ENV

    # the whole session (module fixtures, servers and CLIs in subprocesses too) runs as on a CPU without
    # AMX-BF16, so results do not depend on the machine; see cpu_without_amx for the exceptions
    os.environ[CPU_BF16_ENV] = "0"
    config.addinivalue_line("markers", "requires_module(name, why): needs an optional module; skipped with the "
                                       "reason when it is missing, a failure under CI=true")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires_module"):
        name, why = mark.args
        if importlib.util.find_spec(name) is None:
            msg = f"module {name} is not installed: {why}"
            if os.environ.get("CI") == "true":
                pytest.fail(msg, pytrace=False)
            pytest.skip(msg)


def require_verb(verb: str) -> None:
    """Fail (never skip) when a ``blendfix`` verb is missing: a deleted verb must not turn its tests into skips."""
    from blendfix.cli import VERBS

    module = VERBS.get(verb)
    if module is None or importlib.util.find_spec(f"blendfix.cli.{module}") is None:
        pytest.fail(f"`blendfix {verb}` is missing (blendfix.cli.VERBS / its module); its tests cannot run.",
                    pytrace=False)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return need(SHARED, "shared folder")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    env = os.environ.get("BLENDFIX_TEST_DATA")
    return need(Path(env) if env else SHARED / "data", "shared test data")


@pytest.fixture(scope="session")
def detweights():
    """The shared fixtures' deterministic-weights module (``build_state_dict(fixture_dir)``)."""
    path = need(SHARED / "fixtures" / "detweights.py", "fixtures/detweights.py")
    spec = importlib.util.spec_from_file_location("detweights", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Fixture:
    """One architecture-equivalence fixture: its folder, inputs, outputs and weights."""

    def __init__(self, path: Path, detweights) -> None:
        self.path = path
        self._dw = detweights
        self.inputs = dict(np.load(path / "inputs.npz")) if (path / "inputs.npz").exists() else {}
        self.outputs = dict(np.load(path / "outputs.npz")) if (path / "outputs.npz").exists() else {}

    @property
    def spec(self) -> dict:
        """The fixture's ``spec.json``: every state_dict entry (key, shape, dtype, init) in order."""
        import json

        return json.loads((self.path / "spec.json").read_text())

    def parameter_count(self) -> int:
        """Trainable parameters of the published layout: every ``spec.json`` entry except BatchNorm buffers."""
        buffers = ("running_mean", "running_var", "num_batches_tracked")
        return sum(int(np.prod(e["shape"])) for e in self.spec["entries"] if not e["key"].endswith(buffers))

    def state_dict(self, spec: str = "spec.json"):
        if spec == "spec.json":
            return self._dw.build_state_dict(self.path)
        import json

        import torch
        spec_data = json.loads((self.path / spec).read_text())
        stored_path = self.path / "stored.npz"
        stored = np.load(stored_path) if stored_path.exists() else None
        return {e["key"]: torch.from_numpy(np.ascontiguousarray(
            self._dw.make_array(spec_data["seed"], e["key"], e["shape"], e["dtype"], e["init"], stored)))
            for e in spec_data["entries"]}


@pytest.fixture(scope="session")
def fixture(detweights):
    """``fixture("maresunet")`` -> :class:`Fixture` (skips/fails when absent)."""
    def get(name: str) -> Fixture:
        return Fixture(need(SHARED / "fixtures" / name, f"fixture {name}"), detweights)
    return get


@pytest.fixture(scope="session")
def faces_dir(data_dir) -> Path:
    return need(data_dir / "faces", "shared faces")


@pytest.fixture(autouse=True)
def cpu_without_amx(request):
    """Tests run as on a CPU without AMX-BF16 (precision auto = fp32, onnxruntime by default: set for the
    session in pytest_configure); tests marked ``@pytest.mark.amx`` see an AMX CPU instead (bf16
    itself runs on any CPU, emulated where AMX is missing)."""
    from blendfix.device import CPU_BF16_ENV

    patch = pytest.MonkeyPatch()  # its own: a test's monkeypatch.undo() must not lift it
    patch.setenv(CPU_BF16_ENV, "1" if request.node.get_closest_marker("amx") is not None else "0")
    yield
    patch.undo()
