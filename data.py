"""Reports in, model inputs out: reading and checking the JSONL files, canonical labels, window slicing of text
with or without line breaks (units tagged by section, evidence ranked per task), the four-block prompt with its
hint engine, the split by style (or stratified), label tensors with the "not stated" class, the naive regex
baseline, and text as it arrives from elsewhere (`arrive`: one line, OCR, other headers) with what undoes it
before the model reads (`as_read`: capitals recased, a checklist's marked options read, OCR confusions put
back, a grade's shorthand written out). Padding is llama.pad_batch.

    python data.py check --data examples/reports.jsonl      # list every bad line, print the label counts
    python data.py check --data examples/pairs.jsonl --pairs
    python data.py show --data examples/reports.jsonl --n 1 # print the model input built for a report

The synthetic corpus under examples/ is written by examples/make_examples.py.
"""
import argparse
import json
import random
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache

import torch

from losses import IGNORE

# ----------------------------------------------------------------------------------------------------------
# label sets (MTL paper, Table S1) and canonical spellings

LABEL_SETS = {
    "T": ["Tis", "T0", "T1", "T2", "T3", "T4"],
    "N": ["N0", "N1", "N1mi", "N2", "N3"],
    "M": ["M0", "M1"],
    "grade": ["G1", "G2", "G3"],
    "ER": ["Positive", "Negative", "Equivocal"],
    "PR": ["Positive", "Negative", "Equivocal"],
    "HER2": ["Positive", "Negative", "Equivocal"],
}
TASKS = list(LABEL_SETS)
RECEPTORS = ("ER", "PR", "HER2")  # the biomarker tasks: a status, printed side by side in one table or sentence
NOT_STATED = "not stated"  # the extra class of every head: the report does not state this field (a null label)
SPLITS = ("train", "val", "test")  # the order split functions return them in


def head_label_sets(tasks=TASKS):
    """The classes each head predicts: the task's labels, then NOT_STATED (learned from the null labels)."""
    return {t: LABEL_SETS[t] + [NOT_STATED] for t in tasks}

# alignment pairs (brain tumours): nine tumour types, MGMT promoter status, alive one year after diagnosis
PAIR_LABEL_SETS = {
    "tumor_type": ["glioblastoma", "astrocytoma", "oligodendroglioma", "ependymoma", "medulloblastoma",
                   "pilocytic_astrocytoma", "meningioma", "metastasis", "lymphoma"],
    "mgmt": ["methylated", "unmethylated"],
    "survival_1y": ["alive", "deceased"],
}

_STATUS = [  # ER / PR / HER2 spellings, matched after lower-casing and dropping a trailing "(...)"
    (r"pos|positive|\+|low positive|weakly positive|strongly positive", "Positive"),
    (r"neg|negative|-|not detected", "Negative"),
    (r"equivocal|equiv|borderline|indeterminate", "Equivocal"),
]
_CANON = {
    "T": [(r"(?:[cpyram]{1,3})?t ?(is|0|1|2|3|4)(?:mi|[a-d])?", None)],
    "N": [(r"(?:[cpy]{1,2})?n ?(0|1mi|1|2|3)[a-c]?(?: ?\((?:i[+-]|mol[+-]|sn|f)\))*", None)],
    "M": [(r"(?:[cpy]{1,2})?m ?(0|1)[a-c]?(?: ?\(i\+\))?", None)],
    "grade": [
        (r"(?:(?:g|grade|nottingham grade|histologic grade) ?)?(1|i)(?: ?(?:/|of) ?(?:3|iii))?|well differentiated|low|low grade", "G1"),
        (r"(?:(?:g|grade|nottingham grade|histologic grade) ?)?(2|ii)(?: ?(?:/|of) ?(?:3|iii))?|moderately differentiated|intermediate|intermediate grade", "G2"),
        (r"(?:(?:g|grade|nottingham grade|histologic grade) ?)?(3|iii)(?: ?(?:/|of) ?(?:3|iii))?|poorly differentiated|high|high grade", "G3"),
    ],
    "ER": _STATUS,
    "PR": _STATUS,
    "HER2": _STATUS + [(r"(?:ihc )?(?:score )?3\+", "Positive"), (r"(?:ihc )?(?:score )?(?:0|1\+|0-1\+)", "Negative"),
                       (r"(?:ihc )?(?:score )?2\+", "Equivocal")],
}
_PAIR_CANON = {
    "tumor_type": {"gbm": "glioblastoma", "pilocytic astrocytoma": "pilocytic_astrocytoma",
                   "brain metastasis": "metastasis", "pcnsl": "lymphoma", "primary cns lymphoma": "lymphoma"},
    "mgmt": {"methylated": "methylated", "unmethylated": "unmethylated", "positive": "methylated",
             "negative": "unmethylated", "true": "methylated", "false": "unmethylated"},
    "survival_1y": {"alive": "alive", "deceased": "deceased", "yes": "alive", "no": "deceased", "true": "alive",
                    "false": "deceased", "1": "alive", "0": "deceased", "dead": "deceased"},
}


def _key(raw):
    s = str(raw).strip().lower().replace("_", " ").replace("–", "-")
    s = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", s)  # well-differentiated -> well differentiated
    return re.sub(r"\s+", " ", s).strip(" .:;,")


def canonicalize(task, raw):
    """Map a label spelling (pT1c, ypT2, pN1mi, Grade III, 3/3, poorly differentiated, pos) to its class."""
    if task not in LABEL_SETS:
        raise ValueError(f"unknown task {task!r}; tasks are {TASKS}")
    if raw in LABEL_SETS[task]:
        return raw
    key = _key(raw)
    key = re.sub(r"\s*\([^()]*%[^()]*\)$|\s*\((?:score|allred)[^()]*\)$", "", key)  # "positive (95%)"
    if task in RECEPTORS + ("grade",):
        key = re.sub(r"\s*\([^()]*\)$", "", key) or key   # "equivocal (2+)", "grade 2 (score 6)"
    for pattern, label in _CANON[task]:
        m = re.fullmatch(pattern, key)
        if m:
            if label is not None:
                return label
            v = m.group(1)
            return {"T": "Tis" if v == "is" else "T" + v, "N": "N" + v, "M": "M" + v}[task]
    raise ValueError(f"unknown {task} label {raw!r}: expected one of {LABEL_SETS[task]} "
                     f"or a common spelling (pT1c, pN1mi, Grade III, 3/3, poorly differentiated, pos)")


def canonicalize_pair(task, raw):
    """Canonical alignment label (tumour type, MGMT, one-year survival); booleans allowed for the last two."""
    if task not in PAIR_LABEL_SETS:
        raise ValueError(f"unknown task {task!r}; tasks are {list(PAIR_LABEL_SETS)}")
    key = _key(raw)
    if key in PAIR_LABEL_SETS[task]:
        return key
    if key.replace(" ", "_") in PAIR_LABEL_SETS[task]:
        return key.replace(" ", "_")
    if key in _PAIR_CANON[task]:
        return _PAIR_CANON[task][key]
    raise ValueError(f"unknown {task} label {raw!r}: expected one of {PAIR_LABEL_SETS[task]}")


# ----------------------------------------------------------------------------------------------------------
# reading and validating the JSONL files: every problem is collected, then reported at once

@dataclass
class Report:
    id: str
    text: str
    labels: dict              # task -> canonical label, or None = not stated
    site: str | None = None   # which per-site block the labels belong to (bilateral reports)
    style: str | None = None  # the writing style / institution; held-out styles make the honest test split
    line: int = 0
    split: str | None = None  # "train" / "val" / "test" where the file fixes which styles are held out


@dataclass
class Pair:
    id: str
    radiology: str
    pathology: str
    labels: dict              # tumor_type / mgmt / survival_1y -> label or None
    line: int = 0


class DataError(ValueError):
    """All problems of a data file at once; .problems holds one 'file:line: field: message' string each."""

    def __init__(self, path, problems, n_lines):
        self.problems = problems
        bad = len({p.split(": ", 1)[0] for p in problems})  # a line can have several problems
        super().__init__(f"{path}: {bad} bad line(s) of {n_lines} (fix them, or pass --skip-bad "
                         f"to leave them out):\n  " + "\n  ".join(problems))


def _short(v):
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _read_jsonl(path, parse, skip_bad):
    """Parse every line with parse(obj, where, problems, seen) -> record|None; raise or skip with a count."""
    records, problems, seen, n_lines = [], [], {}, 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue  # blank lines hold no record
            n_lines += 1
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{where}: (line): not JSON ({e.msg} at column {e.colno})")
                continue
            if not isinstance(obj, dict):
                problems.append(f"{where}: (line): expected a JSON object, got {type(obj).__name__}")
                continue
            before = len(problems)
            rec = parse(obj, where, problems)
            rid = obj.get("id")
            if isinstance(rid, str) and rid:
                if rid in seen:
                    problems.append(f"{where}: id: duplicate id {rid!r} (first on line {seen[rid]})")
                else:
                    seen[rid] = lineno
            if rec is not None and len(problems) == before:
                rec.line = lineno
                records.append(rec)
    if problems and not skip_bad:
        raise DataError(path, problems, n_lines)
    if problems:
        bad = len({p.split(": ", 1)[0] for p in problems})  # as DataError counts them
        print(f"{path}: skipped {bad} bad line(s) of {n_lines} (--skip-bad):\n  " + "\n  ".join(problems),
              file=sys.stderr)
    return records


def _check_id(obj, where, problems):
    rid = obj.get("id")
    if "id" not in obj or rid in (None, ""):
        problems.append(f"{where}: id: missing or empty")
    elif not isinstance(rid, str):
        problems.append(f"{where}: id: expected a string, got {type(rid).__name__} {_short(rid)}")
    return rid


def _check_text(obj, key, where, problems):
    text = obj.get(key)
    if key not in obj or text is None:
        problems.append(f"{where}: {key}: missing")
    elif not isinstance(text, str):
        problems.append(f"{where}: {key}: expected a string, got {type(text).__name__} {_short(text)}")
    elif not text.strip():
        problems.append(f"{where}: {key}: empty text")
    return text


def _check_labels(obj, where, problems, label_sets, canon, allow_bool=False):
    raw = obj.get("labels", {})
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: labels: expected an object, got {type(raw).__name__} {_short(raw)}")
        return None
    labels = {t: None for t in label_sets}
    for task, value in raw.items():
        if task not in label_sets:
            problems.append(f"{where}: labels.{task}: unknown task (tasks are {', '.join(label_sets)})")
        elif value is None:
            continue
        elif not (isinstance(value, str) or (allow_bool and isinstance(value, (bool, int)))):
            problems.append(f"{where}: labels.{task}: expected a string or null, got {type(value).__name__} "
                            f"{_short(value)}")
        else:
            try:
                labels[task] = canon(task, value)
            except ValueError:
                problems.append(f"{where}: labels.{task}: unknown label {_short(value)} "
                                f"(expected one of {', '.join(label_sets[task])})")
    return labels


def _parse_report(obj, where, problems):
    rid = _check_id(obj, where, problems)
    text = _check_text(obj, "text", where, problems)
    labels = _check_labels(obj, where, problems, LABEL_SETS, canonicalize)
    site = obj.get("site")
    if site is not None:
        if not isinstance(site, str) or not site.strip():
            problems.append(f"{where}: site: expected a non-empty string, got {_short(site)}")
            site = None
        else:
            site = normalize_site(site)
            if isinstance(text, str) and site not in dict(split_sites(text)):
                problems.append(f"{where}: site: {site!r} names no site block of the text (blocks: "
                                f"{[s for s, _ in split_sites(text) if s] or 'none'})")
    style = obj.get("style")
    if style is not None and (not isinstance(style, str) or not style.strip()):
        problems.append(f"{where}: style: expected a non-empty string, got {_short(style)}")
        style = None
    split = obj.get("split")
    if split is not None and split not in SPLITS:
        problems.append(f"{where}: split: expected one of {', '.join(SPLITS)} or null, got {_short(split)}")
        split = None
    if labels is None or not isinstance(text, str):
        return None
    return Report(rid, text, labels, site, style, split=split)


def _parse_pair(obj, where, problems):
    rid = _check_id(obj, where, problems)
    rad = _check_text(obj, "radiology", where, problems)
    path = _check_text(obj, "pathology", where, problems)
    labels = _check_labels(obj, where, problems, PAIR_LABEL_SETS, canonicalize_pair, allow_bool=True)
    if labels is None or not isinstance(rad, str) or not isinstance(path, str):
        return None
    return Pair(rid, rad, path, labels)


def read_reports(path, skip_bad=False):
    """reports.jsonl -> [Report]; raises DataError listing every bad line unless skip_bad (then says how many)."""
    return _read_jsonl(path, _parse_report, skip_bad)


def read_pairs(path, skip_bad=False):
    """pairs.jsonl (radiology-pathology alignment pairs) -> [Pair], validated like read_reports."""
    return _read_jsonl(path, _parse_pair, skip_bad)


def read_texts(path, field="text", skip_bad=False):
    """Unlabeled reports (predict, --embed): [Report] with the text of `field` and no labels, validated alike."""
    def parse(obj, where, problems):
        rid, text = _check_id(obj, where, problems), _check_text(obj, field, where, problems)
        return Report(rid, text, {}) if isinstance(rid, str) and isinstance(text, str) else None
    return _read_jsonl(path, parse, skip_bad)


# ----------------------------------------------------------------------------------------------------------
# window slicing (MTL paper, Suppl. I-B), for text as it really arrives: the report cut into units (lines, or
# clauses of a long line), each unit tagged with its section, the units ranked per task, +-K units around them

LONG_LINE = 160  # a longer line is cut into clauses: PDF and OCR text often arrives as one line of 10,000 chars
UNIT_MAX = 250   # and no clause stays longer than this: it is cut at table cells, then at commas
_ABBREVIATIONS = {"approx", "dr", "drs", "mr", "mrs", "ms", "prof", "vs", "e.g", "i.e", "no", "nos", "fig", "ca",
                  "cf", "st", "ed", "vol", "est"}  # a full stop after these does not end a sentence
_STATUS_WORD = r"(?:Positive|Negative|Equivocal|Present|Absent|Moderate|Strong|Weak|Low|High|Intermediate)\b"
# a table cell that holds a value: 'ER          Positive (95%)', 'HER2 IHC      1+', 'PR     <1%'
_CELL_VALUE = r"(?:[-+<>≥≤~(]*\d|(?i:" + _STATUS_WORD + r"|pos|neg|not|none|amplified)\b)"
# a sentence ends at '.', '!', '?' or ';', at a column gap unless a value cell follows (a results table's row is
# one sentence), and before a list dash that starts a new item in sentence case ('8 mm - Associated ductal
# carcinoma in situ'; not the value in 'HER2 - Negative')
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"']|[-•*]\s)|(?<=;)\s+|"
                           r"(?<![:.\s])\s{3,}(?!\s|" + _CELL_VALUE + r")|"
                           r"(?<=[\w)%])\s+(?=[-–•*]\s+(?!" + _STATUS_WORD + r")[A-Z][a-z])")
