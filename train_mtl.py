"""
Multi-task (Q)LoRA classifier for breast pathology reports (the MTL paper, Fig. 1c).

One shared Llama encoder with LoRA on q/k/v/o reads the four-block prompt of a report once; seven parallel
linear heads (T, N, M, grade, ER, PR, HER2) read it; the loss is the sum of the per-task cross-entropies,
HER2 class-weighted (Eq. 6-7). Flag defaults are the paper's, with three departures, all flags:
  --pool field (default): each head reads the mean hidden state of its own task's Hints line, the analogue
      of the paper's terminal state of a one-field input; --pool last is the paper's single last token.
      Measured on the demo model, the last token carries mostly the last hint line (HER2) and little else.
      --pool attention learns one query per task that weighs the tokens of that line instead of averaging them;
      --pool attention+report adds a second query per task over the prompt up to the Hints lines, so that a head
      still has the report's own words when its hint line is withheld (--hints-off) or the rules found nothing.
  --head-init probe (default): heads fitted to the frozen features before fine-tuning; --head-init zero.
  --not-stated class (default): every head has a "not stated" class learned from the null labels, so predict
      answers null where the report is silent; --not-stated ignore is the paper (null labels carry no loss).
The split holds whole report styles out of training when the records name their style (--split auto), so
the test table measures reports written unlike anything the model was trained on.

    python train_mtl.py --data reports.jsonl                       # train, writes runs/mtl/
    python train_mtl.py --data reports.jsonl --resume              # continue an interrupted run
    python train_mtl.py predict --run runs/mtl --data new.jsonl    # structured JSON for unlabeled reports

Ablations of the paper are flags: --adapter lora|ia3|prefix|frozen (Table II), --single-task (Table III),
--slicing window|full|random (Table IV); evaluate.py --compare prints the tables.
"""

import argparse
import dataclasses
import json
import math
import os
import random
import re
import sys
import time

import torch
import torch.nn as nn
from sklearn.metrics import f1_score

import data
import evaluate
from heads import MultiTaskHeads, attention_pool, length_batches, span_pool
from llama import choose_precision, first_blocks, load_model, load_tokenizer, pad_batch, resolve_model
from lora import atomic_write, inject_ia3, inject_lora, inject_prefix, load_any, no_interrupt, save_any
from losses import IGNORE, balanced_class_weights, multitask_cross_entropy

CHECKPOINT = "checkpoint.pt"   # a finished optimizer step (--save-every, epoch end, Ctrl-C): weights, optimizer, RNG
BEST = "best.pt"               # the trainables of the epoch with the lowest validation loss
PROBE_L2 = 0.003               # --head-init probe: L2 penalty on the head weights (per task, on standardized z)
PROBE_ITERS = 100              # L-BFGS iterations of that fit
PROBE_REPORTS = 512            # training reports the probe and the z statistics read (a seeded sample)

# -----------------------------------------------------------------------------
# settings: the paper's hyperparameters are the defaults

RUN_FACTS = ("device", "compute_dtype", "base_weights", "n_train", "n_val", "n_test", "tasks", "styles")
BEFORE_FLAG = {"head_init": "zero", "not_stated": "ignore", "split": "random"}  # what runs did before these flags


