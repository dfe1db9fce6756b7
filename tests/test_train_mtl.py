"""train_mtl.py on a tiny random Llama (saved by transformers) with a tiny tokenizer and a handful of reports:
outputs, resume == uninterrupted, setup errors, NaN stop, predict mode, the optimizer and schedule."""
import dataclasses
import importlib.util
import json
import math
import pathlib
import random
import sys

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import data  # noqa: E402
import llama  # noqa: E402
import train_mtl  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


T_OF = ["Tis", "T1", "T2", "T3"]
STATUS = ["Positive", "Negative", "Equivocal"]


def make_reports(n, seed=0):
    """Small breast pathology reports with the headers the hint engine reads."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t, nn_, g = rng.choice(T_OF), rng.choice(["N0", "N1", "N2"]), rng.choice(["G1", "G2", "G3"])
        er, pr, her2 = rng.choice(STATUS[:2]), rng.choice(STATUS[:2]), STATUS[i % 3]
        text = (f"CLINICAL HISTORY:\nHistory of pT{rng.randint(1, 3)} carcinoma.\n\n"
                f"FINAL DIAGNOSIS:\nInvasive ductal carcinoma.\nHistologic grade: {g[1]}/3\n"
                f"Primary tumor (pT): p{t}\nRegional lymph nodes (pN): p{nn_}\nDistant metastasis (pM): M0\n\n"
                f"BIOMARKERS:\nEstrogen receptor: {er}\nProgesterone receptor: {pr}\nHER2 (IHC): {her2}\n")
        labels = {"T": t, "N": nn_, "M": "M0", "grade": g, "ER": er, "PR": pr, "HER2": her2}
        if i % 7 == 4:
            labels["grade"] = None  # "not stated": the heads' extra class
        out.append({"id": f"r{i:03d}", "text": text, "labels": labels, "style": f"s{i % 5}"})
    return out


def write_jsonl(rows, path):
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return str(path)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer Llama saved by transformers plus a 200-token BPE tokenizer trained on the reports."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM
    path = tmp_path_factory.mktemp("tiny_mtl_model")
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [r["text"] for r in make_reports(40)] + [data.build_input(r["text"]) for r in make_reports(10)]
    tk.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"]))
    tk.save(str(path / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tk.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def reports_file(tmp_path_factory):
    return write_jsonl(make_reports(30), tmp_path_factory.mktemp("data") / "reports.jsonl")


def args(model, data_file, out, *extra):
    # 18 train reports (3 of the 5 styles), micro-batch 2 x accum 3 -> 3 optimizer steps per epoch, 2 epochs
    return ["--data", data_file, "--model", model, "--out", str(out), "--quant", "fp32", "--precision", "fp32",
            "--micro-batch", "2", "--accum", "3", "--epochs", "2", "--patience", "5", "--lr", "5e-3",
            "--max-length", "512", *extra]


def assert_predict_reproduces_test(out, tmp_path):
    """predict on the run reloads adapter and heads: the probabilities of its first test reports are those written
    at the end of training."""
    test = [json.loads(l) for l in open(out / "test_predictions.jsonl")][:3]
    texts = {r["id"]: r["text"] for r in make_reports(30)}
    again = write_jsonl([{"id": t["id"], "text": texts[t["id"]]} for t in test], tmp_path / "again.jsonl")
    assert train_mtl.main(["predict", "--run", str(out), "--data", again, "--out", str(tmp_path / "a.jsonl")]) == 0
    for t, p in zip(test, [json.loads(l) for l in open(tmp_path / "a.jsonl")]):
        for task in data.TASKS:
            assert p["predictions"][task]["probs"] == pytest.approx(t["model"][task]["probs"], abs=1e-5)


def test_train_writes_outputs_and_predict(tiny_model_dir, reports_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_mtl.main(args(tiny_model_dir, reports_file, out)) == 0
    for name in ["adapter/adapter_config.json", "adapter/adapter_model.safetensors", "heads.safetensors",
                 "label_maps.json", "config.json", "epochs.json", "metrics.json", "test_predictions.jsonl",
                 "val_predictions.jsonl", "test_table.txt", "checkpoint.pt"]:
        assert (out / name).exists(), name
    printed = capsys.readouterr().out
    assert "Overall Average" in printed and "Not stated" in printed and "Hints removed" in printed
    cfg = json.loads((out / "config.json").read_text())
    assert list(cfg) == [f.name for f in dataclasses.fields(train_mtl.TrainConfig)] + list(train_mtl.RUN_FACTS)
    assert cfg["r"] == 16 and cfg["alpha"] == 16 and cfg["n_train"] == 18  # 5 styles: one for val, one for test
    test_style, = cfg["styles"]["test"]
    assert f"{test_style} " in printed and test_style not in cfg["styles"]["train"] + cfg["styles"]["val"]
    epochs = json.loads((out / "epochs.json").read_text())
    assert [e["epoch"] for e in epochs] == [1, 2] and all(math.isfinite(e["val_loss"]) for e in epochs)
    assert json.loads((out / "label_maps.json").read_text()) == data.head_label_sets()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test_by_style"]) == {test_style} and "not_stated" in metrics["test_no_hints"]

    # the adapter is in PEFT format: peft loads it onto the transformers model without complaint
    from peft import PeftModel
    from transformers import LlamaForCausalLM
    peft_model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(tiny_model_dir), str(out / "adapter"))
    assert any("lora_A" in n for n, _ in peft_model.named_parameters())

    # predict: reports without labels -> one record each with a label and probabilities per task
    bilateral = "SYNOPTIC SUMMARY (LEFT BREAST):\nPrimary tumor: pT2\n\nSYNOPTIC SUMMARY (RIGHT BREAST):\npT1 HER2 2+\n"
    new = write_jsonl([{"id": "x1", "text": make_reports(1, seed=9)[0]["text"]},
                       {"id": "x2", "text": "HER2: 3+ positive. grade 2. pT1c"},
                       {"id": "x3", "text": bilateral}], tmp_path / "new.jsonl")
    assert train_mtl.main(["predict", "--run", str(out), "--data", new, "--out", str(tmp_path / "p.jsonl")]) == 0
    preds = [json.loads(l) for l in open(tmp_path / "p.jsonl")]
    assert [p["id"] for p in preds] == ["x1", "x2", "x3"]
    assert "sites" not in preds[0] and set(preds[2]["sites"]) == {"LEFT", "RIGHT"}
    for p in preds + [preds[2]["sites"]["LEFT"]]:
        p = p.get("predictions", p)
        assert set(p) == set(data.TASKS)
        for task, v in p.items():
            assert v["label"] in data.LABEL_SETS[task] + [None]
            assert list(v["probs"]) == data.head_label_sets()[task]
            assert abs(sum(v["probs"].values()) - 1) < 1e-5
    assert "3+ positive" in preds[1]["predictions"]["HER2"]["evidence"]   # what the hint rules found ...
    assert preds[1]["predictions"]["M"]["evidence"] is None               # ... and where they found nothing
    assert "pT2" in preds[2]["sites"]["LEFT"]["T"]["evidence"]            # a site's own block ...
    assert "pT1" not in preds[2]["sites"]["LEFT"]["T"]["evidence"]        # ... not the other's

    # predictions agree with the test predictions written at the end of training
    assert_predict_reproduces_test(out, tmp_path)
    test = [json.loads(l) for l in open(out / "test_predictions.jsonl")]

    # evaluate.py RUN --data FILE: Table I of the run on any labelled file, one row per style
    import evaluate
    capsys.readouterr()
    assert evaluate.main([str(out), "--data", reports_file, "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    assert "Table I" in printed and "S = 30" in printed and all(f"s{k} " in printed for k in range(5))
    scored = {r["id"]: r for r in map(json.loads, open(tmp_path / "ev" / "predictions.jsonl"))}
    assert len(scored) == 30 and (tmp_path / "ev" / "confusion_matrices.png").read_bytes()[:4] == b"\x89PNG"
    for t in test:
        for task in data.TASKS:
            assert scored[t["id"]]["model"][task]["probs"] == pytest.approx(t["model"][task]["probs"], abs=1e-5)
    table = json.loads((tmp_path / "ev" / "metrics.json").read_text())["table"]
    assert table["tasks"]["T"]["model"]["n"] == 30
    assert evaluate.main([str(out), "--data", str(tmp_path / "missing.jsonl")]) == 2

    # bench/robustness.py --out: each kind's predictions with the text as read; 'none' is the test split as written
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "bench" / "robustness.py")
    robustness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(robustness)
    robustness.main(["--run", str(out), "--kinds", "none,oneline", "--out", str(tmp_path / "rob")])
    as_is, oneline = ([json.loads(l) for l in open(tmp_path / "rob" / f"{k}.jsonl")] for k in ("none", "oneline"))
    assert [r["id"] for r in as_is] == [r["id"] for r in oneline] == [t["id"] for t in test]
    for r, t in zip(as_is, test):
        for task in data.TASKS:
            assert r["model"][task]["probs"] == pytest.approx(t["model"][task]["probs"], abs=1e-5)
    assert all("\n" in r["text"] for r in as_is) and not any("\n" in r["text"] for r in oneline)


def test_resume_gives_the_same_result(tiny_model_dir, reports_file, tmp_path, monkeypatch):
    """Interrupted after optimizer step 2 (mid-epoch 1), resumed: same metrics and weights as straight through."""
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    extra = ["--augment", "0.5", "--hint-dropout", "0.5", "--hints-off", "0.3"]  # augmentation, hint dropout replay
    assert train_mtl.main(args(tiny_model_dir, reports_file, straight, *extra)) == 0
    forward, calls = train_mtl.Classifier.forward, [0]

    def ctrl_c(self, *a):  # Ctrl-C in the first forward pass of step 3 (3 micro-batches per step)
        calls[0] += self.training
        if calls[0] == 7:
            raise KeyboardInterrupt
        return forward(self, *a)
    with monkeypatch.context() as m:
        m.setattr(train_mtl.Classifier, "forward", ctrl_c)
        assert train_mtl.main(args(tiny_model_dir, reports_file, broken, *extra)) == 130
    assert torch.load(broken / "checkpoint.pt", weights_only=False)["state"]["step"] == 2
    assert not (broken / "metrics.json").exists()
    # without --resume an existing run is not overwritten
    assert train_mtl.main(args(tiny_model_dir, reports_file, broken, *extra)) == 2
    assert train_mtl.main(args(tiny_model_dir, reports_file, broken, *extra, "--resume")) == 0

    a, b = (json.loads((d / "metrics.json").read_text()) for d in (straight, broken))
    assert a["test"] == b["test"]
    assert a["best_val_loss"] == b["best_val_loss"]
    assert json.loads((straight / "epochs.json").read_text())[-1]["val_loss"] == \
        json.loads((broken / "epochs.json").read_text())[-1]["val_loss"]
    from safetensors.torch import load_file
    wa, wb = load_file(straight / "adapter/adapter_model.safetensors"), load_file(broken / "adapter/adapter_model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    la = [json.loads(l)["loss"] for l in open(straight / "train_log.jsonl")]
    lb = [json.loads(l)["loss"] for l in open(broken / "train_log.jsonl")]
    assert la == lb and len(la) == 6


def test_hints_off_withholds_every_hint_line_of_a_report(tiny_model_dir):
    """--hints-off P: a training report shows all seven hint lines 'withheld' with probability P (the 'hints removed'
    row of Table I, learned); the others keep the inputs encoded up front."""
    from types import SimpleNamespace
    from llama import load_tokenizer
    tok = load_tokenizer(tiny_model_dir)
    reports = [data.Report(r["id"], r["text"], r["labels"]) for r in make_reports(40)]
    cfg = train_mtl.TrainConfig(data="x", max_length=512, hints_off=0.5)
    run = SimpleNamespace(train=reports, label_sets=data.head_label_sets(), state={"epoch": 0},
                          train_seqs=train_mtl.encode_all(reports, cfg, tok))
    withheld = []
    for i, seq in enumerate(train_mtl.training_inputs(run, cfg, tok, range(len(reports)))):
        off = train_mtl.encode(reports[i], cfg, tok, None, list(data.TASKS))  # all seven lines 'withheld'
        assert off != run.train_seqs[i] and seq in (off, run.train_seqs[i])
        withheld.append(seq == off)
    assert 10 <= sum(withheld) <= 30  # 40 reports at P = 0.5


def test_absent_writes_only_fields_the_labels_leave_unstated(tiny_model_dir, monkeypatch):
    """--absent: a report --augment picks may state up to two of its not-stated fields as not stated; never a
    field it has a label for, and never when --absent is 0."""
    from types import SimpleNamespace
    from llama import load_tokenizer
    tok = load_tokenizer(tiny_model_dir)
    reports = [data.Report(r["id"], r["text"], {**r["labels"], "M": None, "PR": None}) for r in make_reports(40)]
    unstated = {r.text: {t for t in data.TASKS if r.labels.get(t) is None} for r in reports}
    stated = []
    monkeypatch.setattr(data, "state_absence", lambda text, tasks, rng: stated.append((text, tasks)) or text)
    for absent in (0.0, 1.0):
        cfg = train_mtl.TrainConfig(data="x", max_length=512, augment=1.0, absent=absent)
        run = SimpleNamespace(train=reports, label_sets=data.head_label_sets(), state={"epoch": 0}, train_seqs=None)
        train_mtl.training_inputs(run, cfg, tok, range(len(reports)))
        assert len(stated) == (0 if absent == 0 else len(reports))
    assert all(1 <= len(tasks) <= 2 and set(tasks) <= unstated[text] for text, tasks in stated)
    assert {"M", "PR"} in [set(tasks) for _, tasks in stated]


def test_bad_data_and_model_stop_before_training(tiny_model_dir, tmp_path, capsys):
    bad = make_reports(12)
    bad[3]["labels"]["T"] = "T9"
    bad[7]["text"] = ""
    bad_file = write_jsonl(bad, tmp_path / "bad.jsonl")
    with open(bad_file, "a") as f:
        f.write("{not json\n")
    out = tmp_path / "run"
    assert train_mtl.main(args(str(tmp_path / "no_model"), bad_file, out)) == 2
    err = capsys.readouterr().err
    assert "cannot start training" in err
    assert "bad.jsonl:4" in err and "T9" in err and "bad.jsonl:8" in err and "bad.jsonl:13" in err
    assert "--model" in err and "no_model" in err
    assert not (out / "checkpoint.pt").exists() and not (out / "config.json").exists()

    assert train_mtl.main(args(tiny_model_dir, str(tmp_path / "missing.jsonl"), out)) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err
    assert train_mtl.main(args(tiny_model_dir, bad_file, out, "--adapter", "prefix", "--lora-layers", "1")) == 2
    assert "--lora-layers applies to --adapter lora and ia3" in capsys.readouterr().err
    assert train_mtl.main(args(tiny_model_dir, bad_file, out, "--dropout", "1")) == 2
    assert "--lora-dropout must be in [0, 1), got 1.0" in capsys.readouterr().err


def test_skip_bad_leaves_bad_lines_out_and_lists_them(tiny_model_dir, tmp_path, capsys):
    """The DataError message offers --skip-bad; train and predict take it."""
    bad = make_reports(30)
    bad[3]["text"] = ""
    bad_file = write_jsonl(bad, tmp_path / "bad.jsonl")
    out = tmp_path / "run"
    assert train_mtl.main(args(tiny_model_dir, bad_file, out, "--epochs", "1")) == 2
    assert "pass --skip-bad" in capsys.readouterr().err
    assert train_mtl.main(args(tiny_model_dir, bad_file, out, "--epochs", "1", "--skip-bad")) == 0
    err = capsys.readouterr().err
    assert "skipped 1 bad line(s) of 30" in err and "bad.jsonl:4" in err
    preds = tmp_path / "p.jsonl"
    assert train_mtl.main(["predict", "--run", str(out), "--data", bad_file, "--out", str(preds)]) == 2
    assert train_mtl.main(["predict", "--run", str(out), "--data", bad_file, "--out", str(preds), "--skip-bad"]) == 0
    ids = {json.loads(l)["id"] for l in open(preds)}
    assert bad[3]["id"] not in ids and bad[4]["id"] in ids


def test_too_short_max_length_stops_before_training(tiny_model_dir, reports_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_mtl.main(args(tiny_model_dir, reports_file, out, "--max-length", "100")) == 2
    err = capsys.readouterr().err
    assert "cannot start training" in err and "--max-length 100" in err and "use at least" in err
    assert not (out / "checkpoint.pt").exists()


def test_nan_loss_stops_with_step_and_keeps_checkpoint(tiny_model_dir, reports_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real = train_mtl.multitask_cross_entropy
    calls = {"n": 0}

    def poisoned(*a, **k):
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * float("nan") if calls["n"] == 8 else loss  # micro-batch 8 = step 3, micro-batch 2

    monkeypatch.setattr(train_mtl, "multitask_cross_entropy", poisoned)  # zero heads: no probe fit calls it first
    assert train_mtl.main(args(tiny_model_dir, reports_file, out, "--head-init", "zero")) == 1
    err = capsys.readouterr().err
    assert "optimizer step 3" in err and "nan" in err and "checkpoint" in err
    assert torch.load(out / "checkpoint.pt", weights_only=False)["state"]["step"] == 2


def test_out_of_memory_stops_with_step_and_keeps_checkpoint(tiny_model_dir, reports_file, tmp_path, capsys,
                                                             monkeypatch):
    out = tmp_path / "run"
    real = train_mtl.multitask_cross_entropy
    calls = {"n": 0}

    def exhausted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 8:  # micro-batch 2 of optimizer step 3
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 123456789 bytes")
        return real(*a, **k)

    monkeypatch.setattr(train_mtl, "multitask_cross_entropy", exhausted)
    assert train_mtl.main(args(tiny_model_dir, reports_file, out, "--head-init", "zero")) == 1
    err = capsys.readouterr().err
    assert "out of memory at optimizer step 3" in err and "--micro-batch" in err and "checkpoint" in err
    assert torch.load(out / "checkpoint.pt", weights_only=False)["state"]["step"] == 2


def test_frozen_and_single_task_flags(tiny_model_dir, reports_file, tmp_path):
    frozen = tmp_path / "frozen"
    assert train_mtl.main(args(tiny_model_dir, reports_file, frozen, "--adapter", "frozen", "--epochs", "1")) == 0
    m = json.loads((frozen / "metrics.json").read_text())
    C = sum(len(v) for v in data.head_label_sets().values())  # each head: its classes + "not stated"
    assert m["trainable_params"] == 32 * C + C  # heads only: C outputs over a 32-wide pooled vector
    assert not (frozen / "adapter").exists()
    single = tmp_path / "single"
    assert train_mtl.main(args(tiny_model_dir, reports_file, single, "--single-task", "--epochs", "1",
                               "--accum", "12")) == 0
    m = json.loads((single / "metrics.json").read_text())
    assert m["models"] == 7
    lora_per_model = 2 * sum(16 * (d_in + d_out) for d_in, d_out in [(32, 32), (32, 16), (32, 16), (32, 32)])
    assert m["trainable_params"] == 7 * lora_per_model + 32 * C + C  # r (d_in + d_out) per q/k/v/o, 2 layers
    rec = json.loads(open(single / "test_predictions.jsonl").readline())
    assert set(rec["model"]) == set(data.TASKS)


def test_attention_pool_trains_its_queries_and_predicts_from_the_saved_run(tiny_model_dir, reports_file, tmp_path):
    """--pool attention: one 32-wide query per task trains with the heads, is saved in heads.safetensors and is read
    back by predict (the same probabilities as the test predictions written at the end of training)."""
    from safetensors.torch import load_file
    out = tmp_path / "attn"
    assert train_mtl.main(args(tiny_model_dir, reports_file, out, "--adapter", "frozen", "--pool", "attention",
                               "--epochs", "1", "--lr", "1e-2")) == 0
    C = sum(len(v) for v in data.head_label_sets().values())
    assert json.loads((out / "metrics.json").read_text())["trainable_params"] == 32 * C + C + 7 * 32
    query = load_file(out / "heads.safetensors")["pool_query"]
    assert query.shape == (7, 32) and query.abs().sum() > 0  # it started at zero (field pooling) and moved
    assert_predict_reproduces_test(out, tmp_path)


def test_report_pool_sums_attention_over_the_hints_and_over_the_report(tiny_model_dir, reports_file, tmp_path):
    """--pool attention+report: a second query per task reads the prompt up to the first Hints line; both queries
    are saved and read back by predict, and z_k = sum over the Hints line of softmax(h q_k / sigma_k) h + sum over
    the prompt up to the first Hints line of softmax(h r_k / sigma_k) h (sigma_k: the heads' z_std), written out
    here token by token, hints withheld."""
    from safetensors.torch import load_file
    out = tmp_path / "both"
    assert train_mtl.main(args(tiny_model_dir, reports_file, out, "--adapter", "frozen", "--pool", "attention+report",
                               "--epochs", "1", "--lr", "1e-2", "--hints-off", "0.5")) == 0
    state = load_file(out / "heads.safetensors")
    assert state["pool_query"].shape == state["report_query"].shape == (7, 32)
    assert state["report_query"].abs().sum() > 0  # it started at zero (the mean of the prompt) and moved
    assert_predict_reproduces_test(out, tmp_path)
    cfg, models, dtype, _ = train_mtl.load_run(str(out))
    model, tok = models[0], llama.load_tokenizer(cfg.model)
    reports = data.read_reports(reports_file)[:2]
    encoded = train_mtl.encode_all(reports, cfg, tok, drop_hints=data.TASKS)
    ids, mask, spans = train_mtl.collate(encoded, data.TASKS, "attention+report", tok.pad_id)
    with torch.no_grad():
        z, hidden = model.pooled(ids, mask, spans), model.llama(ids, mask).float()   # (2, 7, D), (2, T, D)
    for b in range(2):
        for k in range(7):
            want = 0
            for (start, end), q in ((spans[b, k], model.pool_query[k]), (spans[b, 7 + k], model.report_query[k])):
                h = hidden[b, start:end]
                want = want + torch.softmax(h @ (q / model.z_std[k]).float() / h.shape[-1] ** 0.5, 0) @ h
            torch.testing.assert_close(z[b, k], want, rtol=1e-4, atol=1e-5)


def test_schedule_is_cosine_with_linear_warmup():
    """Same curve as transformers.get_cosine_schedule_with_warmup with W = ceil(3% of the steps)."""
    from transformers import get_cosine_schedule_with_warmup
    total = 100
    ours = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s1 = train_mtl.cosine_with_warmup(ours, total, 0.03)
    s2 = get_cosine_schedule_with_warmup(ref, num_warmup_steps=3, num_training_steps=total)
    for _ in range(total):
        # ours counts a step as done once the optimizer has stepped: its lr at step t is the reference's at t+1
        # during warm-up (no zero-lr first step), and the same afterwards
        ours.step(); ref.step(); s1.step(); s2.step()
        if s2.last_epoch >= 3:
            assert s1.get_last_lr()[0] == pytest.approx(s2.get_last_lr()[0], abs=1e-12)


def test_augment_keeps_the_evidence():
    text = make_reports(1)[0]["text"]
    for seed in range(20):
        out = train_mtl.augment_text(text, random.Random(seed))
        assert "HER2" in out.upper() and "(PT)" in out.upper()     # no OCR confusion reaches H, E, R, 2, p, T
        assert len(out) > 0.8 * len(text)


def test_augmented_multi_specimen_record_keeps_its_own_site(tiny_model_dir):
    """OCR noise may hit a site header ('RlGHT'): the record's own block is augmented, not the whole report."""
    text = ("SYNOPTIC SUMMARY (LEFT BREAST):\nPrimary tumor (pT): pT2\n\n"
            "SYNOPTIC SUMMARY (RIGHT BREAST):\nPrimary tumor (pT): pT1c\nHER2 (IHC): 2+\n")
    rep = data.Report("b1", text, {t: None for t in data.TASKS}, site="RIGHT")
    cfg = train_mtl.TrainConfig(data="reports.jsonl", max_length=512, slicing="window", seed=42)
    tok = train_mtl.load_tokenizer(tiny_model_dir)
    block = data.site_text(text, "RIGHT")
    for kind in data.ARRIVALS:
        noisy = train_mtl.augment_text(block, random.Random(0), kind)
        assert "pT2" not in noisy                                   # the left site's block is not in it
        got = train_mtl.encode(rep, cfg, tok, noisy)                # no "site 'RIGHT' not found"
        assert got == data.encode_report(data.Report("b1", noisy, rep.labels), tok, 512)[:2]


def test_lora_in_the_top_layers_only(tiny_model_dir, reports_file, tmp_path):
    out = tmp_path / "top"
    assert train_mtl.main(args(tiny_model_dir, reports_file, out, "--lora-layers", "1", "--epochs", "1")) == 0
    from safetensors.torch import load_file
    keys = load_file(out / "adapter/adapter_model.safetensors")
    assert keys and all(".layers.1." in k for k in keys)
    from peft import PeftModel
    from transformers import LlamaForCausalLM
    peft_model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(tiny_model_dir), str(out / "adapter"))
    names = [n for n, _ in peft_model.named_parameters() if "lora_A" in n]
    assert names and all(".layers.1." in n for n in names)
    C = sum(len(v) for v in data.head_label_sets().values())  # each head: its classes + "not stated"
    one_layer = sum(16 * (d_in + d_out) for d_in, d_out in [(32, 32), (32, 16), (32, 16), (32, 32)])
    assert json.loads((out / "metrics.json").read_text())["trainable_params"] == one_layer + 32 * C + C


