"""
The staged embedder of the alignment paper: LLM2Vec's three stages over a bidirectional Llama.

    python train_align.py --data examples/pairs.jsonl --stages 1,2,3 --out runs/align
    python train_align.py --out runs/align --embed examples/pairs.jsonl --embed-part heldout --embed-stages 0,1,2,3

Stage 1 MNTP and stage 2 SimCSE use the radiology and pathology texts unpaired; stage 3 pulls each radiology
report towards its matched pathology report (supervised contrastive). Each stage trains a fresh LoRA over the
model with the previous stages' LoRAs merged into it. runs/align/stageK/ holds the PEFT-format adapter of stage K
and stage.json (base model, the checksums of the adapters it was trained on top of, settings, losses), which is
all that is needed to rebuild the merged model: base + stage 1 merged + ... + stage K merged. Stage 0 is the
untouched model (bidirectional, mean-pooled). --embed writes mean-pooled embeddings of a JSONL corpus to
stageK.npy with the ids in stageK.ids.json; evaluate.py probes reads them.

Interrupted (Ctrl-C, a crash, kill -9), the same command continues: finished stages with the same settings are
merged, not retrained, and the interrupted stage resumes from its last checkpoint (--save-every) exactly, since
batches, masks and dropout are functions of (seed, step). A stage started with other settings is not overwritten:
the differences are listed, and the stage directory must be deleted to start it over.

Defaults are LLM2Vec's published recipe for Llama-3, read from McGill-NLP/llm2vec (commit 312adcf):
  - stage 1 (train_configs/mntp/MetaLlama3.json, experiments/run_mntp.py): mask_token_type "blank" = the token
    "_" (Llama-3 has no mask token), mlm_probability 0.2 with transformers' 80/10/10 mask/random/keep collator,
    special tokens never masked, logits at i-1 predict token i (LlamaForCausalLM's shifted loss), batch 32,
    max length 512, 1000 steps, learning rate = the Trainer default 5e-5. Only the decoder gets the LoRA and
    only the adapter is saved, so the LM head (tied to the embeddings in SmolLM2 / Llama-3.2) stays frozen.
  - stage 2 (train_configs/simcse/MetaLlama3.json, run_simcse.py): simcse_dropout 0.3 (attention-probability
    dropout) + lora_dropout 0.05, mean pooling, loss_scale 20 (temperature 0.05), one direction, batch 128,
    max length 128, learning rate 3e-5, 1000 steps.
  - stage 3 (train_configs/supervised/MetaLlama3.json, run_supervised.py, loss/HardNegativeNLLLoss.py):
    in-batch negatives plus hard negatives appended as extra columns, loss_scale 50 (temperature 0.02),
    batch 64, max length 512, learning rate 2e-4 with 300 warm-up steps, 1000 steps.
  - every stage: LoRA r 16, alpha 2r = 32, dropout 0.05 on q, k, v, o, gate, up, down; the previous adapter
    is merged (merge_peft=True) before a fresh LoRA is added; bf16; AdamW, linear decay, gradient clip 1.0
    (Trainer defaults); instruction tokens attend but are left out of the mean (llm2vec.py's embed_mask).
The alignment paper does not say where it departs from this recipe; our defaults follow it. Our own choices:
  - stage 3 is symmetric (radiology -> pathology and back), as both sides are reports; LLM2Vec is one-way.
  - hard negatives (LLM2Vec's come pre-mined with its E5 data), one extra pathology report per pair, mined once
    before training like DPR's BM25 negatives, from the train part only, without labels (--hard-negatives):
    tfidf (default): the other pathology report most similar to the pair's own by TF-IDF cosine. On the train
      part of examples/pairs.jsonl 99.1% of these share the pair's tumour type: they teach patient matching
      (site, age, size), pushing apart exactly the same-type reports a tumour-type probe needs close together.
    lookalike: among the LOOKALIKE_K radiology reports most like the pair's own (TF-IDF), the one whose pathology
      is least like the pair's pathology: a case that reads the same on MRI but differs under the microscope
      (26.5% same type), so the negative teaches what the radiology text alone does not separate.
    random: another pair's pathology report (14.6% same type): more in-batch negatives, nothing harder.
    twin: the pathology report of another patient with the same identity as far as the reports write it (side,
      site, and age within AGE_TWIN years and sex where both state them; identity()): random patients in a batch
      are told apart by side, site and age long before by a diagnosis the MRI only hedges, and a twin takes that
      shortcut away, so the loss can only fall by reading the diagnosis (79% share the identity, 19% the type). A
      pair without a twin gets a random one.
    type: a pathology report of another tumour type (uses the tumor_type label, which the probe then predicts:
      a leak, for ablation only); none: in-batch negatives only.
  - the split (--holdout, --validation): a pair's part is a function of the sha256 of its id, so every stage
    trains on the train part only, and evaluate.py probes reads held-out patients the alignment never saw.
    --validation carves a third part for choosing settings such as --hard-negatives.
  - the learning rate decays linearly to 0 over --steps (the Trainer planned its decay over 3 epochs and was
    stopped at 1000 steps); batch sizes and step counts are flags because a CPU cannot run the paper's.
  - --lora-layers N (default 0 = all layers, as LLM2Vec) puts the LoRA on the last N layers only, so the
    backward pass stops there: a CPU demo shortcut, not part of the recipe. --layers N keeps the first N blocks
    (as train_mtl.py's): N/L of the time, and the embedding is read from block N.
"""

import argparse
import collections
import dataclasses
import functools
import hashlib
import json
import os
import pathlib
import re
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

import data
import heads
import llama
import lora
import losses

OBJECTIVES = {1: "mntp", 2: "simcse", 3: "supervised"}
# LLM2Vec's per-stage values (configs cited above), in stage order 1, 2, 3
STEPS, BATCH_SIZE, LEARNING_RATE, MAX_LENGTH, WARMUP = "1000,1000,1000", "32,128,64", "5e-5,3e-5,2e-4", \
    "512,128,512", "0,0,300"
LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
INSTRUCTION = "Given a brain MRI radiology report, retrieve the pathology report of the same patient"
STAGE_FILE, STATE_FILE = "stage.json", "train_state.pt"
HARD_NEGATIVES = ("none", "tfidf", "random", "lookalike", "twin", "type")
LOOKALIKE_K = 10   # radiology neighbours among which `lookalike` takes the pathology least like the pair's own
AGE_TWIN = 5       # years within which two patients' ages count as the same for `twin`
HOLDOUT = 0.3      # share of patients kept out of alignment for the probes (evaluate.py probes uses the same)


class SetupError(RuntimeError):
    """A problem with the flags, the data or the run directory; the message names the flag or file."""

# -----------------------------------------------------------------------------
# inputs

def encode_texts(tok, texts, max_length, instruction=""):
    """Right-padded (input_ids, attention_mask, pool_mask), each (B, T): BOS, instruction, text.

    pool_mask is 1 on the text's own tokens only: BOS and instruction take part in attention but not in the
    mean (LLM2Vec's embed_mask). The text is truncated so the whole sequence fits max_length.
    """
    prefix = tok.encode(instruction.strip() + "\n" if instruction else "", add_bos=True)
    if len(prefix) >= max_length:
        raise ValueError(f"max_length {max_length} leaves no room after the {len(prefix)}-token instruction")
    seqs = [(prefix, tok.encode(t, add_bos=False)[:max_length - len(prefix)]) for t in texts]
    T = max(len(p) + len(s) for p, s in seqs)
    ids = torch.full((len(texts), T), tok.pad_id, dtype=torch.long)
    att = torch.zeros((len(texts), T), dtype=torch.long)
    pool = torch.zeros((len(texts), T), dtype=torch.long)
    for i, (p, s) in enumerate(seqs):
        ids[i, :len(p) + len(s)] = torch.tensor(p + s, dtype=torch.long)
        att[i, :len(p) + len(s)] = 1
        pool[i, len(p):len(p) + len(s)] = 1
    return ids, att, pool


def embed(model, batch):
    """Mean-pooled bidirectional embeddings (B, D) of an encode_texts batch."""
    ids, att, pool = (t.to(model.embed_tokens.weight.device) for t in batch)
    hidden = model(ids, att, attention="bidirectional")   # (B, T, D)
    return heads.mean_pool(hidden, att, pool)          # (B, D)


def mask_token_id(tok, mask_token):
    """LLM2Vec's "blank" mask token for Llama-3: the ordinary token "_", which must be one token."""
    ids = tok.encode(mask_token, add_bos=False)
    if len(ids) != 1:
        raise ValueError(f"--mask-token {mask_token!r} is {len(ids)} tokens for this tokenizer; need exactly 1")
    return ids[0]

# -----------------------------------------------------------------------------
# the three objectives: each maps a list of examples to a scalar loss

def mntp_step(model, tok, texts, s, generator):
    """Stage 1, MNTP: mask 20% of the tokens, predict each masked token i from the output at i-1."""
    ids, att, _ = encode_texts(tok, texts, s["max_length"])
    special = {i for i in (tok.bos_id, tok.eos_id, tok.pad_id) if i is not None}
    masked, labels = losses.mntp_mask(ids, att, s["mask_token_id"], special, prob=s["mask_prob"],
                                      vocab_size=min(tok.vocab_size, model.config.vocab_size), generator=generator)
    device = model.embed_tokens.weight.device
    logits = model.lm_logits(model(masked.to(device), att.to(device), attention="bidirectional"))  # (B, T, V)
    return losses.mntp_loss(logits, labels.to(device))


def simcse_step(model, tok, texts, s, generator=None):
    """Stage 2, SimCSE: the same batch twice; the two dropout masks make the two views of each text differ."""
    batch = encode_texts(tok, texts, s["max_length"])
    return losses.simcse_loss(embed(model, batch), embed(model, batch), temperature=s["temperature"])


def supervised_step(model, tok, examples, s, generator=None):
    """Stage 3: radiology report (with the instruction) vs. its pathology report, in-batch + hard negatives.

    examples: list of (radiology, pathology, hard_negative_pathology or None).
    """
    rad, path, neg = zip(*examples)
    z_rad = embed(model, encode_texts(tok, rad, s["max_length"], s["instruction"]))
    z_path = embed(model, encode_texts(tok, path, s["max_length"]))
    z_neg = embed(model, encode_texts(tok, neg, s["max_length"])) if neg[0] is not None else None
    return losses.supervised_contrastive_loss(z_rad, z_path, temperature=s["temperature"], symmetric=True,
                                              z_neg=z_neg)


STEP_FNS = {1: mntp_step, 2: simcse_step, 3: supervised_step}

# -----------------------------------------------------------------------------
# the split: alignment trains on the train part; evaluate.py probes reads the held-out part

def split_part(pair_id, holdout, validation=0.0):
    """'heldout', 'validation' or 'train' for one pair, from the sha256 of its id alone: the same patient lands in
    the same part whatever the file's order or size. u in [0, 1): below holdout -> heldout, then validation."""
    u = int(hashlib.sha256(str(pair_id).encode("utf-8")).hexdigest()[:12], 16) / 16 ** 12
    return "heldout" if u < holdout else "validation" if u < holdout + validation else "train"


def check_split(holdout, validation):
    """Problems with --holdout / --validation (fractions of the pairs kept out of training)."""
    if not (0 <= holdout < 1 and 0 <= validation < 1 and holdout + validation < 1):
        return [f"--holdout {holdout} and --validation {validation} must be fractions in [0, 1) that leave "
                f"some pairs to train on"]
    return []


# -----------------------------------------------------------------------------
# training examples per stage

def unpaired_texts(pairs):
    """Stages 1-2: every radiology and every pathology report as a text of its own."""
    return [p.radiology for p in pairs] + [p.pathology for p in pairs]


