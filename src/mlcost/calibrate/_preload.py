"""Imported once by the fork server of :func:`mlcost.calibrate.runs.measure_configs`: the heavy modules
every measured configuration needs, so each forked child starts in milliseconds."""

from __future__ import annotations

import torch  # noqa: F401
import transformers  # noqa: F401
from transformers import GPT2LMHeadModel, LlamaForCausalLM  # noqa: F401

import mlcost.measure.meters.memory
import mlcost.measure.torch_models  # noqa: F401