def test_qlora_nf4_base_with_bf16_compute(tiny_model_dir, reports_file, tmp_path):
    """The paper's setting: 4-bit NF4 frozen base, bf16 autocast (where the CPU has it), LoRA and heads in fp32."""
    out = tmp_path / "nf4"
    a = args(tiny_model_dir, reports_file, out, "--epochs", "1")
    a[a.index("--quant") + 1], a[a.index("--precision") + 1] = "nf4", "bf16"
    assert train_mtl.main(a) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(m["best_val_loss"][0])
    cfg = train_mtl.TrainConfig.from_dict(json.loads((out / "config.json").read_text()), out / "config.json")
    model, dtype = train_mtl.build_classifier(cfg, data.LABEL_SETS, "cpu")
    assert any(type(mod).__name__ == "NF4Linear" for mod in model.modules())
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("adapter, flags, n_adapter, peft_name", [
    ("ia3", [], 2 * (16 + 16 + 64), "ia3_l"),  # per layer: k (d_kv), v (d_kv), down (its input); 2 layers
    ("prefix", ["--virtual-tokens", "4"], 4 * 2 * 2 * 16, "prompt_encoder"),  # P x (2 layers x k, v x d_kv)
])
def test_other_adapter_flags(tiny_model_dir, reports_file, tmp_path, adapter, flags, n_adapter, peft_name):
    """--adapter ia3 / prefix (Table II): only the adapter and heads train; the adapter is in peft's format and
    predict reloads it."""
    out = tmp_path / adapter
    assert train_mtl.main(args(tiny_model_dir, reports_file, out, "--adapter", adapter, "--epochs", "1", *flags)) == 0
    C = sum(len(v) for v in data.head_label_sets().values())  # each head: its classes + "not stated"
    assert json.loads((out / "metrics.json").read_text())["trainable_params"] == n_adapter + 32 * C + C
    from peft import PeftModel
    from transformers import LlamaForCausalLM
    peft_model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(tiny_model_dir), str(out / "adapter"))
    assert sum(p.numel() for n, p in peft_model.named_parameters() if peft_name in n) == n_adapter
    # predict reloads the adapter: it reproduces the test predictions written at the end of training
    assert_predict_reproduces_test(out, tmp_path)


