"""data.arrive: text as it arrives from elsewhere (PDF extraction, OCR, other templates); labels never change."""
import difflib
import pathlib
import random
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402

SYNOPTIC = """SURGICAL PATHOLOGY REPORT
Patient: [REDACTED]    MRN: [REDACTED]

CLINICAL HISTORY:
58-year-old woman with a left breast mass; core biopsy positive for carcinoma.

GROSS DESCRIPTION:
Received fresh, a lumpectomy measuring 6 x 5 x 3 cm, with a firm mass of 1.8 cm. Sections in A1-A12.

MICROSCOPIC DESCRIPTION:
Sections demonstrate infiltrating nests of malignant cells. No lymphovascular invasion is identified.

FINAL DIAGNOSIS:
Left breast, lumpectomy: invasive ductal carcinoma, 18 mm, margins negative.

SYNOPTIC SUMMARY
Histologic Grade: Nottingham grade II/III (score 6)
Primary Tumor (pT): pT1c
Regional Lymph Nodes (pN): pN0 (0/3)
Distant Metastasis (pM): cM0
Estrogen Receptor (ER): POSITIVE (95%)
Progesterone Receptor (PgR): NEGATIVE (0%)
HER2 (IHC): Equivocal (2+); HER2 by FISH: not amplified (ratio 1.3)

COMMENT:
Controls performed appropriately.

Electronically signed out by: [REDACTED], MD
"""
LEGACY = ("*** COMMUNITY HOSPITAL ***  PAGE 1 OF 1   CLINICAL DATA: 61 Y/O F, LEFT BREAST MASS.  GROSS: A LUMPECTOMY.  "
          "DIAGNOSIS: INVASIVE LOBULAR CARCINOMA, 2.2 CM.   SBR GRADE: GRADE 2   TNM (AJCC): PT2 PN1A CM0   "
          "RECEPTOR STATUS:  ESTROGEN RECEPTOR......... POSITIVE (80%)   PROGESTERONE RECEPTOR......... NEGATIVE")
TEXTS = [SYNOPTIC, LEGACY]
STATUS = re.compile(r"positive|negative|equivocal", re.I)
STAGE = re.compile(r"\b[pc][TNM](?:is|[0-4])[a-d]?", re.I)
STAGE_WORD = re.compile(r"\b[yra]{0,2}[pc]?[TNM](?:is\b|[0-4x](?!\d))", re.I)   # pT1c, ypN0, cM0, T2, NX


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def corpus(n=60):
    return [r.text for r in data.read_reports(ROOT / "examples" / "reports.jsonl")[:n]]


@pytest.mark.parametrize("kind", data.ARRIVALS + ("none",))
def test_same_seed_same_text_and_other_seeds_differ(kind):
    for text in TEXTS:
        once = data.arrive(text, random.Random(7), kind)
        assert once == data.arrive(text, random.Random(7), kind)
        if kind != "none" and kind != "upper":
            assert once != text
    if kind in ("oneline", "ocr", "oneline+ocr"):
        assert len({data.arrive(SYNOPTIC, random.Random(s), kind) for s in range(5)}) > 1


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown arrival"):
        data.arrive(SYNOPTIC, random.Random(0), "oneline+shuffle")


def test_oneline_has_no_line_breaks_and_repeats_the_page_header():
    for seed in range(10):
        out = data.arrive(SYNOPTIC, random.Random(seed), "oneline")
        assert "\n" not in out
        pages = re.findall(r"Page (\d) of (\d)", out)
        assert 2 <= len(pages) <= 3 and pages[-1][0] == pages[-1][1]
        assert len(re.findall(r"Patient: \[REDACTED\] MRN 00\d{5} Printed \d\d/\d\d/20\d\d", out)) == len(pages)
        running = re.sub(r"Patient: \[REDACTED\] MRN 00\d{5} Printed \S+ |Page \d of \d ?", "", out).split()
        assert running == SYNOPTIC.split()              # every word, in order, nothing else


def test_oneline_never_cuts_a_header_from_its_value():
    for seed in range(20):
        assert not re.search(r":\s+Page \d of \d", data.arrive(SYNOPTIC, random.Random(seed), "oneline"))


