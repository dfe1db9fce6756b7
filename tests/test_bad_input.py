"""Bad input, systematically (issue 16, item 5): each kind of bad input to the four entry points (train_mtl.py
train, train_mtl.py predict, evaluate.py, train_align.py) stops with a message that names the file, line, field
or flag, without a traceback, and without touching a file that existed before (nothing lost).

Each case is a function that builds the command line from a context of good inputs (a tiny model, a reports
file, a finished run, a pairs file) and damages one thing; CASES is the table. The last tests stop a training run
mid-epoch (SIGKILL, Ctrl-C in a step, Ctrl-C in the optimizer update) and check that --resume reaches the same final
metrics as an uninterrupted run.
"""
import json
import pathlib
import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import data  # noqa: E402
import evaluate  # noqa: E402
import train_align  # noqa: E402
import train_mtl  # noqa: E402
from test_train_align import sigint_inside_adamw_step  # noqa: E402
from test_train_align import tiny  # noqa: E402,F401  (fixture: a tiny Llama with a word tokenizer, pairs.jsonl)
from test_train_mtl import make_reports, tiny_model_dir, write_jsonl  # noqa: E402,F401

ENTRY = {"train": train_mtl.main, "predict": lambda argv: train_mtl.main(["predict", *argv]),
         "evaluate": evaluate.main, "align": train_align.main}
