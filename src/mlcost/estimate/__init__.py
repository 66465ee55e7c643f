"""Predict the cost of training and serving jobs. Pure functions over specs and catalogs; no torch.

The scalar entry points (:func:`estimate_train`, :func:`estimate_serve`) and the vectorised kernels
(:func:`train_kernel`, :func:`serve_kernel`) share every formula.
"""

from mlcost.estimate.flops import forward_flops, six_nd_flops, train_step_flops
from mlcost.estimate.kernel import TrainInputs, train_kernel
from mlcost.estimate.params import ParamCounts, count_params
from mlcost.estimate.result import Assumption, ErrorBand, MemoryBreakdown, ServeEstimate, TrainEstimate
from mlcost.estimate.serve import estimate_serve, estimate_serve_sim, serve_kernel
from mlcost.estimate.serve_sim import EngineConfig, SimResult, simulate
from mlcost.estimate.serve_workload import Workload
from mlcost.estimate.train import build_inputs, estimate_train, validate_layout

__all__ = [
    "Assumption",
    "EngineConfig",
    "ErrorBand",
    "MemoryBreakdown",
    "ParamCounts",
    "ServeEstimate",
    "SimResult",
    "TrainEstimate",
    "TrainInputs",
    "Workload",
    "build_inputs",
    "count_params",
    "estimate_serve",
    "estimate_serve_sim",
    "estimate_train",
    "forward_flops",
    "serve_kernel",
    "simulate",
    "six_nd_flops",
    "train_kernel",
    "train_step_flops",
    "validate_layout",
]