@dataclasses.dataclass
class TrainConfig:
    """A training run's settings, one field per flag of train_parser: names, types and defaults in one place, read
    as cfg.lr. A run's config.json holds these fields, then RUN_FACTS; from_dict reads it back."""
    data: str
    skip_bad: bool = False
    model: str | None = None             # None: the SmolLM2-135M demo model
    quant: str = "auto"
    out: str = "runs/mtl"
    resume: bool = False
    # adaptation (paper: LoRA r 16, alpha 16, dropout 0.05 on W_q, W_k, W_v, W_o)
    adapter: str = "lora"
    virtual_tokens: int = 32
    r: int = 16
    alpha: float = 16
    dropout: float = 0.05
    targets: str = "q_proj,k_proj,v_proj,o_proj"
    layers: int | None = None            # None: every block
    lora_layers: int | None = None
    single_task: bool = False
    slicing: str = "window"
    pool: str = "field"
    head_init: str = "probe"
    weighted: str = "HER2"
    not_stated: str = "class"
    hint_dropout: float = 0.0
    hints_off: float = 0.0
    split: str = "auto"
    # optimisation (paper: AdamW, lr 1e-4, cosine, 3% warm-up, wd 0.01, 2 x 8 accumulation, 3 epochs, L = 512)
    lr: float = 1e-4
    head_lr: float | None = None         # None: lr
    warmup: float = 0.03
    weight_decay: float = 0.01
    micro_batch: int = 2
    accum: int = 8
    max_length: int = 512
    epochs: int = 3
    patience: int = 1
    seed: int = 42
    precision: str = "auto"
    # budgets (None: everything)
    max_train: int | None = None
    max_val: int | None = None
    eval_batch: int = 8
    augment: float = 0.0
    absent: float = 0.5
    save_every: int = 50
    threads: int | None = None

    @classmethod
    def from_dict(cls, saved, path):
        """The settings of a run's config.json, `saved` as read from `path`. A setting the run predates takes the
        behaviour of its time (BEFORE_FLAG) or its default; an unknown key is a RunError naming the file and key."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(saved, dict) or "data" not in saved:
            raise RunError(f"{path}: not the settings of a train_mtl.py run (a JSON object with 'data', 'model', ...)")
        unknown = [k for k in saved if k not in names and k not in RUN_FACTS]
        if unknown:
            raise RunError(f"{path}: unknown setting(s) {', '.join(map(repr, unknown))}, not a flag of train_mtl.py")
        return cls(**{**BEFORE_FLAG, **{k: v for k, v in saved.items() if k in names}})

# -----------------------------------------------------------------------------
# command line

def train_parser():
    p = argparse.ArgumentParser(description="Train the multi-task (Q)LoRA report classifier (MTL paper).",
                                argument_default=argparse.SUPPRESS)  # the defaults are TrainConfig's
    p.add_argument("--data", required=True, help="reports.jsonl: {id, text, labels: {T, N, M, grade, ER, PR, HER2}}")
    p.add_argument("--skip-bad", action="store_true", help="leave out bad lines of --data (listed), do not stop")
    p.add_argument("--model", help="HF-layout Llama dir (default: the SmolLM2-135M demo model)")
    p.add_argument("--quant", choices=["auto", "nf4", "bf16", "fp32"],
                   help="frozen base weights: 4-bit NF4 (QLoRA, paper), bf16 or fp32; auto: NF4 on a GPU (the "
                        "paper), on a CPU the compute dtype of --precision")
    p.add_argument("--out", help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    # adaptation
    p.add_argument("--adapter", choices=["lora", "ia3", "prefix", "frozen"],
                   help="lora; ia3: (IA)^3 vectors on k, v, down; prefix: prefix tuning, --virtual-tokens learned keys "
                        "and values in every block; frozen: heads only (Table II's 'Frozen (Head)')")
    p.add_argument("--virtual-tokens", type=int, help="prefix tuning's L_p (paper: 32)")
    p.add_argument("--lora-r", "--r", dest="r", type=int, help="LoRA rank r")
    p.add_argument("--lora-alpha", "--alpha", dest="alpha", type=float, help="LoRA scale alpha / r")
    p.add_argument("--lora-dropout", "--dropout", dest="dropout", type=float, help="dropout on the LoRA input")
    p.add_argument("--lora-targets", "--targets", dest="targets", help="projections that get a LoRA")
    p.add_argument("--layers", type=int,
                   help="use the first N decoder blocks only (default: all). The heads then read an intermediate "
                        "layer, which on the demo model classifies better than the last and costs N/L of the time")
    p.add_argument("--lora-layers", type=int,
                   help="LoRA in the last N blocks only (PEFT's layers_to_transform; default: all). The frozen "
                        "blocks below need no backward pass, a budget knob for small machines")
    p.add_argument("--single-task", action="store_true", help="one adapter + head per task (Table III's STL)")
    p.add_argument("--slicing", choices=["window", "full", "random"], help="input mode (Table IV)")
    p.add_argument("--pool", choices=["field", "attention", "attention+report", "last", "mean"],
                   help="what each head reads: field = the mean over its task's own Hints line; attention = a "
                        "learned weighting of that line's tokens; attention+report = that, plus a learned "
                        "weighting of everything before the first Hints line; last = the last token (the paper's "
                        "terminal hidden state, shared by all heads); mean = all tokens")
    p.add_argument("--head-init", choices=["probe", "zero"],
                   help="probe: fit the heads to the frozen model's features before fine-tuning (LP-FT); zero")
    p.add_argument("--weighted",
                   help="tasks with balanced class weights w_c = S/(C s_c), comma-separated, 'all' or 'none'")
    p.add_argument("--not-stated", choices=["class", "ignore"],
                   help="class: every head has a 'not stated' class learned from the null labels; ignore: null "
                        "labels carry no loss (the paper)")
    p.add_argument("--hint-dropout", type=float,
                   help="probability that a training report's hint line of a task reads 'withheld', so that the heads "
                        "learn to read the Report block too (0 = the paper)")
    p.add_argument("--hints-off", type=float,
                   help="probability that every hint line of a training report reads 'withheld' at once, so "
                        "that the heads learn to answer from the Report alone, as in the 'hints removed' row "
                        "(0 = the paper)")
    p.add_argument("--split", choices=["auto", "style", "random"],
                   help="style: whole styles held out for validation and test (needs a 'style' per record); "
                        "random: stratified 80/10/10 (the paper); auto: style when the data has styles")
    # optimisation
    p.add_argument("--lr", type=float)
    p.add_argument("--head-lr", type=float, help="learning rate of the heads (default: --lr)")
    p.add_argument("--warmup", type=float,
                   help="linear warm-up: a fraction of the optimizer steps (< 1) or a number of steps (>= 1)")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--micro-batch", type=int)
    p.add_argument("--accum", type=int, help="gradient accumulation steps")
    p.add_argument("--max-length", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--patience", type=int, help="early stopping: epochs without a lower validation loss")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"],
                   help="compute dtype; auto: bf16 autocast (paper) where the hardware computes bf16 natively, "
                        "else fp32 (llama.choose_precision)")
    # budgets
    p.add_argument("--max-train", type=int, help="train on at most N reports of the train split")
    p.add_argument("--max-val", type=int, help="validate on at most N reports")
    p.add_argument("--eval-batch", type=int)
    p.add_argument("--augment", type=float,
                   help="probability of presenting a training report as text arrives from elsewhere (data.arrive: "
                        "one line from a PDF, OCR confusions in the evidence too, other headers, capitals, an "
                        "addendum); 0 = the paper's plain training")
    p.add_argument("--absent", type=float,
                   help="of the reports --augment picks, the share whose not-stated fields (up to two) are written "
                        "as not stated ('Nottingham grade: not assessable', 'HER2: pending'; data.state_absence)")
    p.add_argument("--save-every", type=int,
                   help="checkpoint every N optimizer steps and at each epoch's end; Ctrl-C saves the last finished "
                        "step, a kill -9 loses the steps since the last checkpoint")
    p.add_argument("--threads", type=int,
                   help="CPU threads (default: all cores; 1 is faster when other jobs share the cores)")
    return p


def predict_parser():
    p = argparse.ArgumentParser(prog="train_mtl.py predict",
                                description="Label new reports with a trained run: one JSON record per report.")
    p.add_argument("--run", required=True, help="output directory of a training run")
    p.add_argument("--data", required=True, help="jsonl with {id, text} (labels are not needed)")
    p.add_argument("--skip-bad", action="store_true", help="leave out bad lines (listed) instead of stopping")
    p.add_argument("--out", default=None, help="output jsonl (default: stdout)")
    p.add_argument("--eval-batch", "--batch", dest="eval_batch", type=positive_int, default=8,
                   help="reports per batch")
    return p


def weighted_tasks(cfg):
    """The tasks of --weighted: a comma-separated list, 'all' or 'none'."""
    return {"none": [], "all": list(data.TASKS)}.get(cfg.weighted, cfg.weighted.split(","))


def positive_int(text):
    """argparse type: an integer >= 1 (a clear usage error otherwise, not a crash later)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value

# -----------------------------------------------------------------------------
# inputs

def encode(report, cfg, tok, text=None, drop_hints=()):
    """(ids, spans) of a report's four-block prompt (data.encode_report: cut to fit, Hints kept).
    text: replaces the record's own text (its site's block for a multi-specimen record); drop_hints: the tasks
    whose hint line reads as if the rules had found nothing."""
    if text is not None:
        report = dataclasses.replace(report, text=text, site=None)
    return data.encode_report(report, tok, cfg.max_length, cfg.slicing, seed=cfg.seed,
                              drop_hints=drop_hints)[:2]


def encode_all(reports, cfg, tok, drop_hints=()):
    """[(ids, spans)] of many reports; data.encode_reports prints how many had to be cut."""
    return data.encode_reports(reports, tok, cfg.max_length, cfg.slicing, seed=cfg.seed,
                               drop_hints=drop_hints)[0]


def collate(encoded, tasks, pool, pad_id):
    """[(ids, spans)] -> input_ids (B, T), attention_mask (B, T), pooled spans (B, K, 2), right-padded.

    pool "field" (and "attention", which weighs them): each task's head reads the tokens of its own Hints line,
    which come after (and attend to) the whole report, the counterpart of the paper's terminal state of a
    one-field input; "attention+report": those K spans, then K times the prompt up to the first Hints line (B, 2K, 2);
    "last": every head reads the last token; "mean": every head reads all tokens.
    """
    rows = []
    for seq, spans in encoded:
        n = len(seq)
        if pool in ("field", "attention"):
            rows.append([spans[t] for t in tasks])
        elif pool == "attention+report":  # K Hints lines, then K times the prompt before the Hints block
            rows.append([spans[t] for t in tasks] + [(0, min(s for s, _ in spans.values()))] * len(tasks))
        elif pool == "last":
            rows.append([(n - 1, n)] * len(tasks))
        else:
            rows.append([(0, n)] * len(tasks))
    ids, mask = pad_batch([seq for seq, _ in encoded], pad_id)
    return ids, mask, torch.tensor(rows, dtype=torch.long)