def tfidf_rows(texts):
    """L2-normalised TF-IDF rows (n, vocab) of the texts: their dot products are cosine similarities."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    return TfidfVectorizer(sublinear_tf=True).fit_transform(texts)


_AGE = re.compile(r"\b(\d{1,3})[- ]year[- ]old\b|\b(\d{1,3}) ?(?:yo|y/o)\b", re.I)
_SEX = re.compile(r"\b(man|male|woman|female|boy|girl)\b", re.I)
_SIDE = re.compile(r"\b(left|right|bilateral)\b", re.I)
_SITE = re.compile(r"\b(frontal|temporal|parietal|occipital|insula|cerebell|thalam|brainstem|pons|medulla|"
                   r"ventric|sellar|suprasellar|pineal|convexity|falx|parasagittal|corpus callosum|spinal)", re.I)


Identity = collections.namedtuple("Identity", "age sex side site")


def identity(text):
    """Identity(age, sex, side, site) as a report writes them, each None where it does not: the first of each."""
    age, sex = _AGE.search(text), _SEX.search(text)
    side, site = _SIDE.search(text), _SITE.search(text)
    return Identity(int(next(g for g in age.groups() if g)) if age else None,
                    {"man": "M", "male": "M", "boy": "M"}.get(sex.group(1).lower(), "F") if sex else None,
                    side.group(1).lower() if side else None, site.group(1).lower() if site else None)


def _same_patient(a, b):
    """Whether two identities agree on side and site, and on age (within AGE_TWIN) and sex where both state them."""
    return ((a.side, a.site) == (b.side, b.site)
            and (a.age is None or b.age is None or abs(a.age - b.age) <= AGE_TWIN)
            and (a.sex is None or b.sex is None or a.sex == b.sex))


def hard_negatives(pairs, how, seed=42):
    """Index of each pair's hard-negative pair (see the module docstring), or None for `none`."""
    if how == "none":
        return None
    if how == "tfidf":
        P = tfidf_rows([p.pathology for p in pairs])  # (n, vocab)
        sim = (P @ P.T).toarray()                      # (n, n) cosine
        np.fill_diagonal(sim, -np.inf)
        return sim.argmax(1).tolist()
    if how in ("random", "lookalike", "twin") and len(pairs) < 2:
        raise ValueError(f"--hard-negatives {how} needs at least two pairs")
    rng = np.random.default_rng(seed)

    def another(i):  # a random other pair, never i itself
        return int((i + rng.integers(1, len(pairs))) % len(pairs))

    if how == "random":
        return [another(i) for i in range(len(pairs))]
    if how == "twin":  # what the pathology reports write: the positive and the negative are both pathology
        ids = [identity(p.pathology) for p in pairs]
        out = []
        for i, a in enumerate(ids):
            known = a.side is not None and a.site is not None
            twins = [j for j, b in enumerate(ids) if j != i and _same_patient(a, b)] if known else []
            out.append(int(rng.choice(twins)) if twins else another(i))
        return out
    if how == "lookalike":
        R = tfidf_rows([p.radiology for p in pairs])
        P = tfidf_rows([p.pathology for p in pairs])
        rad_sim, path_sim = (R @ R.T).toarray(), (P @ P.T).toarray()   # (n, n) each
        np.fill_diagonal(rad_sim, -np.inf)
        k = min(LOOKALIKE_K, len(pairs) - 1)
        near = np.argsort(-rad_sim, axis=1)[:, :k]                     # (n, k) radiology look-alikes
        return [int(row[np.argmin(path_sim[i, row])]) for i, row in enumerate(near)]
    if how == "type":
        types = [(p.labels or {}).get("tumor_type") for p in pairs]
        if any(t is None for t in types):
            raise ValueError("--hard-negatives type: every pair needs labels.tumor_type")
        out = []
        for t in types:
            others = [j for j, u in enumerate(types) if u != t]
            if not others:
                raise ValueError("--hard-negatives type: all pairs have the same tumor_type")
            out.append(int(rng.choice(others)))
        return out
    raise ValueError(f"--hard-negatives must be one of {', '.join(HARD_NEGATIVES)}, got {how!r}")


def stage_examples(stage, pairs, s):
    """The list a stage samples its batches from."""
    if stage in (1, 2):
        return unpaired_texts(pairs)
    neg = hard_negatives(pairs, s["hard_negatives"], s["seed"])
    return [(p.radiology, p.pathology, None if neg is None else pairs[neg[i]].pathology) for i, p in enumerate(pairs)]


