"""Export a training plan to files that run it.

For one plan (a :class:`~mlcost.plan.types.TrainPlan` dict plus the model and token count):

* ``sky.yaml`` — a SkyPilot task: ``resources`` (accelerators ``NAME:per-node``, cloud, region, use_spot),
  ``num_nodes`` and the ``run`` command (SkyPilot's accelerator names come from ``data/skypilot_map.csv``,
  the same table the price import maps with);
* ``launch.sh`` — the ``torchrun`` launch line (Megatron-LM ``pretrain_gpt.py`` with ``megatron_args.txt`` when
  TP or PP > 1; ``accelerate launch`` with ``accelerate_fsdp.yaml`` otherwise);
* ``accelerate_fsdp.yaml`` — an accelerate config (FSDP FULL_SHARD for ZeRO-3, SHARD_GRAD_OP for ZeRO-2,
  DeepSpeed ZeRO-1 through ``ds_config.json``, plain multi-GPU DDP for ZeRO-0), mixed precision and activation
  checkpointing as planned;
* ``ds_config.json`` — a DeepSpeed config: ZeRO stage, micro-batch, gradient accumulation, bf16/fp16,
  activation checkpointing;
* ``megatron_args.txt`` — Megatron-LM arguments: TP, PP, virtual stages, sequence parallel, recomputation,
  batch sizes, precision and the model shape;
* ``plan.json`` — the plan itself, readable by ``mlcost export``.

Every file names the plan (rank, device, count, layout, place) and the catalog snapshot (price snapshot date
and the commit of the plan's price row); YAML and text files in comments, JSON files under a
``"_mlcost"`` key (DeepSpeed ignores keys it does not know).
YAML is written by hand (plain mappings, JSON-quoted strings): the core imports no YAML library.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcost.errors import MlcostError
from mlcost.plan.types import TrainPlan

MAP_FILE = Path(__file__).resolve().parents[1] / "catalog" / "data" / "skypilot_map.csv"
#: Keys a plan object must have to be exported.
REQUIRED_KEYS = TrainPlan.keys()
_TPU_NAMES = {
    "tpu-v4": ("tpu-v4-{n}", 2),
    "tpu-v5p": ("tpu-v5p-{n}", 2),
    "tpu-v5e": ("tpu-v5litepod-{n}", 1),
    "tpu-v6e": ("tpu-v6e-{n}", 1),
}


class PlanFileError(MlcostError):
    """The file is not a plan mlcost can export."""


def load_plan_file(path: Path | str, rank: int = 1) -> dict[str, Any]:
    """A plan to export from ``mlcost plan train --json`` output (plan ``rank``) or a ``plan.json`` written by
    an export: ``{"model", "tokens", "plan", "snapshot"}``. Anything else raises :class:`PlanFileError`."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanFileError(
            f"plan file not found: {p}", hint="pass the JSON that 'mlcost plan train --json' printed"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"cannot read plan file {p}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PlanFileError(
            f"{p} is not JSON ({exc.msg} at line {exc.lineno})",
            hint="save the output of 'mlcost plan train ... --json' and pass that file",
        ) from None
    if not isinstance(doc, dict):
        raise PlanFileError(
            f"{p} is not a plan (a JSON {type(doc).__name__})", hint="pass 'mlcost plan train --json' output"
        )
    if doc.get("kind") == "plan-train":
        plans = doc.get("plans") or []
        if not plans:
            raise PlanFileError(
                f"{p} has no plans (status {doc.get('status')!r})",
                hint="relax the constraints and plan again",
            )
        if not 1 <= rank <= len(plans):
            raise PlanFileError(f"--rank {rank} is out of range: {p} holds plans 1 to {len(plans)}")
        out = {
            "model": doc.get("model"),
            "tokens": doc.get("tokens"),
            "plan": plans[rank - 1],
            "snapshot": {
                "date": doc.get("price_snapshot_date"),
                "commits": doc.get("price_snapshot_commits") or {},
            },
        }
    elif doc.get("kind") == "mlcost-plan":
        out = {k: doc.get(k) for k in ("model", "tokens", "plan", "snapshot")}
    else:
        raise PlanFileError(
            f"{p} is not a plan: its 'kind' is {doc.get('kind')!r}, not 'plan-train' or 'mlcost-plan'",
            hint="pass the JSON that 'mlcost plan train --json' printed, or a plan.json from --export",
        )
    plan = out["plan"]
    missing = [k for k in REQUIRED_KEYS if not isinstance(plan, dict) or k not in plan]
    if missing or not isinstance(out["model"], str) or not isinstance(out["tokens"], (int, float)):
        what = f"missing plan keys {', '.join(missing[:5])}" if missing else "no model name or token count"
        raise PlanFileError(
            f"{p} is not a complete plan: {what}", hint="re-run 'mlcost plan train --json' with this mlcost"
        )
    return out