def augment_text(text, rng, kind=None):
    """Show a report as real reports arrive (data.arrive): one line from a PDF, OCR confusions, another
    institution's headers, capitals, an addendum that changes nothing.

    Labels do not change; the point is that the model never learns to rely on one generator's layout.
    kind: one of data.ARRIVALS, default a random one.
    """
    return data.arrive(text, rng, kind or rng.choice(data.ARRIVALS))


# -----------------------------------------------------------------------------
# the classifier: shared encoder -> pooling per task -> parallel heads

class Classifier(nn.Module):
    """Llama (+ LoRA) encoder whose pooled state z_t of each task feeds that task's linear head (Eq. 5)."""

    def __init__(self, llama, label_sets, pool="field"):
        super().__init__()
        self.llama = llama
        self.pool = pool
        self.heads = MultiTaskHeads(llama.config.hidden_size, label_sets)
        for head in self.heads.heads.values():  # start from uniform predictions, not random logits
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        # z is standardized per dimension before the heads: W (z - mu) / sigma + b is the same linear head as
        # Eq. 5 (an affine reparametrisation), but Llama hidden states carry a few "massive activation" dims
        # (SmolLM2: |z_d| ~ 30 against a median ~ 0.5), and Adam's equal-size steps per weight would make
        # those dims swing the logits 50x faster than the rest. mu, sigma: from the frozen model, set_z_stats.
        K, D = len(label_sets), llama.config.hidden_size
        self.register_buffer("z_mean", torch.zeros(K, D))
        self.register_buffer("z_std", torch.ones(K, D))
        if pool in ("attention", "attention+report"):  # a query per task over its Hints line; zero = field pooling
            self.pool_query = nn.Parameter(torch.zeros(K, D))
        if pool == "attention+report":  # and one over the Report, which a head needs when its line is withheld
            self.report_query = nn.Parameter(torch.zeros(K, D))

    def pooled(self, input_ids, attention_mask, spans):
        """input_ids, attention_mask (B, T); spans (B, K, 2) or (B, 2K, 2) from collate -> z of each task (B, K, D)."""
        tune_encoder = any(p.requires_grad for p in self.llama.parameters())
        with torch.set_grad_enabled(tune_encoder and torch.is_grad_enabled()):
            hidden = self.llama(input_ids, attention_mask)          # (B, T, D)
        # a query scores h / sigma: the same reparametrisation as the heads', so Adam's steps reach every dim alike
        if self.pool == "attention":
            return attention_pool(hidden, spans, self.pool_query / self.z_std).float()
        if self.pool == "attention+report":
            K = self.pool_query.shape[0]
            return (attention_pool(hidden, spans[:, :K], self.pool_query / self.z_std)
                    + attention_pool(hidden, spans[:, K:], self.report_query / self.z_std)).float()
        return span_pool(hidden, spans).float()                     # (B, K, D)

    def forward(self, input_ids, attention_mask, spans):
        z = self.pooled(input_ids, attention_mask, spans)
        return self.heads((z - self.z_mean) / self.z_std)           # {task: (B, C_t)}


def precision_plan(cfg, device):
    """(compute dtype, base weight format, a line that says so and why) from --precision and --quant."""
    dtype, why = choose_precision(cfg.precision, device)
    quant = cfg.quant
    if quant == "auto":
        quant = "nf4" if device == "cuda" else "bf16" if dtype == torch.bfloat16 else "fp32"
    return dtype, quant, f"{why}; base weights {quant}"


def build_classifier(cfg, label_sets, device):
    """Load the frozen base (NF4 / bf16 / fp32), add LoRA, (IA)^3 or a prefix unless --adapter frozen, add heads."""
    dtype, quant, _ = precision_plan(cfg, device)
    weights = {"nf4": dtype, "bf16": torch.bfloat16, "fp32": torch.float32}[quant]
    llama = load_model(cfg.model, dtype=weights, quant="nf4" if quant == "nf4" else None, device=device)
    llama.requires_grad_(False)
    first_blocks(llama, cfg.layers)
    n = cfg.lora_layers or len(llama.layers)
    if cfg.adapter == "lora":
        inject_lora(llama.layers[len(llama.layers) - n:], targets=tuple(cfg.targets.split(",")), r=cfg.r,
                    alpha=cfg.alpha, dropout=cfg.dropout)
    elif cfg.adapter == "ia3":
        inject_ia3(llama.layers[len(llama.layers) - n:])
    elif cfg.adapter == "prefix":
        inject_prefix(llama, cfg.virtual_tokens)
    return Classifier(llama, label_sets, cfg.pool).to(device), dtype


def trainable_state(model):
    """What a run learns, by name: the trained parameters (LoRA A/B, heads) and the z statistics."""
    state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return {**state, "z_mean": model.z_mean.clone(), "z_std": model.z_std.clone()}


def make_optimizer(model, cfg, device):
    """Paged 8-bit AdamW (bitsandbytes) on CUDA as in the paper, torch AdamW on CPU."""
    enc = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("heads.")]
    head = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("heads.")]
    groups = [{"params": head, "lr": cfg.head_lr or cfg.lr}]
    if enc:
        groups.insert(0, {"params": enc, "lr": cfg.lr})
    if device == "cuda":
        import bitsandbytes as bnb
        return bnb.optim.PagedAdamW8bit(groups, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def cosine_with_warmup(optimizer, total_steps, warmup):
    """lr(t) = lr * t / W during warm-up, then lr * (1 + cos(pi * progress)) / 2 down to 0."""
    W = int(warmup) if warmup >= 1 else max(1, math.ceil(warmup * total_steps))

    def factor(step):
        if step < W:
            return (step + 1) / W
        return 0.5 * (1 + math.cos(math.pi * (step - W) / max(1, total_steps - W)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

# -----------------------------------------------------------------------------
# checkpoints: written atomically (lora.atomic_write: temp file, fsync, rename), so a kill never leaves half a file

def write_json(obj, path):
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2) + "\n"), "w")

# -----------------------------------------------------------------------------
# checks before any training

class SetupError(Exception):
    """Problems found before training; the message lists every one."""