@functools.lru_cache(maxsize=4)
def _permutation(n, seed, epoch):
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(n, batch_size, step, seed):
    """The batch of `step`: a fresh seeded permutation per epoch, incomplete tail dropped (no duplicate in a
    batch, which would be a false negative). A function of the step alone, so a resumed run sees the same data."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"batch size {batch_size} is larger than the {n} training examples")
    epoch, b = divmod(step, per_epoch)
    return _permutation(n, seed, epoch)[b * batch_size:(b + 1) * batch_size].tolist()

# -----------------------------------------------------------------------------
# checkpoints: stageK/ = PEFT adapter + stage.json (+ optimizer state while unfinished)

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_stage(model, stage_dir, meta, optimizer=None, scheduler=None):
    """Write the adapter, the optimizer state (unfinished stages) and stage.json, in that order, each atomically.

    stage.json names the adapter's sha256, so a crash between two files leaves a detectable mismatch and the
    previous stage.json (with its own checksum) otherwise stays valid.
    """
    stage_dir = pathlib.Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    with lora.no_interrupt():
        tmp_dir = stage_dir / f".adapter.tmp{os.getpid()}"
        lora.save_adapter(model, tmp_dir, base_model_name_or_path=meta["base_model"])
        for name in (lora.CONFIG_NAME, lora.WEIGHTS_NAME):
            os.replace(tmp_dir / name, stage_dir / name)
        tmp_dir.rmdir()
        meta = dict(meta, adapter_sha256=sha256(stage_dir / lora.WEIGHTS_NAME))
        if optimizer is not None and not meta["complete"]:
            state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            lora.atomic_write(stage_dir / STATE_FILE, lambda f: torch.save(state, f))
        lora.atomic_write(stage_dir / STAGE_FILE, lambda f: f.write(json.dumps(meta, indent=1)), "w")
        if meta["complete"] and (stage_dir / STATE_FILE).exists():
            (stage_dir / STATE_FILE).unlink()


def read_stage(out, stage):
    """stage.json of stageK, checked against its adapter file; None if the stage was never saved."""
    stage_dir = pathlib.Path(out) / f"stage{stage}"
    if not (stage_dir / STAGE_FILE).exists():
        return None
    try:
        meta = json.loads((stage_dir / STAGE_FILE).read_text())
        sha = meta["adapter_sha256"]
    except (ValueError, KeyError) as e:
        raise SetupError(f"{stage_dir / STAGE_FILE}: unreadable ({type(e).__name__}: {e}); rerun stage {stage}") \
            from None
    weights = stage_dir / lora.WEIGHTS_NAME
    if not weights.exists() or sha256(weights) != sha:
        raise SetupError(f"{weights}: missing or does not match the adapter_sha256 in {stage_dir / STAGE_FILE}; "
                         f"rerun stage {stage}")
    return meta


def previous_chain(out, stage):
    """[{stage, adapter_sha256}] of the finished stages 1..stage-1 that stage `stage` builds on."""
    chain = []
    for k in range(1, stage):
        meta = read_stage(out, k)
        if meta is None or not meta["complete"]:
            raise SetupError(f"{pathlib.Path(out) / f'stage{k}'}: stage {k} is "
                             f"{'missing' if meta is None else 'unfinished'}; stage {stage} needs stages 1..{stage - 1}")
        chain.append({"stage": k, "adapter_sha256": meta["adapter_sha256"]})
    return chain


def apply_stage(model, out, stage, allow_unfinished=False):
    """Merge stageK's adapter into the model (which must already hold stages 1..K-1)."""
    meta = read_stage(out, stage)
    stage_dir = pathlib.Path(out) / f"stage{stage}"
    if meta is None:
        raise SetupError(f"{stage_dir}: no checkpoint for stage {stage}")
    if not meta["complete"]:
        if not allow_unfinished:
            raise SetupError(f"{stage_dir}: stage {stage} is unfinished ({meta['steps_done']}/{meta['steps']} steps)")
        print(f"note: stage {stage} is unfinished ({meta['steps_done']}/{meta['steps']} steps); using it as is",
              file=sys.stderr)
    blocks = meta["settings"].get("layers") or model.config.num_hidden_layers
    if blocks != len(model.layers):
        raise SetupError(f"{stage_dir}: stage {stage} was trained on the first {blocks} blocks, not "
                         f"{len(model.layers)}: pass --layers {blocks}")
    if meta["previous"] != previous_chain(out, stage):
        raise SetupError(f"{stage_dir / STAGE_FILE}: stage {stage} was trained on top of other versions of the "
                         f"earlier stages than the ones in {out} now; rerun stage {stage}")
    lora.load_adapter(model, stage_dir, dropout=0.0)
    lora.merge_lora(model, remove=True)
    return meta


def load_stage_model(out, stage, model_path=None, dtype=torch.float32, device="cpu", allow_unfinished=False,
                     layers=None):
    """Rebuild the model after `stage` (0 = untouched): the base (its first `layers` blocks) with the LoRAs of
    stages 1..stage merged."""
    if model_path is None and stage > 0:
        model_path = read_stage(out, 1)["base_model"]
    if layers is None and stage > 0:
        layers = read_stage(out, 1)["settings"].get("layers")
    model = llama.first_blocks(llama.load_model(llama.resolve_model(model_path), dtype=dtype, device=device), layers)
    for k in range(1, stage + 1):
        apply_stage(model, out, k, allow_unfinished=allow_unfinished and k == stage)
    return model

# -----------------------------------------------------------------------------
# training one stage

def set_attention_dropout(model, p):
    """SimCSE's attention-probability dropout (LLM2Vec: simcse_dropout, passed as config.attention_dropout).
    Every llama.Attention reads config.attention_dropout in training mode; the config object is shared."""
    model.config.attention_dropout = p


def inject_stage_lora(model, s):
    """A fresh LoRA on every layer (LLM2Vec), or on the last --lora-layers only: a CPU shortcut, since then the
    backward pass stops at the first adapted layer."""
    model.requires_grad_(False)  # the base, embeddings and LM head stay frozen
    n = len(model.layers)
    first = 0 if not s["lora_layers"] else max(0, n - s["lora_layers"])
    for k in range(first, n):
        lora.inject_lora(model.layers[k], targets=s["lora_targets"], r=s["lora_r"], alpha=s["lora_alpha"],
                         dropout=s["lora_dropout"])


def differences(old, meta):
    """What differs between a saved stage.json and this run's: settings and base model, one line each."""
    now = dict(meta["settings"], base_model=meta["base_model"])
    then = dict(old["settings"], base_model=old["base_model"])
    return [f"{k}: {then.get(k)!r} in the checkpoint, {now.get(k)!r} now" for k in sorted(set(now) | set(then))
            if now.get(k) != then.get(k)]


def already_done(out, stage, s, base_model):
    """True when stageK is finished, with these settings, on this base and on the earlier stages now in `out`:
    running the same command again skips it (and resumes the stage that was interrupted)."""
    try:
        old = read_stage(out, stage)
    except SetupError:
        return False
    meta = {"settings": s, "base_model": str(base_model)}
    return bool(old and old["complete"] and not differences(old, meta)
                and old["previous"] == previous_chain(out, stage))