TRAIN = ["--quant", "fp32", "--precision", "fp32", "--micro-batch", "2", "--accum", "3", "--epochs", "1",
         "--max-length", "512"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def good(tiny_model_dir, tiny, tmp_path_factory):
    """Good inputs, shared and never modified: model dirs, a reports file, a finished run, a pairs file."""
    root = tmp_path_factory.mktemp("good")
    reports = write_jsonl(make_reports(30), root / "reports.jsonl")
    run = root / "run"
    assert train_mtl.main(["--data", reports, "--model", tiny_model_dir, "--out", str(run), *TRAIN]) == 0
    return {"model": tiny_model_dir, "reports": reports, "run": str(run), "align_model": str(tiny[0]),
            "pairs": str(tiny[1])}


def lines(path):
    return pathlib.Path(path).read_text().splitlines()


def write(path, rows):
    """rows: JSON-able objects or raw strings, one line each."""
    pathlib.Path(path).write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def copy_run(g, tmp, drop=(), damage=()):
    """A copy of the finished run without the files in `drop`, with the files in `damage` overwritten."""
    run = tmp / "run"
    shutil.copytree(g["run"], run)
    for name in drop:
        shutil.rmtree(run / name) if (run / name).is_dir() else (run / name).unlink()
    for name in damage:
        (run / name).write_text("{not json")
    return str(run)


def copy_model(g, tmp, drop=None, config=None, raw_config=None):
    model = tmp / "model"
    shutil.copytree(g["model"], model)
    if drop:
        (model / drop).unlink()
    if config:
        (model / "config.json").write_text(json.dumps({**json.loads((model / "config.json").read_text()), **config}))
    if raw_config:
        (model / "config.json").write_text(raw_config)
    return str(model)


def train(g, tmp, *extra, data=None, model=None, out=None):
    return ["--data", data or g["reports"], "--model", model or g["model"], "--out", str(out or tmp / "out"), *TRAIN,
            *extra]


def replace_line(path, tmp, line, bad):
    """A copy of the file in tmp with line `line` (1-based) replaced by `bad`."""
    rows = lines(path)
    rows[line - 1] = bad if isinstance(bad, str) else json.dumps(bad)
    return write(tmp / pathlib.Path(path).name, rows)


def train_with_line(g, tmp, line, bad):
    """Train on the good reports file with line `line` replaced by `bad`."""
    return train(g, tmp, data=replace_line(g["reports"], tmp, line, bad))


def report(i, **fields):
    """Good report i with some of its fields replaced."""
    return {**make_reports(30)[i], **fields}


def relabel(i, **labels):
    """Good report i with some of its labels replaced."""
    r = make_reports(30)[i]
    return {**r, "labels": {**r["labels"], **labels}}


def predict(g, tmp, *extra, data=None, run=None, out=None):
    return ["--run", str(run or g["run"]), "--data", data or g["reports"], "--out", str(out or tmp / "p.jsonl"), *extra]


def align(g, tmp, *extra, data=None, model=None):
    return ["--model", model or g["align_model"], "--data", data or g["pairs"], "--out", str(tmp / "align"),
            "--no-bf16", "--batch-size", "4", "--max-length", "32", "--steps", "1", *extra]


def edited_config_run(g, t, drop=(), **changes):
    """A copy of the run whose config.json lacks the keys in `drop` and has `changes`."""
    run = copy_run(g, t)
    cfg = json.loads(pathlib.Path(run, "config.json").read_text())
    cfg = {k: v for k, v in {**cfg, **changes}.items() if k not in drop}
    pathlib.Path(run, "config.json").write_text(json.dumps(cfg))
    return run


def save_npy(path):
    import numpy as np
    np.save(path, np.zeros((3, 2)))
    return path


# ----------------------------------------------------------------------------- the table of cases
# (entry point, kind of bad input, argv builder (good inputs, case dir) -> argv, fragments the message must hold;
#  {tmp} in a fragment is the case dir)

CASES = [
    # train_mtl.py train: the reports file
    ("train", "malformed JSON line", lambda g, t: train_with_line(g, t, 3, '{"id": "r002", "text":'),
     ["reports.jsonl:3", "not JSON"]),
    ("train", "line that is not an object", lambda g, t: train_with_line(g, t, 4, "[1, 2]"),
     ["reports.jsonl:4", "expected a JSON object, got list"]),
    ("train", "missing text", lambda g, t: train_with_line(g, t, 5, {"id": "x", "labels": {}}),
     ["reports.jsonl:5", "text: missing"]),
    ("train", "empty text", lambda g, t: train_with_line(g, t, 6, report(5, text="  \n")),
     ["reports.jsonl:6", "text: empty text"]),
    ("train", "text that is not a string", lambda g, t: train_with_line(g, t, 6, report(5, text=12)),
     ["reports.jsonl:6", "text: expected a string, got int"]),
    ("train", "missing id", lambda g, t: train_with_line(g, t, 2, report(1, id="")),
     ["reports.jsonl:2", "id: missing or empty"]),
    ("train", "duplicate id", lambda g, t: train_with_line(g, t, 9, report(8, id="r000")),
     ["reports.jsonl:9", "duplicate id 'r000' (first on line 1)"]),
    ("train", "unknown label", lambda g, t: train_with_line(g, t, 7, relabel(6, T="T9")),
     ["reports.jsonl:7", "labels.T", "'T9'"]),
    ("train", "label of the wrong type", lambda g, t: train_with_line(g, t, 8, relabel(7, grade=3)),
     ["reports.jsonl:8", "labels.grade: expected a string or null, got int"]),
    ("train", "unknown task in labels", lambda g, t: train_with_line(g, t, 8, relabel(7, stage="II")),
     ["reports.jsonl:8", "labels.stage: unknown task"]),
    ("train", "labels that are not an object", lambda g, t: train_with_line(g, t, 8, report(7, labels=["T1"])),
     ["reports.jsonl:8", "labels: expected an object, got list"]),
    ("train", "site that names no block of the text", lambda g, t: train_with_line(g, t, 10, report(9, site="LEFT")),
     ["reports.jsonl:10", "site: 'LEFT' names no site block"]),
    ("train", "empty file", lambda g, t: train(g, t, data=write(t / "empty.jsonl", [])),
     ["empty.jsonl: 0 reports; the 80/10/10 split needs at least 10"]),
    ("train", "missing file", lambda g, t: train(g, t, data=str(t / "nope.jsonl")), ["nope.jsonl: no such file"]),
    ("train", "directory instead of a file", lambda g, t: train(g, t, data=str(t)), ["--data {tmp}: "]),
    ("train", "file that is not UTF-8", lambda g, t: train(g, t, data=str(
        (t / "latin1.jsonl").write_bytes("{\"id\": \"é\"}\n".encode("latin-1")) and t / "latin1.jsonl")),
     ["latin1.jsonl", "can't decode byte 0xe9"]),
    # train_mtl.py train: the model directory
    ("train", "model dir that is not a model", lambda g, t: train(g, t, model=str(t)),
     ["--model {tmp}", "not a model directory (config.json missing)"]),
    ("train", "model dir without tokenizer.json", lambda g, t: train(
        g, t, model=copy_model(g, t, drop="tokenizer.json")), ["model/tokenizer.json", "not found"]),
    ("train", "model dir without weights", lambda g, t: train(g, t, model=copy_model(g, t, drop="model.safetensors")),
     ["model: neither model.safetensors nor model.safetensors.index.json"]),
    ("train", "tokenizer larger than the model's vocabulary", lambda g, t: train(
        g, t, model=copy_model(g, t, config={"vocab_size": 100})), ["tokenizer.json: tokenizer does not match", "100"]),
    ("train", "unknown config field", lambda g, t: train(g, t, model=copy_model(g, t, config={"sliding_window": 64})),
     ["model/config.json", "sliding_window"]),
    ("train", "config.json that is not JSON", lambda g, t: train(g, t, model=copy_model(g, t, raw_config="{")),
     ["--model {tmp}/model", "model/config.json: not JSON"]),
    # train_mtl.py train: flags and the output directory
    ("train", "--max-length too short for the prompt", lambda g, t: train(g, t, "--max-length", "100"),
     ["--max-length 100", "use at least"]),
    ("train", "--max-length below 16", lambda g, t: train(g, t, "--max-length", "8"), ["--max-length >= 16"]),
    ("train", "--micro-batch 0", lambda g, t: train(g, t, "--micro-batch", "0"), ["--micro-batch"]),
    ("train", "--dropout 1 (the old spelling)", lambda g, t: train(g, t, "--dropout", "1"),
     ["--lora-dropout must be in [0, 1), got 1.0"]),
    ("train", "--layers beyond the model", lambda g, t: train(g, t, "--layers", "9"),
     ["--layers 9: the model has 2 blocks"]),
    ("train", "--lr that is not a number", lambda g, t: train(g, t, "--lr", "fast"), ["--lr", "invalid float"]),
    ("train", "--split style on data without styles", lambda g, t: train(g, t, "--split", "style", data=write(
        t / "nostyle.jsonl", [{k: v for k, v in r.items() if k != "style"} for r in make_reports(30)])),
     ["--split style: 30 record(s)", "no 'style'"]),
    ("train", "--out that is a file", lambda g, t: train(g, t, out=g["reports"]), ["reports.jsonl is a file"]),
    ("train", "--out that already holds a run", lambda g, t: train(g, t, out=copy_run(g, t)),
     ["run already holds a run; pass --resume"]),
    ("train", "--resume with other settings", lambda g, t: train(g, t, "--resume", "--lr", "1e-3", "--r", "8",
                                                               out=copy_run(g, t)),
     ["--resume with settings that differ", "--lr: 0.0001 in the run, 0.001 now", "--r: 16 in the run, 8 now"]),
    ("train", "--resume with a model that is not the run's", lambda g, t: train(
        g, t, "--resume", model=copy_model(g, t), out=copy_run(g, t)), ["--model: ", "in the run", "model' now"]),
    ("train", "--resume of a run whose config.json is damaged", lambda g, t: train(
        g, t, "--resume", out=copy_run(g, t, damage=["config.json"])), ["run/config.json: cannot read it"]),
    # train_mtl.py predict
    ("predict", "--run that does not exist", lambda g, t: predict(g, t, run=t / "nope"), ["nope: no such directory"]),
    ("predict", "--run that is a file", lambda g, t: predict(g, t, run=g["reports"]),
     ["reports.jsonl: not a directory"]),
    ("predict", "--run that is not a run", lambda g, t: predict(g, t, run=t),
     ["{tmp}/config.json not found", "not a train_mtl.py run"]),
    ("predict", "--run interrupted before the final export", lambda g, t: predict(g, t, run=copy_run(
        g, t, drop=["adapter", "heads.safetensors", "label_maps.json", "metrics.json", "test_predictions.jsonl"])),
     ["run: training was interrupted before the final export", "--resume"]),
    ("predict", "--run without heads.safetensors", lambda g, t: predict(g, t, run=copy_run(
        g, t, drop=["heads.safetensors"])), ["incomplete run, missing", "run/heads.safetensors"]),
    ("predict", "--run without its adapter", lambda g, t: predict(g, t, run=copy_run(g, t, drop=["adapter"])),
     ["incomplete run, missing", "run/adapter/adapter_config.json"]),
    ("predict", "--run without label_maps.json", lambda g, t: predict(g, t, run=copy_run(
        g, t, drop=["label_maps.json"])), ["run/label_maps.json not found"]),
    ("predict", "--run with a damaged config.json", lambda g, t: predict(g, t, run=copy_run(
        g, t, damage=["config.json"])), ["run/config.json: cannot read it"]),
    ("predict", "--run with a damaged heads file", lambda g, t: predict(g, t, run=copy_run(
        g, t, damage=["heads.safetensors"])), ["run: cannot load the trained adapter or heads", "SafetensorError"]),
    ("predict", "--run whose base model has moved", lambda g, t: predict(g, t, run=edited_config_run(
        g, t, model=str(t / "moved_model"))),
     ["run/config.json: cannot rebuild the model", "moved_model: not a model directory"]),
    ("predict", "--run whose config.json has an unknown setting", lambda g, t: predict(g, t, run=edited_config_run(
        g, t, lora_rank=8)), ["run/config.json: unknown setting(s) 'lora_rank'"]),
    ("predict", "empty --data", lambda g, t: predict(g, t, data=write(t / "new.jsonl", [])),
     ["new.jsonl: no reports to label"]),
    ("predict", "--data line without text", lambda g, t: predict(g, t, data=write(t / "new.jsonl", [{"id": "a"}])),
     ["new.jsonl:1", "text: missing"]),
    ("predict", "--data that is a directory", lambda g, t: predict(g, t, data=str(t)), ["--data {tmp}", "directory"]),
    ("predict", "--out in a missing directory", lambda g, t: predict(g, t, out=t / "no" / "p.jsonl"),
     ["no/p.jsonl", "does not exist"]),
    ("predict", "--out that is the --data file", lambda g, t: predict(g, t, out=g["reports"]), ["is the --data file"]),
    ("predict", "--batch 0", lambda g, t: predict(g, t, "--batch", "0"), ["--batch: must be >= 1"]),
    # evaluate.py
    ("evaluate", "RUN that does not exist", lambda g, t: [str(t / "nope"), "--no-plots"],
     ["nope: not a run directory"]),
    ("evaluate", "RUN that is not a run", lambda g, t: [str(t), "--no-plots"], ["{tmp}/config.json not found"]),
    ("evaluate", "RUN interrupted (no metrics.json)", lambda g, t: [copy_run(g, t, drop=["metrics.json"]),
                                                                    "--no-plots"], ["run/metrics.json not found"]),
    ("evaluate", "RUN with a damaged metrics.json", lambda g, t: [copy_run(g, t, damage=["metrics.json"]),
                                                                  "--no-plots"], ["run/metrics.json: cannot read it"]),
    ("evaluate", "RUN --data on an interrupted run", lambda g, t: [copy_run(
        g, t, drop=["adapter", "heads.safetensors", "label_maps.json"]), "--data", g["reports"], "--no-plots"],
     ["training was interrupted before the final export"]),
    ("evaluate", "RUN --data with a bad line", lambda g, t: [g["run"], "--data", replace_line(g["reports"], t, 3, "[]"),
                                                             "--out", str(t / "ev"), "--no-plots"],
     ["reports.jsonl:3", "expected a JSON object"]),
    ("evaluate", "RUN --data with an empty file", lambda g, t: [g["run"], "--data", write(t / "e.jsonl", []),
                                                                "--out", str(t / "ev"), "--no-plots"],
     ["e.jsonl: no reports to score"]),
    ("evaluate", "probes on a missing embeddings file", lambda g, t: [
        "probes", "--embeddings", str(t / "stage1.npy"), "--labels", g["pairs"]], ["stage1.npy: not found"]),
    ("evaluate", "probes without the ids file", lambda g, t: [
        "probes", "--embeddings", str(save_npy(t / "stage1.npy")), "--labels", g["pairs"]],
     ["stage1.ids.json: ids file missing"]),
    ("evaluate", "probes with a bad labels line", lambda g, t: [
        "probes", "--embeddings", str(t / "stage1.npy"), "--labels", replace_line(g["pairs"], t, 2, "{")],
     ["pairs.jsonl:2", "not JSON"]),
    # train_align.py
    ("align", "missing --data file", lambda g, t: align(g, t, data=str(t / "nope.jsonl")),
     ["--data {tmp}/nope.jsonl", "No such file"]),
    ("align", "--data that is a directory", lambda g, t: align(g, t, data=str(t)), ["--data {tmp}", "directory"]),
    ("align", "empty pairs file", lambda g, t: align(g, t, data=write(t / "pairs.jsonl", [])),
     ["pairs.jsonl: no pairs to train on"]),
    ("align", "pair without a radiology report", lambda g, t: align(g, t, data=replace_line(
        g["pairs"], t, 5, {"id": "x", "pathology": "biopsy"})), ["pairs.jsonl:5", "radiology: missing"]),
    ("align", "unknown tumour type", lambda g, t: align(g, t, data=replace_line(
        g["pairs"], t, 6, {"id": "x", "radiology": "mri", "pathology": "biopsy", "labels": {"tumor_type": "banana"}})),
     ["pairs.jsonl:6", "labels.tumor_type: unknown label 'banana'"]),
    ("align", "--batch-size larger than the data", lambda g, t: align(g, t, "--batch-size", "64", "--holdout", "0"),
     ["--batch-size 64 is larger than the 48 training examples of stage 1"]),
    ("align", "--max-length too short for the instruction", lambda g, t: align(g, t, "--max-length", "3"),
     ["--max-length 3 leaves no room", "stage 3"]),
    ("align", "--stages that do not exist", lambda g, t: align(g, t, "--stages", "4"),
     ["--stages: only 1, 2, 3 exist, got 4"]),
    ("align", "--stages 2 before stage 1 exists", lambda g, t: align(g, t, "--stages", "2"),
     ["align/stage1: stage 1 is missing; stage 2 needs stages 1..1"]),
    ("align", "--lr with two values", lambda g, t: align(g, t, "--lr", "1e-3,2e-3"),
     ["expected one value or three (stages 1,2,3), got '1e-3,2e-3'"]),
    ("align", "--steps 0", lambda g, t: align(g, t, "--steps", "0"), ["--steps must be >= 1, got 0 (stage 1)"]),
    ("align", "unknown --lora-targets", lambda g, t: align(g, t, "--lora-targets", "q_proj,qkv"),
     ["--lora-targets: unknown projection(s) ['qkv']"]),
    ("align", "--mask-token of two tokens", lambda g, t: align(g, t, "--mask-token", "mri brain"),
     ["--mask-token 'mri brain' is 2 tokens"]),
    ("align", "--hard-negatives type without tumour types", lambda g, t: align(g, t, "--hard-negatives", "type",
                                                                           data=write(t / "p.jsonl", [
        {**json.loads(l), "labels": {}} for l in lines(g["pairs"])])), ["every pair needs labels.tumor_type"]),
    ("align", "--model that is not a model", lambda g, t: align(g, t, model=str(t)),
     ["--model {tmp}", "config.json missing"]),
    ("align", "--embed of a missing file", lambda g, t: ["--model", g["align_model"], "--out", str(t / "a"), "--embed",
                                                         str(t / "nope.jsonl"), "--embed-stages", "0", "--no-bf16"],
     ["No such file or directory: '{tmp}/nope.jsonl'"]),
    ("align", "--embed without the --field", lambda g, t: ["--model", g["align_model"], "--out", str(t / "a"),
                                                           "--embed", g["pairs"], "--field", "report",
                                                           "--embed-stages", "0", "--no-bf16"],
     ["pairs.jsonl:1: report: missing"]),
    ("align", "--embed-stages with a stage not trained", lambda g, t: [
        "--model", g["align_model"], "--out", str(t / "a"), "--embed", g["pairs"], "--embed-stages", "0,2",
        "--no-bf16"], ["a/stage1: stage 1 is missing"]),
]


def files(*roots):
    """{path: bytes} of every file under the roots: what must survive a failed command unchanged."""
    return {p: p.read_bytes() for root in roots for p in pathlib.Path(root).rglob("*") if p.is_file()}


def run_entry(entry, argv, capsys):
    """(exit code, stderr) of an entry point called in-process; a SystemExit's message counts as stderr."""
    try:
        rc = ENTRY[entry](argv)
        message = ""
    except SystemExit as e:
        rc, message = (e.code, "") if isinstance(e.code, int) else (1, str(e.code))
    return rc, capsys.readouterr().err + message


@pytest.mark.parametrize("entry, kind, argv, fragments", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_bad_input_is_a_clear_error(good, tmp_path, capsys, entry, kind, argv, fragments):
    argv = argv(good, tmp_path)
    before = files(tmp_path, good["run"], pathlib.Path(good["reports"]).parent, good["model"], good["align_model"])
    rc, err = run_entry(entry, argv, capsys)
    assert rc not in (0, None), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment.format(tmp=tmp_path) in err, err
    after = files(tmp_path, good["run"], pathlib.Path(good["reports"]).parent, good["model"], good["align_model"])
    assert {p: b for p, b in after.items() if p in before} == before  # nothing changed, nothing deleted


def test_cases_cover_the_four_entry_points():
    assert {entry for entry, *_ in CASES} == set(ENTRY) and len({kind for _, kind, *_ in CASES}) >= 30


# ----------------------------------------------------------------------------- not errors, but handled


def test_huge_text_is_cut_to_fit_not_an_error(good, tmp_path, capsys):
    """A 1 MB report (a whole PDF glued into one line) is labelled: cut to fit the run's --max-length, with a note."""
    huge = {"id": "huge", "text": make_reports(1)[0]["text"] + " word" * 200_000}
    rc = train_mtl.main(["predict", "--run", good["run"], "--data", write(tmp_path / "h.jsonl", [huge]),
                         "--out", str(tmp_path / "p.jsonl")])
    assert rc == 0 and "1 of 1 report(s) cut to fit max_length=512" in capsys.readouterr().err
    assert json.loads((tmp_path / "p.jsonl").read_text())["id"] == "huge"


def test_a_field_the_report_gives_no_evidence_of_reads_not_stated(good, tmp_path):
    """The evidence gate: a field the text never names, and HER2 named without a value, are answered null whatever
    the head says (its probabilities stay in the record); a field it names keeps the head's answer. The evidence
    shown is the text as the model reads it, OCR confusions put back, as the gate reads it."""
    text = "Invasive ductal carcinoma, 2.1 cm. Estrogen receptor: positive (90%). HER2 (ERBB2) status: ________"
    out = tmp_path / "p.jsonl"
    assert train_mtl.main(["predict", "--run", good["run"], "--data", write(tmp_path / "r.jsonl", [
        {"id": "r", "text": text}, {"id": "ocr", "text": "ER positive (90%). l-IER2 (IHC): 1+ (negative)."}]),
        "--out", str(out)]) == 0
    pred, ocr = (json.loads(line)["predictions"] for line in out.read_text().splitlines())
    assert ocr["HER2"]["evidence"] == "HER2 (IHC): 1+ (negative)"
    gated = ("N", "M", "grade", "PR", "HER2")
    assert all(pred[t]["label"] is None for t in gated), pred
    heads = {t: max(pred[t]["probs"], key=pred[t]["probs"].get) for t in data.TASKS}
    assert any(heads[t] != data.NOT_STATED for t in gated)  # the gate changed an answer: the test can fail
    assert all(pred[t]["label"] == (None if heads[t] == data.NOT_STATED else heads[t]) for t in ("T", "ER"))


def test_config_json_of_an_older_run_still_predicts(good, tmp_path):
    """A run written before --head-init, --layers, --virtual-tokens, --skip-bad, --split, --not-stated and
    --hint-dropout existed predicts as before; its missing settings read as what runs did then."""
    newer = ["head_init", "layers", "virtual_tokens", "skip_bad", "hint_dropout", "not_stated", "split", "styles",
             "compute_dtype", "base_weights"]
    old = edited_config_run(good, tmp_path, drop=newer)
    cfg = train_mtl.load_run(old)[0]
    assert (cfg.split, cfg.head_init, cfg.not_stated) == ("random", "zero", "ignore")
    assert (cfg.layers, cfg.virtual_tokens, cfg.skip_bad, cfg.hint_dropout) == (None, 32, False, 0.0)
    for run, out in ((good["run"], tmp_path / "new.jsonl"), (old, tmp_path / "old.jsonl")):
        assert train_mtl.main(["predict", "--run", run, "--data", good["reports"], "--out", str(out)]) == 0
    assert (tmp_path / "old.jsonl").read_text() == (tmp_path / "new.jsonl").read_text()


def test_a_setup_that_stopped_leaves_no_run_behind(good, tmp_path, capsys):
    """A setup error found after config.json is written (--max-length too short) does not make --out look like a
    run: the corrected command starts, instead of demanding --resume with the wrong settings."""
    assert train_mtl.main(train(good, tmp_path, "--max-length", "100")) == 2
    assert train_mtl.main(train(good, tmp_path, "--head-init", "zero")) == 0


@pytest.mark.parametrize("flag, value", [("--lr", "-1"), ("--weight-decay", "-1"), ("--warmup", "2.5"),
                                         ("--lora-r", "0"), ("--save-every", "0"), ("--lora-targets", "q_proj,qkv"),
                                         ("--weighted", "HER3")])
def test_bad_training_flag_is_a_setup_error(good, tmp_path, capsys, flag, value):
    # --layers 9 is a second setup error that is found later (when the model is built): a flag check that is
    # missing then stops there, instead of starting a training run with the bad value
    assert train_mtl.main(train(good, tmp_path, flag, value, "--layers", "9")) == 2
    assert re.search(rf"{flag}\b", capsys.readouterr().err)


# ----------------------------------------------------------------------------- kill -9, then --resume

KILLER = """
import os, signal, sys
sys.path.insert(0, {root!r})
import train_mtl
forward, calls = train_mtl.Classifier.forward, [0]

def killed(self, *a):  # SIGKILL in the middle of an optimizer step: no handler runs, nothing is flushed
    calls[0] += self.training
    if calls[0] == {at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return forward(self, *a)

train_mtl.Classifier.forward = killed
sys.exit(train_mtl.main({argv!r}))
"""


def stopped_run_argv(good, out):
    """2 epochs x 3 optimizer steps of 3 micro-batches, with dropout (the RNG state must survive a stop too)."""
    return ["--data", good["reports"], "--model", good["model"], "--out", str(out), "--quant", "fp32",
            "--precision", "fp32", "--micro-batch", "2", "--accum", "3", "--epochs", "2", "--patience", "5",
            "--lr", "5e-3", "--threads", "1", "--save-every", "2"]


@pytest.fixture(scope="module")
def straight(good, tmp_path_factory):
    """The uninterrupted run that a stopped and resumed run must reproduce."""
    out = tmp_path_factory.mktemp("straight") / "run"
    assert train_mtl.main(stopped_run_argv(good, out)) == 0
    return out


def checkpoint_step(run):
    return torch.load(run / "checkpoint.pt", weights_only=False)["state"]["step"]


def assert_resumes_to(straight, stopped, argv):
    """--resume finishes the stopped run with the uninterrupted run's metrics, weights and training losses."""
    assert not (stopped / "metrics.json").exists()
    assert train_mtl.main(argv + ["--resume"]) == 0
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (straight, stopped))
    assert (a["test"], a["val"], a["best_val_loss"]) == (b["test"], b["val"], b["best_val_loss"])
    from safetensors.torch import load_file
    wa, wb = (load_file(d / "adapter" / "adapter_model.safetensors") for d in (straight, stopped))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    losses = [[json.loads(l)["loss"] for l in open(d / "train_log.jsonl")] for d in (straight, stopped)]
    assert losses[0] == losses[1] and len(losses[0]) == 6
    assert not [p.name for p in stopped.iterdir() if ".tmp" in p.name]  # no half-written file left behind


def test_kill_9_mid_epoch_then_resume_reaches_the_same_metrics(good, straight, tmp_path):
    """Killed at micro-batch 14 (epoch 2, step 5, after the checkpoint of step 4 that --save-every 2 writes):
    step 5 is lost, and --resume redoes it."""
    killed = tmp_path / "killed"
    root = str(pathlib.Path(__file__).resolve().parents[1])
    child = subprocess.run([sys.executable, "-c", KILLER.format(root=root, at=14, argv=stopped_run_argv(good, killed))],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert checkpoint_step(killed) == 4
    assert_resumes_to(straight, killed, stopped_run_argv(good, killed))


def test_ctrl_c_mid_step_saves_the_last_finished_step(good, straight, tmp_path, monkeypatch):
    """Ctrl-C at the end of the forward pass of step 6's first micro-batch (no periodic checkpoint since step 4):
    step 5 is saved, with the RNG state it left, and --resume reaches the uninterrupted run's metrics."""
    forward, calls = train_mtl.Classifier.forward, [0]

    def interrupted(self, *a):
        out = forward(self, *a)  # its LoRA dropout has drawn from the RNG
        calls[0] += self.training
        if calls[0] == 16:
            raise KeyboardInterrupt
        return out
    monkeypatch.setattr(train_mtl.Classifier, "forward", interrupted)
    stopped = tmp_path / "stopped"
    assert train_mtl.main(stopped_run_argv(good, stopped)) == 130
    assert checkpoint_step(stopped) == 5
    monkeypatch.setattr(train_mtl.Classifier, "forward", forward)
    assert_resumes_to(straight, stopped, stopped_run_argv(good, stopped))


def test_ctrl_c_during_the_optimizer_update_waits_for_it(good, straight, tmp_path, monkeypatch):
    """SIGINT arriving inside step 5's AdamW update: the update and its record finish first, then the run stops
    with step 5 saved; a Ctrl-C that split them would resume from weights one update ahead of the step count."""
    restore = sigint_inside_adamw_step(monkeypatch, 5)
    stopped = tmp_path / "stopped"
    assert train_mtl.main(stopped_run_argv(good, stopped)) == 130
    assert checkpoint_step(stopped) == 5
    restore()
    assert_resumes_to(straight, stopped, stopped_run_argv(good, stopped))