# a specimen part label: after a full stop or colon, or after any word where a specimen's designation follows, with
# a comma or ending in a specimen word ("... pT1c pNX B. Breast, right, margin, excision: benign"; not "vitamin D.")
_PART_LABEL = re.compile(r"(?<=[.:;]\s)(?=(?:\([A-H1-9]\)|[A-H][.)]|[1-9]\))\s+[A-Z])|"
                         r"(?<=[\w)]\s)(?=(?:\([A-H]\)|[A-H][.)])\s+[A-Z][^:.;]{0,80}(?:,[^:.;]*|"
                         r"(?i:breast|nodes?|margin|excision|biopsy|mastectomy|lumpectomy|dissection|resection|"
                         r"tissue|axilla|skin|nipple)):)")
# the words of 'Key:' labels in reports, in any case: a label is one to four of them, maybe a number or date
_LABEL_WORD = (r"(?:final|pathologic(?:al)?|our|clin(?:ical)?|gross|macro(?:scopic)?|micro(?:scopic)?|microscopy|"
               r"histolog(?:y|ic)|nuclear|overall|sbr|nottingham|primary|regional|distant|tumou?r|specimens?|"
               r"receptors?|hormone|diagnos[ie]s|dx|interpretation|impression|conclusion|history|hx|information|"
               r"data|description|comments?|note|addendum|summary|synoptic|grade|stage|staging|tnm|y?p?tnm|ajcc|"
               r"size|margins?|nodes?|lymph|metastas[ie]s|status|er|pr|pgr|her-?2(?:/neu)?|fish|ish|ihc|ki-?67|"
               r"dcis|lcis|lvi|lvsi|pni|eic|(?:dual|single)[- ]probe|"
               r"part|estrogen|oestrogen|progesterone|procedure|laterality|type|biomarkers?|prognostic|markers|"
               r"ancillary|studies|results?|indication|outside|referring|institution|checklist|category|"
               r"immunohistochemi(?:stry|cal)|stains?|staining|score|index|clone|allred|"
               r"(?:part|specimen) [A-H1-9])\b")
# a "Key:" or "KEY......" label inside a long line: one to four label words, or a word in sentence case (not the
# value of the label before it: "Status: Negative Percentage of Cells with Nuclear Positivity:" starts at
# "Percentage") or a short acronym not right after a colon ("HER2 by In Situ Hybridization:"; not "ER: NEG PR:")
# and up to seven more words, none of them a number ("Score 1 Overall Grade:" starts at "Overall"), maybe after a
# TNM letter ("pT Category:"); a word may carry its abbreviation ("Estrogen Receptor (ER) Status:", not "type
# (ductal)"); an optional "(...)", then ':' (not a time, 10:30) or dotted leaders
_ABBREV = r"(?: ?\((?-i:(?=[^)]*[A-Z]))[A-Za-z0-9-]{1,8}\))?"  # "(ER)", "(PgR)", "(pT)"; not "(2/4)", "(ductal)"
_NOT_A_VALUE = r"(?!(?<=: )" + _STATUS_WORD + ")"
_FUNCTION_WORDS = r"(?:of|with|in|for|to|by|from|and|the|if|per|on|or|at|a|an)"  # inside a label, never opening one
_EMBEDDED_LABEL = re.compile(r"(?<!\S)(?:y?[pc]?[TNM] )?"
                             r"(?:(?i:" + _LABEL_WORD + _ABBREV + r"(?:[ /]" + _LABEL_WORD + _ABBREV + r"){0,3})|"
                             + _NOT_A_VALUE + r"(?:[A-Z][a-z][\w/-]*|(?<!: )"
                             r"(?!(?i:" + _FUNCTION_WORDS + r")\b)[A-Z][A-Z\d]{1,3}(?:/[A-Z\d]{2,5})?)"
                             + _ABBREV + r"(?: (?![\d/-]+(?![\w/-]))[\w/-]+" + _ABBREV + r"){0,7})"
                             r"(?: #?[\d/.-]{1,10})?(?:\s*\([^()\n]{0,60}\))?\s*(?::(?!\d)|\.{3,})")
_TNM_WORD = re.compile(r"y?[pc][TNM]")
_TNM_CODE = re.compile(r"y?[pc]?[TNM](?:is|[0-4X])\w*")  # 'pN0', 'T2', 'pMX': a value, never a label word


def embedded_labels(line, at=0):
    """Where the 'Key:' labels inside a long line start, from position `at`. A label whose words run from a
    lower-case word into a capitalised one, or that holds a TNM code, begins with the end of the value before it
    ('Site: Upper outer quadrant Histologic Type:', 'Classification: Not applicable pT Category:', 'Not amplified
    ASCO/CAP ISH Group:', '_X_ pN0 Distant Metastasis (pM):'): it starts after the last such word, at an acronym
    only if the label goes on ('HER2 dual-probe ISH:', 'block A5:' stay whole). A status word after a label word
    ends that label's value too ('(PgR) Status Positive Percentage of Cells ...:' starts at 'Percentage').
    'Estrogen receptor (ER) status:', 'Number of Lymph Nodes with ...:' stay whole."""
    for m in _EMBEDDED_LABEL.finditer(line, at):
        bare = re.sub(r"\([^()]*\)", lambda p: " " * len(p.group()), m.group())  # not the words of an aside
        words = [w for w in re.finditer(r"\S+", bare) if not re.fullmatch(_FUNCTION_WORDS, w.group())]
        def ends_value(j):  # words[j] ends the value before the label, words[j + 1] opens the label
            a, b = words[j].group(), words[j + 1].group()
            if _TNM_CODE.fullmatch(a) or (j and re.fullmatch(_STATUS_WORD, a) and b[0].isupper()
                                          and re.fullmatch("(?i:" + _LABEL_WORD + ")", words[j - 1].group())):
                return True
            opens = re.match(r"[A-Z][a-z]", b) or _TNM_WORD.match(b) or (b[0].isupper() and j + 2 < len(words))
            return a[0].islower() and not _TNM_WORD.match(a) and bool(opens)
        starts = [words[j + 1].start() for j in range(len(words) - 1) if ends_value(j)]
        yield m.start() + (starts[-1] if starts else 0)


_PAGE_MARK = re.compile(r"(?<=\s)(?i:p[a@]g[ec]) [\dlIO]{1,3} (?i:[o0]f|/) [\dlIO]{1,3}(?!\w)")  # "Page 2 of 3"


def _task_names(piece):
    """Where the words that name a task start in a piece ('Progesterone Receptor (PgR) Status Negative'), after a
    space and not after another such name ('Nottingham grade' is one name): a key whose colon is lost."""
    spans = [m.span() for t in TASKS for strength, rx in _EVIDENCE_RE[t] if strength >= STRONG
             for m in rx.finditer(piece)]
    ends = {b for _, b in spans}
    return [a for a, _ in spans if piece[a - 1:a] == " " and a - 1 not in ends]


def _cap(piece):
    """Pieces of at most UNIT_MAX characters: cut after table cells (' | '), then before the name of a task (not
    inside 'Progesterone Receptor'), then after commas, then at a space."""
    if len(piece) <= UNIT_MAX:
        return [piece]
    after = lambda sep: [m.end() for m in re.finditer(re.escape(sep), piece)]
    for cuts in (after(" | "), _task_names(piece), after(", "), after(" ")):
        if cuts:
            out, start = [], 0
            for a, b in zip([0] + cuts, cuts + [len(piece)]):
                if b - start > UNIT_MAX and a > start:
                    out.append(piece[start:a].strip())
                    start = a
            return [p for q in out + [piece[start:].strip()] for p in (_cap(q) if len(q) < len(piece) else [q])]
    return [piece[i:i + UNIT_MAX] for i in range(0, len(piece), UNIT_MAX)]


def _ends_sentence(line, m):
    """Whether a _SENTENCE_END match ends a sentence: not after 'approx.', 'Dr.', 'B.', an initial or leader dots,
    nor at a semicolon where the clause goes on (_clause_goes_on), nor at the column gap after a results row's key,
    which names a field and gives no value ('Nottingham Grade      II')."""
    if line[m.start() - 1:m.start()] == ";" and _clause_goes_on(line, m.start()):
        return False
    if m.group().isspace() and len(m.group()) >= 3:  # a column gap: after a key, its value follows
        key = re.split(r"\s{3,}", line[:m.start()])[-1]
        if len(key.split()) <= 5 and _bare_key(key):
            return False
    word = line[:m.start()].rsplit(None, 1)[-1].lower() if line[:m.start()].strip() else ""
    return not (word.endswith("..") or word.rstrip(".") in _ABBREVIATIONS or re.fullmatch(r"\(?[a-z0-9]\.", word))


# what follows a semicolon up to its own end: the next semicolon or full stop, a column gap, or a 'Key:' label
_AFTER_SEMICOLON = re.compile(r"[;.](?=\s)|\s{3,}|\s(?=\S+:\s)")


def _clause_goes_on(line, at):
    """Whether a long line's clause goes on past the semicolon before `at`, as it does on a line of its own:
    inside parentheses ('(tubules 3, nuclei 2, mitoses 1; score 6/9)'), before numbers that name no field ('HER2
    ISH: not amplified; ratio 1.1, 3.3 signals/cell'), and after a correction, whose new value follows
    ('transcribed in error as pT1c; the correct category is pT2')."""
    if line.rfind("(", 0, at) > line.rfind(")", 0, at):
        return True
    rest = line[at:].lstrip()
    end = _AFTER_SEMICOLON.search(rest)
    after = rest[:end.start() if end else len(rest)]
    if re.search(r"\d", after) and not any(evidence_at(after, t) for t in TASKS):
        return True
    return bool(_CORRECTION.search(re.split(r"[.;]\s", line[:at])[-1]))


def _glyphs(word):
    """A word with the glyphs OCR confuses folded together: 'Paticnt' and 'Patient', '0f' and 'of' are one."""
    word = word.lower().replace("rn", "m").replace("cl", "d").replace("c", "e")
    return re.sub(r"[0o]", "0", re.sub(r"[1li|]", "1", word))


def _page_furniture(line):
    """[(start, end)] of a PDF's page furniture in its text on one line: the page footers ('Page 2 of 3') and the
    running header repeated at the top of each page ('Patient: ... MRN 0033936 Printed 09/16/2021'), the longest
    run of words (12 characters at least) that opens the line and every page after a footer, OCR confusions
    aside."""
    feet = [m.span() for m in _PAGE_MARK.finditer(line)]
    tops = [0] + [b for _, b in feet if line[b:].strip()]  # where each page's text starts
    words = [[m for m, _ in zip(re.finditer(r"\S+", line[i:]), range(12))] for i in tops]
    n = 0
    while len(tops) > 1 and all(len(w) > n for w in words) and len({_glyphs(w[n].group()) for w in words}) == 1:
        n += 1
    if n == 0 or words[0][n - 1].end() < 12:
        return feet
    return feet + [(i + w[0].start(), i + w[n - 1].end()) for i, w in zip(tops, words)]


def without_furniture(line):
    """A line of a PDF's text with its page furniture left out."""
    for a, b in sorted(_page_furniture(line), reverse=True):
        line = line[:a] + " " + line[b:]
    return line


def report_lines(text):
    """The report as units: its non-blank lines, a long line cut into clauses (at sentence ends but not at
    '2.1 cm' or 'approx.', at semicolons and column gaps, before embedded 'Key:' labels and 'A.' / 'B)' part
    labels; a label with nothing after it stays with what follows). A PDF's page furniture is left out: it
    falls between a key and its value."""
    units = []
    for line in text.splitlines():
        line = line.strip()
        if len(line) <= LONG_LINE:
            units += [line] if line else []
            continue
        line = without_furniture(line)
        headers = [m.span() for m in _EMBEDDED_SECTION.finditer(line) if _opens_section(line, m)]
        starts = list(embedded_labels(line)) + [m.start() for m in _PART_LABEL.finditer(line)]
        cuts = {i for i in starts if not any(a < i < b for a, b in headers)}  # 'CORRECTION NOTE:' stays whole
        cuts |= {a for a, _ in headers}
        cuts |= {m.end() for m in _SENTENCE_END.finditer(line) if _ends_sentence(line, m)}
        cuts, label = sorted(cuts | {0, len(line)}), ""
        for a, b in zip(cuts, cuts[1:]):
            piece = line[a:b].strip()
            if re.fullmatch(r"\(?[A-H1-9][.)]|[^:]{1,60}(?::|\.{3,})", piece):  # a part label, or a key whose
                label += piece + " "                                               # value comes later (two columns)
            elif piece:
                units += _cap(label + piece)
                label = ""
        units += _cap(label.strip()) if label else []
    return units