def test_page_header_and_footer_name_no_task():
    for seed in range(10):
        out = data.arrive(SYNOPTIC, random.Random(seed), "oneline")
        extra = " . ".join(re.findall(r"Patient: \[REDACTED\] MRN \S+ Printed \S+|Page \d of \d", out))
        assert data.hints(extra) == {} and not STAGE_WORD.search(extra) and not STATUS.search(extra)


def test_ocr_rate_and_at_most_one_confusion_per_word():
    for text in corpus(30):
        rng = random.Random(len(text))
        out = data.arrive(text, rng, "ocr")
        before, after = text.split(), out.split()
        assert len(before) == len(after)                # whitespace is never touched
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        for a, b in changed:
            assert any(a[i:i + len(k)] == k and b == a[:i] + v + a[i + len(k):]
                       for k, v in data.OCR_CONFUSIONS.items() for i in range(len(a))), (a, b)
        rate = len(changed) / sum(map(len, before))
        assert data.OCR_RATE[0] - 0.002 <= rate <= data.OCR_RATE[1] + 0.002, rate


def test_ocr_never_turns_a_digit_into_another_digit():
    assert not any(k.isdigit() and re.search(r"\d", v) for k, v in data.OCR_CONFUSIONS.items())
    for seed in range(30):
        for text in TEXTS:
            out = data.arrive(text, random.Random(seed), "ocr")
            for a, b in zip(text.split(), out.split()):
                for op, i, j, k, m in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
                    if op != "equal":
                        assert not (re.search(r"\d", a[i:j]) and re.search(r"\d", b[k:m])), (a, b)


def test_ocr_reaches_the_evidence_and_it_stays_recognisable():
    """Stage tokens and status words are corrupted too (pTlc, pNO, P0SITIVE, NEGATlVE, ll/III), within edit
    distance 2, and no stage token appears that the text did not have (the word TO never becomes T0)."""
    corrupted = set()
    for seed in range(200):
        text = SYNOPTIC if seed % 2 else SYNOPTIC.upper()
        out = data.arrive(text, random.Random(seed), "ocr")
        for a, b in zip(text.split(), out.split()):
            if STATUS.search(a) or STAGE.search(a) or a == "II/III":
                assert edit_distance(a, b) <= 2, (a, b)
                if a != b:
                    corrupted.add(b.strip(";(),"))
        assert {m.group().upper() for m in STAGE_WORD.finditer(out)} <= \
               {m.group().upper() for m in STAGE_WORD.finditer(text)}
    assert {"pTlc", "pNO", "cMO", "P0SITIVE", "NEGATlVE", "PTlC"} <= corrupted
    assert corrupted & {"lI/III", "Il/III", "II/lII", "II/IlI", "II/IIl"}


def test_headers_are_renamed_and_nothing_else_changes():
    names = re.compile("|".join([re.escape(a) for _, alts in data.HEADER_VOCABULARY for a in alts] +
                                [p for p, _ in data.HEADER_VOCABULARY]), re.I)   # 'Gross Examination' before 'GROSS'
    for seed in range(10):
        for text in TEXTS + corpus(20):
            out = data.arrive(text, random.Random(seed), "headers")
            assert not re.search(r"^(?:FINAL DIAGNOSIS|CLINICAL HISTORY|GROSS DESCRIPTION|MICROSCOPIC DESCRIPTION)"
                                 r":", out, re.M)
            assert names.sub("H", out) == names.sub("H", text)
        out = data.arrive(SYNOPTIC, random.Random(seed), "headers")
        assert re.search(r"^(?:DX|INTERPRETATION|PATHOLOGIC DIAGNOSIS):", out, re.M)    # capitals kept
        assert re.search(r"^(?:CLIN HX|INDICATION|PERTINENT HISTORY):", out, re.M)
        legacy = data.arrive(LEGACY, random.Random(seed), "headers")
        assert re.search(r"  (?:DX|INTERPRETATION|PATHOLOGIC DIAGNOSIS): INVASIVE", legacy)  # inside a long line
        mixed = data.arrive("Diagnosis:\nInvasive carcinoma.", random.Random(seed), "headers")
        assert mixed.split(":")[0] in ("DX", "Interpretation", "Pathologic Diagnosis")


def test_headers_leave_every_evidence_header_alone():
    for seed in range(10):
        out = data.arrive(SYNOPTIC, random.Random(seed), "headers")
        for line in SYNOPTIC.splitlines():
            if re.match(r"(?:Histologic Grade|Primary Tumor|Regional|Distant|Estrogen|Progesterone|HER2)", line):
                assert line in out.splitlines()


