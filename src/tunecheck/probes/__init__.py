"""Capability-regression probes: built-in generated suites, benchmark loaders, lm-eval bridge.

The runner calls :func:`build_probe` (a :class:`~tunecheck.spec.ProbeSpec` → :class:`Probe`)
and :func:`run_probe` (a probe on one model → :class:`ProbeOutcome`, kept per example for
paired statistics). With no probes declared, :func:`default_probes` gives the generated set
``arithmetic``, ``reasoning`` and ``instructions``. A new generated probe is one function
decorated with ``@probe("name", scoring=..., metric=...)``.
"""

from __future__ import annotations

from tunecheck.probes import generated  # noqa: F401 - registers the built-in probes
from tunecheck.probes.base import BuiltinProbe, Probe, ProbeOutcome, probe, probes
from tunecheck.probes.lm_eval_bridge import PairedProbe, import_lm_eval, run_lm_eval_tasks
from tunecheck.probes.loaders import load_benchmark, read_benchmark, sample_examples
from tunecheck.probes.suite import build_probe, default_probes, run_probe

__all__ = [
    "BuiltinProbe",
    "PairedProbe",
    "Probe",
    "ProbeOutcome",
    "build_probe",
    "default_probes",
    "import_lm_eval",
    "load_benchmark",
    "probe",
    "probes",
    "read_benchmark",
    "run_lm_eval_tasks",
    "run_probe",
    "sample_examples",
]