# section headers as reports write them (US CAP, UK RCPath, European, LIS abbreviations), by kind of section
SECTIONS = {
    "history": r"clin(?:ical)? (?:history|information|data|details|notes?|indications?|summary|diagnosis|hx)|"
               r"(?:relevant |past |patient |medical |pertinent |previous |prior )?(?:medical )?history|hx|pmh|"
               r"indications?(?: for (?:procedure|surgery|examination))?|reason for (?:referral|request|examination)|"
               r"pre-?operative diagnosis|post-?operative diagnosis|prior (?:diagnos[ie]s|pathology|biops(?:y|ies))",
    "outside": r"outside (?:diagnos[ie]s|report|pathology|slides?|material|consultation|case)|"
               r"referring (?:institution|hospital|diagnosis|pathologist)|(?:submitted |outside )?slides? received|"
               r"material received|submitted slides|(?:review of|consultation on) outside",
    "gross": r"gross(?: description| examination| findings)?|macroscopic(?: description| examination)?|macro|"
             r"specimens? (?:received|submitted|description)|source of specimen|tissue submitted",
    "microscopic": r"microscopic(?: description| examination| findings)?|microscopy|micro|histology|"
                   r"histopathology(?: description)?",
    "diagnosis": r"(?:final |surgical pathology |pathologic(?:al)? |histo(?:patho)?logical |consultation |our |"
                 r"integrated )?(?:diagnos[ie]s|diagnose|interpretation|impression|conclusions?|opinion)|"
                 r"(?:final )?dx|final report|summary diagnosis",
    "synoptic": r"synoptic(?: report| summary| data)?|(?:cancer|tumou?r|cap) (?:case )?(?:summary|checklist|protocol)|"
                r"cap protocol data|checklist|(?:minimum )?data ?set|y?p?tnm(?: classification| stage| staging)?|"
                r"pathologic(?:al)? stag(?:e|ing)|ajcc(?: stage| staging)?|staging summary|summary",
    "biomarkers": r"(?:breast )?biomarkers?(?: studies| results| profile| testing)?|(?:hormone )?receptors?"
                  r"(?: status| studies)?|(?:prognostic|predictive) (?:markers|factors|studies|indicators)|"
                  r"(?:ancillary|special) (?:studies|tests|testing|stains)|immunohistochemi(?:stry|cal (?:studies|"
                  r"stains|results))|ihc(?: results| studies)?|molecular (?:studies|results|testing)|er/pr(?:/her-?2)?",
    "addendum": r"addend(?:um|a)|amended(?: report| diagnosis)?|revised(?: report| diagnosis)?|"
                r"corrected(?: report| diagnosis)?|correction(?: note)?|revision(?: note)?|"
                r"supplement(?:ary|al) report|addn",
    "comment": r"comments?|notes?|remarks?|discussion|cmt",
}
# a section header in capitals inside a long line ("... Printed 09/16/2021 PATHOLOGIC DIAGNOSIS: A. Left breast"):
# the line is cut before it, so that text glued into one line by PDF extraction still knows its sections
# (in capitals only: "Estrogen receptor: positive" is a value, not a header)
_DATE = r"\d{1,2}/\d{1,2}/\d{2,4}"  # a header may carry its date instead of a colon: "REVISED 03/15/2021."
_EMBEDDED_SECTION = re.compile(r"(?<=\s)(?:(?i:" + "|".join(SECTIONS.values()) + r")\b(?:\s*#?\s*\d+)?"
                               r"(?:\s*\([^()]{0,40}\))?\s*(?::(?!\d)|\.{3,}|" + _DATE + r")|"
                               r"(?:ADDEND(?:UM|A)|AMENDED REPORT|SUPPLEMENT(?:ARY|AL) REPORT)\b)")


def _opens_section(line, m):
    """Whether an _EMBEDDED_SECTION match opens a section: in capitals, and not the end of a longer key in
    capitals ('ESTROGEN RECEPTOR:', 'PROGESTERONE RECEPTOR......') or of a key that names its method ('HER2 by
    IHC:')."""
    before = line[:m.start()].split()
    prev = before[-1].strip("(),.;") if before else ""
    return m.group().isupper() and not (prev.isupper() and re.fullmatch("(?i:" + _LABEL_WORD + ")", prev)) \
        and not re.fullmatch("(?i:" + _FUNCTION_WORDS + ")", prev)



# text typed in capitals (old LIS systems, typewriters, OCR of both) is written again in sentence case: the model
# has read little text in capitals, and "NEGATIVE" tokenizes unlike "negative"
SHOUTING = 0.8  # the share of capital letters above which a text is recased
_TNM_CAPS = re.compile(r"(?<![A-Z0-9])(?:(?:[YRA]{0,2}[PC])[TNM](?:IS|X|[0-4LIO|])|[TNM](?:IS|X|[0-4]))"
                       r"(?:MI|[A-D](?![A-Z]))?(?:(?:[YRA]{0,2}[PC])?[TNM](?:IS|X|[0-4])(?:MI|[A-D](?![A-Z]))?)*"
                       r"(?![A-Z0-9])")
_ACRONYMS = re.compile(r"\b(?:ER|PR|PGR|HER-?2(?:/NEU)?|IHC|F?ISH|SISH|CISH|DDISH|DCIS|LCIS|IDC|ILC|AJCC|UICC|CAP|ASCO|"
                       r"WHO|NOS|SBR|LVI|TNM|MRI|PET|CT|CEP-?17|DNA|RCPATH|I{1,3}|IV|G[1-3]|GR(?=\.? ?(?:I{1,3}|[1-3])\b))\b")