def resumable(out, stage, meta):
    """The unfinished checkpoint of stageK that this run continues, or None to start the stage afresh.

    Resuming is exact: the batches, the dropout masks and the MNTP masking are functions of (seed, step), and the
    optimizer and scheduler states are saved with the adapter. A checkpoint with other settings or another base
    model is refused with the differences listed (nothing is overwritten); one built on earlier stages that have
    since been retrained is stale and starts afresh.
    """
    stage_dir = pathlib.Path(out) / f"stage{stage}"
    try:
        old = read_stage(out, stage)
    except SetupError as e:  # a damaged checkpoint of this very stage: what read_stage advises is to rerun it
        print(f"note: {e}; starting stage {stage} afresh", file=sys.stderr)
        return None
    if not old or old["complete"] or not (stage_dir / STATE_FILE).exists():
        return None
    if old["previous"] != meta["previous"]:
        print(f"note: {stage_dir} holds an unfinished stage {stage} trained on earlier stages that have changed "
              f"since; starting it afresh", file=sys.stderr)
        return None
    changed = differences(old, meta)
    if changed:
        raise SetupError(f"{stage_dir}: stage {stage} is unfinished ({old['steps_done']}/{old['steps']} steps) and was "
                         f"started with other settings; rerun with its settings to resume it, or delete {stage_dir} "
                         f"to start it over:\n  " + "\n  ".join(changed))
    return old


def linear_schedule(warmup, total):
    """LR factor: linear warm-up over `warmup` steps (a fraction of `total` if < 1, as train_mtl.py reads it), then
    linear decay to 0 at `total` (Trainer's "linear")."""
    warmup = int(warmup) if warmup >= 1 else round(warmup * total)
    return lambda step: (step + 1) / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))


def train_stage(model, tok, stage, examples, s, out, base_model):
    """Train stage `stage`'s LoRA over `model` (earlier stages merged), save it, and merge it in."""
    stage_dir = pathlib.Path(out) / f"stage{stage}"
    torch.manual_seed(s["seed"])
    inject_stage_lora(model, s)
    set_attention_dropout(model, s["simcse_dropout"] if stage == 2 else 0.0)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=s["lr"], weight_decay=s["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(s["warmup"], s["steps"]))
    meta = {"stage": stage, "objective": OBJECTIVES[stage], "base_model": str(base_model),
            "previous": previous_chain(out, stage), "settings": s, "steps": s["steps"], "steps_done": 0,
            "complete": False, "loss": [], "seconds": 0.0}

    old = resumable(out, stage, meta)
    if old:
        lora.load_adapter(model, stage_dir)  # into the LoRA just injected (same modules)
        state = torch.load(stage_dir / STATE_FILE, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        meta.update(steps_done=old["steps_done"], loss=old["loss"], seconds=old["seconds"])
        print(f"stage {stage}: resuming at step {old['steps_done']}/{s['steps']}")

    step_fn, device = STEP_FNS[stage], model.embed_tokens.weight.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=s["compute"] == "bf16")
    model.train()
    start, t0 = meta["steps_done"], time.time() - meta["seconds"]
    bar = tqdm(range(start, s["steps"]), desc=f"stage {stage} {OBJECTIVES[stage]}", initial=start, total=s["steps"])
    try:
        for step in bar:
            batch = [examples[i] for i in batch_indices(len(examples), s["batch_size"], step, s["seed"])]
            torch.manual_seed(s["seed"] * 1_000_003 + step)  # dropout masks, reproducible on resume
            generator = torch.Generator().manual_seed(s["seed"] * 1_000_003 + step)  # MNTP masking
            with autocast:
                loss = step_fn(model, tok, batch, s, generator)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, s["max_grad_norm"])
            with lora.no_interrupt():  # the update and its record together: Ctrl-C saves a finished step
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                meta["loss"].append(round(loss.item(), 5))
                meta.update(steps_done=step + 1, seconds=round(time.time() - t0, 1))
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if (step + 1) % s["save_every"] == 0 and step + 1 < s["steps"]:
                save_stage(model, stage_dir, meta, optimizer, scheduler)
    except KeyboardInterrupt:
        bar.close()
        save_stage(model, stage_dir, meta, optimizer, scheduler)
        print(f"\ninterrupted: stage {stage} saved at step {meta['steps_done']}/{s['steps']} in {stage_dir}; "
              f"the same command resumes it", file=sys.stderr)
        raise
    bar.close()
    meta["complete"] = True
    save_stage(model, stage_dir, meta)
    lora.merge_lora(model, remove=True)
    set_attention_dropout(model, 0.0)
    model.eval()
    first, last = np.mean(meta["loss"][:10]), np.mean(meta["loss"][-10:])
    print(f"stage {stage} {OBJECTIVES[stage]}: {s['steps']} steps in {meta['seconds']:.0f}s, "
          f"loss {first:.4f} (first 10) -> {last:.4f} (last 10), saved {stage_dir}")
    return meta

# -----------------------------------------------------------------------------
# embedding a corpus

@torch.no_grad()
def embed_corpus(model, tok, texts, max_length, instruction="", batch_size=16, dtype=torch.float32, desc="embedding"):
    """(N, D) float32 mean-pooled embeddings, in input order (batched by length to save padding)."""
    model.eval()
    out = [None] * len(texts)
    device = model.embed_tokens.weight.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        for idx in heads.length_batches([len(t) for t in texts], batch_size, desc):
            z = embed(model, encode_texts(tok, [texts[i] for i in idx], max_length, instruction)).float().cpu()
            for i, row in zip(idx, z):
                out[i] = row
    return torch.stack(out).numpy()