def test_layers_and_probe_head_init(tiny_model_dir, reports_file, tmp_path):
    """--layers keeps the first N blocks; --head-init probe fits the heads to the frozen features, so the
    training loss before any step is well below that of zero heads (sum over tasks of log C_t)."""
    argv = args(tiny_model_dir, reports_file, tmp_path, "--layers", "1")
    cfg = train_mtl.TrainConfig(**vars(train_mtl.train_parser().parse_args(argv)))
    reports = data.read_reports(reports_file)[:24]
    tok = train_mtl.load_tokenizer(tiny_model_dir)
    model, dtype = train_mtl.build_classifier(cfg, data.LABEL_SETS, "cpu")
    assert len(model.llama.layers) == 1 and hasattr(model.llama.layers[0].self_attn.q_proj, "lora_A")
    encoded, y = train_mtl.encode_all(reports, cfg, tok), data.label_tensors(reports)
    zero = float(train_mtl.multitask_cross_entropy(
        train_mtl.predict_logits(model, encoded, tok.pad_id, 8, dtype, "cpu"), y, {}))
    present = [t for t in data.TASKS if (y[t] != -100).any()]
    assert zero == pytest.approx(sum(math.log(len(data.LABEL_SETS[t])) for t in present), rel=1e-5)
    train_mtl.init_heads(model, encoded, y, {}, cfg, tok.pad_id, dtype, "cpu")
    fitted = float(train_mtl.multitask_cross_entropy(
        train_mtl.predict_logits(model, encoded, tok.pad_id, 8, dtype, "cpu"), y, {}))
    assert fitted < 0.5 * zero
    # what each head pools: its own Hints line (field), the last token (last, the paper), every token (mean)
    spans0, n = encoded[0][1], len(encoded[0][0])
    hints_start = min(s for s, _ in spans0.values())
    for pool, want in [("field", [spans0[t] for t in data.TASKS]), ("attention", [spans0[t] for t in data.TASKS]),
                       ("attention+report", [spans0[t] for t in data.TASKS] + [(0, hints_start)] * 7),
                       ("last", [(n - 1, n)] * 7), ("mean", [(0, n)] * 7)]:
        assert train_mtl.collate(encoded[:2], data.TASKS, pool, tok.pad_id)[2][0].tolist() == [list(s) for s in want]
    with pytest.raises(ValueError, match="--layers 9"):
        train_mtl.build_classifier(dataclasses.replace(cfg, layers=9), data.LABEL_SETS, "cpu")