def check_inputs(cfg):
    """Read the reports and locate the model; collect every problem instead of stopping at the first."""
    problems, reports, model_dir = [], None, None
    if not os.path.isfile(cfg.data):
        what = "a directory, not a file" if os.path.isdir(cfg.data) else "no such file"
        problems.append(f"--data {cfg.data}: {what}")
    else:
        try:
            reports = data.read_reports(cfg.data, skip_bad=cfg.skip_bad)
        except Exception as e:  # data.DataError lists every bad line
            problems.append(f"--data {cfg.data}: {e}")
    if reports is not None:
        if len(reports) < 10:
            problems.append(f"--data {cfg.data}: {len(reports)} reports; the 80/10/10 split needs at least 10")
        for task in data.TASKS:
            if not any(r.labels.get(task) is not None for r in reports):
                problems.append(f"--data {cfg.data}: no report has a label for task {task!r}")
    try:
        model_dir = resolve_model(cfg.model)
        from llama import LlamaConfig
        LlamaConfig.from_json(os.path.join(model_dir, "config.json"))
        load_tokenizer(model_dir)
    except Exception as e:
        problems.append(f"--model {cfg.model or '(demo model)'}: {e}")
    if cfg.micro_batch < 1 or cfg.accum < 1 or cfg.epochs < 1 or cfg.max_length < 16:
        problems.append("--micro-batch, --accum, --epochs must be >= 1 and --max-length >= 16")
    if not 0 <= cfg.dropout < 1:
        problems.append(f"--lora-dropout must be in [0, 1), got {cfg.dropout}")
    for value, name in ((cfg.lr, "lr"), (cfg.head_lr, "head-lr"), (cfg.alpha, "lora-alpha")):
        if value is not None and not value > 0:
            problems.append(f"--{name} must be > 0, got {value}")
    if cfg.weight_decay < 0 or cfg.warmup < 0 or (cfg.warmup >= 1 and cfg.warmup != int(cfg.warmup)):
        problems.append(f"--weight-decay must be >= 0 and --warmup a fraction in [0, 1) or a whole number of steps, "
                        f"got {cfg.weight_decay} and {cfg.warmup}")
    for value, name in ((cfg.r, "lora-r"), (cfg.save_every, "save-every"), (cfg.eval_batch, "eval-batch"),
                        (cfg.virtual_tokens, "virtual-tokens")):
        if value < 1:
            problems.append(f"--{name} must be >= 1, got {value}")
    unknown = sorted(set(cfg.targets.split(",")) - {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                       "up_proj", "down_proj"})
    if unknown:
        problems.append(f"--lora-targets: unknown projection(s) {unknown}")
    weighted = weighted_tasks(cfg)
    if set(weighted) - set(data.TASKS):
        problems.append(f"--weighted: unknown task(s) {sorted(set(weighted) - set(data.TASKS))}; tasks are "
                        f"{', '.join(data.TASKS)}, 'all' or 'none'")
    if cfg.adapter == "prefix" and cfg.lora_layers:
        problems.append("--lora-layers applies to --adapter lora and ia3; a prefix reaches every block")
    for flag, v in (("--hint-dropout", cfg.hint_dropout), ("--hints-off", cfg.hints_off)):
        if not 0 <= v <= 1:
            problems.append(f"{flag} must be in [0, 1], got {v}")
    if reports is not None and cfg.split == "style":
        unstyled = [r.line for r in reports if r.style is None]
        if unstyled:
            problems.append(f"--split style: {len(unstyled)} record(s) of {cfg.data} have no 'style' "
                            f"(first on line {unstyled[0]}); use --split random")
        elif len({r.style for r in reports}) < 3:
            problems.append(f"--split style: {cfg.data} has {len({r.style for r in reports})} style(s), "
                            f"at least 3 are needed (train, validation, test)")
    if problems:
        raise SetupError("cannot start training:\n  - " + "\n  - ".join(problems))
    return reports, str(model_dir)

# -----------------------------------------------------------------------------
# training

class TrainingError(Exception):
    """A failed step (non-finite loss, out of memory), stopped before it changed the weights."""


@torch.no_grad()
def pooled_features(model, encoded, pad_id, batch, dtype, device, desc=None):
    """z of every task for encoded reports, in input order (eval mode, batches of similar length): (N, K, D)."""
    model.eval()
    z = torch.empty(len(encoded), *model.z_mean.shape)
    for idx in length_batches([len(ids) for ids, _ in encoded], batch, desc):
        ids, mask, spans = collate([encoded[i] for i in idx], list(model.heads.label_sets), model.pool, pad_id)
        with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            z[idx] = model.pooled(ids.to(device), mask.to(device), spans).cpu()
    return z


@torch.no_grad()
def predict_logits(model, encoded, pad_id, batch, dtype, device, desc=None):
    """Logits of every task for encoded reports, in input order: {task: (N, C_t)}."""
    z = pooled_features(model, encoded, pad_id, batch, dtype, device, desc).to(device)
    return {task: lg.float().cpu() for task, lg in model.heads((z - model.z_mean) / model.z_std).items()}


def unevidenced_all(reports, drop_hints=()):
    """Per report, the tasks the evidence gate answers not stated (data.unevidenced); none of drop_hints, whose
    row asks what the model reads without the rules."""
    return [[t for t in data.unevidenced(data.as_read(r.text, r.site)) if t not in drop_hints] for r in reports]


def predict_records(models, encoded, pad_id, batch, dtype, device, desc=None, unevidenced=None):
    """[{task: {"label", "probs"}}] per encoded report; each task from the model that has its head (one
    multi-task model, or one model per task for --single-task). unevidenced (unevidenced_all): the evidence gate,
    the label of those tasks null whatever the head says; "probs" stay the head's."""
    preds = [dict() for _ in encoded]
    for model in models:
        logits = predict_logits(model, encoded, pad_id, batch, dtype, device, desc)
        for rec, p in zip(preds, model.heads.predict(logits)):
            rec.update(p)
    for rec, tasks in zip(preds, unevidenced or []):
        for t in tasks:
            if t in rec:
                rec[t]["label"] = None
    return preds


def init_heads(model, encoded, labels, weights, cfg, pad_id, dtype, device):
    """Before any training step: mu, sigma of z over (at most PROBE_REPORTS of) the training reports and, with
    --head-init probe, heads fitted to the frozen model's z (linear probing, then fine-tuning: Kumar et al., ICLR
    2022). The adapter's first gradients then come from heads that already read the features, not from zero heads."""
    if len(encoded) > PROBE_REPORTS:  # the frozen features of a sample: a linear probe needs no more
        keep = sorted(random.Random(cfg.seed).sample(range(len(encoded)), PROBE_REPORTS))
        encoded, labels = [encoded[i] for i in keep], {t: y[keep] for t, y in labels.items()}
    z = pooled_features(model, encoded, pad_id, cfg.eval_batch, dtype, device, desc="frozen features")
    model.z_mean.copy_(z.mean(0).to(device))
    model.z_std.copy_(z.std(0).clamp(min=1e-3).to(device) if len(z) > 1 else torch.ones_like(z[0]))
    if cfg.head_init != "probe":
        return
    z = ((z.to(device) - model.z_mean) / model.z_std)
    heads = model.heads
    opt = torch.optim.LBFGS(heads.parameters(), lr=1.0, max_iter=PROBE_ITERS, line_search_fn="strong_wolfe")

    def closure():  # the multi-task loss + an L2 penalty on the head weights (a logistic-regression probe)
        opt.zero_grad()
        loss = multitask_cross_entropy(heads(z), labels, weights)
        loss = loss + PROBE_L2 * sum((h.weight ** 2).sum() for h in heads.heads.values())
        loss.backward()
        return loss
    with torch.enable_grad():
        opt.step(closure)