def save_embeddings(path, ids, X):
    """stageK.npy + stageK.ids.json, each written atomically."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lora.atomic_write(path.with_suffix(".ids.json"), lambda f: f.write(json.dumps(ids)), "w")
    lora.atomic_write(path, lambda f: np.save(f, X))


def run_embed(args, tok, base):
    """Embed --embed for each of --embed-stages, merging the stages in one after another."""
    records = data.read_texts(args.embed, args.field, skip_bad=args.skip_bad)
    if args.embed_part != "all":
        records = [r for r in records if split_part(r.id, args.holdout, args.validation) == args.embed_part]
        print(f"embedding the {args.embed_part} part: {len(records)} records", file=sys.stderr)
        if not records:
            raise SetupError(f"--embed {args.embed}: no record in the {args.embed_part} part (--holdout "
                             f"{args.holdout}, --validation {args.validation})")
    ids, texts = [r.id for r in records], [r.text for r in records]
    if args.embed_limit:
        ids, texts = ids[:args.embed_limit], texts[:args.embed_limit]
    stages = sorted(set(parse_ints(args.embed_stages)))
    model = llama.first_blocks(llama.load_model(base, dtype=weight_dtype(args), device=args.device), args.layers)
    emb_dir = pathlib.Path(args.emb_dir or pathlib.Path(args.out) / "embeddings")
    merged = 0
    for stage in stages:
        while merged < stage:
            merged += 1
            apply_stage(model, args.out, merged, allow_unfinished=merged == max(stages))
        X = embed_corpus(model, tok, texts, args.embed_max_length, args.instruction, args.eval_batch,
                         compute_dtype(args)[0], desc=f"embedding stage {stage}")
        save_embeddings(emb_dir / f"stage{stage}.npy", ids, X)
        print(f"stage {stage}: {X.shape} embeddings -> {emb_dir / f'stage{stage}.npy'}")

# -----------------------------------------------------------------------------
# command line

def compute_dtype(args):
    """(dtype, why) of --precision on --device: the project's one precision policy (llama.choose_precision)."""
    return llama.choose_precision(args.precision, args.device)


def weight_dtype(args):
    """The base weights' dtype: --quant, or with auto the compute dtype."""
    return {"bf16": torch.bfloat16, "fp32": torch.float32}.get(args.quant) or compute_dtype(args)[0]


def parse_ints(text):
    return [int(x) for x in str(text).split(",") if x.strip()]


def per_stage(text, stage, cast):
    """One value for all stages, or three comma-separated values for stages 1, 2, 3."""
    values = [cast(v) for v in str(text).split(",")]
    if len(values) not in (1, 3):
        raise ValueError(f"expected one value or three (stages 1,2,3), got {text!r}")
    return values[0] if len(values) == 1 else values[stage - 1]


def stage_settings(args, stage, tok):
    """Everything that defines stage `stage`'s training run (saved in stage.json; resume requires a match)."""
    return {
        "steps": per_stage(args.steps, stage, int), "batch_size": per_stage(args.batch_size, stage, int),
        "lr": per_stage(args.lr, stage, float), "max_length": per_stage(args.max_length, stage, int),
        "warmup": per_stage(args.warmup, stage, float), "weight_decay": args.weight_decay,
        "max_grad_norm": args.max_grad_norm, "seed": args.seed, "save_every": args.save_every,
        "compute": "bf16" if compute_dtype(args)[0] == torch.bfloat16 else "fp32",
        "lora_r": args.lora_r, "lora_alpha": args.lora_alpha, "lora_dropout": args.lora_dropout,
        "lora_targets": args.lora_targets.split(","), "lora_layers": args.lora_layers,
        "layers": args.layers,
        "mask_token": args.mask_token, "mask_token_id": mask_token_id(tok, args.mask_token) if stage == 1 else None,
        "mask_prob": args.mask_prob, "simcse_dropout": args.simcse_dropout,
        "temperature": {1: None, 2: args.simcse_temperature, 3: args.supervised_temperature}[stage],
        "hard_negatives": args.hard_negatives if stage == 3 else None,
        "holdout": args.holdout, "validation": args.validation,
        "instruction": args.instruction if stage == 3 else None,
        "data": str(args.data),
    }


