"""Reports in, model inputs out: reading and checking the JSONL files, canonical labels, window slicing,
the four-block prompt with its hint engine, the stratified split, label tensors and the naive regex baseline
(padding is llama.pad_batch).

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

import torch

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
    if task in ("ER", "PR", "HER2", "grade"):
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
    line: int = 0


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
        super().__init__(f"{path}: {len(problems)} bad line(s) of {n_lines} (fix them, or pass --skip-bad "
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
        bad = len({p.split(": ", 1)[0] for p in problems})
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
    if labels is None or not isinstance(text, str):
        return None
    return Report(rid, text, labels, site)


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
# window slicing (MTL paper, Suppl. I-B): +-K lines around prioritised anchor headers

# Priority tiers: 1) anchor headers (this list, at the start of a line); 2) if none is found (unfamiliar
# template, OCR'd text), sentence windows around task keywords; 3) if no keyword either, the full text.
ANCHORS = [
    r"FINAL (?:PATHOLOGIC(?:AL)? |SURGICAL PATHOLOGY )?DIAGNOS[IE]S",
    r"(?:ADDENDUM|AMENDED|REVISED|CORRECTED)\b",
    r"SYNOPTIC (?:SUMMARY|REPORT)|CANCER (?:CASE )?SUMMARY|(?:TUMOU?R|CAP) SUMMARY",
    r"INVASIVE (?:DUCTAL|LOBULAR|MAMMARY)? ?CARCINOMA",
    r"PATHOLOGIC(?:AL)? STAG|pTNM|AJCC|PRIMARY TUMOU?R|REGIONAL LYMPH NODES|DISTANT METASTAS[IE]S",
    r"HISTOLOGIC GRADE|NOTTINGHAM|OVERALL GRADE|(?:MODIFIED )?BLOOM",
    r"(?:BREAST )?BIOMARKER|PROGNOSTIC (?:MARKERS|STUDIES|FACTORS)|RECEPTOR STATUS|IMMUNOHISTOCHEM|"
    r"ESTROGEN RECEPTOR|PROGESTERONE RECEPTOR|HER-?2",
    r"(?:DIAGNOSIS|DIAGNOSES|INTERPRETATION|IMPRESSION|OUR (?:DIAGNOSIS|INTERPRETATION))\b",
]
_LINE_START = r"^[\s\-*•>#]*(?:\(?[A-Z0-9]{1,2}[.)]\s*)?"
_ANCHOR_RE = [re.compile(_LINE_START + "(?:" + a + ")", re.I) for a in ANCHORS]


def is_anchor(line):
    """A header, not prose: the anchor words in capitals, or followed by ':' / dotted leaders / end of line."""
    for rx in _ANCHOR_RE:
        m = rx.match(line)
        if m and (m.group().isupper() or re.match(r"[^.\n]{0,40}?(?::|\.{3,}|\s*$)", line[m.end():])):
            return True
    return False
_KEYWORD_RE = re.compile(
    r"\b(?:[cpy]{0,2}T(?:is|[0-4])|[cpy]{0,2}N[0-3]|[cp]?M[01])\b|grade|differentiated|estrogen|progesterone|"
    r"\bER\b|\bP[gR]R?\b|HER-?2|lymph node|FISH|\bISH\b|receptor|carcinoma|tumou?r size|metasta", re.I)
_LONG_LINE = 400  # a line this long means lost line breaks (OCR) or a typed paragraph: cut it into sentences
SECTIONS = [r"CLINICAL (?:HISTORY|DATA|INFORMATION|NOTES?)", r"HISTORY", r"GROSS(?: DESCRIPTION)?",
            r"MICROSCOPIC(?: DESCRIPTION)?", r"SPECIMENS?(?: SUBMITTED)?", r"COMMENTS?", r"NOTE", r"TNM",
            r"(?:SBR |HISTOLOGIC |NUCLEAR |OVERALL )?GRADE", r"LYMPH NODES?", r"MARGINS?", r"TUMOU?R SIZE",
            r"(?:HER-?2|ER|PR|PGR)\b[^:\n]{0,25}", r"FISH", r"KI-?67"]
# a header inside a long line: a known section name, an optional "(...)", then ':' or dotted leaders
_EMBEDDED_HEADER = re.compile(r"(?<=\s)(?:" + "|".join(ANCHORS + SECTIONS) +
                              r")(?:\s*\([^)\n]{0,30}\))?\s*(?::|\.{3,})", re.I)


def report_lines(text):
    """Non-blank lines; a very long line is cut into sentences and before embedded section headers."""
    units = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if len(line) <= _LONG_LINE:
            units.append(line.rstrip())
            continue
        cuts = [0] + [m.start() for m in _EMBEDDED_HEADER.finditer(line)] + [len(line)]
        for a, b in zip(cuts, cuts[1:]):
            for sent in re.split(r"(?<=[A-Za-z0-9)%]{2}[.;])\s+(?=[A-Z(])|\s{3,}", line[a:b]):
                if sent.strip():
                    units.append(sent.strip())
    return units


def _window_units(text, k=5):
    """(units, kept indices, tier) of the slice; tier 1 = anchors, 2 = keyword sentences, 3 = full text."""
    units = report_lines(text)
    hits = [i for i, u in enumerate(units) if is_anchor(u)]
    if hits:
        keep = sorted({j for i in hits for j in range(max(0, i - k), min(len(units), i + k + 1))})
        return units, keep, 1
    hits = [i for i, u in enumerate(units) if _KEYWORD_RE.search(u)]
    if hits:
        keep = sorted({j for i in hits for j in range(max(0, i - 1), min(len(units), i + 2))})
        return units, keep, 2
    return units, list(range(len(units))), 3


def window_slice(text, k=5):
    """The +-k lines around every anchor header, in document order (blank lines not counted)."""
    units, keep, _ = _window_units(text, k)
    out, prev = [], None
    for i in keep:
        if prev is not None and i != prev + 1:
            out.append("...")
        out.append(units[i])
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


def random_window(text, budget, rng, tokenizer=None):
    """A contiguous span of the same length as the window (tokens with a tokenizer, else characters)."""
    if tokenizer is None:
        start = rng.randrange(max(1, len(text) - budget + 1))
        return text[start:start + budget]
    ids = tokenizer.encode(text, add_bos=False)
    start = rng.randrange(max(1, len(ids) - budget + 1))
    return tokenizer.decode(ids[start:start + budget])


# ----------------------------------------------------------------------------------------------------------
# hint engine: copy the raw text after each task's headers; join the HER2 assay fragments; decide nothing

_H = r"(?<![\w/])"  # a header starts a word
_VALUE = r"\s*(?:\([^)\n]{0,30}\))?\s*[:=]\s*(?P<v>[^\n]{1,120})"
HINT_HEADERS = {
    "T": [r"primary tumou?r(?: \(p?T\))?", r"p?T (?:stage|category)", r"pathologic(?:al)? T(?: stage| category)?",
          r"tumou?r stage \(p?T\)", r"pT"],
    "N": [r"regional lymph nodes(?: \(p?N\))?", r"lymph nodes?(?: \(p?N\))?", r"p?N (?:stage|category)",
          r"pathologic(?:al)? N(?: stage| category)?", r"pN"],
    "M": [r"distant metastas[ie]s(?: \(p?M\))?", r"p?M (?:stage|category)", r"pM"],
    "grade": [r"(?<!nuclear )(?<!nuclear)(?:(?:histologic|nottingham|overall|combined|total|sbr|elston[- ]ellis|"
              r"(?:modified )?bloom[- ]richardson)\s+(?:histologic\s+)?)?grade"],
    "ER": [r"estrogen receptors?(?: \(ER\))?", r"ER(?: status)?", r"oestrogen receptors?"],
    "PR": [r"progesterone receptors?(?: \(P[gR]R?\))?", r"P[gR]R?(?: status)?"],
}
_HER2_RE = re.compile(
    _H + r"(?:HER-?2(?:/neu)?(?: ?\(ERBB2\))?|c-?erbB-?2)(?P<a1>\s+(?:by\s+)?(?:IHC|immunohistochemistry|FISH|ISH|"
    r"SISH|CISH|dual[- ]probe ISH|in situ hybridi[sz]ation|IHC score))?(?: status| score| result| protein| gene)?"
    r"\s*(?:\((?:by\s+)?(?P<a2>[^)\n]{1,30})\))?\s*[:=]\s*(?P<v>[^\n]{1,120})"
    r"|" + _H + r"(?P<a3>FISH|ISH|SISH|dual[- ]probe ISH|in situ hybridi[sz]ation)(?: for HER-?2)?(?: result)?"
    r"\s*(?:\([^)\n]{0,30}\))?\s*[:=]\s*(?P<v2>[^\n]{1,120})", re.I)
_HINT_RE = {t: re.compile(_H + "(?:" + "|".join(hs) + ")" + _VALUE, re.I) for t, hs in HINT_HEADERS.items()}
HINT_MAX_CHARS = 60
# Where no header names a task, its evidence is often inline ("Pathologic stage: pT2 pN1 cM0", "positive for
# estrogen receptor", "Histologic grade III of III"). The hint is then the raw clause around each keyword, every
# one of them (a history's stage and the current one, a nuclear and a histologic grade): the model decides.
MENTION_RE = {
    "T": re.compile(r"\b[yra]{0,2}[pc]?T(?:is\b|[0-4x](?!\d))", re.I),  # pT1c, ypT2, cT4, T2; not T10 (a vertebra)
    "N": re.compile(r"\b[yra]{0,2}[pc]?N[0-3x](?!\d)|\blymph nodes?\b", re.I),
    "M": re.compile(r"\b[yra]{0,2}[pc]?M[01x](?!\d)|\bdistant metasta", re.I),
    "grade": re.compile(r"\bgrade\b|\bdifferentiated\b", re.I),
    "ER": re.compile(r"\b(?:o?estrogen|ER)\b", re.I),
    "PR": re.compile(r"\b(?:progesterone|P[gR]R?)\b", re.I),
    "HER2": re.compile(r"\b(?:HER-?2|c-?erbB-?2|FISH)\b", re.I),
}
MENTION_CHARS = 45   # characters kept either side of a keyword, within its sentence
_SENTENCE_END = re.compile(r"\n|(?<![.\d])\.(?=\s)")  # a line break or a full stop (not leader dots "......")
MAX_MENTIONS = 3


def _clip(v):
    """Raw value up to the first ';', ',', '. ' or double space outside parentheses, at most HINT_MAX_CHARS characters."""
    depth, out = 0, []
    for i, ch in enumerate(v):
        depth += (ch == "(") - (ch == ")")
        if depth <= 0 and (ch == ";" or ch == "," or (ch == "." and v[i + 1:i + 2] in ("", " "))):
            break
        if depth <= 0 and v[i:i + 2] == "  ":
            break
        out.append(ch)
    return "".join(out).strip()[:HINT_MAX_CHARS].strip()


def _parts(clause):
    """(start, end) of the parts of clause between top-level ',' and ';' (not inside parentheses)."""
    cuts, depth = [], 0
    for i, ch in enumerate(clause):
        depth += (ch == "(") - (ch == ")")
        if depth <= 0 and ch in ",;":
            cuts.append(i)
    return list(zip([0] + [c + 1 for c in cuts], cuts + [len(clause)]))


def _names_other_task(part, task):
    return not MENTION_RE[task].search(part) and any(rx.search(part) for t, rx in MENTION_RE.items() if t != task)


def mentions(text, task):
    """The sentence around each keyword of `task` without its comma-separated parts that name only other tasks
    ('ER negative, PR negative, HER2 3+' gives HER2 'HER2 3+': a neighbour's 'negative' is not evidence), cut to
    MENTION_CHARS either side of the keyword; distinct, joined by ' | '."""
    out = []
    stops = [0] + [e.end() for e in _SENTENCE_END.finditer(text)] + [len(text)]
    for m in MENTION_RE[task].finditer(text):
        s0 = max(i for i in stops if i <= m.start())
        sentence, at = text[s0:min(i for i in stops if i >= m.end())], m.start() - s0
        parts, drop = _parts(sentence), set()
        for j, (a, b) in enumerate(parts):
            if not a <= at <= b and _names_other_task(sentence[a:b], task):  # the part and one separator go
                drop.update(range(a, b + 1) if j + 1 < len(parts) else range(a - 1, b))
        keep = [i for i in range(len(sentence)) if i not in drop]
        s = "".join(sentence[i] for i in keep)
        ms = keep.index(at)
        me = ms + m.end() - m.start()
        start, end = max(0, ms - MENTION_CHARS), min(len(s), me + MENTION_CHARS)
        while 0 < start < ms and s[start - 1].isalnum():   # whole words only
            start += 1
        while me < end < len(s) and s[end].isalnum():
            end -= 1
        clause = " ".join(s[start:end].split()).strip(" ,;").rstrip(".")
        if clause not in out:
            out.append(clause)
        if len(out) == MAX_MENTIONS:
            break
    return " | ".join(out)


def hints(text):
    """{task: raw evidence}: the text after each task header (all occurrences, joined by ' | '); for HER2 the
    IHC and ISH fragments joined (`IHC 2+, FISH amplified`); for a task no header names, the clauses that
    mention it. The rules locate evidence, they never decide."""
    text = "\n".join(report_lines(text))  # OCR'd text without line breaks: cut at embedded headers first
    out = {}
    for task, rx in _HINT_RE.items():
        vals = []
        for m in rx.finditer(text):
            v = _clip(m.group("v"))
            if v and v not in vals:
                vals.append(v)
        if vals:
            out[task] = " | ".join(vals)
    frags = []
    for m in _HER2_RE.finditer(text):
        assay = (m.group("a1") or m.group("a2") or m.group("a3") or "").strip().lower()
        v = _clip(m.group("v") or m.group("v2") or "")
        if not v:
            continue
        if re.search(r"ihc|immuno", assay):
            v = "IHC " + v
        elif re.search(r"ish|hybridi", assay):
            v = "FISH " + v
        if v not in frags:
            frags.append(v)
    if frags:
        out["HER2"] = ", ".join(frags)
    for task in MENTION_RE:
        if task not in out:
            found = mentions(text, task)
            if found:
                out[task] = found
    return out


# ----------------------------------------------------------------------------------------------------------
# the four-block input (Field, Classes, Report, Hints)

HINTS_BLOCK = "\n\nHints:"
MIN_REPORT_TOKENS = 64  # when the Hints are long, each line is cut to a fair share so the Report keeps this much


def prompt_parts(text, mode="window", site=None, k=5, tokenizer=None, rng=None):
    """(head, report, hint_lines) of the model input: head = Field + Classes, hint_lines = {task: "T_hint: ..."}.

    The paper shows one `Field` per input yet feeds all heads from one forward pass. We build ONE input per
    report that names every field with its classes: one forward pass serves all seven heads, seven times
    cheaper than one input per task. Each task keeps its own line in the Hints block, at the end of the input,
    so that the tokens of that line (which attend to the whole report) can be pooled for that task's head.
    """
    block = site_text(text, site)
    if mode == "window":
        report = window_slice(block, k)
    elif mode == "full":
        report = block
    elif mode == "random":  # the ablation: a random span as long as the window would be
        window = window_slice(block, k)
        budget = len(tokenizer.encode(window, add_bos=False)) if tokenizer is not None else len(window)
        report = random_window(block, budget, rng or random.Random(0), tokenizer)
    else:
        raise ValueError(f"mode must be 'window', 'full' or 'random', got {mode!r}")
    head = ("Field: " + ", ".join(TASKS) + "\n"
            + "Classes: " + "; ".join(f"{t}: {' | '.join(LABEL_SETS[t])}" for t in TASKS) + "\n"
            + "Report:\n")
    h = hints(block)
    return head, report, {t: f"{t}_hint: {h.get(t, 'none')}" for t in TASKS}


def build_input(text, mode="window", site=None, k=5, tokenizer=None, rng=None):
    """The four-block prompt as one string (see prompt_parts)."""
    head, report, lines = prompt_parts(text, mode, site, k, tokenizer, rng)
    return head + report + HINTS_BLOCK + "".join("\n" + line for line in lines.values())


def _fair_cap(lengths, budget):
    """The largest c with sum(min(n, c)) <= budget: cut only the longest lines, all to the same length."""
    c = max(lengths, default=0)
    while c > 0 and sum(min(n, c) for n in lengths) > budget:
        c -= 1
    return c


def encode_report(report, tokenizer, max_length=512, mode="window", k=5, seed=42):
    """Token ids of one Report's prompt -> (ids, spans, truncated).

    spans = {task: (start, end)}: the positions of that task's Hints line in ids (end exclusive). The Report
    block is cut first so the whole fits max_length; hint lines too long to leave MIN_REPORT_TOKENS of report
    are cut to a common length. truncated: whether anything was cut.
    """
    rng = random.Random(f"{seed}:{report.id}")
    head, body, lines = prompt_parts(report.text, mode, report.site, k, tokenizer, rng)
    h = tokenizer.encode(head, add_bos=True)
    b = tokenizer.encode(body, add_bos=False)
    hb = tokenizer.encode(HINTS_BLOCK, add_bos=False)
    per_task = {t: tokenizer.encode("\n" + line, add_bos=False) for t, line in lines.items()}
    fixed = len(h) + len(hb)
    lengths = [len(ids) for ids in per_task.values()]
    cap = _fair_cap(lengths, max_length - fixed - MIN_REPORT_TOKENS)
    if cap < min(8, max(lengths)):  # a hint line cut below 8 tokens says nothing
        raise ValueError(f"report {report.id}: max_length={max_length} is too short for the Field/Classes blocks "
                         f"({fixed} tokens) and seven hint lines; use at least {fixed + MIN_REPORT_TOKENS + 7 * 8}")
    per_task = {t: ids[:cap] for t, ids in per_task.items()}
    room = max_length - fixed - sum(len(ids) for ids in per_task.values())
    ids = h + b[:room] + hb
    spans = {}
    for t, line in per_task.items():
        spans[t] = (len(ids), len(ids) + len(line))
        ids += line
    return ids, spans, len(b) > room or cap < max(lengths)


def encode_reports(reports, tokenizer, max_length=512, mode="window", k=5, seed=42):
    """Prompts of all reports -> (list of (ids, spans), number truncated to max_length); prints the count."""
    out, n_trunc = [], 0
    for r in reports:
        ids, spans, cut = encode_report(r, tokenizer, max_length, mode, k, seed)
        out.append((ids, spans))
        n_trunc += cut
    if n_trunc:
        print(f"{n_trunc} of {len(reports)} report(s) cut to fit max_length={max_length} "
              f"(Report block first, then the longest hint lines)", file=sys.stderr)
    return out, n_trunc


def label_tensors(records, label_sets=LABEL_SETS):
    """{task: LongTensor (B,)} of class indices, -100 where the label is not stated."""
    return {t: torch.tensor([labels.index(r.labels[t]) if r.labels.get(t) is not None else -100 for r in records],
                            dtype=torch.long) for t, labels in label_sets.items()}


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

def label_counts(records, label_sets):
    """{task: Counter(label or 'not stated')}"""
    return {t: Counter(r.labels.get(t) or "not stated" for r in records) for t in label_sets}


def _main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["check", "show"])
    p.add_argument("--data", required=True)
    p.add_argument("--pairs", action="store_true", help="the file is pairs.jsonl (alignment)")
    p.add_argument("--skip-bad", action="store_true", help="leave bad lines out (they are still listed)")
    p.add_argument("--mode", default="window", choices=["window", "full", "random"])
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
            print(f"=== {r.id} (site {r.site}) labels {r.labels}\n{build_input(r.text, a.mode, r.site, a.k)}\n")


if __name__ == "__main__":
    _main()