def validate(model, seqs, labels, weights, pad_id, batch, dtype, device):
    """Validation loss (early stopping) and macro F1 averaged over tasks (for the per-epoch record)."""
    logits = predict_logits(model, seqs, pad_id, batch, dtype, device, desc="validate")
    f1s = []
    for task, y in labels.items():
        keep = y != IGNORE
        if keep.sum() > 0:
            f1s.append(f1_score(y[keep], logits[task].argmax(-1)[keep], average="macro",
                                labels=sorted(set(y[keep].tolist())), zero_division=0))
    return float(multitask_cross_entropy(logits, labels, weights)), sum(f1s) / max(1, len(f1s))


@dataclasses.dataclass
class Run:
    """What one train_one call works with: the model, its encoded data, the optimizer and where training stands."""
    out: str
    model: Classifier
    dtype: torch.dtype
    label_sets: dict
    train: list               # the training reports
    train_seqs: list          # their (ids, spans), encoded once up front
    y_train: dict             # {task: (N,) class ids}
    val_seqs: list
    y_val: dict
    weights: dict             # {task: class weights} of the --weighted tasks
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    steps_per_epoch: int
    total_steps: int
    state: dict               # step, epoch, best_val, bad_epochs, history, log, train_seconds, done: the checkpoint
    rng: dict | None = None   # the RNG states as the last finished optimizer step left them, for the checkpoint

    @property
    def checkpoint(self):
        return os.path.join(self.out, CHECKPOINT)


def train_one(cfg, out, reports_split, label_sets, tok, device):
    """Train one model (all tasks, or one task for --single-task) into `out`; returns (model, dtype, summary)."""
    from tqdm import tqdm
    os.makedirs(out, exist_ok=True)
    run = build_run(cfg, out, *reports_split, label_sets, tok, device)
    resume_or_init(run, cfg, tok, device)
    bar = tqdm(total=run.total_steps, initial=run.state["step"], desc=os.path.basename(out.rstrip("/")) or "train",
               unit="step", dynamic_ncols=True, file=sys.stderr)
    try:
        while not run.state["done"] and run.state["epoch"] < cfg.epochs:
            train_epoch(run, cfg, tok, device, bar)
            end_epoch(run, cfg, tok, device)
    except (KeyboardInterrupt, TrainingError):  # nothing of a finished step is lost
        bar.close()
        save_checkpoint(run)
        raise
    bar.close()
    export(run, cfg)
    return run.model, run.dtype, {"trainable_params": sum(p.numel() for p in run.model.parameters() if p.requires_grad),
                                  "train_seconds": run.state["train_seconds"], "best_val_loss": run.state["best_val"],
                                  "steps": run.state["step"]}


def build_run(cfg, out, train, val, label_sets, tok, device):
    """The classifier, the class weights, every prompt encoded once, the optimizer and schedule, a fresh state."""
    torch.manual_seed(cfg.seed)
    try:
        model, dtype = build_classifier(cfg, label_sets, device)
    except (ValueError, OSError, KeyError) as e:  # e.g. a checkpoint whose tensors do not match config.json
        raise SetupError(f"cannot start training:\n  - --model {cfg.model}: {e}") from None
    weighted = [t for t in weighted_tasks(cfg) if t in label_sets]
    y_train, y_val = data.label_tensors(train, label_sets), data.label_tensors(val, label_sets)
    weights = {t: balanced_class_weights(y_train[t].tolist(), len(label_sets[t])) for t in weighted}
    try:  # every prompt once, up front: a --max-length too short for the fixed blocks stops here
        train_seqs, val_seqs = encode_all(train, cfg, tok), encode_all(val, cfg, tok)
    except ValueError as e:
        raise SetupError(f"cannot start training:\n  - --max-length {cfg.max_length}: {e}") from None
    steps_per_epoch = math.ceil(math.ceil(len(train) / cfg.micro_batch) / cfg.accum)
    total_steps = steps_per_epoch * cfg.epochs
    optimizer = make_optimizer(model, cfg, device)
    scheduler = cosine_with_warmup(optimizer, total_steps, cfg.warmup)
    state = {"step": 0, "epoch": 0, "best_val": float("inf"), "bad_epochs": 0, "history": [], "log": [],
             "train_seconds": 0.0, "done": False}
    return Run(out, model, dtype, label_sets, train, train_seqs, y_train, val_seqs, y_val, weights, optimizer,
               scheduler, steps_per_epoch, total_steps, state)


def resume_or_init(run, cfg, tok, device):
    """--resume with a checkpoint: trainables, optimizer, scheduler, RNG and position as saved (the run continues
    exactly). Otherwise the z statistics and heads from the frozen model (init_heads)."""
    if not (cfg.resume and os.path.exists(run.checkpoint)):
        init_heads(run.model, run.train_seqs, run.y_train, run.weights, cfg, tok.pad_id, run.dtype, device)
        run.rng = rng_state()
        return
    try:
        ckpt = torch.load(run.checkpoint, weights_only=False)
    except Exception as e:  # written atomically, so only a damaged disk or another program gets here
        raise SetupError(f"cannot resume: {run.checkpoint} is unreadable ({type(e).__name__}: {e}); move it away "
                         f"to restart the run from its beginning") from None
    run.model.load_state_dict(ckpt["trainables"], strict=False)
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    random.setstate(ckpt["rng"]["python"])
    run.state, run.rng = ckpt["state"], ckpt["rng"]
    print(f"resumed {run.out} at optimizer step {run.state['step']}/{run.total_steps} "
          f"(epoch {run.state['epoch'] + 1})", file=sys.stderr)


def rng_state():
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def save_checkpoint(run):
    """The last finished optimizer step: trainables, optimizer, scheduler, state and RNG, written atomically. Also
    after a step was cut short (Ctrl-C, a failed step): its half-done work was never applied to the weights."""
    ckpt = {"trainables": trainable_state(run.model), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "state": run.state, "rng": run.rng}
    atomic_write(run.checkpoint, lambda f: torch.save(ckpt, f))


def train_epoch(run, cfg, tok, device, bar):
    """The optimizer steps of the current epoch still to do (all of them, or the rest after a resume)."""
    state, epoch = run.state, run.state["epoch"]
    # the data order of an epoch depends only on (seed, epoch): a resumed run sees the same batches
    g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    order = torch.randperm(len(run.train), generator=g).tolist()
    micro = [order[i:i + cfg.micro_batch] for i in range(0, len(order), cfg.micro_batch)]
    for s in range(state["step"] - epoch * run.steps_per_epoch, run.steps_per_epoch):
        t0 = time.time()
        step_loss, tokens = accumulate(run, cfg, tok, device, micro[s * cfg.accum:(s + 1) * cfg.accum])
        with no_interrupt():  # the update and its record together, so that Ctrl-C saves a finished step
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
            dt = time.time() - t0
            state["step"] += 1
            state["train_seconds"] += dt
            lr = run.scheduler.get_last_lr()[0]
            state["log"].append({"step": state["step"], "epoch": epoch + 1, "loss": step_loss, "lr": lr,
                                 "seconds": dt, "tokens": tokens})
            run.rng = rng_state()
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tokens / dt:.0f}", s_step=f"{dt:.1f}")
        # every --save-every steps, and after the epoch's last step: a kill in the validation that follows keeps it
        if state["step"] % cfg.save_every == 0 or s == run.steps_per_epoch - 1:
            save_checkpoint(run)