@dataclasses.dataclass
class AlignConfig:
    """The settings of a train_align.py run: one field per flag of build_parser, read as args.lr. The defaults are
    build_parser's (--help shows them); the per-stage flags stay text, one value or three (per_stage)."""
    data: str | None
    skip_bad: bool
    stages: str | None
    out: str
    model: str | None
    precision: str
    quant: str
    device: str
    seed: int
    # optimisation
    steps: str
    batch_size: str
    lr: str
    max_length: str
    warmup: str
    weight_decay: float
    max_grad_norm: float
    save_every: int
    # LoRA and objectives
    lora_r: int
    lora_alpha: float
    lora_dropout: float
    lora_targets: str
    lora_layers: int | None
    layers: int | None
    mask_token: str
    mask_prob: float
    simcse_dropout: float
    simcse_temperature: float
    supervised_temperature: float
    hard_negatives: str
    instruction: str
    # split
    holdout: float
    validation: float
    # embedding
    embed: str | None
    field: str
    embed_stages: str
    emb_dir: str | None
    embed_max_length: int
    eval_batch: int
    embed_limit: int
    embed_part: str


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help="pairs.jsonl: id, radiology, pathology, labels")
    p.add_argument("--skip-bad", action="store_true", help="leave out bad lines of --data / --embed (listed)")
    p.add_argument("--stages", help="stages to train, e.g. 1,2,3 or 3 (needs stages 1-2 in --out); "
                                    "default 1,2,3, or none when --embed is given")
    p.add_argument("--out", required=True, help="run directory: stage1/ stage2/ stage3/ embeddings/")
    p.add_argument("--model", help="HF-layout Llama checkpoint dir (default: the SmolLM2-135M demo model)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="compute dtype; auto: bf16 autocast (LLM2Vec) where the hardware computes bf16 natively, "
                        "else fp32 (llama.choose_precision)")
    p.add_argument("--quant", choices=["auto", "bf16", "fp32"], default="auto",
                   help="base weights in memory; auto: the compute dtype of --precision")
    # the old spellings: --bf16 / --no-bf16 for --precision, --dtype for --quant
    p.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help=argparse.SUPPRESS)
    p.add_argument("--no-bf16", dest="precision", action="store_const", const="fp32", help=argparse.SUPPRESS)
    p.add_argument("--dtype", dest="quant", type=lambda v: {"float32": "fp32", "bfloat16": "bf16"}.get(v, v),
                   choices=["fp32", "bf16"], help=argparse.SUPPRESS)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=42)
    # flags are spelled with dashes like train_mtl.py's; the underscore spelling of LLM2Vec's config keys also works
    g = p.add_argument_group("optimisation (one value, or three for stages 1,2,3; LLM2Vec's values)")
    g.add_argument("--steps", default=STEPS)
    g.add_argument("--batch-size", "--batch_size", default=BATCH_SIZE)
    g.add_argument("--lr", default=LEARNING_RATE)
    g.add_argument("--max-length", "--max_length", default=MAX_LENGTH)
    g.add_argument("--warmup", default=WARMUP, help="linear warm-up: a number of steps (>= 1) or a fraction of them")
    g.add_argument("--weight-decay", "--weight_decay", type=float, default=0.0)
    g.add_argument("--max-grad-norm", "--max_grad_norm", type=float, default=1.0)
    g.add_argument("--save-every", "--save_every", type=int, default=50, help="checkpoint every N steps (Ctrl-C also saves)")
    g = p.add_argument_group("LoRA and objectives")
    g.add_argument("--lora-r", "--lora_r", type=int, default=16)
    g.add_argument("--lora-alpha", "--lora_alpha", type=float, default=32)
    g.add_argument("--lora-dropout", "--lora_dropout", type=float, default=0.05)
    g.add_argument("--lora-targets", "--lora_targets", default=LORA_TARGETS)
    g.add_argument("--lora-layers", "--lora_layers", type=int, default=None,
                   help="LoRA on the last N blocks only (default: all, LLM2Vec)")
    g.add_argument("--layers", type=int, default=None,
                   help="the embedder is the first N blocks (default: all, LLM2Vec); a CPU shortcut, as in "
                        "train_mtl.py: N/L of the time, and a middle layer of the demo model embeds reports better")
    g.add_argument("--mask-token", "--mask_token", default="_", help="MNTP mask token (Llama-3 has none)")
    g.add_argument("--mask-prob", "--mask_prob", type=float, default=0.2, help="MNTP masking probability")
    g.add_argument("--simcse-dropout", "--simcse_dropout", type=float, default=0.3, help="attention dropout in stage 2")
    g.add_argument("--simcse-temperature", "--simcse_temperature", type=float, default=0.05, help="cos * 20")
    g.add_argument("--supervised-temperature", "--supervised_temperature", type=float, default=0.02, help="cos * 50")
    g.add_argument("--hard-negatives", "--hard_negatives", default="tfidf", choices=HARD_NEGATIVES,
                   help="stage 3's extra negative per pair: tfidf (most similar pathology), random (another pair's), "
                        "lookalike (radiology look-alike with the least similar pathology), twin (another patient "
                        "of the same side, site, age and sex), type (labels: ablation "
                        "only), none (in-batch only)")
    g.add_argument("--instruction", default=INSTRUCTION,
                   help="stage 3 / --embed: prefix of radiology texts, attended to but not pooled")
    g = p.add_argument_group("split (by sha256 of the id; evaluate.py probes takes the same flags)")
    g.add_argument("--holdout", type=float, default=HOLDOUT,
                   help="share of pairs held out of every stage for the probes (0: train on all, the old behaviour)")
    g.add_argument("--validation", type=float, default=0.0,
                   help="share of pairs also kept out, for choosing settings (e.g. --hard-negatives) without "
                        "looking at the held-out part")
    g = p.add_argument_group("embedding")
    g.add_argument("--embed", help="JSONL corpus to embed (one record per line with id and --field)")
    g.add_argument("--field", default="radiology", help="the text field of --embed")
    g.add_argument("--embed-stages", "--embed_stages", default="0,1,2,3", help="stages to embed with (0 = untouched model)")
    g.add_argument("--emb-dir", "--emb_dir", help="where stageK.npy go (default OUT/embeddings)")
    g.add_argument("--embed-max-length", "--embed_max_length", type=int, default=512)
    g.add_argument("--eval-batch", "--embed-batch-size", "--embed_batch_size", dest="eval_batch", type=int, default=16,
                   help="reports per embedding batch")
    g.add_argument("--embed-limit", "--embed_limit", type=int, default=0, help="embed only the first N records (0 = all)")
    g.add_argument("--embed-part", "--embed_part", choices=["all", "train", "validation", "heldout"], default="all",
                   help="embed only the records of this part of the --holdout / --validation split")
    return p


def check_settings(s, stage, n_examples, tok):
    """Problems with one stage's settings (flags), found before any model is loaded."""
    problems = []
    for key in ("steps", "batch_size", "max_length", "save_every", "lora_r"):
        if s[key] < 1:
            problems.append(f"--{key.replace('_', '-')} must be >= 1, got {s[key]} (stage {stage})")
    for key, value in (("lr", s["lr"]), ("lora-alpha", s["lora_alpha"]), ("temperature", s["temperature"] or 1)):
        if not value > 0:
            problems.append(f"--{key} must be > 0, got {value} (stage {stage})")
    for key in ("lora_dropout", "simcse_dropout", "mask_prob"):
        if not 0 <= s[key] < 1:
            problems.append(f"--{key.replace('_', '-')} must be in [0, 1), got {s[key]}")
    if s["warmup"] < 0:
        problems.append(f"--warmup must be >= 0 steps, got {s['warmup']} (stage {stage})")
    unknown = sorted(set(s["lora_targets"]) - set(LORA_TARGETS.split(",")))
    if unknown:
        problems.append(f"--lora-targets: unknown projection(s) {unknown}; choose from {LORA_TARGETS}")
    if stage > 1 and s["batch_size"] < 2:
        problems.append(f"--batch-size must be >= 2 in stage {stage}: the other texts of a batch are the negatives")
    if s["batch_size"] > n_examples:
        problems.append(f"--batch-size {s['batch_size']} is larger than the {n_examples} training examples of "
                        f"stage {stage}")
    prefix = len(tok.encode(s["instruction"].strip() + "\n" if s["instruction"] else "", add_bos=True))
    if s["max_length"] <= prefix:
        problems.append(f"--max-length {s['max_length']} leaves no room for text after the {prefix} tokens of BOS "
                        f"and instruction (stage {stage})")
    return problems


