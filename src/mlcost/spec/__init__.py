"""What a job is: the model, the training or serving job, and the cluster it runs on.

All specs are frozen, keyword-only dataclasses with ``to_dict()``/``from_dict()``; they validate on
construction and raise :class:`mlcost.errors.SpecError` naming the field and the allowed values.
"""

from mlcost.spec.cluster import Cluster
from mlcost.spec.job import Optimizer, Precision, Recompute, ServeJob, TrainJob
from mlcost.spec.model import ModelSpec

__all__ = ["Cluster", "ModelSpec", "Optimizer", "Precision", "Recompute", "ServeJob", "TrainJob"]
