"""Money over a model's life: scaling laws for choosing a size, and total cost of ownership (training plus
serving over a horizon, break-even traffic, NPV/ROI). Every cost comes from :mod:`mlcost.estimate`."""

from mlcost.finance.scaling import (
    BESIROGLU,
    HOFFMANN,
    SCALING_LAWS,
    ScalingLaw,
    get_scaling_law,
    model_for_params,
)
from mlcost.finance.tco import (
    BreakEven,
    Candidate,
    CandidateCost,
    ServeSetup,
    TcoResult,
    Traffic,
    TrainSetup,
    break_even_points,
    target_loss_candidates,
    tco,
)

__all__ = [
    "BESIROGLU",
    "HOFFMANN",
    "SCALING_LAWS",
    "BreakEven",
    "Candidate",
    "CandidateCost",
    "ScalingLaw",
    "ServeSetup",
    "TcoResult",
    "Traffic",
    "TrainSetup",
    "break_even_points",
    "get_scaling_law",
    "model_for_params",
    "target_loss_candidates",
    "tco",
]