def test_upper():
    assert data.arrive(SYNOPTIC, random.Random(0), "upper") == SYNOPTIC.upper()


def test_addendum_is_appended_and_names_no_label_value():
    seen = set()
    for seed in range(50):
        out = data.arrive(SYNOPTIC, random.Random(seed), "addendum")
        assert out.startswith(SYNOPTIC.rstrip()) and len(out) > len(SYNOPTIC)
        seen.add(out[len(SYNOPTIC.rstrip()):])
    assert len(seen) == len(data.ADDENDA)
    for extra in seen:
        for text in (extra, extra.upper()):
            assert data.hints(text) == {} and all(v is None for v in data.naive_baseline(text).values())
            assert not STATUS.search(text) and not STAGE_WORD.search(text)
            assert not re.search(r"grade|receptor|\bER\b|\bP[gR]R?\b|HER-?2|lymph|metasta|differentiated", text, re.I)


def test_history_adds_a_prior_cancer_and_the_current_evidence_stays_first():
    """The history block opens a history section, names a past year and another tumour's receptors, and never a
    metastasis; every task whose best evidence spoke of the present keeps it first."""
    for seed in range(20):
        for text in TEXTS + corpus(20):
            out = data.arrive(text, random.Random(seed), "history")
            header, sentence = next(m.groups() for m in re.finditer(
                "^(" + "|".join(map(re.escape, data.HISTORY_HEADERS)) + ")\n(.+)$", out, re.M) if m[2] not in text)
            assert data.section_of(header) == "history" and data.is_distractor(sentence)
            assert re.search(r"\b(?:ER|HER2|hormone receptor|triple negative)", sentence)
            assert not re.search(r"metasta|\bM1\b|stage IV", sentence, re.I)
            before, after = data.hint_clauses(text), data.hint_clauses(out)
            for task, clauses in before.items():
                if not data.is_distractor(clauses[0]):
                    assert after[task][0] == clauses[0], (task, clauses[0], after[task][0])


def test_state_absence_writes_a_not_stated_field_that_no_rule_reads_as_a_value():
    """Each line of data.ABSENT is found as its task's evidence, reads as no value to the naive regex, and lands
    whole between two lines of the report, never between a header and its value."""
    for task, lines in data.ABSENT.items():
        for line in lines:
            assert data.hints("FINAL DIAGNOSIS:\nInvasive carcinoma.\n" + line)[task] == line
            assert data.naive_baseline(line)[task] is None
    for seed in range(30):
        for text in TEXTS + corpus(10):
            rng = random.Random(seed)
            out = data.state_absence(text, ["grade", "HER2"], rng)
            added = [line for line in out.rstrip().split("\n") if line not in text.split("\n")]
            assert len(added) == 2 and added[0] in data.ABSENT["grade"] and added[1] in data.ABSENT["HER2"]
            at = out.split("\n").index(added[0])
            assert at == 0 or not out.split("\n")[at - 1].rstrip().endswith(":")
            assert [line for line in out.rstrip().split("\n") if line not in added] == text.rstrip().split("\n")


def test_combinations_apply_every_part():
    out = data.arrive(SYNOPTIC, random.Random(3), "oneline+upper+ocr")
    assert "\n" not in out and set(re.findall(r"[a-z]", out)) == {"l"}   # capitals, then OCR's 1 -> l, I -> l
    assert out != data.arrive(SYNOPTIC, random.Random(3), "oneline+upper")
    out = data.arrive(SYNOPTIC, random.Random(3), "headers+addendum")
    assert "FINAL DIAGNOSIS" not in out and re.search(r"\n\n(?:ADDENDUM|Electronically|Testing|DISCLAIMER|Some)", out)


def test_augment_text_draws_a_kind_from_arrivals():
    train_mtl = pytest.importorskip("train_mtl")
    for seed in range(5):
        kind = random.Random(seed).choice(data.ARRIVALS)
        rng = random.Random(seed)
        rng.choice(data.ARRIVALS)
        assert train_mtl.augment_text(SYNOPTIC, random.Random(seed)) == data.arrive(SYNOPTIC, rng, kind)
    assert train_mtl.augment_text(SYNOPTIC, random.Random(0), "upper") == SYNOPTIC.upper()