def accumulate(run, cfg, tok, device, group):
    """The gradients of one optimizer step, summed over its group of micro-batches -> (loss, tokens read).

    A non-finite loss or running out of memory is a TrainingError, before anything changed the weights."""
    model, epoch = run.model, run.state["epoch"]
    model.train()
    tokens, step_loss = 0, 0.0
    try:
        for k, idx in enumerate(group):
            ids, mask, spans = collate(training_inputs(run, cfg, tok, idx), list(run.label_sets), cfg.pool,
                                       tok.pad_id)
            y = {t: v[idx] for t, v in run.y_train.items()}
            with torch.autocast(device, dtype=run.dtype, enabled=run.dtype != torch.float32):
                logits = model(ids.to(device), mask.to(device), spans)
            loss = multitask_cross_entropy(logits, y, run.weights) / len(group)
            if not torch.isfinite(loss):
                raise TrainingError(f"loss is {float(loss.detach())} at optimizer step {run.state['step'] + 1} "
                                    f"(epoch {epoch + 1}, micro-batch {k + 1} of the step)")
            loss.backward()
            step_loss += float(loss.detach())
            tokens += int(mask.sum())
    except (MemoryError, RuntimeError) as e:
        if not out_of_memory(e):
            raise
        raise TrainingError(f"out of memory at optimizer step {run.state['step'] + 1} (epoch {epoch + 1}): "
                            f"{str(e)[:200]}; try a smaller --micro-batch or --max-length; "
                            f"{saved_step(run)}") from None
    except TrainingError as e:
        raise TrainingError(f"{e}; {saved_step(run)}") from None
    return step_loss, tokens


def saved_step(run):
    return f"optimizer step {run.state['step']}, the last finished, is saved in {run.checkpoint}"


def out_of_memory(e):
    """Whether an exception is an allocation failure: a MemoryError, or a RuntimeError (torch.OutOfMemoryError
    included) whose message says so, as torch's CPU and CUDA allocators word it."""
    return isinstance(e, MemoryError) or bool(re.search(r"out of memory|can't allocate|not enough memory", str(e)))


def training_inputs(run, cfg, tok, idx):
    """The (ids, spans) of training reports idx: as encoded up front, or re-encoded when --augment or
    --hint-dropout or --hints-off picks them. A per-report RNG: the same augmentation and hint dropout after a
    resume."""
    seqs = []
    for i in idx:
        rng = random.Random(f"{cfg.seed}-{run.state['epoch']}-{i}")
        text = None
        if rng.random() < cfg.augment:  # a multi-specimen record: its own site's block
            r = run.train[i]
            text = data.site_text(r.text, r.site)
            absent = [t for t in run.label_sets if r.labels.get(t) is None]
            if absent and rng.random() < cfg.absent:
                text = data.state_absence(text, rng.sample(absent, min(2, len(absent))), rng)
            text = augment_text(text, rng)
        drop = [t for t in run.label_sets if rng.random() < cfg.hint_dropout]
        if cfg.hints_off and rng.random() < cfg.hints_off:
            drop = list(run.label_sets)
        seqs.append(encode(run.train[i], cfg, tok, text, drop) if text or drop else run.train_seqs[i])
    return seqs


def end_epoch(run, cfg, tok, device):
    """Validation loss, the per-epoch record, early stopping, the best trainables kept; then a checkpoint."""
    from tqdm import tqdm
    state, epoch = run.state, run.state["epoch"]
    vloss, vf1 = validate(run.model, run.val_seqs, run.y_val, run.weights, tok.pad_id, cfg.eval_batch, run.dtype,
                          device)
    with no_interrupt():  # the epoch's record, best.pt and the checkpoint agree
        epoch_log = [e for e in state["log"] if e["epoch"] == epoch + 1]
        train_loss = sum(e["loss"] for e in epoch_log) / len(epoch_log)
        state["history"].append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": vloss,
                                 "val_macro_f1": vf1, "step": state["step"],
                                 "seconds": sum(e["seconds"] for e in epoch_log)})
        tqdm.write(f"epoch {epoch + 1}: train loss {train_loss:.4f}, val loss {vloss:.4f}, val macro F1 {vf1:.3f}",
                   file=sys.stderr)
        if vloss < state["best_val"]:
            state["best_val"], state["bad_epochs"] = vloss, 0
            best = trainable_state(run.model)
            atomic_write(os.path.join(run.out, BEST), lambda f: torch.save(best, f))
        else:
            state["bad_epochs"] += 1
            if state["bad_epochs"] >= cfg.patience:
                tqdm.write(f"early stopping: validation loss has not improved for {cfg.patience} epoch(s)",
                           file=sys.stderr)
                state["done"] = True
        state["epoch"] = epoch + 1
        if state["done"]:  # an early stop skips the steps left
            state["step"] = run.total_steps
        write_json(state["history"], os.path.join(run.out, "epochs.json"))
        save_checkpoint(run)