# ---- names and provenance -----------------------------------------------------------------------------


def skypilot_accelerator(device: str, provider: str | None, count: int) -> str | None:
    """SkyPilot's accelerator name for an mlcost device at a provider (``H100``, ``A100-80GB``,
    ``tpu-v5litepod-8``), from the import's mapping table; None when the table has no rule for it."""
    if device in _TPU_NAMES:
        pattern, cores_per_chip = _TPU_NAMES[device]
        return pattern.format(n=count * cores_per_chip)
    with MAP_FILE.open(newline="", encoding="utf-8") as fh:
        rules = [r for r in csv.DictReader(fh) if r["device"] == device and "*" not in r["accelerator"]]
    for r in rules:
        if provider is not None and fnmatch.fnmatchcase(provider, r["provider"]):
            return r["accelerator"]
    return rules[0]["accelerator"] if rules else None


def _snapshot_commit(plan: Mapping[str, Any], snapshot: Mapping[str, Any]) -> str:
    from mlcost.catalog.skypilot import snapshot_commit

    sha = snapshot_commit(plan.get("price_source") or "")
    return sha or "none (price row not from an imported SkyPilot catalog)"


def provenance_lines(
    model: str, tokens: float, plan: Mapping[str, Any], snapshot: Mapping[str, Any]
) -> list[str]:
    """What the files say about where they came from."""
    vs = plan.get("virtual_stages", 1)
    return [
        f"mlcost plan #{plan.get('rank')} for {model}, {tokens:.4g} tokens: {plan['count']} x {plan['device']}, "
        f"TP{plan['tp']} PP{plan['pp']}"
        + (f" (v={vs})" if vs > 1 else "")
        + f" DP{plan['dp']} ZeRO-{plan['zero']} "
        f"micro-batch {plan['micro_batch']} recompute {plan['recompute']} {plan['precision']}",
        f"place: {plan['provider']} {plan['region']} {plan['pricing']} (instance {plan.get('instance')}); predicted "
        f"{plan['total_time_s'] / 3600:.1f} h, cost {_usd(plan.get('cost_usd'))}",
        f"catalog snapshot: prices dated {snapshot.get('date')}; price row commit {_snapshot_commit(plan, snapshot)}",
        f"reproduce: {plan.get('command')}",
    ]


def _usd(v: Any) -> str:
    return "unpriced" if v is None else f"${v:,.0f}"


# ---- file contents -----------------------------------------------------------------------------------


def _q(value: Any) -> str:
    """A YAML scalar: JSON-quoted strings (valid YAML), plain numbers and booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(str(value))


def _yaml(mapping: Mapping[str, Any], indent: int = 0) -> list[str]:
    out = []
    pad = " " * indent
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out.append(f"{pad}{key}:")
            out.extend(_yaml(value, indent + 2))
        elif isinstance(value, str) and "\n" in value:
            out.append(f"{pad}{key}: |")
            out.extend(f"{pad}  {line}" for line in value.rstrip("\n").split("\n"))
        else:
            out.append(f"{pad}{key}: {_q(value)}")
    return out


def _nodes(plan: Mapping[str, Any], devices_per_node: int) -> tuple[int, int]:
    """(nodes, devices per node) of the plan's topology (the node size the estimate assumed)."""
    count = int(plan["count"])
    per = min(count, devices_per_node)
    return math.ceil(count / per), per