def test_split_by_style_holds_whole_styles_out():
    reports = [data.Report(f"r{i:03d}", "x", {t: None for t in data.TASKS}, style=f"s{i % 10}") for i in range(200)]
    train, val, test = data.split_by_style(reports, seed=42)
    styles = [{r.style for r in part} for part in (train, val, test)]
    assert not (styles[0] & styles[1] or styles[0] & styles[2] or styles[1] & styles[2])
    assert sorted(r.id for p in (train, val, test) for r in p) == sorted(r.id for r in reports)
    assert len(test) == len(val) == 20 and len(train) == 160
    again = data.split_by_style(list(reversed(reports)), seed=42)  # same seed, same split, any input order
    assert [[r.id for r in p] for p in again] == [[r.id for r in p] for p in (train, val, test)]
    assert data.split_by_style(reports, seed=1) != (train, val, test)
    # --split auto: held-out styles when every record has one, else the paper's stratified split
    cfg = train_mtl.TrainConfig(data="reports.jsonl", split="auto", seed=42)
    assert train_mtl.split_reports(reports, cfg) == (train, val, test)
    reports[0].style = None
    mixed = train_mtl.split_reports(reports, cfg)
    assert {r.style for r in mixed[0]} & {r.style for r in mixed[2]}
    with pytest.raises(ValueError, match="every record needs a 'style'"):
        data.split_by_style(reports)


def test_null_labels_train_the_not_stated_class():
    reports = [data.Report("a", "x", {"M": None, "ER": "Negative"}), data.Report("b", "x", {"M": "M1", "ER": None})]
    y = data.label_tensors(reports, data.head_label_sets(["M", "ER"]))
    assert y["M"].tolist() == [2, 1] and y["ER"].tolist() == [1, 3]
    y = data.label_tensors(reports, {t: data.LABEL_SETS[t] for t in ("M", "ER")})  # --not-stated ignore
    assert y["M"].tolist() == [-100, 1] and y["ER"].tolist() == [1, -100]


def test_split_style_without_styles_is_a_setup_problem(tiny_model_dir, tmp_path, capsys):
    rows = make_reports(30)
    for r in rows:
        del r["style"]
    bad = write_jsonl(rows, tmp_path / "unstyled.jsonl")
    assert train_mtl.main(args(tiny_model_dir, bad, tmp_path / "run", "--split", "style")) == 2
    assert "--split style: 30 record(s)" in capsys.readouterr().err