def recase(text):
    """The text in sentence case if it is SHOUTING capitals, else as it is. Section headers stay in capitals
    (they still open their sections), TNM codes take their usual case (pT1c, ypN0), acronyms (ER, HER2, IHC,
    AJCC) and Roman grades (II/III) stay; everything else is lower case, with a capital at each line and
    sentence start."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 20 or sum(c.isupper() for c in letters) < SHOUTING * len(letters):
        return text
    keep = {}  # start -> the span's text as it stays
    for m in _EMBEDDED_SECTION.finditer(" " + text):
        if _opens_section(" " + text, m):
            keep[m.start() - 1] = m.group()
    for m in re.finditer(r"^[^\S\n]*(.+?)(?=:|$)", text, re.M):
        if section_of(m.group(1)):
            keep.setdefault(m.start(1), m.group(1))
    for m in re.finditer(r"(?<![\w.])\(?[A-H][.)](?=\s)", text):  # part labels: A. B)
        keep.setdefault(m.start(), m.group())
    for m in _ACRONYMS.finditer(text):
        keep.setdefault(m.start(), m.group())
    for m in _TNM_CAPS.finditer(text):
        keep[m.start()] = re.sub(r"IS|MI|[YRAPC]+|[TNM]|[A-DLIO|]", lambda p: p.group() if p.group() in "TNM"
                                 else p.group().lower(), m.group())
    out, i = [], 0
    for start in sorted(keep):
        if start >= i:
            out += [text[i:start].lower(), keep[start]]
            i = start + len(keep[start])
    out.append(text[i:].lower())
    return re.sub(r"(^[^\S\n]*(?:\(?[A-Z0-9]{1,2}[.)]\s+)?|(?<!\.)[.!?]\s+)([a-z])(?![a-z]{0,2}[TNM])",
                  lambda m: m.group(1) + m.group(2).upper(), "".join(out), flags=re.M)


# a printed checklist (CAP, RCPath) lists every option under its title and marks the one that holds: '___ pM1:
# Histologically confirmed distant metastasis' is an option left blank, not a statement
_CHECKBOX = re.compile(r"^[^\S\n]*(?:(?P<blank>_{2,}|\[ ?\]|\( ?\)|[☐□])|"
                       r"(?P<marked>_*[Xx✓✔]_+|\[[Xx✓✔]\]|\([Xx✓✔]\)|[☒☑■]))[^\S\n]+(?=\S)")


# an option in a checklist flattened to one line: '... Status ___ Positive _X_ Negative (less than 1%) ...'
_INLINE_BOX = re.compile(r"[^\S\n]+(?=(?:_{2,}|_*[Xx✓✔]_+|\[[ Xx✓✔]?\]|[☐□☒☑■])[^\S\n]+\S)")
_INLINE_MARKED = re.compile(r"(?:_*[Xx✓✔]_+|\[[Xx✓✔]\]|[☒☑■])[^\S\n]")
_INLINE_BLANK = re.compile(r"(?:\[ ?\]|[☐□])[^\S\n]")  # an option's empty box; not '____', a blank to write in
_TITLE_WORD = re.compile(r"\((?:[A-Z][\w/-]*|[yp]?[TNM])\)|[A-Z][\w/-]*")  # 'Receptor', '(PgR)', '(pT)', 'HER2'


def _title_start(option):
    """Where a title that ran into an option begins ('_X_ Negative (less than 1%) Progesterone Receptor (PgR)
    Status'): at the title words before the last keyword of any task in a title word past the option's first
    word; None when there is none."""
    words = [(m.start(), m.group()) for m in re.finditer(r"\S+", option)]  # the box, then the option's words
    at = lambda pos: max(j for j, (a, _) in enumerate(words) if a <= pos)
    hits = [i for t in TASKS for _, rx in _EVIDENCE_RE[t] for m in rx.finditer(option)
            if (i := at(m.start())) >= 2 and _TITLE_WORD.fullmatch(words[i][1])]
    if not hits:
        return None
    i = max(hits)
    while i > 2 and _TITLE_WORD.fullmatch(words[i - 1][1]) and not re.fullmatch(_STATUS_WORD, words[i - 1][1]):
        i -= 1
    return words[i][0]


def _unflatten_checklist(line):
    """A checklist flattened to one line cut back into its lines: each option on a line of its own, and a title
    that ran into the option before it on its own line again. A line with no marked option stays as it is (a
    blank field, 'HER2 status: ____ Ki-67: 15%', is not a list of options), unless it offers two empty boxes: a
    field whose options were left unticked ('PgR: [ ] Positive [ ] Negative') states nothing."""
    pieces = _INLINE_BOX.split(line)
    offered = sum(bool(_INLINE_BLANK.match(p)) for p in pieces[1:]) >= 2
    if len(pieces) < 3 or not (offered or any(_INLINE_MARKED.match(p) for p in pieces[1:])):
        return line
    pieces = _INLINE_BOX.split(without_furniture(line))  # a page break falls between a title and its options
    out = [pieces[0]]
    for p in pieces[1:]:
        cut = _title_start(p)
        out += [p[:cut].rstrip(), p[cut:]] if cut else [p]
    return "\n".join(out)


def read_checkboxes(text):
    """A checklist read as the statements it makes: each marked option joins its title ('Overall Grade' then
    '_X_ Grade 2 (scores of 6 or 7)' reads 'Overall Grade: Grade 2 (scores of 6 or 7)'); blank options go. A
    checklist flattened to one line (OCR, a PDF's text) is first cut back into its lines."""
    lines = "\n".join(_unflatten_checklist(line) for line in text.splitlines()).splitlines()
    boxes = [_CHECKBOX.match(line) for line in lines]
    if not any(boxes):
        return text
    out, title, answered = [], None, set()  # title: the index in out of the line the options below belong to
    for line, box in zip(lines, boxes):
        if not box:
            out.append(line)
            title = len(out) - 1 if line.strip() else title
        elif box["marked"] and title is None:
            out.append(line[box.end():].strip())
        elif box["marked"]:
            sep = "; " if title in answered else " " if out[title].rstrip().endswith(":") else ": "
            out[title] = out[title].rstrip() + sep + line[box.end():].strip()
            answered.add(title)
    return "\n".join(out)


_CELL_SEP = re.compile(r"(?:^|(?<=\s))\|(?=\s|$)")  # a table's cell border, not an OCR'd 'l' inside a word
_ROW_BREAK = re.compile(r"(?<=\s)\|\s+\|(?=\s)")  # '| |': where one row of a flattened table meets the next


def _table_row(row):
    """One row of cells as the statement it makes: 'Key: value, value'; cells that hold 'Key: value' themselves
    joined by '; '; a label before the table ('Path:') kept in front; empty and ruling cells ('---') dropped."""
    cells = [c.strip() for c in _CELL_SEP.split(row)]
    cells = [c for c in cells if c and not re.fullmatch(r":?-{3,}:?", c)]
    if not cells:
        return ""
    lead = ""
    if cells[0].endswith(":") and len(cells) > 1:  # 'Path: | Grade | 3 |'
        lead = cells.pop(0) + " "
    if len(cells) < 2 or any(":" in c for c in cells):
        return lead + "; ".join(cells)
    return lead + cells[0] + ": " + ", ".join(cells[1:])


def read_table_rows(text):
    """A table pasted from an EHR or a LIS read as the statements its rows make: '| Histologic grade | 2 of 3 |'
    reads 'Histologic grade: 2 of 3', 'ER | Positive | 95 | Strong' reads 'ER: Positive, 95, Strong', as the
    'Key: value' lines of most reports. Rows flattened onto one line ('| Grade | 2 | | Size | 14 mm |') are cut
    back into lines first; a long line with no row breaks (a whole report on one line) is left as it is."""
    out = []
    for line in text.splitlines():
        if re.fullmatch(r"\s*\|[\s|:-]*-{3,}[\s|:-]*", line):  # the ruling under a header row
            continue
        rows = _ROW_BREAK.split(line)
        if len(_CELL_SEP.findall(line)) < 2 or len(rows) == 1 and len(line) > LONG_LINE:
            out.append(line)  # no table; or a whole report on one line, its rows not to be told apart
        else:
            out += [r for r in map(_table_row, rows) if r]
    return "\n".join(out)


# the current diagnosis first; history, outside values and the gross description least
SECTION_WEIGHT = {"addendum": 1.2, "diagnosis": 1.0, "synoptic": 1.0, "biomarkers": 1.0, "comment": 0.6,
                  "microscopic": 0.6, None: 0.5, "gross": 0.3, "history": 0.15, "outside": 0.15}
ADDENDUM_STEP = 0.05      # each later addendum revises the ones before it
DISTRACTOR_PENALTY = 0.3  # a unit that speaks of the past, another institution, imaging or a clinical stage
CONCLUSION = 1.1          # a unit that states the final result outranks the measurements it is drawn from
_CONCLUSION = re.compile(r"(?i:\b(?:final|overall)\s+(?:[\w/-]+\s+){0,2}(?:status|result|grade|category)\b|"
                         r"\binterpretation\b|\bconclusion\b|^\W*results?\s*:)")
_LINE_START = r"^[\s\-*•>#]*(?:\(?[A-Z0-9]{1,2}[.)]\s+)?"
_SECTION_RE = {s: re.compile(_LINE_START + r"(?:" + p + r")\b(?:\s*#?\s*\d+)?(?:\s*\([^()]{0,40}\))?"
                             r"\s*(?::|\.{3,}|\s[-–]\s|[\s*=#_-]*$|" + _DATE + ")", re.I)
               for s, p in SECTIONS.items()}
_DISTRACTOR_RE = re.compile(
    r"(?i:\bhistory of\b|\bh/o\b|\bprior\b|\bprevious(?:ly)?\b|\boutside\b|\breferring\b|\bas reported\b|"
    r"\bpre-?(?:treatment|neoadjuvant|operative|therapy)\b|\bbefore (?:neoadjuvant|treatment|chemo)|"
    r"\bclinical(?:ly)? stag|\bimaging\b|\bmammogra|\bultrasound\b|\bsonograph)|"
    r"\bc[TN](?:is|[0-4])|\bMRI\b|\bPET\b|\bCT (?:scan|chest|abdomen)")
_YEAR = re.compile(r"(?<![/\-.\d])(?:19[5-9]\d|20[0-4]\d)(?![/\-.\d])")
_NOT_THE_PAST = re.compile(r"AJCC|ASCO|CAP\b|WHO\b|guideline|edition|\bed\.|version|protocol|classification", re.I)
# a correction names the value it replaces ("previously reported as pT2"), but the unit states the value now
_CORRECTION = re.compile(r"(?i:\bcorrect(?:ed|ion)\b|\brevised?\b|\bamend(?:ed|ment)\b|\bshould read\b|"
                         r"\bin error\b|\bchanged (?:from|to)\b)")


def section_of(unit):
    """The kind of section a unit opens ('diagnosis', 'history', ...), or None if it is not a section header."""
    for section, rx in _SECTION_RE.items():
        if rx.match(unit):
            return section
    return None


def is_distractor(unit):
    """Whether a unit speaks of something other than this specimen now: history, prior or outside results, a
    past year, pre-treatment or clinical (cT/cN) staging, imaging; not a correction of this report."""
    if _DISTRACTOR_RE.search(unit):
        return not _CORRECTION.search(unit)
    return any(not _NOT_THE_PAST.search(unit[max(0, m.start() - 25):m.end() + 25]) for m in _YEAR.finditer(unit))


_OCR_LIKE = {"o": "[o0]", "e": "[ec]", "l": "[lI1|]", "i": "[il1|]", "m": "(?:m|rn)", "d": "(?:d|cl)"}


def _ocr_tolerant(pattern):
    """The keyword regex widened to the word as OCR misreads it: estr0gen, gradc, Iymph, rnetastasis, nudear."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\":
            j = i + 2
        elif pattern[i] == "[":
            j = pattern.index("]", i + 1) + 1
        elif pattern.startswith("(?", i):
            j = next(j for j in range(i + 2, len(pattern)) if pattern[j] in ":=!") + 1
        elif pattern.startswith(("cl", "rn"), i):  # nuclear read as nudear, modern as modem
            out.append("(?:c[lI1|]|d)" if pattern[i] == "c" else "(?:rn|m)")
            i += 2
            continue
        else:
            out.append(_OCR_LIKE.get(pattern[i].lower(), pattern[i]))
            i += 1
            continue
        out.append(pattern[i:j])
        i = j
    return "".join(out)


# OCR of a scanned page confuses glyphs that look alike (0/O, 1/l/I, rn/m, cl/d, e/c). Where the context says
# which glyph was meant, the text is put back before anything reads it; a digit never becomes another digit
LEXICON = ("estrogen oestrogen progesterone receptor receptors hormone positive negative equivocal borderline "
           "amplified amplification immunohistochemistry immunohistochemical invasive carcinoma ductal lobular "
           "metastatic metastasis metastases micrometastasis micrometastases isolated lymph node nodes sentinel "
           "distant regional category stage grade nuclear pleomorphism mitoses mitotic tubule tubules tubular "
           "differentiated moderately poorly well score ratio allred staining intensity nottingham histologic "
           "pathologic tumor tumour size primary applicable identified detected present absent ihc ish fish "
           "cish error").split()
_LEXICON_RE = re.compile(r"(?<![\w|])(?:" + "|".join(_ocr_tolerant(w) for w in LEXICON) + r")(?![\w|])", re.I)
_LEXICON_WORD = [(w, re.compile(_ocr_tolerant(w), re.I)) for w in LEXICON]
_TNM_TOKEN = re.compile(r"(?i:(?:[yra]{0,2}[pc])?[tnm](?:is|x|[0-4])(?:mi|[a-d])?)+")  # pt1c, ypt0n1a: not words
# a letter where the context says digit: 9O %, O.5 cm, O/3, 3.O, O%, score O, 3l %, l.2 cm, l+, l/3, 5.l, <l%
_NUMBER_OCR = [
    (re.compile(r"(?<=\d)[Oo](?![A-Za-z])|(?<![\w.])[Oo](?=[.,/]?\d+(?![A-Za-z]))|(?<=\d[/.])[Oo](?![\w])|"
                r"(?<!\w)[Oo](?=\d*\s?(?:%|percent\b))|(?<=(?i:sc[o0]r[ec]) )[Oo](?![\w'])"), "0"),
    (re.compile(r"(?<=\d)[lI|](?![A-Za-z])|(?<![\w.])[lI|](?=[.,/]?\d+(?![A-Za-z])|\+)|(?<=\d[/.])[lI|](?![\w])|"
                r"(?<!\w)[lI|](?=\d*\s?(?:%|percent\b))"), "1"),
]
_TNM_OCR = re.compile(r"(?<![A-Za-z0-9])(?P<pre>[yraYRA]{0,2}[pcPC][TNM])(?:(?P<one>[lI|])(?=[a-dA-D](?![A-Za-z])|"
                      r"mi\b|[(\s,.;:/]|$)|(?P<zero>[oO])(?![A-Za-z]))")  # pTlc, pNO, cMO
# a bare N or M OCR'd in a staging string, after another code or alone in brackets: 'pT2 pN1a MO', 'cN1 Ml', '(MO)'
_BARE_OCR = re.compile(r"(?:(?<=[0-4a-dxX] )|(?<=\())(?P<pre>[NM])(?:(?P<one>[lI|])|O)(?![A-Za-z0-9])")
# 'No' OCR'd as a bare N0 before what a report says is absent: 'N0 lymphovascular invasion identified'
_NO_AS_CODE = re.compile(r"(?<![A-Za-z0-9])N0(?= (?i:lymphovascular|angiolymphatic|lymphatic|vascular|perineural|"
                         r"evidence|residual|invasion|extranodal|extracapsular|definite|malignancy|atypia)\b)")
# a TNM code with a space before its value, as a scanner or a typist spaces it: 'pT 3 pN 2a' -> 'pT3 pN2a'
_SPACED_CODE = re.compile(r"(?<![A-Za-z0-9])([yraYRA]{0,2}[pcPC][TNM]) (?=[0-4xX](?:mi|MI|[a-dA-D])?"
                          r"(?![A-Za-z0-9]|[.,]\d))")
_H_OCR = re.compile(r"(?<![\w-])[lI1|]-[lI1|](?=ER ?-?[2Z](?![0-9A-Za-z]))")  # 'l-IER2': the H of HER2 read as l-I
_C_OCR = re.compile(r"(?<![A-Za-z0-9])e(?=M[01Oo](?![0-9a-z]))")  # 'eM0': the c of cM0 read as e
_BROKEN_WORD = re.compile(r"(?<![\w-])([A-Za-z]{2,})- ([a-z]{2,})(?![\w-])")  # 'Estro- gen': cut at a column's edge
# ll/III, grade Il, grade: Il (after a colon not '|', which may be a table rule: 'Grade: | 2 |')
_ROMAN_OCR = re.compile(r"(?<![\w])[lI|]{1,3}(?=/(?:III|[lI|]{3})(?![\w]))|(?<=/)[lI|]{3}(?![\w])|"
                        r"(?<=(?i:grad[ec]) )[lI|]{1,3}(?![\w])|(?<=(?i:grad[ec]): )[lI]{1,3}(?![\w|])")


def _spelt(word, canon):
    """canon in the case the OCR'd word was written in: PROGESTERONE, Estrogen, lymph (not 'Lymph' for 'Iymph')."""
    letters = [c for c in word if c.isalpha() and c not in "Il"]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return canon.upper()
    return canon.capitalize() if word[0].isupper() and not (word[0] == "I" and canon[0] == "l") else canon


def _reads_as_letter(w, i):
    """Whether the 0 or 1 at w[i] stands for a letter: it opens a word of three more letters (1nvasive), closes
    one (ducta1), or stands between letters, two of them on one side, in one case (P0SITIVE, ce1ls; not a1c, HbA1c)."""
    before, after = w[:i], w[i + 1:]
    if i == 0:
        return bool(re.match(r"[A-Za-z]{3}", after))
    if i == len(w) - 1:
        return bool(re.search(r"[A-Za-z]{3}$", before))
    two_after = re.search(r"(?:^[A-Z]|[a-z])[a-z]*$|[A-Z]{2}$", before) and re.match(r"[a-z]{2}|[A-Z]{2}", after)
    two_before = re.search(r"[a-z]{2}$|[A-Z]{2}$", before) and re.match(r"[A-Za-z]", after)
    return bool(two_after or two_before)


def _letters_for_digits(m):
    """A word whose every 0/1 reads as a letter, spelt with letters (P0SITIVE, ce1ls); a TNM code stays."""
    w = m.group()
    digits = [i for i, c in enumerate(w) if c in "01"]
    if not digits or _TNM_TOKEN.fullmatch(w) or not re.fullmatch(r"[A-Za-z01]+", w):
        return w
    if not all(_reads_as_letter(w, i) for i in digits):
        return w
    upper = sum(c.isupper() for c in w) > sum(c.islower() for c in w)
    return w.translate(str.maketrans("01", "OI" if upper else "ol"))


def _digit_back(m):
    """A TNM code's OCR'd digit put back: l, I or | -> 1, O -> 0 (pTlc -> pT1c, pNO -> pN0)."""
    return m["pre"] + ("1" if m["one"] else "0")


def _staged(m):
    """Whether a bare N or M stands in a staging string: after a TNM code ('pN1a MO'), or alone in brackets."""
    if m.string[m.start() - 1] == "(":
        return m.string[m.end():m.end() + 1] == ")"
    before = m.string[:m.start()].split()[-1]  # the word before; _BARE_OCR saw it end in a code's last character
    return _TNM_TOKEN.fullmatch(before.lstrip("(")) is not None


def repair_ocr(text):
    """OCR glyph confusions put back where the context decides: P0SITIVE -> POSITIVE, pTlc -> pT1c, pNO -> pN0,
    pN1a MO -> pN1a M0, pT 3 -> pT3, eM0 -> cM0, N0 lymphovascular -> No lymphovascular, l-IER2 -> HER2, 9O % -> 90 %,
    ll/III -> II/III, rnetastatic -> metastatic; and a keyword hyphenated at a column's edge joined again (Estro- gen
    -> Estrogen). Text without such confusions comes back as it is."""
    text = _BROKEN_WORD.sub(lambda m: m[1] + m[2] if _LEXICON_RE.fullmatch(m[1] + m[2]) else m.group(), text)
    text = _C_OCR.sub("c", _H_OCR.sub("H", text))
    text = _NO_AS_CODE.sub(lambda m: "NO" if m.string[m.end() + 1:m.end() + 3].isupper() else "No", text)
    text = re.sub(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*", _letters_for_digits, text)
    for rx, digit in _NUMBER_OCR:
        text = rx.sub(digit, text)
    text = _SPACED_CODE.sub(r"\1", text)
    text = _TNM_OCR.sub(_digit_back, text)
    text = _BARE_OCR.sub(lambda m: _digit_back(m) if _staged(m) else m.group(), text)
    text = _ROMAN_OCR.sub(lambda m: "I" * len(m.group()), text)

    def word(m):
        w = m.group()
        return w if w.lower() in LEXICON else next(_spelt(w, canon) for canon, rx in _LEXICON_WORD if rx.fullmatch(w))
    return _LEXICON_RE.sub(word, text)


# TNM categories as written and as OCR'd (pTlc, pNO, cMl); the letter T/N/M itself in capitals
_PREFIX = r"(?<![A-Za-z0-9])(?:[yraYRA]{0,2}[pcPC])"
_CODE = r"(?:{L} ?(?:{d}|[xX])|{L}(?:[lI|](?=[a-dA-D(\s,.;:/]|mi|$)|[oO](?![a-z])))"
_BARE = r"(?<![A-Za-z0-9])(?<![Pp][1-3] ){L}(?:{d})(?! [Pp][1-3] M[1-3])"  # not a UK grade's "(T3 P2 M1)"
_FIELD = r"|(?<![A-Za-z0-9])[yY]?p{L}(?=\s*(?:[Cc]ategory\s*)?[:(])"  # the field name itself: "pM Category: ..."
T_CODE = (_PREFIX + _CODE.format(L="T", d=r"is|IS|[0-4]") + r"(?:mi|MI|[a-dA-D])?(?![0-9a-z])|"
          + _BARE.format(L="T", d=r"is|[0-4]") + r"(?:mi|[a-d])?(?![0-9a-z])")
N_CODE = (_PREFIX + _CODE.format(L="N", d="[0-3]") + r"(?:mi|MI|[a-cA-C])?(?![0-9a-z])|"
          + _BARE.format(L="N", d="[0-3]") + r"(?:mi|[a-c])?(?![0-9a-z])")
M_CODE = (r"(?<![A-Za-z0-9])[pcPC]" + _CODE.format(L="M", d="[01]") + r"(?![0-9a-z])|"
          + _BARE.format(L="M", d="[01]") + r"(?![0-9a-z])")
# cM0, pM1, M0 (not pMX): pathologic M is rarely assessable on a resection ("pM: not applicable"), and the
# patient's M category is then the clinical one (AJCC), written in a history or a tumour board's stage
_M_CATEGORY = re.compile(r"(?<![A-Za-z0-9])[pcPC]M ?[01](?![0-9a-z])|" + _BARE.format(L="M", d="[01]")
                         + r"(?![0-9a-z])")

# keyword strength: a TNM code states the category itself (pN0), a field name says where it is stated
# (regional lymph nodes), a weak word names only something the task depends on (sentinel, tumour size)
CODE, STRONG, WEAK = 1.0, 0.85, 0.6


def _words(pattern):
    """Words matched case-blind and OCR-tolerant."""
    return "(?i:" + _ocr_tolerant(pattern) + ")"


EVIDENCE = {  # task -> [(strength, regex)]: where a unit speaks of the task
    "T": [(CODE, T_CODE), (STRONG, _words(r"\bT[- ]?(?:category|stage|classification)\b|primary tumou?r")
                           + _FIELD.format(L="T")),
          (WEAK, _words(r"tumou?r size|size of (?:the )?(?:invasive )?(?:tumou?r|carcinoma)|greatest dimension"))],
    "N": [(CODE, N_CODE), (STRONG, _words(r"\bN[- ]?(?:category|stage|classification)\b|regional lymph nodes?")
                           + _FIELD.format(L="N")),
          (WEAK, _words(r"lymph ?nodes?|\bnodes?\b|sentinel|micro-?metastas[ie]s|isolated tumou?r cells|"
                        r"\d+\s*(?:/|of)\s*\d+ (?:\w+ ){0,2}nodes") + r"|\bLNs?\b|\bITCs?\b")],
    "M": [(CODE, M_CODE), (STRONG, _words(r"\bM[- ]?(?:category|stage|classification)\b|distant metastas|"
                                         r"metastatic disease|(?:osseous|bone|liver|hepatic|lung|pulmonary|brain|"
                                         r"visceral) metastas|\bmets?\.? (?:dz|disease|to (?:liver|bone|lung))|"
                                         r"metasta\w*(?: (?:breast )?(?:carcinoma|cancer|disease))? to (?:the )?"
                                         r"(?:[a-z]\d{1,2} )?(?:bones?|liver|lungs?|brain|spine|vertebra)")
                           + _FIELD.format(L="M"))],
    "grade": [(STRONG, r"(?<![Nn]uclear )(?<!NUCLEAR )" + _words(r"grade\b") + "|" +
               _words(r"nottingham|elston|bloom[- ]?richardson|score\s*(?:of\s*)?\d\s*/\s*9|\b[3-9]\s*/\s*9\b|"
                      r"(?:well|mod(?:erately)?|poorly)[- ]diff(?:erentiated)?\b|\bnott\b|"
                      r"\b(?:low|int(?:ermediate)?|high)[- ]gr\b")
               + r"|\b[mM]?SBR\b|\bG[1-3]\b|\b(?i:gr\.?|NHG) ?(?:I{1,3}|i{1,3}|[1-3])\b|\b[mM]?BR score\b|"
               + _words(r"differentiation:? (?:well|moderate(?:ly)?|poor(?:ly)?)\b")),
              (WEAK, _words(r"nuclear grade|tubul(?:es|e formation)|(?:tubular|glandular) (?:formation|"
                            r"differentiation)|pleomorphism|mitos[ie]s|mitotic (?:count|rate|score)|differentiated"))],
    "ER": [(STRONG, _words(r"o?estrogen") + r"|(?<![A-Za-z])ER(?![A-Za-z])"), (WEAK, _words(r"allred"))],
    "PR": [(STRONG, _words(r"progesterone") + r"|(?<![A-Za-z])(?:PgR|PGR|PR)(?![A-Za-z])"),
           (WEAK, _words(r"allred"))],
    # 'HER2neu' only before a result ('HER2neu 3+'); 'Her2neu (HercepTest)' is named by 'HercepTest'
    "HER2": [(STRONG, _words(r"\bher[- ]?[2z](?:neu(?= ?(?:[0-3]|pos|neg|amp|not|equiv)))?(?![0-9a-z])|"
                             r"c-?erb-?b-?2|erbb2|herceptest|in situ hybridi[sz]ation|cep-?17")
             + r"|\b(?:F|S|C|DD|D)?ISH\b")],
}
_EVIDENCE_RE = {t: [(s, re.compile(p)) for s, p in pats] for t, pats in EVIDENCE.items()}
_RECEPTOR_NAME = {t: rx for t in RECEPTORS for s, rx in _EVIDENCE_RE[t] if s == STRONG}  # 'PgR', 'oestrogen'


# a value after the keyword: a number, a score, a status or a stated absence ("Distant metastasis: not applicable");
# not the digits of an antibody clone ("ER (SP1)", "PgR (1E2)", "HER2 (4B5)")
_VALUE = re.compile(r"(?<![A-Za-z\d])\d+(?![A-Za-z]\d)|\+|(?:(?<=:)|(?<=: )|(?<=/))-(?![\w-])|\bG[1-4]\b|"
                    r"\b[IVX]{1,3}\b|" +
                    _words(r"positive|negative|equivocal|\bequiv\b|\bpos\b|\bneg\b|borderline|amplified|"
                           r"differentiated|\blow\b|\bhigh\b|intermediate|\bnot\b|\bnone\b|absent|present|identified|"
                           r"involved|free|indeterminate|uninterpretable|inconclusive|unsatisfactory"))


def evidence_at(unit, task):
    """(strength, match) of the strongest keyword of `task` in a unit's text (the first of equals), or None. A
    receptor's weak keyword does not count where only another receptor is named: 'Oestrogen receptor Allred score
    8/8' is ER's score, not PR's."""
    for strength, rx in _EVIDENCE_RE[task]:
        m = rx.search(unit)
        if m and strength == WEAK and task in RECEPTORS and any(
                _RECEPTOR_NAME[t].search(unit) for t in RECEPTORS if t != task):
            return None
        if m:
            return strength, m
    return None


@dataclass(frozen=True)
class Unit:
    """A line of a report, or a clause of a long line, with what the ranking needs to know of it."""
    text: str
    section: str | None   # the kind of section it sits in
    weight: float         # section weight x distractor penalty: how much it speaks for the current diagnosis
    strength: dict        # task -> its strongest keyword here (x WEAK when no value follows a field name)
    past: bool            # it speaks of history, prior or outside results, not of this specimen now


PAST_SECTIONS = ("history", "outside")
_OTHER_HEADER = re.compile(r"[A-Z][A-Z&/()' -]{2,40}:?")  # a short line in capitals, no digits: a section header


def _valued(u, found):
    """Whether the keyword `found` (strength, match) of a unit is a TNM code or has a value after it."""
    return found[0] == CODE or bool(_VALUE.search(u, found[1].end()))


def _bare_key(line):
    """Whether a line names a task and gives no value after the name ('Estrogen Receptor (ER) Status')."""
    found = [f for t in TASKS if (f := evidence_at(line, t))]
    return bool(found) and not any(_valued(line, f) for f in found)


# a receptor's result given only as its share of stained cells, on the line below a blank status
_SHARE = re.compile(_words(r"percent(?:age)?|proportion") + r"\b[^:]{0,60}:\s*" + _CELL_VALUE)


def _value_below(lines):
    """The lines with a key whose value is printed on the line below it joined to that line, as the CAP biomarker
    template prints them ('Estrogen Receptor (ER) Status' over 'Positive (greater than 10% of cells ...)', or a
    blank status over 'Percentage of Cells with Nuclear Positivity: 1-10%'): the value line opens with a value, or
    with the share of stained cells, and names no task."""
    out = []
    for line in lines:
        if (out and _bare_key(out[-1]) and (re.match(_CELL_VALUE, line) or _SHARE.match(line))
                and not any(evidence_at(line, t) for t in TASKS)):
            out[-1] += " " + line
        else:
            out.append(line)
    return out


@lru_cache(maxsize=4096)  # a training set's texts (~14 KB of units each), re-encoded for each hint dropout
def units(text):
    """(Unit, ...) of a report, in document order (cached: the slice, the hints and the Report block share them)."""
    out, section, n_addenda = [], None, 0
    for u in _value_below(report_lines(text)):
        opened = section_of(u)
        if opened:
            section = opened
            n_addenda += opened == "addendum"
        elif section in PAST_SECTIONS and _OTHER_HEADER.fullmatch(u.strip()):
            section = None  # 'TUMOR', 'SPECIMEN': a header the rules do not know still ends the history
        w = SECTION_WEIGHT[section] + ADDENDUM_STEP * n_addenda * (section == "addendum")
        w *= CONCLUSION if _CONCLUSION.search(u) else 1.0
        header = opened and _SECTION_RE[opened].match(u)
        bare = header and re.fullmatch(r"[\s\d/.:-]*", u[header.end():])  # 'ADDENDUM (HER2 FISH) - 01/11/2019'
        distractor = is_distractor(u)
        out.append(Unit(u, section, w * (DISTRACTOR_PENALTY if distractor else 1.0), _strength(u, bare),
                        distractor or section in PAST_SECTIONS))
    return tuple(out)


def _strength(u, bare=False):
    """task -> the strength of its strongest keyword in a unit's text, x WEAK when no value follows it."""
    return {t: found[0] * (WEAK if bare or not _valued(u, found) else 1) for t in TASKS if (found := evidence_at(u, t))}


def sentences(us):
    """The units cut again at their sentence ends, for the hints: each sentence of a line ranks on its own, so the
    line 'HER2 IHC 2+ (equivocal). FISH: not amplified. Final HER2 status: negative.' gives its final status and
    its ISH result, not only its first sentence. A sentence keeps its line's section, distractor penalty and past."""
    out = []
    for u in us:
        stops = _sentence_stops(u.text)
        if len(stops) == 2:
            out.append(u)
            continue
        w = u.weight / (CONCLUSION if _CONCLUSION.search(u.text) else 1.0)  # the line's weight, less its conclusion
        for a, b in zip(stops, stops[1:]):
            if s := u.text[a:b].strip():
                out.append(Unit(s, u.section, w * (CONCLUSION if _CONCLUSION.search(s) else 1.0), _strength(s), u.past))
    return tuple(out)


def ranked(us, task):
    """Indices of the units that speak of `task`, best evidence first: section weight x distractor penalty x
    keyword strength; ties keep document order, but an ISH result goes before the HER2 score it decides. For M, a
    unit that writes the category comes first."""
    scored = [(task == "M" and not _M_CATEGORY.search(u.text), -u.weight * u.strength[task],
               task == "HER2" and not (_ISH.search(u.text) and _ISH_RESULT.search(u.text)), i)
              for i, u in enumerate(us) if task in u.strength]
    return [i for *_, i in sorted(scored)]


def anchors(us, per_task=3):
    """The units the slice is built around: the best `per_task` evidence units of every task, and the headers
    of diagnosis, synoptic, biomarker and addendum sections."""
    keep = {i for t in TASKS for i in ranked(us, t)[:per_task]}
    return keep | {i for i, u in enumerate(us) if u.section in ("diagnosis", "synoptic", "biomarkers", "addendum")
                   and section_of(u.text)}


def window_slice(text, k=5):
    """The +-k units around every anchor, in document order, '...' where units were left out; the whole text
    when nothing is recognisable (the paper's slicing, around evidence found anywhere, not only after headers)."""
    us = units(text)
    return _join([u.text for u in us], _window(us, k))


def _window(us, k):
    """Indices of the units within k of an anchor; all of them when there is no anchor."""
    return sorted({j for i in anchors(us) for j in range(max(0, i - k), min(len(us), i + k + 1))}) or range(len(us))


def _join(lines, keep):
    """The lines of `keep`, '...' where lines were skipped."""
    out, prev = [], None
    for i in keep:
        if prev is not None and i != prev + 1:
            out.append("...")
        out.append(lines[i])
        prev = i
    return "\n".join(out)


# multi-specimen (bilateral) reports: a site header opens the block of that site, up to the next site header
_SITE_RE = re.compile(
    r"^[\s\-*•]*(?:\(?[A-Z0-9]{1,2}[.)]\s*)?(?:SYNOPTIC (?:SUMMARY|REPORT)|CANCER (?:CASE )?SUMMARY|ADDENDUM(?: \d+)?|"
    r"(?:BREAST )?BIOMARKER (?:STUDIES|RESULTS)|AMENDED (?:REPORT|DIAGNOSIS))\s*(?:\(|[-–:]\s*)"
    r"(?P<site>(?:LEFT|RIGHT)(?: BREAST)?|SPECIMEN [A-Z0-9]+|PART [A-Z0-9]+)\)?\s*:?", re.I)


def normalize_site(site):
    return re.sub(r"\s+BREAST$", "", site.strip().upper())


def split_sites(text):
    """[(site, block)] for reports with per-site headers (SYNOPTIC SUMMARY (LEFT BREAST)); else [(None, text)]."""
    lines = text.splitlines()
    starts = [(i, normalize_site(m.group("site"))) for i, l in enumerate(lines) if (m := _SITE_RE.match(l))]
    if not starts:
        return [(None, text)]
    blocks = defaultdict(list)  # one block per site, in order of first appearance
    for (i, site), (j, _) in zip(starts, starts[1:] + [(len(lines), None)]):
        blocks[site].extend(lines[i:j])
    return [(site, "\n".join(b)) for site, b in blocks.items()]


def site_text(text, site=None):
    """The block a record's labels belong to: its site's block, or the whole text when no site is named."""
    if site is None:
        return text
    blocks = dict(split_sites(text))
    if normalize_site(site) not in blocks:
        raise ValueError(f"site {site!r} not found; blocks: {[s for s in blocks if s]}")
    return blocks[normalize_site(site)]


def _triple_negative(m):
    """'TNBC' -> 'TNBC. ER negative, PR negative, HER2 negative.': a sentence of its own, so that it stays out of the
    hint clause of a grade or stage written before it."""
    return m[0] + ". ER negative, PR negative, HER2 negative" + ("" if m.string.startswith(".", m.end()) else ".")


# a clinic note's shorthand, as a pathology report writes it; not a laboratory system's capital 'GR 2', which reports
# write and the model reads as written
_SHORTHAND = [
    (re.compile(r"\b(?i:(well|poorly)[- ]?diff)\b"), r"\1 differentiated"),
    (re.compile(r"\b(?i:mod(?:erately|\.)?[- ]?diff)\b"), "moderately differentiated"),
    (re.compile(r"\b((?i:differentiation)) ?[-–] ?(?=(?i:well|moderate|poor))"), r"\1: "),
    (re.compile(r"\bNHG ?(?=(?:[1-3]|I{1,3})\b)"), "Nottingham histologic grade "),
    (re.compile(r"\b[Gg]rd?\.? ?(?=(?:[1-3]|I{1,3}|i{1,3})\b)"), "grade "),
    (re.compile(r"(\w)? ?([+\-–]) ?(?i:ve)\b"),  # 'ER +ve', 'PR -ve'
     lambda m: (m[1] + " " if m[1] else "") + ("positive" if m[2] == "+" else "negative")),
    (re.compile(r"(?<!(?i:functionally) )(?<!(?i:not) )(?<!(?i:non)[- ])\b(?i:triple[- ]?negative|TNBC)\b"),
     _triple_negative),  # not 'functionally triple negative', said of an ER low positive tumour
]


def write_out_shorthand(text):
    """'poorly diff' -> 'poorly differentiated', 'NHG 2' -> 'Nottingham histologic grade 2', 'Grd III' -> 'grade III',
    'Differentiation - poor' -> 'Differentiation: poor', 'PR -ve' -> 'PR negative', 'TNBC' -> its three statuses: the
    words of the reports the heads learned these fields from."""
    for rx, words in _SHORTHAND:
        text = rx.sub(words, text)
    return text


def as_read(text, site=None):
    """What the model reads of a record: its site's block, capitals recased, a checklist's marked options joined
    to their titles, a table's rows as 'Key: value' lines, OCR confusions put back, a clinic note's shorthand
    written out."""
    return write_out_shorthand(repair_ocr(read_table_rows(read_checkboxes(recase(site_text(text, site))))))


def random_window(text, budget, rng, tokenizer=None):
    """A contiguous span of the same length as the window (tokens with a tokenizer, else characters)."""
    if tokenizer is None:
        start = rng.randrange(max(1, len(text) - budget + 1))
        return text[start:start + budget]
    ids = tokenizer.encode(text, add_bos=False)
    start = rng.randrange(max(1, len(ids) - budget + 1))
    return tokenizer.decode(ids[start:start + budget])


# ----------------------------------------------------------------------------------------------------------
# hint engine: per task, the raw clauses of its best-ranked units; the HER2 assays side by side; nothing decided

MAX_MENTIONS = 2   # clauses per hint line
BEFORE, AFTER = 30, 70  # characters kept before and after the keyword, within its sentence: values follow keys
NEAR = 25  # characters (not counting spaces) from a hormone receptor's name to a value that is its own
_SIZE = re.compile(r"(?i:\d\s*(?:cm|mm)\b)")  # a measurement: '4.1 cm', '1 mm from the margin'
_IHC = re.compile(r"(?i:[il1|]hc|[il1|](?:m|rn)(?:m|rn)un[o0]|herceptest|\bscore\b)|\b[0-3] ?\+")
_ISH = re.compile(r"(?i:\b(?:f|s|c|dd|d)?[il1|]sh\b|hybridi|amplif|ratio|cep-?17|cop(?:y|ies))")
_ISH_RESULT = re.compile(r"(?i:amplif|ratio|positive|negative|\bgroup\b)")  # not "pending", "ordered", "to follow"


def _parts(clause):
    """(start, end) of the parts of clause between top-level ',' and ';' (not inside parentheses)."""
    cuts, depth = [], 0
    for i, ch in enumerate(clause):
        depth += (ch == "(") - (ch == ")")
        if depth <= 0 and ch in ",;":
            cuts.append(i)
    return list(zip([0] + [c + 1 for c in cuts], cuts + [len(clause)]))


def _names_other_task(part, task):
    """Whether a part of a sentence names another task and nothing of `task` but a weak keyword."""
    own = evidence_at(part, task)
    return (not own or own[0] < STRONG) and any(evidence_at(part, t) for t in TASKS if t != task)


def _sentence_stops(unit):
    """[0, the ends of the sentences of a unit (not at ';': a list goes on), len(unit)]."""
    return [0] + [m.end() for m in _SENTENCE_END.finditer(unit) if unit[m.start() - 1:m.start()] != ";"
                  and _ends_sentence(unit, m) and 0 < m.end() < len(unit)] + [len(unit)]


def _sentence(unit, at):
    """(start, end) of the sentence of a unit that holds position `at`."""
    stops = _sentence_stops(unit)
    return max(i for i in stops if i <= at), min(i for i in stops if i > at)


_REST_OF_KEY = re.compile(r"(?:[^:()\d.]|\([^()]{0,40}\)){0,60}(?::|\.{3,})")


def _keyword(unit, task):
    """The keyword of `task` a clause is cut around: the first of the strongest kind that a value follows before
    the next 'Key:' label ('Histologic grade: Tubule formation: ... Grade 2' in two-column text: 'Grade 2'); for ER
    and PR the first with its value near, if one is ('ER, PR and HER2 studies were performed on the prior biopsy
    S09-1022 and showed ER positive (95%)': the second 'ER')."""
    strength, first = evidence_at(unit, task)
    rx = next(rx for s, rx in _EVIDENCE_RE[task] if s == strength)
    valued = None  # the first mention a value follows, however far
    for m in rx.finditer(unit, first.start()):
        key = _REST_OF_KEY.match(unit, m.end())  # the rest of its own label: ' Receptor (PgR, clone 1E2):'
        at = key.end() if key else m.end()
        value = _VALUE.search(unit, at, next(embedded_labels(unit, at), len(unit)))
        near = value and len("".join(unit[at:value.start()].split())) <= NEAR
        if strength == CODE or near or (value and task not in ("ER", "PR")):
            return m
        valued = valued or (m if value else None)
    return valued or first


def _own_row(s, start, ms, me, end, task):
    """(start, end) of a receptor's clause without the other receptors' rows of a biomarker table flattened to
    one line, where a space is all that parts one row from the next: after another receptor's name and value it
    starts at its own words ('ER  Positive (95%) PR  Negative': PR from 'PR'), after its own value it ends at
    another receptor's name (ER up to 'PR'). 'ER/PR: positive' stays whole (no value between the names), as
    does a name after a full stop."""
    others = [m.span() for t in RECEPTORS if t != task for strength, rx in _EVIDENCE_RE[t] if strength == STRONG
              for m in rx.finditer(s, 0, end) if m.end() <= ms or m.start() >= me]
    before, after = [b for a, b in others if b <= ms], [a for a, b in others if a >= me]
    value = _VALUE.search(s, max(before), ms) if before else None  # the value of the receptor before
    if value and value.end() > start and not re.search(r"[.,;]\s", s[value.end():ms]):
        own = [m.start() for _, rx in _EVIDENCE_RE[task] for m in rx.finditer(s, value.end(), me)]
        start = min(own, default=ms)
    if after and _VALUE.search(s, me, min(after)):
        end = min(after)
    return start, end


def clause(unit, task):
    """The raw text around the keyword of `task` in a unit, OCR errors and all: within its sentence, from the
    start of its comma-separated part (at most BEFORE characters) to AFTER characters beyond it, in whole words,
    without the parts that name only other tasks ('ER negative, PR negative, HER2 3+' gives HER2 'HER2 3+': a
    neighbour's 'negative' is not evidence); a grade's clause ends before a later part that holds a measurement and
    names no grade ('high grade, 4.1 cm' gives 'high grade'). A history or outside header stays in front: it says
    whose value."""
    m = _keyword(unit, task)
    s0, s1 = _sentence(unit, m.start())
    sentence, at = unit[s0:s1], m.start() - s0
    parts, drop = _parts(sentence), set()
    for j, (a, b) in enumerate(parts):
        if not a <= at <= b and _names_other_task(sentence[a:b], task):  # the part and one separator go
            drop.update(range(a, b + 1) if j + 1 < len(parts) else range(a - 1, b))
    keep = [i for i in range(len(sentence)) if i not in drop]
    s = "".join(sentence[i] for i in keep)
    ms = keep.index(at)
    me = ms + m.end() - m.start()
    s_parts = _parts(s)  # the parts of what is kept
    start = max([a for a, _ in s_parts if a <= ms] + [ms - BEFORE])  # from the keyword's own comma part
    end = min(len(s), me + AFTER)
    if task == "grade":  # not a measurement after it: the heads took its digits for the grade's ('high grade, 4.1 cm')
        end = min([a for a, b in s_parts if a > me and _SIZE.search(s[a:b]) and not evidence_at(s[a:b], task)] + [end])
    if task in RECEPTORS:
        again = _RECEPTOR_NAME[task].search(s, me, end)
        while again:  # named again within reach: its value is read too ('..., HER2 3.5/cell: HER2 NEGATIVE')
            end = min(len(s), again.end() + AFTER)
            again = _RECEPTOR_NAME[task].search(s, again.end(), end)
        start, end = _own_row(s, start, ms, me, end, task)
    while 0 < start < ms and not s[start - 1].isspace():   # whole words only
        start += 1
    while me < end < len(s) and not s[end].isspace():
        end -= 1
    lead, header = "", _SECTION_RE["history"].match(unit) or _SECTION_RE["outside"].match(unit)
    if header and s0 == 0 and start > 0:
        h = len([i for i in keep if i < header.end()])
        lead, start = header.group().strip() + (" ... " if start > h else " "), max(start, h)
    return (lead + " ".join(s[start:end].split())).strip(" ,;|-").rstrip(".")


_NEW_VALUE = re.compile(r"(?i:\bshould read\b|\bthe correct\b|\bcorrected to\b|(?<=\S )to (?=\S))")


def _from_new_value(clause):
    """A correction's clause from where it gives the new value, its last 'to', 'should read', 'the correct' or
    'corrected to' ('Stage corrected from pT2 to pT1c' gives 'to pT1c'); the whole clause if it has none."""
    return clause[max((m.start() for m in _NEW_VALUE.finditer(clause)), default=0):]


def _states_grade(clause):
    """Whether a clause names the histologic grade itself, not only a nuclear grade or a component score."""
    found = evidence_at(clause, "grade")
    return found is not None and found[0] >= STRONG


def hint_clauses(text):
    """{task: [raw clauses]} for every task the text speaks of: the clauses of its MAX_MENTIONS best-ranked units (an
    addendum or the diagnosis before the microscopic description, history and outside values last), best first. A
    correction ranked first keeps out the lines it corrects, and its clause starts where it gives the new value ('to
    pT1c', 'should read "pN1a"'; the Report block keeps the whole note); a stated grade keeps out a nuclear grade or
    a component score, which are written on the same 1-3 scale. For HER2 the IHC and the ISH clause among them come
    first, side by side, an ISH result before the IHC score it decides ('FISH amplified | HER2 IHC 2+'; a pending ISH
    after it), unless either is one of the past: a line too long for its share loses the second whole (shorten).
    The rules locate and rank evidence; they never decide or rewrite a value."""
    us = sentences(units(text))
    out = {}
    for task in TASKS:
        found, past = [], set()  # past: the clauses of units that speak of the past
        for i in ranked(us, task):
            c = clause(us[i].text, task)
            if c and c not in found:
                found.append(c)
                if us[i].past:
                    past.add(c)
        found = found[:MAX_MENTIONS]
        if found and _CORRECTION.search(found[0]):
            found = [_from_new_value(c) for c in found if _CORRECTION.search(c)]  # not the value it replaces
        if task == "grade" and found and _states_grade(found[0]):
            found = [c for c in found if _states_grade(c)]  # not a component on the same 1-3 scale
        if task == "HER2":
            ihc = next((c for c in found if _IHC.search(c) and c not in past), None)
            ish = next((c for c in found if _ISH.search(c) and c != ihc and c not in past), None)
            if ihc and ish:  # an ISH result first: it decides an equivocal IHC score; a pending ISH decides nothing
                pair = [ish, ihc] if _ISH_RESULT.search(ish) and not _ISH.search(ihc) else [ihc, ish]
                found = pair + [c for c in found if c not in (ihc, ish)]
        if found:
            out[task] = found
    return out


def hints(text):
    """{task: raw evidence}: the hint_clauses of each task joined by ' | '."""
    return {t: " | ".join(c) for t, c in hint_clauses(text).items()}


# a field is stated in words that name it: a receptor's status under its name, a grade as a grade, a node count by
# its nodes. Not T: a size alone ("invasive ductal carcinoma, 2.5 cm") states the pathologic T. A receptor is
# stated with a value after its name as well (a status, a share of cells, a score, a ratio): "PR pending" and
# "HER2 (ERBB2) status: ____" do not state it. (Not so for grade: "grade" is also the word of a nuclear grade or of
# a component score that a stated grade sits beside.)
NEEDS_MENTION = ("N", "M", "grade", "ER", "PR", "HER2")
NEEDS_VALUE = ("ER", "PR", "HER2")


# where what is said of a receptor ends: the next key (a receptor or Ki-67), a sentence end, or a line that is not
# its value
_STOP = r"(?<!\.)[.;](?=\s)"  # a full stop or semicolon, not the last of leader dots ('PR ...... Negative')
_MARKER = re.compile(r"(?i:\bki-?67\b|\bmib-?1\b)")  # a proliferation marker's name: its digits are no value
_RESULT_END = re.compile(r"(?P<key>" + "|".join(rx.pattern for rx in _RECEPTOR_NAME.values()) +
                         r"|" + _MARKER.pattern + r")|" + _STOP + r"|"
                         r"\n(?!\s*(?:" + _CELL_VALUE + r"|" + _SHARE.pattern + r"))")
_KEY_RUN = re.compile(r"(?:[^:\n]{0,30}:\s*)+|[\s/,&]*|\s+and\s+")  # between two keys: 'ER/PR', 'ER: PR:', 'ER and PR'
_SENTENCE_STOP = re.compile(_STOP + r"|\n")
RESULT_REACH = 120  # characters after a receptor's name where its value may stand


def _has_result(text, task):
    """Whether a receptor's name is followed by a value before what is said of it ends: 'PR 0%', 'Progesterone
    Receptor (PgR):' over 'Percentage of Cells ...: 1-10%'; not 'PR pending, HER2 1+', 'PR and HER2 to follow'.
    Read in the whole text, so that a key cut from its value in a long line still counts. Two-column text prints
    the keys first and their values after them ('Estrogen receptor: Progesterone receptor: ... Positive (95%)'):
    a key in a run of keys ('ER/PR/HER2: +/+/-') has its value later on the line, not in a marker's name ('(ER, PR,
    HER2, Ki-67) will be performed')."""
    unnamed = _MARKER.sub(lambda m: " " * len(m.group()), text)
    for m in _RECEPTOR_NAME[task].finditer(text):
        end = _RESULT_END.search(text, m.end())
        said = text[m.end():min(end.start() if end else len(text), m.end() + RESULT_REACH)]
        if _VALUE.search(said):
            return True
        if end and end["key"] and _KEY_RUN.fullmatch(said):  # the next key follows: a run of keys
            stop = _SENTENCE_STOP.search(text, end.start())
            if _VALUE.search(unnamed, end.start(), stop.start() if stop else len(text)):
                return True
    return False


# a field left blank ('Histologic Grade (Nottingham):', 'pT: ____'); not a specimen part's header ('B. Sentinel node:')
_BLANK_FIELD = re.compile(r"(?!\(?[A-H1-9][.)]\s)[^:_]{1,60}(?::[\s_]*|\s*_{2,})")


# a statement that the specimen holds no lymph node, so N cannot be assessed: 'No lymph nodes submitted or found'
_NO_NODE_VERB = r"(?:received|submitted|present|identified|sampled|found|included)\b"
_NO_NODES = re.compile(r"(?i:\bno (?:axillary |regional |sentinel )?(?:lymph )?nodes? (?:(?:is|are|was|were) )?"
                       + _NO_NODE_VERB + r"(?: (?:or|and|nor) " + _NO_NODE_VERB + ")?)")


def _states_nothing(clause, task):
    """Whether a hint clause states nothing of its task: a field left blank ('Primary Tumor (pT): ____'), or a
    statement that the specimen holds no lymph node ('Regional Lymph Nodes: No lymph nodes submitted or found')."""
    rest = _NO_NODES.sub("", clause) if task == "N" else clause
    if rest != clause:
        return evidence_at(rest, task) is None or bool(_BLANK_FIELD.fullmatch(rest))
    return bool(_BLANK_FIELD.fullmatch(clause))


def _unassessed(text, task):
    """Whether every TNM code of `task` in the text is X ('pTX', 'pNX'): the category could not be assessed."""
    codes = [m.group() for strength, rx in _EVIDENCE_RE[task] if strength == CODE for m in rx.finditer(text)]
    return bool(codes) and all(c[-1] in "xX" for c in codes)


def unevidenced(text):
    """The tasks a text gives the hint rules no evidence of: no word of the task (NEEDS_MENTION), no value after its
    name (NEEDS_VALUE), only blank fields or no nodes ('Primary Tumor (pT): ____', 'No lymph nodes received') or
    only an X code ('pTX'). A head's answer for them can only be read off the neighbours ('ER 95%' -> PR positive,
    'pTX' -> Tis), so the evidence gate answers them not stated."""
    found = hint_clauses(text)
    return [t for t in TASKS if (t in NEEDS_MENTION and t not in found)
            or (t in found and all(_states_nothing(c, t) for c in found[t]))
            or (t in NEEDS_VALUE and not _has_result(text, t)) or _unassessed(text, t)]


# ----------------------------------------------------------------------------------------------------------
# the four-block input (Field, Classes, Report, Hints)

HINTS_BLOCK = "\n\nHints:"
REPORT_SHARE = 0.4  # of max_length after Field/Classes, kept for the Report: the hint lines are cut to fit the rest


def head():
    """Field + Classes, as short as they can be: the classes in the order of the fields, one group per field,
    fields with the same classes in one group that names them (ER, PR, HER2: Positive Negative Equivocal)."""
    groups = defaultdict(list)
    for t in TASKS:
        groups[tuple(LABEL_SETS[t])].append(t)
    return ("Field: " + ", ".join(TASKS) + "\nClasses: "
            + "; ".join((f"{', '.join(ts)}: " if len(ts) > 1 else "") + " ".join(c) for c, ts in groups.items())
            + "\nReport:\n")


HINT_WITHHELD = "withheld"  # the hint line of a task in drop_hints: not "none", which says the rules found nothing


def _hint_line(task, clauses, withheld=False):
    return f"{task}_hint: " + (HINT_WITHHELD if withheld else " | ".join(clauses) or "none")


_ASIDE = re.compile(r"\(([^()]{12,})\)")  # a parenthesised aside: "(performed on core biopsy SP19-4112)"


def shorten(clauses, fits):
    """The clauses of a hint line made to fit: the weakest clauses go first, then the longest asides in
    parentheses become '(...)', so that a value after them ('Estrogen receptor (performed on ...): positive')
    survives; what still does not fit is cut at the end by the caller."""
    clauses = list(clauses)
    while len(clauses) > 1 and not fits(clauses):
        clauses.pop()
    while clauses and not fits(clauses):
        asides = [(len(m.group(1)), j, m) for j, c in enumerate(clauses) for m in _ASIDE.finditer(c)]
        if not asides:
            break
        _, j, m = max(asides, key=lambda a: a[0])
        clauses[j] = clauses[j][:m.start()] + "(...)" + clauses[j][m.end():]
    return clauses


def _hint_clauses(text, drop_hints):
    """hint_clauses of the text without the tasks of drop_hints, as if the rules had found nothing for them."""
    if set(drop_hints) - set(TASKS):
        raise ValueError(f"drop_hints: unknown task(s) {sorted(set(drop_hints) - set(TASKS))}; tasks are {TASKS}")
    return {t: c for t, c in hint_clauses(text).items() if t not in drop_hints}


def hint_lines(text, drop_hints=()):
    """{task: 'T_hint: ...'} in task order; a task in drop_hints reads HINT_WITHHELD (hint dropout in training, the
    evaluation without hints)."""
    found = _hint_clauses(text, drop_hints)
    return {t: _hint_line(t, found.get(t, []), t in drop_hints) for t in TASKS}


def _priority(us, candidates, k):
    """The candidate units in the order the Report block takes them: the best units of every task (the best of
    each task, then the second best, ..., each round by score), then their neighbours (nearest first, then by
    score), then the rest by score."""
    cand = set(candidates)
    rounds = {}
    for t in TASKS:
        for r, i in enumerate([i for i in ranked(us, t) if i in cand][:MAX_MENTIONS]):
            rounds[i] = min(rounds.get(i, r), r)

    def score(i):
        return -us[i].weight * max(us[i].strength.values(), default=0.3)

    top = sorted(rounds, key=lambda i: (rounds[i], score(i), i))
    near = {i: min((abs(i - a) for a in top), default=k + 1) for i in candidates if i not in rounds}
    return top + sorted(near, key=lambda i: (min(near[i], k + 1), score(i), i))


def _fit(us, order, budget, tokenizer):
    """The units of `order` that fit `budget` tokens, taken in that order, written in document order with '...'
    where units were skipped."""
    cost = {i: len(tokenizer.encode("\n" + us[i].text, add_bos=False)) for i in order}
    gap = len(tokenizer.encode("\n...", add_bos=False))
    chosen = []
    for i in order:
        trial = sorted(chosen + [i])
        gaps = sum(b != a + 1 for a, b in zip(trial, trial[1:]))
        if sum(cost[j] for j in trial) + gap * gaps <= budget:
            chosen.append(i)
    while chosen:  # joined text can tokenize differently from its pieces
        text = _join([u.text for u in us], sorted(chosen))
        if len(tokenizer.encode(text, add_bos=False)) <= budget:
            return text
        chosen.pop()
    return ""


def report_block(text, mode="window", k=5, tokenizer=None, rng=None, budget=None):
    """The Report block. mode 'window': the +-k units around the anchors (window_slice); 'full': the whole text;
    'random' (the ablation): a random contiguous span as long as the window would be. Given a tokenizer and a
    budget of tokens, a window or full text that does not fit keeps the units of _priority that fit, so a cut
    drops the least relevant units, not the tail (where addenda are)."""
    if mode == "random":
        window = report_block(text, "window", k, tokenizer, budget=budget)
        n = len(tokenizer.encode(window, add_bos=False)) if tokenizer is not None else len(window)
        return random_window(text, n, rng or random.Random(0), tokenizer)
    if mode not in ("window", "full"):
        raise ValueError(f"mode must be 'window', 'full' or 'random', got {mode!r}")
    whole = window_slice(text, k) if mode == "window" else text
    if budget is None or tokenizer is None or len(tokenizer.encode(whole, add_bos=False)) <= budget:
        return whole
    us = units(text)
    candidates = _window(us, k) if mode == "window" else range(len(us))
    return _fit(us, _priority(us, list(candidates), k), budget, tokenizer)


def prompt_parts(text, mode="window", site=None, k=5, tokenizer=None, rng=None, budget=None, drop_hints=()):
    """(head, report, hint_lines) of the model input: head = Field + Classes, hint_lines = {task: "T_hint: ..."}.

    The paper shows one `Field` per input yet feeds all heads from one forward pass. We build ONE input per
    report that names every field with its classes: one forward pass serves all seven heads, seven times
    cheaper than one input per task. Each task keeps its own line in the Hints block, at the end of the input,
    so that the tokens of that line (which attend to the whole report) can be pooled for that task's head.
    """
    block = as_read(text, site)
    return head(), report_block(block, mode, k, tokenizer, rng, budget), hint_lines(block, drop_hints)


def build_input(text, mode="window", site=None, k=5, tokenizer=None, rng=None, drop_hints=()):
    """The four-block prompt as one string (see prompt_parts)."""
    h, report, lines = prompt_parts(text, mode, site, k, tokenizer, rng, drop_hints=drop_hints)
    return h + report + HINTS_BLOCK + "".join("\n" + line for line in lines.values())


def _fair_cap(lengths, budget):
    """The largest c with sum(min(n, c)) <= budget: cut only the longest lines, all to the same length."""
    c = max(lengths, default=0)
    while c > 0 and sum(min(n, c) for n in lengths) > budget:
        c -= 1
    return c


def encode_report(report, tokenizer, max_length=512, mode="window", k=5, seed=42, drop_hints=()):
    """Token ids of one Report's prompt -> (ids, spans, truncated).

    spans = {task: (start, end)}: the positions of that task's Hints line in ids (end exclusive). The Report
    keeps at least REPORT_SHARE of what Field/Classes leave of max_length (all of it if the hints are short);
    hint lines too long for the rest are cut to a common length (shorten: their weakest clauses first, then their
    asides, then their tails), the Report block to its budget (_priority).
    drop_hints: tasks whose hint line reads HINT_WITHHELD. truncated: whether anything was cut.
    """
    rng = random.Random(f"{seed}:{report.id}")
    block = as_read(report.text, report.site)
    h = tokenizer.encode(head(), add_bos=True)
    hb = tokenizer.encode(HINTS_BLOCK, add_bos=False)
    found = _hint_clauses(block, drop_hints)

    def line_ids(task, clauses, withheld=False):
        return tokenizer.encode("\n" + _hint_line(task, clauses, withheld), add_bos=False)

    per_task = {t: line_ids(t, found.get(t, []), t in drop_hints) for t in TASKS}
    whole = len(tokenizer.encode(report_block(block, "window" if mode == "random" else mode, k), add_bos=False))
    share = min(whole, round(REPORT_SHARE * (max_length - len(h))))
    lengths = [len(ids) for ids in per_task.values()]
    cap = _fair_cap(lengths, max_length - len(h) - len(hb) - share)
    if cap < min(8, max(lengths)):  # a hint line cut below 8 tokens says nothing
        raise ValueError(f"report {report.id}: max_length={max_length} is too short for the Field/Classes blocks "
                         f"({len(h)} tokens), a Report share and seven hint lines; use at least "
                         f"{len(h) + 2 * (len(hb) + 7 * 8)}")
    for t, ids in per_task.items():
        if len(ids) > cap and t not in drop_hints:
            ids = line_ids(t, shorten(found[t], lambda clauses: len(line_ids(t, clauses)) <= cap))
        per_task[t] = ids[:cap]
    budget = max_length - len(h) - len(hb) - sum(len(ids) for ids in per_task.values())
    body = tokenizer.encode(report_block(block, mode, k, tokenizer, rng, budget), add_bos=False)[:budget]
    ids = h + body + hb
    spans = {}
    for t, line in per_task.items():
        spans[t] = (len(ids), len(ids) + len(line))
        ids += line
    return ids, spans, whole > budget or cap < max(lengths)


def encode_reports(reports, tokenizer, max_length=512, mode="window", k=5, seed=42, drop_hints=()):
    """Prompts of all reports -> (list of (ids, spans), number cut to fit max_length); prints the count."""
    out, n_trunc = [], 0
    for r in reports:
        ids, spans, cut = encode_report(r, tokenizer, max_length, mode, k, seed, drop_hints)
        out.append((ids, spans))
        n_trunc += cut
    if n_trunc:
        print(f"{n_trunc} of {len(reports)} report(s) cut to fit max_length={max_length} "
              f"(the least relevant Report units first, then the longest hint lines)", file=sys.stderr)
    return out, n_trunc


def label_tensors(records, label_sets=LABEL_SETS):
    """{task: LongTensor (B,)} of class indices; a label the report does not state is the NOT_STATED class where
    the task's label set has one (head_label_sets), else -100 (no loss)."""
    def index(labels, value):
        if value is not None:
            return labels.index(value)
        return labels.index(NOT_STATED) if NOT_STATED in labels else IGNORE
    return {t: torch.tensor([index(labels, r.labels.get(t)) for r in records], dtype=torch.long)
            for t, labels in label_sets.items()}


# ----------------------------------------------------------------------------------------------------------
# stratified 80/10/10 split

def stratified_split(records, seed=42, fractions=(0.8, 0.1, 0.1), by="HER2"):
    """(train, val, test), each class of `by` (a task name or a function of a record; default HER2, the rarest
    and most skewed task) split within one record of its exact share. Same seed, same split, any input order."""
    if abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    key = by if callable(by) else (lambda r: r.labels.get(by))
    groups = defaultdict(list)
    for r in records:
        groups[str(key(r))].append(r)
    rng = random.Random(seed)
    splits = [[] for _ in fractions]
    for g in sorted(groups):
        members = sorted(groups[g], key=lambda r: r.id)
        rng.shuffle(members)
        exact = [f * len(members) for f in fractions]
        counts = [int(x) for x in exact]
        by_remainder = sorted(range(len(fractions)), key=lambda i: (counts[i] - exact[i], rng.random()))
        for i in by_remainder[:len(members) - sum(counts)]:  # largest remainders get the leftover records
            counts[i] += 1
        start = 0
        for s, c in zip(splits, counts):
            s.extend(members[start:start + c])
            start += c
    for s in splits:
        s.sort(key=lambda r: r.id)
    return tuple(splits)


def split_by_style(records, seed=42, fractions=(0.8, 0.1, 0.1)):
    """(train, val, test) of whole styles. No style of val or test is seen in training, so their scores say how
    the model reads reports written unlike anything it was trained on. Where every record names its "split" the
    file decides (a style added to a corpus later then does not reshuffle the held-out ones); otherwise a seeded
    shuffle of the style names gives test styles until the test share is reached, then validation styles."""
    if any(r.style is None for r in records):
        raise ValueError("split_by_style: every record needs a 'style'; use stratified_split otherwise")
    size = Counter(r.style for r in records)
    if len(size) < 3:
        raise ValueError(f"split_by_style needs at least 3 styles, the data has {len(size)}: {sorted(size)}")
    pick = lambda names: sorted((r for r in records if r.style in names), key=lambda r: r.id)
    if all(r.split for r in records):
        part = {}
        for r in records:
            if part.setdefault(r.style, r.split) != r.split:
                raise ValueError(f"split_by_style: style {r.style!r} is in both {part[r.style]!r} and {r.split!r} "
                                 f"(line {r.line}, id {r.id}); a style belongs to one split")
        missing = [s for s in SPLITS if s not in part.values()]
        if missing:
            raise ValueError(f"split_by_style: no style is marked {' or '.join(map(repr, missing))} in the file")
        return tuple(pick({s for s, p in part.items() if p == name}) for name in SPLITS)
    styles = sorted(size)
    random.Random(seed).shuffle(styles)
    held = {"test": [], "val": []}
    for part, frac in (("test", fractions[2]), ("val", fractions[1])):
        while sum(size[s] for s in held[part]) < frac * len(records) and len(styles) > 1:
            held[part].append(styles.pop())
    return pick(set(styles)), pick(set(held["val"])), pick(set(held["test"]))


# ----------------------------------------------------------------------------------------------------------
# the naive rule-based baseline of the MTL paper (Sec. IV-B): regex on the unsegmented report, no context

_NAIVE = {
    # "pT followed by an integer" (paper, Sec. IV-B): so pTis and pN1mi are read as no stage / N1, as there
    "T": re.compile(r"pT\s?(\d)", re.I),
    "N": re.compile(r"pN\s?(\d)", re.I),
    "M": re.compile(r"[pc]M\s?(\d)", re.I),
    "grade": re.compile(r"grade\W{0,3}(III|II|I|[1-3])\b", re.I),
}
_NAIVE_MARKERS = {"ER": r"estrogen receptor|\bER\b", "PR": r"progesterone receptor|\bP[gR]R?\b",
                  "HER2": r"HER-?2"}
NAIVE_WINDOW = 75  # characters either side of a biomarker keyword


def naive_baseline(text):
    """{task: label or None}: the first 'pT'+digit etc. anywhere; for biomarkers the first status word within
    +-75 characters of the first keyword. No sections, no negation, no history: the paper's weak baseline."""
    pred = {t: None for t in TASKS}
    for task, rx in _NAIVE.items():
        m = rx.search(text)
        if m:
            v = m.group(1).upper()
            v = {"I": "1", "II": "2", "III": "3"}.get(v, v)
            label = {"T": "T", "N": "N", "M": "M", "grade": "G"}[task] + v
            pred[task] = label if label in LABEL_SETS[task] else None
    for task, kw in _NAIVE_MARKERS.items():
        m = re.search(kw, text, re.I)
        if m:
            window = text[max(0, m.start() - NAIVE_WINDOW):m.end() + NAIVE_WINDOW]
            s = re.search(r"positive|negative|equivocal", window, re.I)
            if s:
                pred[task] = s.group(0).capitalize()
    return pred


def naive_predictions(texts):
    """Baseline predictions in the model's format: [{task: {"label": str|None, "probs": {label: p}}}]."""
    out = []
    for text in texts:
        row = {}
        for task, label in naive_baseline(text).items():
            labels = LABEL_SETS[task]
            probs = {l: float(l == label) for l in labels} if label else {l: 1 / len(labels) for l in labels}
            row[task] = {"label": label, "probs": probs}
        out.append(row)
    return out


# ----------------------------------------------------------------------------------------------------------
# text as it arrives from elsewhere: PDF extraction, OCR, another institution's template; labels never change

# the kinds --augment draws from; "history" (below) is for the robustness bench: drawn in training too, it moved
# nothing beyond a seed (BENCHMARKS r49, r50)
ARRIVALS = ("oneline", "ocr", "headers", "upper", "addendum", "oneline+ocr", "headers+addendum", "oneline+upper+ocr")
OCR_RATE = (0.02, 0.04)  # character error rate of OCR on scanned pages
# glyph confusions of OCR: letters and digits that look alike. A digit never becomes another digit, and no
# 'O' after T/N/M becomes '0' (the word 'TO' is not a stage T0).
OCR_CONFUSIONS = {"rn": "m", "cl": "d", "m": "rn", "1": "l", "0": "O", "O": "0", "o": "0", "I": "l", "l": "I",
                  "e": "c"}
_OCR_RE = re.compile(r"rn|cl|(?<![TNMtnm])[Oo]|[m10Il]|e")
# another institution's section names: each group is renamed to one of its alternatives
HEADER_VOCABULARY = [
    (r"FINAL (?:PATHOLOGIC(?:AL)? )?DIAGNOSIS|OUR DIAGNOSIS|DIAGNOSIS",
     ["DX", "Interpretation", "Pathologic Diagnosis"]),
    (r"CLINICAL (?:HISTORY|DATA|INFORMATION)|HISTORY", ["Clin Hx", "Indication", "Pertinent History"]),
    (r"GROSS(?: DESCRIPTION)?", ["Macroscopic", "Gross Examination", "Specimen Description"]),
    (r"MICROSCOPIC(?: DESCRIPTION)?", ["Microscopy", "Histology", "Microscopic Examination"]),
    (r"SPECIMEN(?:\(S\)|S)? SUBMITTED|MATERIAL RECEIVED", ["Source of Specimen", "Specimens Received", "Tissue"]),
    (r"SYNOPTIC (?:SUMMARY|REPORT)", ["Tumor Summary", "CAP Protocol Data", "Checklist"]),
    (r"PROGNOSTIC MARKERS|RECEPTOR STATUS|(?:BREAST )?BIOMARKER STUDIES|BIOMARKERS",
     ["Ancillary Studies", "Predictive Markers", "Special Studies"]),
    (r"COMMENTS?", ["Remarks", "Note"]),
]
_HEADER_RE = [(re.compile(r"(?:^|(?<=\S\s\s))(?P<pre>[ \t]*)(?P<h>" + p + r")(?=[ \t]*(?::|$))", re.I | re.M), alts)
              for p, alts in HEADER_VOCABULARY]
# appended text that states nothing a label depends on: no stage, grade, receptor or status word
ADDENDA = [
    "ADDENDUM: Ki-67 proliferation index 20 %.",
    "ADDENDUM: Additional levels examined; the diagnosis is unchanged.",
    "ADDENDUM: Case reviewed at the multidisciplinary conference on [DATE]; no change to the diagnosis.",
    "Electronically signed: [REDACTED], MD, Pathologist\nI have personally reviewed the slides and agree with the "
    "interpretation above.",
    "Testing performed at Regional Medical Laboratory, 1200 Main Street, Springfield. CLIA #05D0912345. "
    "Laboratory Director: [REDACTED], MD.",
    "DISCLAIMER: This report is confidential and intended for the ordering provider only. If you have received it "
    "in error, please notify the sender and destroy all copies.",
    "Some assays in this report were developed and their performance characteristics determined by this "
    "laboratory. They have not been cleared or approved by the U.S. Food and Drug Administration.",
]


def _oneline(text, rng):
    """Text extracted from a scanned PDF: no line breaks, the page header and footer repeated at each page."""
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    units = blocks if len(blocks) >= 3 else text.strip().splitlines()
    cuts = [i for i in range(1, len(units)) if not units[i - 1].rstrip().endswith(":")]
    n = min(rng.randint(2, 3), len(cuts) + 1)
    cuts = [0] + sorted(rng.sample(cuts, n - 1)) + [len(units)]
    running = (f"Patient: [REDACTED] MRN 00{rng.randrange(10**5):05d} Printed "
               f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(2015, 2024)}")
    pages = [[running] + units[a:b] + [f"Page {i + 1} of {n}"] for i, (a, b) in enumerate(zip(cuts, cuts[1:]))]
    return " ".join(re.sub(r"\s*\n\s*", " ", u.strip()) for page in pages for u in page)


def _ocr(text, rng):
    """OCR confusions at a 2-4 % character error rate, at most one per word, evidence words included."""
    words = [m.span() for m in re.finditer(r"\S+", text)]
    k = round(rng.uniform(*OCR_RATE) * sum(b - a for a, b in words))
    found = [ms for a, b in words if (ms := list(_OCR_RE.finditer(text, a, b)))]
    hits = sorted((rng.choice(ms) for ms in rng.sample(found, min(k, len(found)))), key=lambda m: m.start())
    out, at = [], 0
    for m in hits:
        out += [text[at:m.start()], OCR_CONFUSIONS[m.group()]]
        at = m.end()
    return "".join(out) + text[at:]


def _headers(text, rng):
    """Section headers renamed to another institution's vocabulary, one name per section."""
    for rx, alts in _HEADER_RE:
        new = rng.choice(alts)
        text = rx.sub(lambda m: m.group("pre") + (new.upper() if m.group("h").isupper() else new), text)
    return text


def _upper(text, rng):
    """The whole text in capitals."""
    return text.upper()


def _addendum(text, rng):
    """An addendum or administrative text appended that changes nothing."""
    return text.rstrip() + "\n\n" + rng.choice(ADDENDA) + "\n"


def _receptors(rng):
    """ER, PR and HER2 of a tumour, each drawn at random, written one of the ways clinicians write them."""
    er, pr, her2 = (rng.random() < p for p in (0.75, 0.6, 0.2))
    sign = "-+"
    return rng.choice([
        f"ER{sign[er]}/PR{sign[pr]}/HER2{sign[her2]}",
        f"ER {('negative', 'positive')[er]}, PR {('negative', 'positive')[pr]}, HER2 {('negative', 'positive')[her2]}",
        f"ER {rng.randint(60, 100) if er else 0}%, PR {rng.randint(5, 95) if pr else 0}%, "
        f"HER2 {rng.choice(['3+', '2+ FISH amplified']) if her2 else rng.choice(['0', '1+', '2+ FISH not amplified'])}",
        ("triple negative" if not (er or pr or her2) else
         f"{'hormone receptor positive' if er or pr else 'ER/PR negative'}, HER2 {('not amplified', 'amplified')[her2]}"),
    ])


def _prior_cancer(rng):
    """A sentence of clinical history on an earlier breast cancer (another tumour, years before): its stage,
    grade and receptors are drawn at random, so they say nothing about this report's labels. Never a
    metastasis, which would be this patient's M."""
    year = rng.randint(1996, 2013)
    side = rng.choice(["right", "left", "contralateral", "same-side", "ipsilateral"])
    kind = rng.choice(["invasive ductal carcinoma", "IDC", "invasive lobular carcinoma", "ILC", "breast cancer",
                       "invasive carcinoma, NST"])
    t, n, g = rng.randint(1, 3), rng.choice(["0", "0", "1a", "1", "2a"]), rng.randint(1, 3)
    stage = rng.choice([f"pT{t}{'abc'[rng.randint(0, 2)] if t == 1 else ''} pN{n}", f"T{t}N{n[0]}",
                        f"stage {rng.choice(['I', 'IA', 'IIA', 'IIB', 'IIIA'])}", f"pT{t}N{n[0]}(sn)"])
    grade = rng.choice([f"grade {g}", f"Nottingham grade {g}", f"SBR grade {'I' * g}", f"G{g}",
                        ("well", "moderately", "poorly")[g - 1] + " differentiated"])
    treated = rng.choice(["lumpectomy and radiation", "mastectomy", "mastectomy and AC-T", "TCHP and trastuzumab",
                          "lumpectomy, radiation and tamoxifen", "chemotherapy and letrozole"])
    receptors = _receptors(rng)
    return rng.choice([
        f"History of {side} breast {kind} ({year}), {grade}, {stage}, {receptors}, treated with {treated}.",
        f"Prior {side} breast cancer in {year}: {kind}, {stage}, {grade}; {receptors}; s/p {treated}.",
        f"PMH: {year} {side} breast ca ({kind}, {grade}, {receptors}), {treated}.",
        f"She was previously treated for a {side} {kind} in {year} ({stage}, {receptors}, {grade}) with {treated}.",
    ])


HISTORY_HEADERS = ["CLINICAL HISTORY:", "Clinical information:", "HISTORY:", "Clinical Hx:", "Pertinent history:"]


def _history(text, rng):
    """A clinical history block on an earlier breast cancer, near the top (where history sits) or before the
    last block: its values belong to another tumour, and the model must learn to read past them."""
    block = rng.choice(HISTORY_HEADERS) + "\n" + _prior_cancer(rng)
    blocks, sep = re.split(r"\n\s*\n", text.strip()), "\n\n"
    if len(blocks) == 1:  # no blank lines: between lines
        blocks, sep = text.strip().split("\n"), "\n"
    at = 1 if len(blocks) < 3 or rng.random() < 0.7 else len(blocks) - 1
    return sep.join(blocks[:at] + [block] + blocks[at:]) + "\n"


_ARRIVE = {"history": _history, "headers": _headers, "addendum": _addendum, "oneline": _oneline, "upper": _upper,
           "ocr": _ocr}


def arrive(text, rng, kind):
    """The text as it might arrive from elsewhere: kind is one of ARRIVALS, any '+' of its parts, or 'none'.
    Parts apply in a fixed order (history, headers, addendum, oneline, upper, ocr); labels stay true."""
    parts = set() if kind == "none" else set(kind.split("+"))
    if not parts <= set(_ARRIVE):
        raise ValueError(f"unknown arrival {kind!r}: expected 'none' or '+' of {list(_ARRIVE)}")
    for name, fn in _ARRIVE.items():
        if name in parts:
            text = fn(text, rng)
    return text


# ----------------------------------------------------------------------------------------------------------
# a not-stated field written as not stated (train_mtl.py --absent); the label stays null

# how reports say that they do not give a value: the words of a not-stated field, never a value of it
ABSENT = {
    "T": ["Primary tumor (pT): pTX (cannot be assessed)", "pT category: not assigned on a core biopsy",
          "pT: not applicable (biopsy specimen)"],
    "N": ["Regional lymph nodes (pN): pNX (no lymph nodes submitted)", "Lymph nodes: none received",
          "pN category: cannot be assessed"],
    "M": ["Distant metastasis (pM): not applicable", "pM: cannot be determined from the submitted specimen",
          "Distant metastasis: not assessed"],
    "grade": ["Nottingham grade: not assessable", "Histologic grade: cannot be determined (limited sampling)",
              "Grade: not applicable", "Histologic grade: deferred to the excision specimen",
              "Histologic grade: not assigned (treatment effect)", "Grade: not graded after neoadjuvant therapy"],
    "ER": ["Estrogen receptor: pending", "ER: not performed on this specimen",
           "Estrogen receptor (ER): results to follow in an addendum", "ER: ____"],
    "PR": ["Progesterone receptor: pending", "PR: not performed on this specimen",
           "Progesterone receptor (PgR): results to follow in an addendum", "PR: ____"],
    "HER2": ["HER2 (IHC): pending", "HER2: not performed on this specimen", "HER2 testing: ordered; results will follow",
             "HER2 by ISH: ____"],
}


def state_absence(text, tasks, rng):
    """The text with a line saying, for each of `tasks`, that the report does not give it ('Nottingham grade: not
    assessable', 'HER2: pending'), at a random line break: a not-stated field is often written, not silent. For
    tasks whose label is not stated only, so the label stays true."""
    lines = text.rstrip().split("\n")
    at = rng.choice([j for j in range(1, len(lines) + 1) if not lines[j - 1].rstrip().endswith(":")] or [len(lines)])
    return "\n".join(lines[:at] + [rng.choice(ABSENT[t]) for t in tasks] + lines[at:]) + "\n"


# ----------------------------------------------------------------------------------------------------------

def label_counts(records, label_sets):
    """{task: Counter(label or 'not stated')}"""
    return {t: Counter(r.labels.get(t) or "not stated" for r in records) for t in label_sets}


def _main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["check", "show"])
    p.add_argument("--data", required=True)
    p.add_argument("--pairs", action="store_true", help="the file is pairs.jsonl (alignment)")
    p.add_argument("--skip-bad", action="store_true", help="leave bad lines out (they are still listed)")
    p.add_argument("--slicing", "--mode", dest="slicing", default="window", choices=["window", "full", "random"],
                   help="input mode, as train_mtl.py --slicing")
    p.add_argument("--k", type=int, default=5, help="lines either side of an anchor header (paper: 5)")
    p.add_argument("--n", type=int, default=1)
    a = p.parse_args()
    try:
        recs = (read_pairs if a.pairs else read_reports)(a.data, skip_bad=a.skip_bad)
    except DataError as e:
        sys.exit(str(e))
    if a.command == "check":
        print(f"{a.data}: {len(recs)} records OK")
        for task, c in label_counts(recs, PAIR_LABEL_SETS if a.pairs else LABEL_SETS).items():
            print(f"  {task:12s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    else:
        for r in recs[:a.n]:
            print(f"=== {r.id} (site {r.site}) labels {r.labels}\n{build_input(r.text, a.slicing, r.site, a.k)}\n")


if __name__ == "__main__":
    _main()