def export(run, cfg):
    """The epoch with the lowest validation loss, written as the run's files: adapter/ (PEFT format),
    heads.safetensors, label_maps.json, train_log.jsonl."""
    from safetensors.torch import save_file
    model, out = run.model, run.out
    model.load_state_dict(torch.load(os.path.join(out, BEST), weights_only=True), strict=False)
    save_any(cfg.adapter, model.llama, os.path.join(out, "adapter"), base_model_name_or_path=cfg.model)
    head_state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("llama.")}
    save_file(head_state, os.path.join(out, "heads.safetensors"))  # heads.<task>.weight/bias, z_mean, z_std
    write_json(run.label_sets, os.path.join(out, "label_maps.json"))
    with open(os.path.join(out, "train_log.jsonl"), "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in run.state["log"])


def peak_rss_mb():
    import resource
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def test_records(test, model_preds, label_sets):
    """One record per test report: gold labels, the model's label + probabilities, the naive baseline."""
    records = []
    for r, pred in zip(test, model_preds):
        base = data.naive_baseline(data.site_text(r.text, r.site))
        records.append({"id": r.id, "style": r.style, "gold": {t: r.labels.get(t) for t in label_sets},
                        "model": pred, "baseline": {t: base.get(t) for t in label_sets}})
    return records


def score_reports(models, reports, cfg, tok, dtype, device, batch, drop_hints=(), desc=None):
    """Labelled reports -> test_records (gold, model, baseline per report); drop_hints as in encode."""
    preds = predict_records(models, encode_all(reports, cfg, tok, drop_hints), tok.pad_id, batch, dtype, device,
                            desc, unevidenced_all(reports, drop_hints))
    return test_records(reports, preds, data.TASKS)


def split_reports(reports, cfg):
    """(train, val, test) as --split says: whole styles held out (auto, when every record names one of 3+
    styles), or the paper's stratified 80/10/10."""
    how = cfg.split
    if how == "auto":
        styles = {r.style for r in reports}
        how = "style" if None not in styles and len(styles) >= 3 else "random"
    if how == "style":
        return data.split_by_style(reports, seed=cfg.seed)
    return data.stratified_split(reports, seed=cfg.seed)


def train_main(argv):
    cfg = TrainConfig(**vars(train_parser().parse_args(argv)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.time()
    try:
        reports, cfg.model = check_inputs(cfg)
    except SetupError as e:
        print(f"train_mtl.py: {e}", file=sys.stderr)
        return 2
    out = cfg.out
    if os.path.exists(out) and not os.path.isdir(out):
        print(f"train_mtl.py: --out {out} is a file, not a directory", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    cfg_path = os.path.join(out, "config.json")
    # a run exists once anything beyond config.json is saved; a config.json alone is a setup that stopped before
    # the first step (e.g. --max-length too short), and is simply written again
    started = os.path.exists(cfg_path) and bool(set(os.listdir(out)) - {"config.json"})
    if cfg.resume and started:
        try:
            saved = read_json(cfg_path, "cannot check that --resume continues the same run")
        except RunError as e:
            print(f"train_mtl.py: {e}", file=sys.stderr)
            return 2
        changed = [f"--{k.replace('_', '-')}: {saved.get(k)!r} in the run, {v!r} now"
                   for k, v in dataclasses.asdict(cfg).items()
                   if k not in ("resume", "threads", "out", "save_every") and saved.get(k) != v]  # a run may move
        if changed:  # a resumed run must be the run it continues: refuse, and say what differs
            print(f"train_mtl.py: --resume with settings that differ from {cfg_path}; use the run's settings or "
                  f"another --out:\n  " + "\n  ".join(changed), file=sys.stderr)
            return 2
    elif started:
        print(f"train_mtl.py: {out} already holds a run; pass --resume to continue it or choose another --out",
              file=sys.stderr)
        return 2

    train, val, test = split_reports(reports, cfg)
    if cfg.max_train is not None:
        train = random.Random(cfg.seed).sample(train, min(cfg.max_train, len(train)))
    if cfg.max_val is not None:
        val = val[:cfg.max_val]
    random.seed(cfg.seed)
    tok = load_tokenizer(cfg.model)
    dtype, quant, plan = precision_plan(cfg, device)
    print(f"train_mtl.py: {plan}", file=sys.stderr)
    split_styles = {part: sorted({r.style for r in recs if r.style})
                    for part, recs in (("train", train), ("val", val), ("test", test))}
    write_json({**dataclasses.asdict(cfg), "device": device, "compute_dtype": str(dtype).removeprefix("torch."),
                "base_weights": quant, "n_train": len(train), "n_val": len(val), "n_test": len(test),
                "tasks": list(data.TASKS), "styles": split_styles}, cfg_path)  # the settings, then RUN_FACTS

    task_groups = [[t] for t in data.TASKS] if cfg.single_task else [list(data.TASKS)]
    head_sets = (data.head_label_sets() if cfg.not_stated == "class" else dict(data.LABEL_SETS))
    # the test split is read twice: as built, and with every hint line emptied (does the model read the report?);
    # the validation split once more with the final model, for design choices (never the test split)
    summaries, test_seqs = [], None
    preds = {"test": [dict() for _ in test], "test, no hints": [dict() for _ in test],
             "validation": [dict() for _ in val]}
    gates = {"test": unevidenced_all(test), "test, no hints": None, "validation": unevidenced_all(val)}
    try:
        for tasks in task_groups:
            label_sets = {t: head_sets[t] for t in tasks}
            sub = os.path.join(out, "single_task", tasks[0]) if cfg.single_task else out
            model, dtype, summary = train_one(cfg, sub, (train, val), label_sets, tok, device)
            test_seqs = test_seqs or {  # once, after train_one has checked --max-length
                "test": encode_all(test, cfg, tok), "test, no hints": encode_all(test, cfg, tok, data.TASKS),
                "validation": encode_all(val, cfg, tok)}
            for kind, seqs in test_seqs.items():
                for rec, p in zip(preds[kind], predict_records([model], seqs, tok.pad_id, cfg.eval_batch, dtype,
                                                               device, desc=kind, unevidenced=gates[kind])):
                    rec.update(p)
            summaries.append(summary)
            del model
    except SetupError as e:
        print(f"train_mtl.py: {e}", file=sys.stderr)
        return 2
    except TrainingError as e:
        print(f"train_mtl.py: training stopped: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ntrain_mtl.py: interrupted; the last finished optimizer step is saved, continue with "
              "the same command plus --resume", file=sys.stderr)
        return 130
    if cfg.single_task:
        write_json(head_sets, os.path.join(out, "label_maps.json"))

    records = test_records(test, preds["test"], data.TASKS)
    with open(os.path.join(out, "test_predictions.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    table = evaluate.table_one(records, data.LABEL_SETS)
    no_hints = evaluate.table_one(test_records(test, preds["test, no hints"], data.TASKS), data.LABEL_SETS)
    styles = evaluate.style_table(records, data.LABEL_SETS)
    val_records = test_records(val, preds["validation"], data.TASKS)
    with open(os.path.join(out, "val_predictions.jsonl"), "w") as f:  # the errors to study for a design choice
        f.writelines(json.dumps(r) + "\n" for r in val_records)
    val_table = evaluate.table_one(val_records, data.LABEL_SETS)
    metrics = {"models": len(summaries), "trainable_params": sum(s["trainable_params"] for s in summaries),
               "train_seconds": sum(s["train_seconds"] for s in summaries), "wall_seconds": time.time() - t_start,
               "peak_rss_mb": peak_rss_mb(), "best_val_loss": [s["best_val_loss"] for s in summaries],
               "test": table, "test_no_hints": no_hints, "test_by_style": styles, "val": val_table,
               "val_by_style": evaluate.style_table(val_records, data.LABEL_SETS),
               "per_epoch": json.load(open(os.path.join(out if not cfg.single_task else
                                                                        os.path.join(out, "single_task", "T"),
                                                                        "epochs.json")))}
    write_json(metrics, os.path.join(out, "metrics.json"))
    held_out = split_styles["test"] and not set(split_styles["test"]) & set(split_styles["train"])
    held = f"styles held out of training: {', '.join(split_styles['test'])}" if held_out else "stratified split"
    text = evaluate.format_table_one(table, title=f"Table I: test split (S_test = {len(test)}; {held})")
    if styles:
        text += "\n\n" + evaluate.format_style_table(styles)
    six = lambda t: f"{t['average_paper']['model']['macro_f1']:.3f}"
    text += (f"\n\nHints removed (every hint line 'withheld'): macro F1 {six(no_hints)} over the paper's six tasks, "
             f"{no_hints['average']['model']['macro_f1']:.3f} over all seven"
             f"\nValidation split ({len(val)} reports, for design choices): macro F1 {six(val_table)} over the paper's "
             f"six tasks, not-stated accuracy {val_table['not_stated']['model']:.3f}")
    atomic_write(os.path.join(out, "test_table.txt"), lambda f: f.write(text + "\n"), "w")
    print(text)
    print(f"\nwrote {out}/: adapter/, heads.safetensors, label_maps.json, config.json, epochs.json, metrics.json, "
          f"test_predictions.jsonl, val_predictions.jsonl, test_table.txt ({metrics['wall_seconds']:.0f} s)")
    return 0

# -----------------------------------------------------------------------------
# predict mode: new reports (no labels needed) -> one JSON record each

class RunError(Exception):
    """--run is not a finished train_mtl.py run; the message names the missing or unreadable file."""


def run_files(run, cfg, label_sets):
    """The files a finished run holds, written at the end of training (an interrupted run has none of them)."""
    from lora import CONFIG_NAME, WEIGHTS_NAME
    subs = [os.path.join(run, "single_task", t) for t in label_sets] if cfg.single_task else [run]
    adapter = [CONFIG_NAME, WEIGHTS_NAME] if cfg.adapter != "frozen" else []
    return [os.path.join(sub, name) for sub in subs
            for name in ["heads.safetensors"] + [os.path.join("adapter", a) for a in adapter]]


def read_json(path, what):
    """json.load, with a RunError naming the file when it is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunError(f"{path} not found: {what}") from None
    except (OSError, ValueError) as e:
        raise RunError(f"{path}: cannot read it ({e}); {what}") from None


def load_run(run):
    """Rebuild a trained run's classifier (or one per task for a single-task run).

    Every problem with the directory is a RunError naming the file: not a directory, not a run, a run that was
    interrupted before its final export (continue it with --resume), a file that is missing or unreadable.
    """
    if not os.path.isdir(run):
        raise RunError(f"{run}: {'not a directory' if os.path.exists(run) else 'no such directory'}; --run takes "
                       f"the --out directory of a train_mtl.py run")
    cfg_path = os.path.join(run, "config.json")
    cfg = TrainConfig.from_dict(read_json(cfg_path, f"{run} is not a train_mtl.py run"), cfg_path)
    started = [os.path.join(run, CHECKPOINT), os.path.join(run, "single_task", "T", CHECKPOINT)]  # T: the first task
    exported = [os.path.join(run, "label_maps.json"), os.path.join(run, "heads.safetensors")]
    if any(map(os.path.exists, started)) and not any(map(os.path.exists, exported)):
        raise RunError(f"{run}: training was interrupted before the final export ({CHECKPOINT} but no "
                       f"label_maps.json, heads.safetensors, adapter/); finish it with the same train command "
                       f"plus --resume")
    label_sets = read_json(os.path.join(run, "label_maps.json"), f"{run} is not a finished train_mtl.py run")
    missing = [p for p in run_files(run, cfg, label_sets) if not os.path.exists(p)]
    if missing:
        raise RunError(f"{run}: incomplete run, missing {', '.join(missing)}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    subs = ([(os.path.join(run, "single_task", t), {t: label_sets[t]}) for t in label_sets]
            if cfg.single_task else [(run, label_sets)])
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    models = []
    for sub, sets in subs:
        # build without LoRA, then load the saved one; the precision is this machine's (a run from a GPU or a
        # bf16 CPU also predicts at full speed on an AVX2 CPU)
        cfg_eval = dataclasses.replace(cfg, adapter="frozen", precision="fp32" if cfg.precision == "fp32" else "auto",
                                       quant=cfg.quant if cfg.quant in ("nf4", "fp32") else "auto")
        try:
            model, dtype = build_classifier(cfg_eval, sets, device)
        except (OSError, ValueError, KeyError) as e:  # the base model moved, or a setting does not fit it
            raise RunError(f"{cfg_path}: cannot rebuild the model ({type(e).__name__}: {e})") from None
        try:
            load_any(cfg.adapter, model.llama, os.path.join(sub, "adapter"))
            heads_path = os.path.join(sub, "heads.safetensors")
            missing, unexpected = model.load_state_dict(load_file(heads_path), strict=False)
        except (OSError, ValueError, KeyError, SafetensorError) as e:  # e.g. a damaged or truncated file
            raise RunError(f"{sub}: cannot load the trained adapter or heads ({type(e).__name__}: {e})") from None
        missing = [k for k in missing if not k.startswith("llama.")]
        if missing or unexpected:
            raise RunError(f"{heads_path}: missing {missing}, unexpected {unexpected}")
        models.append(model.eval())
    return cfg, models, dtype, device


def predict_main(argv):
    args = predict_parser().parse_args(argv)
    try:
        if args.out and os.path.abspath(args.out) == os.path.abspath(args.data):
            raise RunError(f"--out {args.out} is the --data file; it would be overwritten")
        if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
            raise RunError(f"--out {args.out}: directory {os.path.dirname(args.out)} does not exist")
        try:
            records = data.read_texts(args.data, skip_bad=args.skip_bad)
        except (OSError, UnicodeError) as e:  # no such file, a directory, not UTF-8
            raise RunError(f"--data {args.data}: {e}") from None
        if not records:
            raise RunError(f"--data {args.data}: no reports to label (empty file, or every line left out)")
        cfg, models, dtype, device = load_run(args.run)
        try:
            tok = load_tokenizer(cfg.model)
        except (OSError, ValueError) as e:
            raise RunError(f"{args.run}: the run's model {cfg.model}: {e}") from None
    except (RunError, data.DataError) as e:
        print(f"train_mtl.py predict: {e}", file=sys.stderr)
        return 2
    # one input per report; a multi-specimen report (per-site headers) also gets one input per site,
    # as its training records were labelled per site
    inputs = []  # (record index, site or None, Report)
    for i, r in enumerate(records):
        inputs.append((i, None, r))
        sites = [site for site, _ in data.split_sites(r.text) if site is not None]
        if len(sites) > 1:
            inputs += [(i, site, dataclasses.replace(r, site=site)) for site in sites]
    try:
        seqs = encode_all([rep for _, _, rep in inputs], cfg, tok)
    except ValueError as e:  # the run's max_length cannot hold the fixed blocks (or a site is missing)
        print(f"train_mtl.py predict: {args.data}: {e}", file=sys.stderr)
        return 2
    preds = predict_records(models, seqs, tok.pad_id, args.eval_batch, dtype, device, desc="predict",
                            unevidenced=unevidenced_all([rep for _, _, rep in inputs]))
    # the evidence the hint rules found, next to each answer: null = the rules saw no mention of the task
    for (_, _, rep), p in zip(inputs, preds):
        evidence = data.hints(data.as_read(rep.text, rep.site))
        for task in p:
            p[task]["evidence"] = evidence.get(task)
    out = [{"id": r.id, "predictions": None} for r in records]
    for (i, site, _), p in zip(inputs, preds):
        if site is None:
            out[i]["predictions"] = p
        else:
            out[i].setdefault("sites", {})[site] = p
    f = open(args.out, "w") if args.out else sys.stdout
    for rec in out:
        f.write(json.dumps(rec) + "\n")
    if args.out:
        f.close()
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["predict"]:
        return predict_main(argv[1:])
    return train_main(argv[1:] if argv[:1] == ["train"] else argv)


if __name__ == "__main__":
    sys.exit(main())
