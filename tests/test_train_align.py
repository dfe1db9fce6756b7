"""train_align.py on a tiny random Llama (built and saved by transformers) with a tiny word-level tokenizer."""
import json
import pathlib
import signal
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import lora  # noqa: E402
import llama  # noqa: E402
import train_align  # noqa: E402

TYPES = ["glioblastoma", "meningioma", "metastasis"]
WORDS = ("mri brain mass lesion enhancing ring necrosis edema dural tail frontal parietal temporal cerebellar "
         "multiple small large left right cm biopsy shows tumor cells mitoses atypia high low grade mgmt "
         "methylated unmethylated specimen resection diagnosis with and of the a no").split()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model dir, pairs.jsonl): a 2-layer Llama with a 64-word vocabulary, 24 synthetic report pairs."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM
    path = tmp_path_factory.mktemp("tiny_align")
    vocab = {w: i for i, w in enumerate(["<unk>", "<|begin_of_text|>", "<|end_of_text|>", "_"] + WORDS + TYPES)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"])
    tk.save(str(path / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(path)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(24):
        t = TYPES[i % 3]
        rad = " ".join(["mri", "brain", t] + list(rng.choice(WORDS[:20], rng.integers(4, 12))))
        pth = " ".join(["biopsy", "diagnosis", t] + list(rng.choice(WORDS[20:], rng.integers(3, 9))))
        lines.append(json.dumps({"id": f"p{i}", "radiology": rad, "pathology": pth,
                                 "labels": {"tumor_type": t, "mgmt": ["methylated", "unmethylated"][i % 2],
                                            "survival_1y": ["alive", "deceased"][(i // 2) % 2]}}))
    (path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    return path, path / "pairs.jsonl"


def settings(stage, tok, **kw):
    argv = ["--out", "unused", "--no-bf16", "--max_length", "32"]
    args = train_align.AlignConfig(**vars(train_align.build_parser().parse_args(argv)))
    s = train_align.stage_settings(args, stage, tok)
    s.update(kw)
    return s


def fresh(tiny):
    model = llama.load_model(tiny[0])
    return model, llama.load_tokenizer(tiny[0])


def cli(tiny, out, *extra):
    return train_align.main(["--model", str(tiny[0]), "--data", str(tiny[1]), "--out", str(out), "--no-bf16",
                      "--batch-size", "4", "--max-length", "32", "--lr", "1e-3", "--warmup", "0", *extra])


def interrupt_at(monkeypatch, stage, call):
    """Ctrl-C during the `call`-th training step of `stage`: its step function raises KeyboardInterrupt then.
    Returns a function that puts the real step back."""
    real, calls = train_align.STEP_FNS[stage], {"n": 0}

    def interrupted(*a):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setitem(train_align.STEP_FNS, stage, interrupted)
    return lambda: monkeypatch.setitem(train_align.STEP_FNS, stage, real)


def sigint_inside_adamw_step(monkeypatch, call):
    """SIGINT (a real Ctrl-C) arriving inside the `call`-th AdamW update, after the parameters changed. Returns a
    function that puts the real update back."""
    real, calls = torch.optim.AdamW.step, {"n": 0}

    def interrupted(self, *a, **k):
        out = real(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == call:
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", interrupted)
    return lambda: monkeypatch.setattr(torch.optim.AdamW, "step", real)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_each_stage_loss_decreases_on_a_fixed_batch(tiny, stage):
    model, tok = fresh(tiny)
    pairs = train_align.data.read_pairs(tiny[1])
    s = settings(stage, tok)
    examples = train_align.stage_examples(stage, pairs, s)[:6]
    train_align.inject_stage_lora(model, dict(s, lora_r=4, lora_alpha=8))
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)  # LM head etc. frozen
    train_align.set_attention_dropout(model, s["simcse_dropout"] if stage == 2 else 0.0)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    history = []
    for _ in range(8):
        torch.manual_seed(0)  # the same dropout masks every step: a deterministic function of the weights
        loss = train_align.STEP_FNS[stage](model, tok, examples, s, torch.Generator().manual_seed(0))
        loss.backward()
        opt.step()
        opt.zero_grad()
        history.append(loss.item())
    assert np.isfinite(history).all()
    assert history[-1] < 0.95 * history[0], history


def test_stage_settings_follow_llm2vec():
    args = train_align.AlignConfig(**vars(train_align.build_parser().parse_args(["--out", "x"])))
    assert [train_align.per_stage(args.lr, k, float) for k in (1, 2, 3)] == [5e-5, 3e-5, 2e-4]
    assert (args.lora_r, args.lora_alpha, args.lora_dropout, args.mask_token, args.mask_prob) == (16, 32, 0.05, "_", 0.2)
    assert (args.simcse_dropout, 1 / args.simcse_temperature, 1 / args.supervised_temperature) == (0.3, 20, 50)
    assert set(args.lora_targets.split(",")) == {f"{p}_proj" for p in ("q", "k", "v", "o", "gate", "up", "down")}


def test_padded_and_unpadded_embeddings_agree(tiny):
    model, tok = fresh(tiny)
    texts = ["mri brain mass", "biopsy shows tumor cells with high grade mitoses and necrosis", "edema"]
    for instruction in ("", "mri brain"):
        batched = train_align.embed_corpus(model, tok, texts, 32, instruction, batch_size=3)
        alone = np.stack([train_align.embed_corpus(model, tok, [t], 32, instruction)[0] for t in texts])
        np.testing.assert_allclose(batched, alone, atol=1e-5, rtol=1e-5)
    # the instruction is attended to (the embedding changes) but its tokens are not averaged in
    ids, att, pool = train_align.encode_texts(tok, ["edema"], 32, "mri brain")
    assert att.sum() == 4 and pool.tolist() == [[0, 0, 0, 1]]
    assert not np.allclose(train_align.embed_corpus(model, tok, ["edema"], 32, ""),
                           train_align.embed_corpus(model, tok, ["edema"], 32, "mri brain"))


def test_merged_stage_reproduces_unmerged_outputs(tiny, tmp_path):
    cli(tiny, tmp_path, "--stages", "1,2,3", "--steps", "3")
    _, tok = fresh(tiny)
    texts = ["mri brain mass lesion", "biopsy shows tumor cells", "dural tail left frontal meningioma"]
    merged = train_align.load_stage_model(tmp_path, 3, tiny[0])      # stages 1, 2, 3 merged
    unmerged = train_align.load_stage_model(tmp_path, 2, tiny[0])    # stages 1, 2 merged, stage 3's LoRA on top
    lora.load_adapter(unmerged, tmp_path / "stage3", dropout=0.0)
    assert lora.lora_modules(unmerged) and not lora.lora_modules(merged)
    z_merged = train_align.embed_corpus(merged, tok, texts, 32)
    z_unmerged = train_align.embed_corpus(unmerged.eval(), tok, texts, 32)
    np.testing.assert_allclose(z_merged, z_unmerged, atol=1e-5, rtol=1e-4)
    base = train_align.embed_corpus(llama.load_model(tiny[0]), tok, texts, 32)
    assert np.abs(z_merged - base).max() > 1e-4  # the stages changed something


def test_interrupt_then_resume_equals_uninterrupted(tiny, tmp_path, monkeypatch):
    cli(tiny, tmp_path / "straight", "--stages", "1", "--steps", "5", "--save_every", "2")
    restore = interrupt_at(monkeypatch, 1, 4)
    with pytest.raises(KeyboardInterrupt):
        cli(tiny, tmp_path / "cut", "--stages", "1", "--steps", "5", "--save_every", "2")
    meta = train_align.read_stage(tmp_path / "cut", 1)          # a valid checkpoint: checksum matches
    assert (meta["steps_done"], meta["complete"]) == (3, False)
    restore()
    cli(tiny, tmp_path / "cut", "--stages", "1", "--steps", "5", "--save_every", "2")
    a, b = (json.loads((tmp_path / d / "stage1" / "stage.json").read_text()) for d in ("straight", "cut"))
    assert b["complete"] and b["loss"] == a["loss"]  # exact: batches, masks and dropout depend on (seed, step)
    from safetensors.torch import load_file
    wa, wb = (load_file(tmp_path / d / "stage1" / lora.WEIGHTS_NAME) for d in ("straight", "cut"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ctrl_c_during_the_optimizer_update_waits_for_it(tiny, tmp_path, monkeypatch):
    """SIGINT inside step 4's AdamW update: the update and its record finish, step 4 is saved, and the resumed stage
    equals the uninterrupted one (a Ctrl-C that split them would save weights one update ahead of steps_done)."""
    cli(tiny, tmp_path / "straight", "--stages", "1", "--steps", "5", "--save_every", "2")
    restore = sigint_inside_adamw_step(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        cli(tiny, tmp_path / "cut", "--stages", "1", "--steps", "5", "--save_every", "2")
    assert train_align.read_stage(tmp_path / "cut", 1)["steps_done"] == 4
    restore()
    cli(tiny, tmp_path / "cut", "--stages", "1", "--steps", "5", "--save_every", "2")
    from safetensors.torch import load_file
    wa, wb = (load_file(tmp_path / d / "stage1" / lora.WEIGHTS_NAME) for d in ("straight", "cut"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_rerun_one_stage_and_embed_every_stage(tiny, tmp_path, capsys):
    cli(tiny, tmp_path, "--stages", "1,2,3", "--steps", "2", "--lora_layers", "1")
    from safetensors.torch import load_file
    assert {k.split(".")[4] for k in load_file(tmp_path / "stage1" / lora.WEIGHTS_NAME)} == {"1"}  # last layer only
    out = tmp_path / "embeddings"
    train_align.main(["--out", str(tmp_path), "--embed", str(tiny[1]), "--embed-stages", "0,1,2,3",
                      "--embed_max_length", "32", "--embed_limit", "20", "--no-bf16"])  # base from stage1/stage.json
    ids = [f"p{i}" for i in range(20)]
    X = {k: np.load(out / f"stage{k}.npy") for k in range(4)}
    assert all(X[k].shape == (20, 32) and json.loads((out / f"stage{k}.ids.json").read_text()) == ids for k in X)
    assert all(np.abs(X[k] - X[k - 1]).max() > 1e-5 for k in (1, 2, 3))
    cli(tiny, tmp_path, "--stages", "3", "--steps", "2", "--seed", "7")           # stage 3 alone, on stage 2
    assert train_align.read_stage(tmp_path, 3)["settings"]["seed"] == 7
    cli(tiny, tmp_path, "--stages", "2", "--steps", "2", "--seed", "7")           # stage 2 changes ...
    with pytest.raises(RuntimeError, match="rerun stage 3"):                      # ... so stage 3 is stale
        train_align.load_stage_model(tmp_path, 3, tiny[0])
    assert cli(tiny, tmp_path, "--stages", "1,3") == 2 and "no gaps" in capsys.readouterr().err


def test_hard_negatives_are_other_pairs(tiny):
    pairs = train_align.data.read_pairs(tiny[1])
    for how in ("tfidf", "type", "random", "lookalike", "twin"):
        neg = train_align.hard_negatives(pairs, how)
        assert all(j != i for i, j in enumerate(neg))
    neg = train_align.hard_negatives(pairs, "type")
    assert all(pairs[j].labels["tumor_type"] != p.labels["tumor_type"] for p, j in zip(pairs, neg))
    assert train_align.hard_negatives(pairs, "none") is None


def test_stage2_views_differ_by_attention_dropout(tiny, tmp_path, monkeypatch):
    """SimCSE's two views of a text differ through attention-probability dropout alone (LoRA dropout 0 here):
    with --simcse-dropout 0 they are the same vector, with 0.3 they are not."""
    views = []

    def spy(z1, z2, temperature):
        views.append((z1.detach().clone(), z2.detach().clone()))
        return real(z1, z2, temperature)

    real = train_align.losses.simcse_loss
    monkeypatch.setattr(train_align.losses, "simcse_loss", spy)
    for p in ("0", "0.3"):
        assert cli(tiny, tmp_path / p, "--stages", "1,2", "--steps", "1", "--lora-dropout", "0",
                   "--simcse-dropout", p) == 0
    (a0, b0), (a3, b3) = views
    assert torch.equal(a0, b0)
    assert (a3 - b3).abs().max() > 1e-3
    assert train_align.read_stage(tmp_path / "0.3", 2)["settings"]["simcse_dropout"] == 0.3


def test_resume_in_stages_2_and_3_is_exact(tiny, tmp_path, monkeypatch):
    """Interrupted in stage 2, then in stage 3, each time rerun with the same command: finished stages are
    skipped, the interrupted one resumes, and every adapter and loss is bit-for-bit the straight run's."""
    run = ("--stages", "1,2,3", "--steps", "4", "--save_every", "1")
    assert cli(tiny, tmp_path / "straight", *run) == 0
    for stage in (2, 3):
        restore = interrupt_at(monkeypatch, stage, 3)  # during the third step: two steps saved
        with pytest.raises(KeyboardInterrupt):
            cli(tiny, tmp_path / "cut", *run)
        restore()
        assert train_align.read_stage(tmp_path / "cut", stage)["steps_done"] == 2
    assert cli(tiny, tmp_path / "cut", *run) == 0
    from safetensors.torch import load_file
    for stage in (1, 2, 3):
        a, b = (train_align.read_stage(tmp_path / d, stage) for d in ("straight", "cut"))
        assert b["complete"] and a["loss"] == b["loss"] and a["adapter_sha256"] == b["adapter_sha256"]
        wa, wb = (load_file(tmp_path / d / f"stage{stage}" / lora.WEIGHTS_NAME) for d in ("straight", "cut"))
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_with_changed_settings_is_refused(tiny, tmp_path, monkeypatch, capsys):
    """An unfinished stage is continued only with the settings it was started with; otherwise the differences
    are listed and its checkpoint is left as it was."""
    restore = interrupt_at(monkeypatch, 1, 2)
    with pytest.raises(KeyboardInterrupt):
        cli(tiny, tmp_path, "--stages", "1", "--steps", "3")
    restore()
    before = {p.name: p.read_bytes() for p in (tmp_path / "stage1").iterdir()}
    assert cli(tiny, tmp_path, "--stages", "1", "--steps", "3", "--lr", "2e-3", "--lora-r", "8") == 2
    err = capsys.readouterr().err
    assert "stage 1 is unfinished (1/3 steps)" in err and "lr: 0.001 in the checkpoint, 0.002 now" in err
    assert "lora_r: 16 in the checkpoint, 8 now" in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "stage1").iterdir()} == before


def test_same_command_skips_a_finished_stage_unless_the_data_changed(tiny, tmp_path, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text(tiny[1].read_text())
    run = ["--model", str(tiny[0]), "--data", str(data), "--out", str(tmp_path / "run"), "--no-bf16",
           "--batch-size", "4", "--max-length", "32", "--steps", "2", "--stages", "1"]
    assert train_align.main(run) == 0
    first = train_align.read_stage(tmp_path / "run", 1)
    assert train_align.main(run) == 0 and "already finished" in capsys.readouterr().out
    data.write_text("\n".join(tiny[1].read_text().splitlines()[:-1]) + "\n")  # one pair less: another data set
    assert train_align.main(run) == 0 and "already finished" not in capsys.readouterr().out
    assert train_align.read_stage(tmp_path / "run", 1)["settings"]["data_sha256"] != first["settings"]["data_sha256"]


def test_lookalike_negative_reads_alike_on_mri_but_not_under_the_microscope():
    """lookalike: among the radiology neighbours, the one whose pathology differs most; tfidf: the closest pathology.
    Neither reads a label."""
    P = train_align.data.Pair
    pairs = [P("a", "ring enhancing necrotic mass frontal", "glioblastoma idh wildtype grade 4", None),
             P("b", "ring enhancing necrotic mass parietal", "glioblastoma idh wildtype grade 4 egfr", None),
             P("c", "ring enhancing necrotic mass temporal", "metastatic adenocarcinoma lung primary", None),
             P("d", "dural based extra axial mass tail", "meningioma grade 1 whorls psammoma", None)]
    assert train_align.hard_negatives(pairs, "tfidf")[0] == 1
    assert train_align.hard_negatives(pairs, "lookalike")[0] == 2   # d reads least alike on MRI: not chosen
    assert train_align.hard_negatives(pairs, "lookalike")[1] == 2


def test_twin_negative_shares_the_identity_the_reports_write():
    """twin: another patient whose pathology names the same side and site, and the same sex and an age within
    AGE_TWIN years where both name them; the diagnosis plays no part. A pair without a twin gets another pair."""
    P = train_align.data.Pair
    path = "Clinical history: {}. Specimen: Brain, {}, resection. FINAL DIAGNOSIS: {}."
    pairs = [P("a", "mri", path.format("54-year-old female", "left frontal lobe", "Glioblastoma"), None),
             P("b", "mri", path.format("57-year-old woman", "left frontal lobe", "Meningioma"), None),
             P("c", "mri", path.format("54-year-old male", "left frontal lobe", "Glioblastoma"), None),       # sex
             P("d", "mri", path.format("54-year-old female", "right frontal lobe", "Glioblastoma"), None),    # side
             P("e", "mri", path.format("70-year-old female", "left frontal lobe", "Glioblastoma"), None),     # age
             P("f", "mri", path.format("mass", "left temporal lobe", "Oligodendroglioma"), None)]             # site
    assert train_align.identity(pairs[1].pathology) == (57, "F", "left", "frontal")
    assert train_align.identity("Brain, right cerebellum: pilocytic astrocytoma") == (None, None, "right", "cerebell")
    for seed in range(5):
        neg = train_align.hard_negatives(pairs, "twin", seed=seed)
        assert neg[0] == 1 and neg[1] == 0 and all(j != i for i, j in enumerate(neg))  # c, d, e, f: no twin
    ids = [train_align.identity(p.pathology) for p in pairs]
    assert [train_align._same_patient(ids[0], b) for b in ids] == [True, True, False, False, False, False]


def test_split_is_a_function_of_the_id_alone():
    ids = [f"BT{i:05d}" for i in range(3000)]
    parts = [train_align.split_part(i, 0.3, 0.2) for i in ids]
    assert abs(parts.count("heldout") / 3000 - 0.3) < 0.04 and abs(parts.count("validation") / 3000 - 0.2) < 0.04
    # order and neighbours do not matter; adding a validation part leaves the held-out patients where they were
    assert [train_align.split_part(i, 0.3, 0.2) for i in reversed(ids)] == parts[::-1]
    held = {i for i in ids if train_align.split_part(i, 0.3) == "heldout"}
    assert held == {i for i, p in zip(ids, parts) if p == "heldout"}
    assert train_align.check_split(0.6, 0.5) and not train_align.check_split(0.3, 0.2)


def test_stages_train_on_the_train_part_and_embed_part_heldout_embeds_the_rest(tiny, tmp_path):
    argv = ["--model", str(tiny[0]), "--data", str(tiny[1]), "--out", str(tmp_path), "--no-bf16", "--batch-size", "4",
            "--max-length", "32", "--steps", "1"]
    args = train_align.AlignConfig(**vars(train_align.build_parser().parse_args(argv)))
    _, _, _, pairs, plan = train_align.setup(args)
    everyone = {p.id: p for p in train_align.data.read_pairs(tiny[1])}
    trained = {p.id for p in pairs}
    assert 0 < len(trained) < len(everyone)
    held = set(everyone) - trained
    held_texts = {everyone[i].radiology for i in held} | {everyone[i].pathology for i in held}
    for stage, (s, examples) in plan.items():    # no held-out text in any stage, negatives included
        flat = [t for e in examples for t in (e if isinstance(e, tuple) else (e,)) if t is not None]
        assert not held_texts & set(flat), stage
    assert train_align.main(["--model", str(tiny[0]), "--out", str(tmp_path), "--embed", str(tiny[1]),
                             "--embed-stages", "0", "--embed-part", "heldout", "--embed_max_length", "32",
                             "--no-bf16"]) == 0
    assert set(json.loads((tmp_path / "embeddings" / "stage0.ids.json").read_text())) == held
    assert train_align.main(["--model", str(tiny[0]), "--data", str(tiny[1]), "--out", str(tmp_path),
                             "--holdout", "0.7", "--validation", "0.5"]) == 2


def test_layers_trains_and_embeds_with_the_first_blocks(tiny, tmp_path, capsys):
    """--layers 1: stage 1's LoRA sits in block 0 and the embeddings are the one-block model's; --embed reads the
    number of blocks from stage1/stage.json, and a run asking for other blocks than the stages had is refused."""
    cli(tiny, tmp_path, "--stages", "1", "--steps", "2", "--layers", "1")
    from safetensors.torch import load_file
    assert {k.split(".")[4] for k in load_file(tmp_path / "stage1" / lora.WEIGHTS_NAME)} == {"0"}
    embed = ["--out", str(tmp_path), "--embed", str(tiny[1]), "--embed_max_length", "32", "--embed_limit", "6",
             "--no-bf16", "--embed-stages"]
    assert train_align.main(embed + ["0,1"]) == 0
    model, tok = fresh(tiny)
    texts = [p.radiology for p in train_align.data.read_pairs(tiny[1])[:6]]
    full, one, stage1 = (train_align.embed_corpus(m, tok, texts, 32, train_align.INSTRUCTION) for m in
                         (model, llama.first_blocks(fresh(tiny)[0], 1), train_align.load_stage_model(tmp_path, 1)))
    X0, X1 = (np.load(tmp_path / "embeddings" / f"stage{k}.npy") for k in (0, 1))
    assert np.allclose(X0, one, atol=1e-5) and not np.allclose(X0, full, atol=1e-2)
    assert np.allclose(X1, stage1, atol=1e-5)
    assert train_align.main(embed + ["1", "--layers", "2"]) == 2 and "pass --layers 1" in capsys.readouterr().err
    assert train_align.main(embed + ["0", "--layers", "3"]) == 2 and "the model has 2 blocks" in capsys.readouterr().err