def _megatron_args(model: Any, plan: Mapping[str, Any], tokens: float) -> list[str]:
    vs = int(plan.get("virtual_stages", 1))
    args = [
        f"--tensor-model-parallel-size {plan['tp']}",
        f"--pipeline-model-parallel-size {plan['pp']}",
    ]
    if vs > 1:
        args.append(f"--num-layers-per-virtual-pipeline-stage {model.n_layers // (plan['pp'] * vs)}")
    if plan["sequence_parallel"]:
        args.append("--sequence-parallel")
    if plan["recompute"] == "selective":
        args.append("--recompute-activations")
    elif plan["recompute"] == "full":
        args += ["--recompute-granularity full", "--recompute-method uniform", "--recompute-num-layers 1"]
    if plan["zero"] >= 1:
        args.append("--use-distributed-optimizer")
    args += [
        f"--micro-batch-size {plan['micro_batch']}",
        f"--global-batch-size {plan['global_batch']}",
        f"--seq-length {plan['seq_len']}",
        f"--max-position-embeddings {max(model.max_seq_len, plan['seq_len'])}",
        f"--train-samples {math.ceil(tokens / plan['seq_len'])}",
        f"--num-layers {model.n_layers}",
        f"--hidden-size {model.d_model}",
        f"--ffn-hidden-size {model.d_ff}",
        f"--num-attention-heads {model.n_heads}",
    ]
    if model.kv_heads != model.n_heads:
        args += ["--group-query-attention", f"--num-query-groups {model.kv_heads}"]
    if model.mlp == "swiglu":
        args.append("--swiglu")
    if model.norm == "rmsnorm":
        args.append("--normalization RMSNorm")
    if model.position == "rope":
        args.append("--position-embedding-type rope")
    if not model.tied_embeddings:
        args.append("--untie-embeddings-and-output-weights")
    prec = plan["precision"]
    if prec in ("bf16", "fp8"):
        args.append("--bf16")
    elif prec == "fp16":
        args.append("--fp16")
    if prec == "fp8":
        args += ["--fp8-format hybrid", "--transformer-impl transformer_engine"]
    if plan["flash_attention"]:
        args.append("--use-flash-attn")
    if plan["overlap_grad_reduce"] and plan["dp"] > 1:
        args.append("--overlap-grad-reduce")
    return args


def _deepspeed(plan: Mapping[str, Any], prov: list[str]) -> dict[str, Any]:
    ga = round(plan["grad_accum_steps"])
    prec = plan["precision"]
    cfg: dict[str, Any] = {
        "_mlcost": prov,
        "train_batch_size": int(plan["micro_batch"]) * ga * int(plan["dp"]),
        "train_micro_batch_size_per_gpu": int(plan["micro_batch"]),
        "gradient_accumulation_steps": ga,
        "zero_optimization": {
            "stage": int(plan["zero"]),
            "overlap_comm": bool(plan["overlap_grad_reduce"]),
            "contiguous_gradients": True,
        },
        "bf16": {"enabled": prec in ("bf16", "fp8")},
        "fp16": {"enabled": prec == "fp16"},
        "activation_checkpointing": {
            "partition_activations": plan["recompute"] != "none" and plan["tp"] > 1,
            "contiguous_memory_optimization": False,
            "cpu_checkpointing": False,
        },
        "steps_per_print": 100,
        "wall_clock_breakdown": False,
    }
    return cfg


def _accelerate(plan: Mapping[str, Any], nodes: int, per_node: int) -> dict[str, Any]:
    prec = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "fp32": "no", "tf32": "no"}[plan["precision"]]
    base: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "machine_rank": 0,
        "main_process_ip": "127.0.0.1",
        "main_process_port": 29500,
        "main_training_function": "main",
        "mixed_precision": prec,
        "num_machines": nodes,
        "num_processes": nodes * per_node,
        "rdzv_backend": "static",
        "same_network": True,
        "use_cpu": False,
    }
    zero = int(plan["zero"])
    if zero >= 2:
        base["distributed_type"] = "FSDP"
        base["fsdp_config"] = {
            "fsdp_activation_checkpointing": plan["recompute"] != "none",
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_backward_prefetch": "BACKWARD_PRE",
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_forward_prefetch": False,
            "fsdp_offload_params": False,
            "fsdp_sharding_strategy": "FULL_SHARD" if zero == 3 else "SHARD_GRAD_OP",
            "fsdp_state_dict_type": "SHARDED_STATE_DICT",
            "fsdp_sync_module_states": True,
            "fsdp_use_orig_params": True,
        }
    elif zero == 1:
        base["distributed_type"] = "DEEPSPEED"
        base["deepspeed_config"] = {"deepspeed_config_file": "ds_config.json", "zero3_init_flag": False}
        base.pop("mixed_precision")  # DeepSpeed takes precision from its own file
    else:
        base["distributed_type"] = "MULTI_GPU" if nodes * per_node > 1 else "NO"
    return base