def setup(args):
    """Every check that can run before training, each problem named: stages, model, data, settings, earlier
    stages. Returns (stages, base, tok, pairs, {stage: (settings, examples)})."""
    try:
        stages = parse_ints(args.stages) if args.stages is not None else ([] if args.embed else [1, 2, 3])
        embed_stages = sorted(set(parse_ints(args.embed_stages))) if args.embed else []
    except ValueError:
        raise SetupError(f"--stages / --embed-stages take comma-separated stage numbers, got {args.stages!r} / "
                         f"{args.embed_stages!r}") from None
    if any(k not in OBJECTIVES for k in stages):
        raise SetupError(f"--stages: only 1, 2, 3 exist, got {args.stages}")
    if any(k not in (0, *OBJECTIVES) for k in embed_stages):
        raise SetupError(f"--embed-stages: only 0 (the untouched model), 1, 2, 3 exist, got {args.embed_stages}")
    stages = sorted(set(stages))
    if stages and stages != list(range(stages[0], stages[-1] + 1)):
        raise SetupError(f"--stages {args.stages}: each stage needs the one before it; no gaps")
    if stages and not args.data:
        raise SetupError("--data is required to train")
    if stages and stages[0] > 1:
        previous_chain(args.out, stages[0])  # the finished earlier stages this run builds on
    if not (stages and stages[0] == 1) and pathlib.Path(args.out, "stage1", STAGE_FILE).exists():
        first = read_stage(args.out, 1)  # the base this run was trained on, and how many of its blocks
        args.model = args.model or first["base_model"]
        args.layers = args.layers or first["settings"].get("layers")
    try:
        base = llama.resolve_model(args.model)
        tok = llama.load_tokenizer(base)
    except (OSError, ValueError) as e:
        raise SetupError(f"--model {args.model or '(demo model)'}: {e}") from None
    pairs, plan = None, {}
    problems = check_split(args.holdout, args.validation) if stages or (args.embed and args.embed_part != "all") else []
    blocks = llama.LlamaConfig.from_json(base / "config.json").num_hidden_layers
    if args.layers is not None and not 1 <= args.layers <= blocks:
        problems.append(f"--layers {args.layers}: the model has {blocks} blocks")
    if stages:
        try:
            pairs = data.read_pairs(args.data, skip_bad=args.skip_bad)
        except (OSError, UnicodeError) as e:  # no such file, a directory, not UTF-8 (bad lines: data.DataError)
            raise SetupError(f"--data {args.data}: {e}") from None
        if not pairs:
            raise SetupError(f"--data {args.data}: no pairs to train on (empty file, or every line left out)")
        if not problems:
            parts = [split_part(p.id, args.holdout, args.validation) for p in pairs]
            pairs = [p for p, part in zip(pairs, parts) if part == "train"]
            print(f"train_align.py: training on {len(pairs)} of {len(parts)} pairs ({parts.count('heldout')} held "
                  f"out, {parts.count('validation')} validation; --holdout {args.holdout}, --validation "
                  f"{args.validation})", file=sys.stderr)
            if not pairs:
                raise SetupError(f"--data {args.data}: no pair falls in the train part (--holdout {args.holdout}, "
                                 f"--validation {args.validation})")
        for stage in stages:
            try:
                s = dict(stage_settings(args, stage, tok), data_sha256=sha256(args.data))  # the same file, unedited
                examples = stage_examples(stage, pairs, s)
            except ValueError as e:  # a per-stage value that is not a number, --mask-token, --hard-negatives type
                problems.append(f"stage {stage}: {e}")
                continue
            problems += check_settings(s, stage, len(examples), tok)
            plan[stage] = (s, examples)
    if embed_stages and max(embed_stages) > 0 and (not stages or stages[-1] < max(embed_stages)):
        previous_chain(args.out, max(embed_stages))      # stages 1..K-1 finished ...
        if read_stage(args.out, max(embed_stages)) is None:  # ... and stage K saved (it may be unfinished)
            raise SetupError(f"{pathlib.Path(args.out) / f'stage{max(embed_stages)}'}: no checkpoint for stage "
                             f"{max(embed_stages)} to embed with")
    if problems:  # the same problem in several stages is listed once
        raise SetupError("cannot start training:\n  - " + "\n  - ".join(dict.fromkeys(problems)))
    return stages, base, tok, pairs, plan


def main(argv=None):
    """Returns 0, or 2 after printing the problems (bad flags, data, model or run directory) to stderr."""
    args = AlignConfig(**vars(build_parser().parse_args(argv)))
    try:
        stages, base, tok, pairs, plan = setup(args)
        print(f"train_align.py: {compute_dtype(args)[1]}; base weights "
              f"{'bf16' if weight_dtype(args) == torch.bfloat16 else 'fp32'}", file=sys.stderr)
        if stages:
            model = load_stage_model(args.out, stages[0] - 1, base, dtype=weight_dtype(args),
                                     device=args.device, layers=args.layers)
            for stage in stages:
                s, examples = plan[stage]
                if already_done(args.out, stage, s, base):
                    apply_stage(model, args.out, stage)
                    print(f"stage {stage}: already finished with these settings in {args.out}; merged, not retrained")
                else:
                    train_stage(model, tok, stage, examples, s, args.out, base)
            del model
        if args.embed:
            try:
                run_embed(args, tok, base)
            except (OSError, UnicodeError) as e:  # --embed missing or not UTF-8, --emb-dir not writable: named in e
                raise SetupError(str(e)) from None
    except (SetupError, data.DataError) as e:  # a DataError lists every bad line of --data / --embed
        print(f"train_align.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