def build_exports(
    model: Any, tokens: float, plan: Mapping[str, Any], snapshot: Mapping[str, Any], devices_per_node: int
) -> dict[str, str]:
    """File name → text of every export of one plan (module docstring). ``devices_per_node`` is the node
    size the estimate assumed (the device's catalog row)."""
    per_node_cat = devices_per_node
    nodes, per_node = _nodes(plan, per_node_cat)
    prov = provenance_lines(model.name, tokens, plan, snapshot)
    comment = "".join(f"# {line}\n" for line in prov)
    megatron = plan["tp"] > 1 or plan["pp"] > 1
    ga = round(plan["grad_accum_steps"])
    master = '"$(echo "$SKYPILOT_NODE_IPS" | head -n1)"'
    if megatron:
        train = "torchrun --nnodes {nn} --nproc-per-node {np} --node-rank {rank} --master-addr {addr} --master-port 29500 pretrain_gpt.py $(grep -v '^#' megatron_args.txt)"
    else:
        train = (
            "accelerate launch --config_file accelerate_fsdp.yaml --num_machines {nn} --num_processes "
            + str(nodes * per_node)
            + " --machine_rank {rank} --main_process_ip {addr} --main_process_port 29500 train.py "
            + f"--per_device_train_batch_size {plan['micro_batch']} --gradient_accumulation_steps {ga}"
        )
    sky_run = train.format(
        nn="$SKYPILOT_NUM_NODES", np="$SKYPILOT_NUM_GPUS_PER_NODE", rank="$SKYPILOT_NODE_RANK", addr=master
    )
    launch = train.format(nn=nodes, np=per_node, rank="${NODE_RANK:-0}", addr="${MASTER_ADDR:-127.0.0.1}")
    acc_name = skypilot_accelerator(plan["device"], plan["provider"], per_node)
    is_tpu = plan["device"].startswith("tpu-")
    resources: dict[str, Any] = {
        "accelerators": acc_name if is_tpu else f"{acc_name}:{per_node}",
    }
    if plan["provider"] is not None and plan["provider"] not in ("coreweave",):
        resources["cloud"] = plan["provider"]
        if plan["region"] not in (None, "*"):
            resources["region"] = plan["region"]
    resources["use_spot"] = plan["pricing"] == "spot"
    instance = (plan.get("instance") or "").rsplit("/", 1)
    if (
        len(instance) == 2
        and instance[1] == str(per_node)
        and not is_tpu
        and plan["provider"] in ("aws", "gcp", "azure", "oci")
    ):
        resources["instance_type"] = instance[0]
    sky = {
        "name": f"mlcost-{model.name}".replace(".", "-"),
        "resources": resources,
        "num_nodes": 1 if is_tpu else nodes,
        "run": "set -e\n" + sky_run,
    }
    files = {
        "sky.yaml": comment + "\n".join(_yaml(sky)) + "\n",
        "launch.sh": "#!/usr/bin/env bash\n"
        + comment
        + f"# {nodes} node(s) x {per_node} devices; set NODE_RANK and MASTER_ADDR on each node.\n"
        + (
            "# TP/PP > 1: Megatron-LM (pretrain_gpt.py) runs the layout; pass your data arguments too.\n"
            if megatron
            else ""
        )
        + "set -euo pipefail\n"
        + launch
        + "\n",
        "accelerate_fsdp.yaml": comment
        + (
            "# TP/PP > 1: accelerate/FSDP cannot express this layout; use launch.sh (Megatron-LM).\n"
            if megatron
            else ""
        )
        + "\n".join(_yaml(_accelerate(plan, nodes, per_node)))
        + "\n",
        "ds_config.json": json.dumps(_deepspeed(plan, prov), indent=2) + "\n",
        "megatron_args.txt": comment + "\n".join(_megatron_args(model, plan, tokens)) + "\n",
        "plan.json": json.dumps(
            {
                "kind": "mlcost-plan",
                "_mlcost": prov,
                "model": model.name,
                "tokens": tokens,
                "plan": dict(plan),
                "snapshot": dict(snapshot),
            },
            indent=2,
        )
        + "\n",
    }
    return files


def write_files(files: Mapping[str, str], directory: Path | str) -> list[Path]:
    """Write the files into ``directory`` (created), each through a temporary file: a failure leaves no
    half-written file."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise MlcostError(f"--export {d} is a file, not a directory", hint="pass a directory path")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlcostError(f"--export {d}: cannot create the directory ({exc.strerror})") from None
    out = []
    for name, text in files.items():
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o755 if name.endswith(".sh") else 0o644)
            os.replace(tmp, d / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        out.append(d / name)
    return out


def write_exports(
    result: Any, directory: Path | str, *, model: Any, devices_per_node: int, rank: int = 1
) -> list[Path]:
    """Export plan ``rank`` of a :class:`~mlcost.plan.types.TrainPlanResult` of ``model``."""
    d = result.to_dict()
    plan = d["plans"][rank - 1]
    snapshot = {"date": d["price_snapshot_date"], "commits": d["price_snapshot_commits"]}
    return write_files(build_exports(model, d["tokens"], plan, snapshot, devices_per_node), directory)
