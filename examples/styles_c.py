"""Writer C's report styles: text as it really arrives (scanned, printed by a mainframe, pasted, extracted from a
PDF) and resection reports whose history carries other cancers and stages.

c_scanned_pdf    A community-hospital report printed, scanned, OCR'd and pulled back out of the PDF as one line:
                 running page headers/footers land mid-text, two-column blocks interleave, and OCR letter/digit
                 confusions (pTlc, pNO, P0SITIVE, ll/III, 9O%) hit ordinary words and evidence alike.
c_legacy_caps    A 1990s-2000s hospital LIS (mainframe) printout: upper case, fixed-width columns with dotted
                 leaders, CLIN HX / GROSS / MICRO / DX headers, SBR or modified Bloom-Richardson grading, AJCC 5-6th.
c_history_heavy  An academic resection report whose clinical history is long: a prior breast cancer with its own
                 stage and receptors, the imaging (clinical) stage, known metastases; labels are the current tumour.
c_ehr_paste      Pathology copied into an oncology EHR note: bullets, a pipe-flattened marker table, "path:"
                 one-liners, receptor shorthand (ER+/PR-/HER2-low), the oncologist's stage group, Oncotype/Ki-67.
c_pdf_twocolumn  Text extracted from a two-column synoptic PDF template: a block's labels first and its values
                 after, hyphen-broken words, repeated page headers, synoptic key/value pairs glued on one line.
"""
import random
import re

TASKS = ["T", "N", "M", "grade", "ER", "PR", "HER2"]


def with_itc(c, rng, p=0.15):
    """Sometimes a node-negative case had isolated tumour cells: pN0(i+), still N0."""
    if c["N"] == "N0" and c["Nsub"] == "0" and rng.random() < p:
        c = dict(c, Nsub="0(i+)", itc=True)
    return c


def base_tags(c):
    """Phenomena that follow from the tumour itself, whatever the style."""
    tags = ["ypTNM"] if c["neoadjuvant"] else []
    tags += ["pTX"] if c["tx"] else []
    tags += ["itc"] if c.get("itc") else []
    tags += ["her2_ish"] if c["ish"] and c["ihc"] in (None, "2+") else []
    tags += ["low_positive"] if any(c[t] == "Positive" and c[t + "_pct"] <= 10 for t in ("ER", "PR")) else []
    return tags


def labels_of(c):
    """The starting labels of a sampled tumour (as make_examples.labels_of; pTX -> T not stated)."""
    return {t: None if t == "T" and c.get("tx") else c[t] for t in TASKS}


# ----------------------------------------------------------------------------------------------------------
# evidence marks: a style writes E(task, phrase) inline; finish() strips the marks, applies the style's
# character transform (upper case, OCR) to every piece alike and collects the transformed phrases

_MARK = re.compile(r"\x01(\w+)\x02(.*?)\x03", re.S)


def E(task, phrase):
    return f"\x01{task}\x02{phrase}\x03"


def finish(text, labels, tags, transform=None, evidence=None):
    tf = transform or (lambda s: s)
    parts, ev, pos = [], {}, 0
    for m in _MARK.finditer(text):
        parts.append(tf(text[pos:m.start()]))
        phrase = tf(m.group(2))
        parts.append(phrase)
        if phrase.strip() not in ev.setdefault(m.group(1), []):
            ev[m.group(1)].append(phrase.strip())
        pos = m.end()
    parts.append(tf(text[pos:]))
    for task, phrases in (evidence or {}).items():
        ev.setdefault(task, []).extend(p for p in phrases if p not in ev[task])
    text = "".join(parts)
    for task in ("T", "N", "M"):  # a stage token (pT2, cM0) first, before node counts or prose
        if task in ev:
            ev[task].sort(key=lambda p: not re.fullmatch(r"[cpy]{0,2}[TNM]\w*(\(\w+[+-]?\))?", p, re.I))
    for task in TASKS:
        assert (labels[task] is None) == (task not in ev), (task, labels[task], ev.get(task))
    return {"text": text, "labels": dict(labels), "evidence": ev, "tags": sorted(set(tags))}


# ----------------------------------------------------------------------------------------------------------
# facts every style may state, in neutral form

ROMAN = {1: "I", 2: "II", 3: "III"}
DIFF = {1: "well differentiated", 2: "moderately differentiated", 3: "poorly differentiated"}


def t_code(c):
    return c["prefix"] + "T" + ("X" if c["tx"] else c["Tsub"])


def n_code(c):
    return c["prefix"] + "N" + (c["Nsub"] if c["N"] else "X")


def mark_T(c, text):
    return text if c["tx"] else E("T", text)


def mark_N(c, text):
    return E("N", text) if c["N"] else text


def grade_n(c):
    return int(c["grade"][1])


def nottingham(c, rng):
    """(tubules, nuclei, mitoses, total) consistent with the grade."""
    total = {1: rng.randint(3, 5), 2: rng.randint(6, 7), 3: rng.randint(8, 9)}[grade_n(c)]
    while True:
        s = [rng.randint(1, 3) for _ in range(3)]
        if sum(s) == total:
            return s[0], s[1], s[2], total


def allred(pct, rng):
    """(proportion score, intensity score, total) for a percentage of stained nuclei."""
    ps = 0 if pct == 0 else 2 if pct <= 10 else 3 if pct <= 33 else 4 if pct <= 66 else 5
    ist = 0 if pct == 0 else rng.choice([1, 2, 2, 3, 3])
    return ps, ist, ps + ist


def intensity(rng):
    return rng.choice(["strong", "moderate", "moderate to strong", "weak to moderate", "strong"])


def her2_decider(c):
    """The assay that decides HER2: 'ish' when ISH was done on an IHC 2+ (or IHC-less) case, else 'ihc'."""
    if c["ish"] is not None and c["ihc"] in (None, "2+"):
        return "ish"
    return "ihc" if c["ihc"] is not None else None


def nodes_sentence(c, rng, mi_mm=None):
    """How many nodes were involved, in words (N0 sometimes with isolated tumour cells)."""
    k, n = c["nodes_examined"], c["nodes_pos"]
    kind = "sentinel lymph node" if c["sentinel"] else "lymph node"
    if c["N"] == "N0":
        if c.get("itc"):
            return f"isolated tumor cells (0.1 mm cluster) in 1 of {k} {kind}s; no metastasis > 0.2 mm"
        return rng.choice([f"{k} {kind}s, negative for metastatic carcinoma (0/{k})",
                           f"no metastatic carcinoma in {k} {kind}s (0/{k})", f"0 of {k} {kind}s involved"])
    if c["N"] == "N1mi":
        return f"micrometastasis ({mi_mm or rng.choice(['0.4', '0.9', '1.2', '1.6', '1.9'])} mm) in 1 of {k} {kind}s"
    return rng.choice([f"metastatic carcinoma in {n} of {k} lymph nodes ({n}/{k})",
                       f"{n} of {k} lymph nodes positive for metastatic carcinoma"])


def accession(rng, yr, fmt="S{yy}-{n:05d}"):
    return fmt.format(yy=f"{yr % 100:02d}", yyyy=yr, n=rng.randint(120, 39999))


def menopause(age):
    return "premenopausal" if age < 46 else "perimenopausal" if age < 53 else "postmenopausal"


def date(rng, yr):
    return f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{yr}"


# ----------------------------------------------------------------------------------------------------------
# filler prose: gross and microscopic descriptions

INKS = ["black", "blue", "green", "orange", "red", "yellow", "violet"]


def lesion_words(c, rng):
    if c["T"] == "T0":
        return f"a {rng.uniform(0.8, 3.5):.1f} cm ill-defined, rubbery area of fibrosis (tumor bed) around the biopsy clip"
    if c["T"] == "Tis" or not c["size_mm"]:
        return "an ill-defined gritty fibrous area without a discrete mass; a biopsy clip is present"
    a = c["size_mm"] / 10
    return (f"a {rng.choice(['firm', 'hard', 'gritty', 'rubbery'])}, {rng.choice(['tan-white', 'gray-white', 'yellow-tan'])}"
            f" {rng.choice(['stellate', 'irregular', 'well-circumscribed', 'spiculated'])} mass measuring "
            f"{a:.1f} x {a * rng.uniform(0.5, 0.95):.1f} x {a * rng.uniform(0.4, 0.9):.1f} cm")


def gross_breast(c, rng, part="A"):
    proc = c["procedure"].lower()
    w, h, d = rng.randint(6, 24), rng.randint(5, 16), rng.randint(2, 7)
    inks = rng.sample(INKS, 4)
    s = [f"{part}. Received {rng.choice(['in formalin', 'fresh', 'fresh for intraoperative evaluation'])}, "
         f"labeled with the patient's name and \"{c['side'].lower()} breast{'' if rng.random() < 0.5 else ', ' + proc}\", "
         f"is a {rng.choice(['fibrofatty', 'yellow lobulated', 'tan-yellow'])} {proc} specimen measuring {w} x {h} x {d} cm."]
    if "mastectomy" in proc:
        s.append(f"A skin ellipse measures {rng.randint(8, 22)} x {rng.randint(3, 9)} cm; the nipple is "
                 f"{rng.choice(['everted', 'unremarkable', 'slightly retracted'])}.")
    s.append(rng.choice([f"Orientation: short suture superior, long suture lateral. Inked: superior {inks[0]}, "
                         f"inferior {inks[1]}, anterior {inks[2]}, deep {inks[3]}.",
                         f"The specimen is not oriented; the surface is inked {inks[0]}.",
                         f"The deep margin is inked {inks[0]} and the remaining surface {inks[1]}."]))
    s.append(f"Serial sections from {rng.choice(['medial to lateral', 'superior to inferior'])} reveal "
             f"{lesion_words(c, rng)}, {rng.uniform(0.1, 2.4):.1f} cm from the nearest "
             f"({rng.choice(['deep', 'anterior', 'superior', 'inferior', 'medial'])}) margin.")
    s.append(f"The remaining parenchyma is {rng.choice(['fatty', 'fibrofatty', 'dense and fibrous', 'predominantly fatty'])}"
             f"{rng.choice(['', ' with scattered small cysts', ' without additional lesions'])}.")
    s.append(f"Sections submitted: {part}1-{part}{rng.randint(2, 4)} margins, {part}{rng.randint(5, 6)}-{part}"
             f"{rng.randint(8, 14)} lesion, {part}{rng.randint(15, 18)}-{part}{rng.randint(19, 26)} "
             f"{rng.choice(['random parenchyma', 'nipple and skin', 'remaining quadrants'])}.")
    return " ".join(s)


def gross_nodes(c, rng, part="B"):
    what = "sentinel lymph node" if c["sentinel"] else "axillary contents"
    return (f"{part}. Received in formalin labeled \"{c['side'].lower()} {what}\" "
            f"{rng.choice(['are', 'is'])} {rng.randint(1, 6)} piece(s) of fibroadipose tissue, "
            f"{rng.uniform(1.0, 9.0):.1f} cm in aggregate; {c['nodes_examined']} candidate lymph node(s) identified, "
            f"the largest {rng.uniform(0.4, 2.8):.1f} cm. "
            + rng.choice(["Entirely submitted.", "Nodes bisected and entirely submitted."]))


def micro_text(c, rng):
    if c["T"] == "T0":
        s = ["The tumor bed shows hyalinized stroma, hemosiderin-laden macrophages and a chronic inflammatory "
             "infiltrate; no residual invasive carcinoma is identified on multiple levels."]
    elif c["T"] == "Tis":
        s = [f"Ducts are expanded by a {rng.choice(['solid', 'cribriform', 'solid and cribriform'])} proliferation of "
             f"atypical cells{', with central comedo-type necrosis' if c['nuclear_grade'] == 3 else ''}. "
             f"No stromal invasion is seen on levels or with myoepithelial stains (p63, calponin)."]
    elif "lobular" in c["type"]:
        s = ["Discohesive cells infiltrate the stroma in single files and targetoid arrays around ducts.",
             "E-cadherin is negative in the tumor cells, supporting lobular differentiation."]
    else:
        s = [rng.choice(["Irregular nests, cords and angulated glands of malignant cells infiltrate a desmoplastic stroma.",
                         "The carcinoma grows in solid sheets and trabeculae with scattered gland formation.",
                         "Infiltrating tumor cells form nests and tubules that extend into the surrounding fat."])]
    if c["T"] not in ("T0", "Tis"):
        s.append(rng.choice(["Lymphovascular invasion is present." if c["lvi"] else "Lymphovascular invasion is not identified.",
                             "Tumor emboli are seen in peritumoral lymphatic spaces." if c["lvi"] else
                             "No lymphovascular invasion is seen."]))
        if c["neoadjuvant"]:
            s.append(f"Treatment effect is present with about {rng.choice([20, 40, 60, 80])}% residual tumor cellularity.")
    s.append(rng.choice(["The background breast shows fibrocystic change.", "Biopsy site changes are present.",
                         "Columnar cell change with microcalcifications is seen in adjacent ducts.",
                         "The skin and nipple are free of tumor.", "Usual ductal hyperplasia is present."]))
    return " ".join(s)


def extra_specimens(c, rng, letter):
    """0-3 additional margin shavings: (gross lines, diagnosis lines), all benign."""
    G, D = [], []
    for i in range(rng.choice([0, 0, 1, 1, 2, 3])):
        part = chr(ord(letter) + i)
        where = rng.choice(["superior", "inferior", "medial", "lateral", "anterior", "deep"])
        G.append(f"{part}. Received in formalin labeled \"additional {where} margin, stitch marks new margin\" is a "
                 f"{rng.uniform(1.5, 6):.1f} x {rng.uniform(1, 4):.1f} x {rng.uniform(0.3, 2):.1f} cm portion of "
                 f"fibrofatty tissue. The stitched surface is inked {rng.choice(INKS)}. Serially sectioned and entirely "
                 f"submitted in {part}1-{part}{rng.randint(2, 6)}.")
        D.append(f"{part}. Breast, {c['side'].lower()}, additional {where} margin, excision: " + rng.choice([
            "benign breast tissue with fibrocystic change; negative for carcinoma.",
            "fibroadipose tissue with biopsy site changes; no carcinoma identified.",
            "benign breast parenchyma; new margin free of carcinoma."]))
    return G, D


def frozen_section(c, rng):
    """The intraoperative sentinel-node call (a frozen section can miss a micrometastasis); '' when not done."""
    if not c["sentinel"] or rng.random() < 0.4:
        return ""
    call = "positive for metastatic carcinoma" if c["nodes_pos"] and c["N"] != "N1mi" else \
        rng.choice(["negative for metastatic carcinoma", "no tumor seen on touch preparation"])
    return (f"Intraoperative consultation: B-FS, sentinel lymph node #1: {call} "
            f"(called to Dr. [REDACTED] at {rng.randint(8, 15)}:{rng.randint(10, 59)}).")


def dcis_note(c, rng, tags):
    """An associated DCIS and its NUCLEAR grade (not the histologic grade of the invasive tumour)."""
    if c["T"] in ("T0", "Tis") or rng.random() > 0.35:
        return ""
    tags.append("nuclear_grade")
    return (f"Associated ductal carcinoma in situ, {rng.choice(['solid', 'cribriform', 'micropapillary'])} type, "
            f"nuclear grade {c['nuclear_grade']}, {rng.randint(5, 25)}% of the tumor volume.")


# ----------------------------------------------------------------------------------------------------------
# OCR: letter/digit look-alikes. Never a digit into another digit (Grade 3 never becomes Grade 8).

_OCR_SWAPS = [("rn", "m"), ("m", "rn"), ("cl", "d"), ("ll", "II"), ("1", "l"), ("1", "I"), ("l", "1"), ("l", "I"),
              ("I", "l"), ("I", "1"), ("0", "O"), ("O", "0"), ("o", "0"), ("S", "5"), ("5", "S"), ("e", "c"),
              ("c", "e"), ("B", "8"), ("h", "b"), ("i", "l"), (",", "."), ("H", "l-l")]


def ocr_transform(rng, p_word):
    """A transform for finish(): each word is misread with probability p_word (one or two swaps)."""
    def word(m):
        w = m.group(0)
        if rng.random() >= p_word:
            return w
        for _ in range(rng.choice([1, 1, 1, 2])):
            options = [(a, b) for a, b in _OCR_SWAPS if a in w]
            if not options:
                break
            a, b = rng.choice(options)
            i = rng.choice([i for i in range(len(w)) if w.startswith(a, i)])
            w = w[:i] + b + w[i + len(a):]
        return w
    return lambda s: re.sub(r"\S+", word, s)


def ocr_hit_evidence(rec, clean):
    """True when OCR changed at least one evidence phrase (compared with the clean rendering's phrases)."""
    return any(p not in clean["evidence"].get(t, []) for t, ps in rec["evidence"].items() for p in ps)


# ==========================================================================================================
# 1. c_scanned_pdf

HOSPITALS = ["Mercy [REDACTED] Medical Center", "[REDACTED] Valley Hospital", "St. [REDACTED] Regional Hospital",
             "[REDACTED] County General Hospital", "Riverside Pathology Associates, P.C."]


def _scanned_lines(c, rng, tags):
    """The printed report, line by line, before it is scanned."""
    age = rng.randint(33, 89)
    hx = rng.choice([f"{age} year old female, {c['side'].lower()} breast mass, biopsy proven carcinoma.",
                     f"{c['side']} breast cancer. {'Post neoadjuvant chemotherapy. ' if c['neoadjuvant'] else ''}"
                     f"Rule out margins.", f"Abnormal mammogram, {c['side'].lower()} breast {c['quadrant']}."])
    L = [f"Clinical Information: {hx}", f"Specimen(s): A: {c['side']} breast, {c['procedure'].lower()}"
         + (f"  B: {c['side']} axillary {'sentinel lymph nodes' if c['sentinel'] else 'lymph nodes'}" if c["N"] else ""),
         "Gross Description:", gross_breast(c, rng)]
    if c["N"]:
        L.append(gross_nodes(c, rng))
    G, D = extra_specimens(c, rng, "C" if c["N"] else "B")
    L += G
    if fs := frozen_section(c, rng):
        L.append(fs)
    L += ["Microscopic Description:", micro_text(c, rng) + " " + dcis_note(c, rng, tags)]
    what = "No residual invasive carcinoma, treatment effect present" if c["T"] == "T0" else \
        f"Ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}, no invasion identified" if c["T"] == "Tis" \
        else f"{c['type'].split(' (')[0]}, {c['size_mm'] / 10:.1f} cm"
    L += ["Diagnosis:", f"A. {c['side']} breast, {c['procedure'].lower()}: {what}. Margins negative, closest "
                        f"{c['margin_mm']} mm."]
    if c["N"]:
        L.append(f"B. Lymph nodes, {c['side'].lower()} axilla: {mark_N(c, nodes_sentence(c, rng))}.")
    return L + D


def _scanned_summary(c, rng):
    """Tumor summary items (each one unit that a column interleave may reorder but never split)."""
    items = [f"Histologic type: {c['type'].split(' (')[0]}", f"Laterality: {c['side']}", f"Site: {c['quadrant']}"]
    if c["size_mm"]:
        items.append(f"Invasive tumor size: {c['size_mm']} mm")
    if c["grade"]:
        t, n, m, tot = nottingham(c, rng)
        g = grade_n(c)
        items.append("Histologic grade: " + rng.choice([
            E("grade", f"Nottingham grade {g}") + f" (tubules {t}, nuclei {n}, mitoses {m})",
            E("grade", f"grade {ROMAN[g]}/III"), E("grade", f"Grade {g} of 3") + f" (score {tot}/9)",
            E("grade", f"total score {tot}") + " (modified Bloom-Richardson)"]))
    elif c["T"] not in ("Tis", "T0"):
        items.append("Histologic grade: cannot be assessed")
    items.append(f"Lymphovascular invasion: {'present' if c['lvi'] else 'not identified'}")
    items.append(f"Margins: negative ({c['margin_mm']} mm)")
    calc = rng.choice(["present in invasive carcinoma", "present in non-neoplastic tissue", "not identified"])
    extras = ["Specimen integrity: single intact specimen", f"Tumor focality: {rng.choice(['single focus', 'multiple foci'])}",
              f"Microcalcifications: {calc}",
              f"Treatment effect: {'present' if c['neoadjuvant'] else 'no known presurgical therapy'}",
              f"Dermal lymphatic invasion: {'present' if c['Tsub'] == '4d' else 'not identified'}",
              f"Regional lymph nodes examined: {c['nodes_examined'] if c['N'] else 'none submitted'}"]
    items += rng.sample(extras, rng.randint(0, len(extras)))
    m = {"M0": " " + E("M", "cM0"), "M1": " " + E("M", "pM1") + f" ({c['M_site']}, prior biopsy)",
         None: rng.choice(["", " pM: not applicable"])}[c["M"]]
    items.append(f"Pathologic stage (AJCC 8th): {mark_T(c, t_code(c))} {mark_N(c, n_code(c))}{m}")
    return items


def _scanned_markers(c, rng):
    L = []
    for t, name in (("ER", "Estrogen receptor"), ("PR", "Progesterone receptor")):
        if c[t] is None:
            L.append(f"{name}: not performed")
            continue
        pct = c[t + "_pct"]
        word = {"Positive": "POSITIVE", "Negative": "NEGATIVE", "Equivocal": "EQUIVOCAL"}[c[t]]
        detail = f" ({pct}% of tumor cells, {intensity(rng)})" if pct else " (<1%)" if pct == 0 else \
            " (no internal control staining; repeat on block A4 recommended)"
        L.append(rng.choice([E(t, f"{name}: {word}") + detail,
                             E(t, f"{t} {pct}%") + f" {word.lower()}" if pct else E(t, f"{t}: {word}") + detail]))
    dec = her2_decider(c)
    if c["ihc"]:
        s = {"0": "0 (negative)", "1+": "1+ (negative)", "2+": "2+ (equivocal)", "3+": "3+ (positive)"}[c["ihc"]]
        L.append("HER2 (IHC): " + (E("HER2", s) if dec == "ihc" else s))
    if c["ish"]:
        w = "AMPLIFIED" if c["ish"] == "amplified" else "NOT AMPLIFIED"
        L.append(f"HER2 (FISH): {E('HER2', w)}, HER2/CEP17 ratio {c['ratio']}, mean HER2 copies {c['copies']}/cell")
    elif c["ihc"] == "2+":
        L.append("HER2 FISH: pending, will be reported as an addendum")
    elif c["ihc"] and rng.random() < 0.5:  # 0, 1+ or 3+ alike
        L.append("HER2 (FISH): not performed")
    if not c["ihc"] and not c["ish"]:
        L.append("HER2: not performed")
    L.append(f"Ki-67: {c['ki67']}%")
    return L


def scanned_pdf(c, rng):
    c = with_itc(c, rng)
    tags = base_tags(c) + ["ocr", "one_line", "lost_linebreaks", "page_header_midtext"]
    yr = rng.randint(2008, 2021)
    acc, hosp = accession(rng, yr), rng.choice(HOSPITALS)
    printed = f"{date(rng, yr)} {rng.randint(7, 18):02d}:{rng.randint(0, 59):02d}"
    body = _scanned_lines(c, rng, tags)
    items = _scanned_summary(c, rng)
    if rng.random() < 0.5:  # two-column block read straight across by the OCR engine
        k = (len(items) + 1) // 2
        left, right = items[:k], items[k:]
        items = [x for pair in zip(left, right + [""]) for x in pair if x]
        tags.append("column_interleave")
    markers = _scanned_markers(c, rng)
    tail = [rng.choice(["Comment: Case reviewed at the intradepartmental breast conference.",
                        "Comment: Hormone receptor testing performed with appropriate controls; cold ischemia time "
                        "under one hour and formalin fixation 6-72 hours per ASCO/CAP guidelines."]),
            "These tests were developed and their performance characteristics determined by the laboratory. They "
            "have not been cleared by the FDA; such clearance is not necessary.",
            f"Electronically signed by [REDACTED], M.D. on {date(rng, yr)}",
            f"CPT: 88307, 88309, 88342 x{rng.randint(1, 3)}, 88360 x{rng.randint(2, 3)}"
            + (", 88374" if c["ish"] else "") + f" ICD-10: C50.{rng.choice(['4', '8', '9'])}1{rng.choice(['1', '2'])}"]
    if rng.random() < 0.5:
        tail.insert(1, "Clinical correlation is recommended. Slides and blocks are retained for ten years and are "
                       "available for outside review upon written request from the treating physician.")
    lines = body + ["Tumor Summary"] + items + [rng.choice(["Breast Markers (IHC)", "Prognostic Studies"])] + markers + tail
    head = f"{hosp} SURGICAL PATHOLOGY REPORT Patient: [REDACTED] MRN: [REDACTED] DOB: [REDACTED] Accession: {acc}"
    run = f"Patient: [REDACTED] MRN: [REDACTED] {acc} Printed {printed}"
    cut = rng.randint(len(lines) // 3, 2 * len(lines) // 3)
    lines = [head, "Page 1 of 2"] + lines[:cut] + [f"Page 1 of 2 {run} {hosp} SURGICAL PATHOLOGY REPORT (continued)"] \
        + lines[cut:] + [f"Page 2 of 2 {run}"]
    text = rng.choice([" ", "  ", " "]).join(lines)
    labels = labels_of(c)
    clean = finish(text, labels, tags)
    rec = finish(text, labels, tags, transform=ocr_transform(rng, rng.choice([0.02, 0.05, 0.08, 0.12])))
    if ocr_hit_evidence(rec, clean):
        rec["tags"] = sorted(set(rec["tags"]) | {"ocr_evidence"})
    return rec


# ==========================================================================================================
# 2. c_legacy_caps

def lead(label, value, width=34):
    """A dotted-leader line: LABEL......VALUE (the value may carry an evidence mark)."""
    return label + "." * max(3, width - len(label)) + value


def _legacy_grade(c, rng):
    g = grade_n(c)
    t, n, m, tot = nottingham(c, rng)
    return rng.choice([
        lead("HISTOLOGIC GRADE", E("grade", f"SBR GRADE {g}/3")),
        lead("HISTOLOGIC GRADE", E("grade", f"MODIFIED BLOOM-RICHARDSON SCORE {tot}")) + f" (TUB {t}, NUC {n}, MIT {m})",
        lead("SBR GRADE", f"TUBULES {t} + NUCLEI {n} + MITOSES {m} = " + E("grade", f"{tot}/9")),
        lead("NOTTINGHAM GRADE", E("grade", f"{ROMAN[g]}/III")),
        lead("DIFFERENTIATION", E("grade", DIFF[g]))])


def _legacy_receptor(c, t, rng):
    name = {"ER": "ESTROGEN RECEPTOR", "PR": "PROGESTERONE RECEPTOR"}[t]
    pct = c[t + "_pct"]
    if c[t] is None:
        return lead(name, "NOT PERFORMED")
    if c[t] == "Equivocal":
        return lead(name, E(t, "INDETERMINATE")) + " - NO INTERNAL CONTROL, REPEAT ADVISED"
    word = {"Positive": "POSITIVE", "Negative": "NEGATIVE"}[c[t]]
    ps, ist, tot = allred(pct, rng)
    return rng.choice([lead(name, E(t, word)) + f" ({'<1' if pct == 0 else pct}%)",
                       lead(name, E(t, f"{pct}% NUCLEAR STAINING")) + ("" if pct == 0 else f", {intensity(rng)}"),
                       lead(name, E(t, f"ALLRED SCORE {tot}/8")) + f" (PS {ps}, IS {ist})"])


def _legacy_her2(c, rng):
    L, dec = [], her2_decider(c)
    if c["ihc"]:
        s = {"0": "0 (NEGATIVE)", "1+": "1+ (NEGATIVE)", "2+": "2+ (BORDERLINE)", "3+": "3+ (POSITIVE)"}[c["ihc"]]
        L.append(lead("HER-2/NEU (HERCEPTEST)", E("HER2", s) if dec == "ihc" else s))
    if c["ish"]:
        w = "AMPLIFIED" if c["ish"] == "amplified" else "NOT AMPLIFIED"
        L.append(lead("HER-2/NEU FISH (PATHVYSION)", E("HER2", w)) + f"  RATIO {c['ratio']}")
    elif c["ihc"] == "2+":
        L.append(lead("HER-2/NEU FISH", "SENT OUT, TO FOLLOW"))
    if not L:
        L.append(lead("HER-2/NEU", "NOT REQUESTED"))
    return L


def legacy_caps(c, rng):
    tags = base_tags(c) + ["upper_case", "dotted_leaders"]
    labels = labels_of(c)
    yr = rng.randint(1993, 2008)
    acc = accession(rng, yr, "SP-{yy}-{n:06d}")
    mo, day = rng.randint(1, 12), rng.randint(1, 20)
    rec_d, rep_d = f"{mo:02d}/{day:02d}/{yr}", f"{mo:02d}/{day + rng.randint(1, 8):02d}/{yr}"
    hosp = rng.choice(["ST. [REDACTED] HOSPITAL", "[REDACTED] MEMORIAL MEDICAL CENTER", "UNIVERSITY HOSPITAL LAB"])
    L = [f"{hosp:<40}SURGICAL PATHOLOGY{'PAGE 1':>20}",
         f"{'ACC#: ' + acc:<28}{'PATIENT: [REDACTED]':<28}MRN: [REDACTED]",
         f"{'RECEIVED: ' + rec_d:<28}{'REPORTED: ' + rep_d:<28}SURGEON: [REDACTED]", "-" * 78,
         f"CLIN HX: {rng.randint(35, 86)} Y/O F, {c['side']} BREAST MASS"
         + rng.choice([", FNA POSITIVE.", ", CORE BX CARCINOMA.", ". R/O MALIGNANCY."])
         + (" S/P NEOADJUVANT CHEMO." if c["neoadjuvant"] else ""),
         f"SPECIMEN: A) {c['side']} BREAST, {c['procedure']}" + (f"  B) {c['side']} AXILLARY NODES" if c["N"] else ""),
         "GROSS: " + gross_breast(c, rng) + (" " + gross_nodes(c, rng) if c["N"] else ""),
         "MICRO: " + micro_text(c, rng), "DX:", f" A) {c['side']} BREAST, {c['procedure']}:"]
    what = {"T0": "NO RESIDUAL INVASIVE CARCINOMA", "Tis": f"INTRADUCTAL CARCINOMA, NUCLEAR GRADE {c['nuclear_grade']}"}
    L.append("    " + what.get(c["T"], "INFILTRATING " + c["type"].split(" (")[0].replace("Invasive ", "")))
    if c["size_mm"]:
        L.append("    " + lead("TUMOR SIZE", f"{c['size_mm'] / 10:.1f} CM"))
    if c["grade"]:
        L.append("    " + _legacy_grade(c, rng))
    if dcis := dcis_note(c, rng, tags):
        L.append("    " + lead("IN SITU COMPONENT", dcis.split(", ", 1)[1]))
    L.append("    " + lead("MARGINS", f"FREE, CLOSEST {c['margin_mm'] / 10:.1f} CM"))
    L.append("    " + lead("VASCULAR INVASION", "PRESENT" if c["lvi"] else "NOT SEEN"))
    if c["N"]:
        L += [f" B) LYMPH NODES, {c['side']} AXILLA:", "    " + mark_N(c, nodes_sentence(c, rng))]
    if rng.random() < 0.8:  # older reports often gave no TNM at all
        m = {"M0": E("M", "M0"), "M1": E("M", "M1") + f" ({c['M_site']})", None: "MX"}[c["M"]]
        L.append(" " + lead(f"STAGE (AJCC {rng.choice(['5TH', '6TH'])} ED)", f"{mark_T(c, t_code(c))} "
                            f"{mark_N(c, n_code(c))} {m}"))
    else:
        tags.append("no_tnm")
        labels["T"], labels["M"] = None, None  # N is still stated by the node counts above
    R = [f"RECEPTORS (IMMUNOPEROXIDASE, BLOCK A{rng.randint(2, 6)}):"] + \
        ["    " + _legacy_receptor(c, t, rng) for t in ("ER", "PR")] + ["    " + l for l in _legacy_her2(c, rng)]
    if rng.random() < 0.3:  # receptors came back days later, appended as an addendum
        tags.append("addendum")
        L += ["PATHOLOGIST: [REDACTED], M.D.", f"*** ADDENDUM {mo:02d}/{day + rng.randint(9, 12):02d}/{yr} ***"] + R
    else:
        L += R + ["PATHOLOGIST: [REDACTED], M.D."]
    L.append("** END OF REPORT **")
    if rng.random() < 0.4:
        tags.append("lost_linebreaks")
        text = "  ".join(l.strip() for l in L)
    else:
        text = "\n".join(L)
    return finish(text, labels, tags, transform=str.upper)


# ==========================================================================================================
# 3. c_history_heavy

def _prior_cancer(c, rng, yr):
    """A previous breast cancer, its own stage/grade/receptors: equal to the current values or not, at random.
    Returns (sentence, year, side)."""
    side = c["side"] if rng.random() < 0.4 else {"Left": "Right", "Right": "Left"}[c["side"]]
    t = c["Tsub"] if rng.random() < 0.35 and c["T"] not in ("Tis", "T0") else rng.choice(["1b", "1c", "1c", "2", "3"])
    n = rng.choice(["0", "0", "1a", "1", "2a", "0(sn)"])
    er = rng.choice(["ER+", "ER-", "ER positive", "ER negative", "ER 90%"])
    pr = rng.choice(["PR+", "PR-", "PR negative", ""])
    her = rng.choice(["HER2-", "HER2+", "HER2 negative", "HER2 3+", ""])
    kind = rng.choice(["IDC", "invasive ductal carcinoma", "ILC", "DCIS"])
    grade = rng.choice(["", f" grade {rng.randint(1, 3)}", f" Nottingham {rng.randint(1, 3)}"])
    stage = "pTis" if kind == "DCIS" else rng.choice([f"pT{t}N{n.split('(')[0]}", f"pT{t} pN{n}", f"stage T{t} N{n}"])
    rx = rng.choice(["treated with lumpectomy and whole-breast radiation", "s/p mastectomy and AC-T",
                     "treated with lumpectomy, radiation and 5 years of tamoxifen", "treated with mastectomy; no radiation"])
    rec = rng.choice(["no evidence of disease since", "followed with annual mammograms", "in remission"])
    year = yr - rng.randint(3, 22)
    receptors = ", ".join(x for x in (er, pr, her) if x) if kind != "DCIS" else er
    return (f"{year} {side.lower()} breast {kind}{grade if kind != 'DCIS' else ''} {stage} {receptors}, {rx}; {rec}.",
            year, side)


def _clinical_stage(c, rng, img_cm):
    """Imaging (clinical) stage at diagnosis, cT from the imaging size (so it may differ from the pathology);
    cM0 only when M0 is stated."""
    ct = "4b" if c["T"] == "T4" and rng.random() < 0.7 else "1c" if img_cm <= 2 else "2" if img_cm <= 5 else "3"
    cn = rng.choice(["0", "0", "1", "2"])
    m = {"M0": " " + E("M", "cM0"), "M1": " " + E("M", "cM1"), None: ""}[c["M"]]
    return f"clinical stage cT{ct} cN{cn}{m}"


HISTORY_FILLER = ["Family history: mother with breast cancer at 52; BRCA1/2 testing negative.",
                  "Germline panel pending.", "Former smoker; hypertension; hypothyroidism.", "ECOG performance status 0.",
                  "Known BRCA2 pathogenic variant carrier; declined bilateral mastectomy.",
                  "Medications: lisinopril, atorvastatin, vitamin D.", "Type 2 diabetes, diet controlled.",
                  "Prior benign excisional biopsy of the contralateral breast (fibroadenoma).",
                  "Bilateral breast MRI shows no additional suspicious enhancement.",
                  "Seen in multidisciplinary breast clinic; surgery recommended as first step.",
                  "Axillary ultrasound: one borderline node with cortical thickening, FNA non-diagnostic."]


def _history(c, rng, yr, tags):
    """The long clinical history: presentation, imaging (clinical) stage, prior cancer, treatment, metastases."""
    age = rng.randint(34, 84)
    s = [f"{age}-year-old {menopause(age)} woman "
         f"{rng.choice(['with a palpable', 'with a screen-detected', 'presenting with a'])} {c['side'].lower()} breast "
         f"mass at {c['quadrant']}."]
    img_cm = round(c["size_mm"] / 10 * rng.uniform(0.7, 1.4) if c["size_mm"] and rng.random() < 0.6
                   else rng.uniform(0.8, 6.5), 1)  # imaging often over- or under-calls the size
    img = (f"{rng.choice(['MRI', 'Ultrasound', 'Diagnostic mammogram'])} ({rng.choice(['BI-RADS 5', 'BI-RADS 4C'])}) "
           f"showed a {img_cm} cm {rng.choice(['irregular', 'spiculated', 'hypoechoic'])} mass")
    if rng.random() < 0.7:
        img += f", {_clinical_stage(c, rng, img_cm)}"
        tags.append("history_stage")
    s.append(img + ".")
    s.append(f"US-guided core biopsy (SP{yr % 100}-{rng.randint(100, 9999)}) showed "
             f"{'carcinoma' if c['T'] not in ('Tis',) else 'DCIS'}.")
    prior = None
    if rng.random() < 0.6:
        sent, pyr, pside = _prior_cancer(c, rng, yr)
        prior = (pyr, pside)
        s.insert(rng.choice([1, len(s)]), rng.choice(["History of ", "Past history significant for ", "PMH: "]) + sent)
        tags.append("prior_cancer")
    if c["neoadjuvant"]:
        s.append(rng.choice(["Completed neoadjuvant dose-dense AC followed by weekly paclitaxel.",
                             "Received neoadjuvant TCHP x 6 cycles.", "Neoadjuvant letrozole for 6 months."]))
    if c["M"] == "M1":
        site = {"liver": "hepatic metastases", "bone (T10 vertebra)": "osseous metastases",
                "lung": "pulmonary metastases", "brain": "brain metastasis"}[c["M_site"]]
        s.append(rng.choice([f"Known {E('M', site)} on staging PET-CT; surgery for local control.",
                             f"{E('M', 'Metastatic disease')} to the {c['M_site'].split(' (')[0]}, biopsy-proven."]))
        tags.append("history_metastasis")
    elif rng.random() < 0.4:  # same rate whatever M is: a negative staging scan is not a stated M
        s.append(rng.choice(["Staging CT chest/abdomen/pelvis negative for distant disease.",
                             "Bone scan and CT without evidence of metastatic disease."]))
        tags.append("staging_scan")
    s += rng.sample(HISTORY_FILLER, rng.randint(1, 4))
    return " ".join(s), prior


def _prior_comment(c, rng, prior):
    pyr, pside = prior
    same = pside == c["side"]
    return rng.choice([
        f"COMMENT: The patient's {pyr} {pside.lower()} breast carcinoma was reviewed for comparison. "
        + ("Given the same breast, the possibility of recurrence was considered; " if same else "")
        + "the current tumor differs in morphology and is favored to represent a new primary carcinoma.",
        f"COMMENT: Prior {pyr} carcinoma ({'ipsilateral' if same else 'contralateral'}) noted. Staging above applies "
        f"to the current specimen only."])


def _hh_receptors(c, rng, tags):
    L = []
    src = ""
    if rng.random() < 0.25 or c["T"] == "T0":  # quoted from the diagnostic core, not repeated here
        src = f" (performed on core biopsy SP{rng.randint(18, 24)}-{rng.randint(1000, 9999)})"
        tags.append("receptors_from_core")
    for t, name in (("ER", "Estrogen receptor"), ("PR", "Progesterone receptor")):
        pct = c[t + "_pct"]
        if c[t] is None:
            L.append(f"{name}: not performed")
        elif c[t] == "Equivocal":
            L.append(f"{name}: " + E(t, "uninterpretable") + " (no staining in internal control); repeat requested")
        else:
            low = " (low positive)" if c[t] == "Positive" and pct <= 10 else ""
            L.append(f"{name}{src}: " + E(t, f"{c[t].lower()}, {pct}%") + low)
    dec = her2_decider(c)
    if c["ihc"]:
        s = f"score {c['ihc']}"
        L.append("HER2 immunohistochemistry: " + (E("HER2", f"{s} ({c['HER2'].lower()})") if dec == "ihc" else
                                                  s + " (equivocal)"))
    if c["ish"]:
        grp = "group 1" if c["ish"] == "amplified" else "group 5"
        L.append(f"HER2 dual-probe ISH: " + E("HER2", f"{c['ish']} (ASCO/CAP {grp})")
                 + f"; ratio {c['ratio']}, {c['copies']} signals/cell")
    elif c["ihc"] == "2+":
        L.append("HER2 ISH: ordered, will be reported in an addendum")
    return L


def history_heavy(c, rng):
    c = with_itc(c, rng)
    tags = base_tags(c)
    labels = labels_of(c)
    yr = rng.randint(2016, 2024)
    hist, prior = _history(c, rng, yr, tags)
    D = [f"{c['side'].upper()} BREAST, {c['procedure'].upper()}:"]
    if c["T"] == "T0":
        D.append("- No residual invasive carcinoma; tumor bed with treatment effect")
    elif c["T"] == "Tis":
        D.append(f"- Ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}, {rng.randint(6, 45)} mm in extent")
    else:
        g = ""
        if c["grade"]:
            t, n, m, tot = nottingham(c, rng)
            g = ", " + rng.choice([E("grade", f"Nottingham grade {grade_n(c)}") + f" (score {tot}/9)",
                                   E("grade", f"grade {grade_n(c)}/3"), E("grade", DIFF[grade_n(c)])])
        D.append(f"- {c['type'].split(' (')[0]}{g}, {c['size_mm']} mm")
        if note := dcis_note(c, rng, tags):
            D.append("- " + note)
        D.append(f"- Margins negative; closest margin {c['margin_mm']} mm")
    if c["N"]:
        D.append(f"{c['side'].upper()} AXILLARY {'SENTINEL ' if c['sentinel'] else ''}LYMPH NODES:")
        D.append("- " + mark_N(c, nodes_sentence(c, rng)))
    m = {"M0": rng.choice(["", " " + E("M", "cM0")]), "M1": rng.choice(["", " " + E("M", "pM1") + " (by history)"]),
         None: ""}[c["M"]]
    stage = rng.choice([f"{mark_T(c, t_code(c))} {mark_N(c, n_code(c))}",
                        f"{mark_T(c, t_code(c))}, {mark_N(c, n_code(c))}"]) + m
    D.append(f"- Pathologic stage (AJCC 8th edition): {stage}")
    R = ["BIOMARKERS:"] + ["  " + x for x in _hh_receptors(c, rng, tags)] + [f"  Ki-67: {c['ki67']}%"]
    head = [rng.choice(["[REDACTED] UNIVERSITY MEDICAL CENTER - Department of Pathology",
                        "Academic Breast Pathology Service"]),
            f"Accession: SP{yr % 100}-{rng.randint(1000, 99999):05d}    Procedure date: {date(rng, yr)}",
            "Patient: [REDACTED]   MRN: [REDACTED]   Attending surgeon: [REDACTED]", ""]
    G, X = extra_specimens(c, rng, "C" if c["N"] else "B")
    D += X
    if prior and rng.random() < 0.6:
        R += ["", _prior_comment(c, rng, prior)]
    gross = ["GROSS DESCRIPTION:", gross_breast(c, rng)] + ([gross_nodes(c, rng)] if c["N"] else []) + G \
        + ["", "MICROSCOPIC DESCRIPTION:", micro_text(c, rng)]
    if rng.random() < 0.5:
        L = head + ["CLINICAL HISTORY:", hist, "", "PATHOLOGIC DIAGNOSIS:"] + D + [""] + R + [""] + gross
    else:
        tags.append("history_after_dx")
        late = rng.choice(["ADDITIONAL HISTORY:", "CLINICAL NOTES (from requisition):"])
        L = head + ["PATHOLOGIC DIAGNOSIS:"] + D + [""] + R + ["", late, hist, ""] + gross
    if c["M"] and "\x01M\x02" not in "".join(L):
        labels["M"] = None  # cM0 was written neither in the history nor in the stage line
    L += ["", "I attest that I personally reviewed the slides and rendered the diagnosis.",
          "[REDACTED], MD, Breast Pathology"]
    return finish("\n".join(L), labels, tags)


# ==========================================================================================================
# 4. c_ehr_paste

def stage_group(T, N, M):
    """Anatomic stage group (AJCC 8th) as an oncologist writes it; None when not derivable."""
    if M == "M1":
        return "IV"
    if T is None or N is None:
        return None
    if T == "Tis":
        return "0" if N == "N0" else None
    if T == "T4":
        return "IIIC" if N == "N3" else "IIIB"
    if N == "N3":
        return "IIIC"
    if N == "N2":
        return "IIIA"
    return {"T0": {"N1mi": "IB", "N1": "IIA"}, "T1": {"N0": "IA", "N1mi": "IB", "N1": "IIA"},
            "T2": {"N0": "IIA", "N1mi": "IIB", "N1": "IIB"}, "T3": {"N0": "IIB", "N1mi": "IIIA", "N1": "IIIA"}}[T].get(N)


def _shorthand(c, t):
    if c[t] is None:
        return f"{t.lower()} not done"
    if c[t] == "Equivocal":
        return E(t, f"{t} equivocal")
    return E(t, t + ("+" if c[t] == "Positive" else "-"))


def _her2_short(c, rng, tags):
    if c["HER2"] is None:
        return "her2 pending" if c["ihc"] == "2+" or rng.random() < 0.5 else "her2 not sent"
    if c["HER2"] == "Equivocal":
        return E("HER2", "HER2 2+ (equivocal)") + ", fish pending"
    if c["HER2"] == "Positive":
        return E("HER2", "HER2+")
    if c["ihc"] in ("1+", "2+") and rng.random() < 0.7:
        tags.append("her2_low")
        return E("HER2", "HER2-low")
    if c["ihc"] == "0" and rng.random() < 0.3:
        return E("HER2", "HER2 0") + rng.choice([" (her2-zero)", " (ultralow?)", ""])
    return E("HER2", "HER2-")


def _ehr_table(c, rng):
    rows = ["| marker | result | % | intensity |"]
    for t in ("ER", "PR"):
        if c[t] is not None:
            pct = c[t + "_pct"]
            rows.append(f"| {E(t, f'{t} | {c[t]}')} | {'' if pct is None else f'{pct}%'} | "
                        f"{intensity(rng) if pct else ''} |")
    if c["ihc"]:
        low = " (HER2-low)" if c["ihc"] == "1+" or c["ihc"] == "2+" and c["ish"] == "not amplified" else ""
        cell = f"HER2 IHC | {c['ihc']}{low}"
        rows.append(f"| {E('HER2', cell) if her2_decider(c) == 'ihc' else cell} | | |")
    if c["ish"]:
        rows.append(f"| {E('HER2', 'HER2 FISH | ' + c['ish'])} | ratio {c['ratio']} | |")
    rows.append(f"| Ki-67 | | {c['ki67']}% | |")
    return rows


EHR_FILLER = {
    "pmh": ["htn", "hld", "t2dm (a1c 6.8)", "hypothyroidism", "osteopenia", "gerd", "anxiety", "s/p tah-bso 2009",
            "obesity (bmi 33)", "remote dvt"],
    "meds": ["amlodipine 5 mg daily", "levothyroxine 75 mcg", "metformin 500 mg bid", "atorvastatin 20 mg",
             "sertraline 50 mg", "omeprazole 20 mg", "calcium + vit d"],
    "ros": ["denies bone pain, headache, cough, weight loss", "mild fatigue, otherwise negative", "neg x 10 systems"],
    "exam": ["well-healed incision, no erythema; no axillary/supraclavicular lad", "mild seroma at lumpectomy site",
             "breasts: post-surgical changes only; lungs clear; abd soft, no hsm"],
}


def _ehr_filler(rng):
    """Past history, meds, ROS and exam: how long a real note is varies a lot."""
    L = []
    if rng.random() < 0.8:
        L.append("pmh: " + ", ".join(rng.sample(EHR_FILLER["pmh"], rng.randint(1, 5))))
    if rng.random() < 0.7:
        L += ["meds:"] + [f"- {m}" for m in rng.sample(EHR_FILLER["meds"], rng.randint(1, 5))]
    if rng.random() < 0.6:
        L.append(f"social: {rng.choice(['never smoker', 'former smoker, 20 pk-yr', 'rare etoh'])}; "
                 f"{rng.choice(['works as teacher', 'retired', 'lives with husband', 'two adult children'])}")
        L.append("fhx: " + rng.choice(["sister breast ca at 48", "no known family hx of cancer",
                                       "mother ovarian ca; genetics referral placed"]))
    L.append("ros: " + rng.choice(EHR_FILLER["ros"]))
    L.append(f"vitals: bp {rng.randint(108, 152)}/{rng.randint(64, 92)}, hr {rng.randint(60, 96)}, "
             f"wt {rng.randint(52, 104)} kg")
    L.append("exam: " + rng.choice(EHR_FILLER["exam"]))
    if rng.random() < 0.5:
        L.append(f"labs: cbc wnl, cmp wnl, alk phos {rng.randint(48, 130)}")
    return L


def ehr_paste(c, rng):
    tags = base_tags(c) + ["flattened_table", "receptor_shorthand"]
    labels = labels_of(c)
    yr = rng.randint(2019, 2025)
    acc = accession(rng, yr)
    age = rng.randint(31, 86)
    side = c["side"][0].lower()
    what = "no residual invasive ca (pcr in breast)" if c["T"] == "T0" else f"dcis ng{c['nuclear_grade']}" \
        if c["T"] == "Tis" else f"{c['size_mm'] / 10:.1f} cm " + c["type"].split(" (")[0].lower().replace(
            "invasive ductal carcinoma", "idc")
    g = ""
    if c["grade"]:
        g = ", " + rng.choice([E("grade", f"g{grade_n(c)}"), E("grade", f"grade {grade_n(c)}"),
                               E("grade", f"nottingham {grade_n(c)}/3")])
    nodes = ""
    if c["N"]:
        nodes = ", " + mark_N(c, f"{c['nodes_pos']}/{c['nodes_examined']} {'sln' if c['sentinel'] else 'ln'}"
                                  + (" (micromet)" if c["N"] == "N1mi" else "") + (" (itc)" if c.get("itc") else ""))
    path = f"path ({acc}): {what}{g}{nodes}, lvi {'+' if c['lvi'] else 'neg'}, margins neg ({c['margin_mm']} mm)"
    recept = "receptors: " + "/".join([_shorthand(c, "ER"), _shorthand(c, "PR"), _her2_short(c, rng, tags)])
    m = {"M0": " " + E("M", "cM0"), "M1": " " + E("M", "cM1") + f" ({c['M_site'].split(' (')[0]})", None: ""}[c["M"]]
    tnm = f"{mark_T(c, t_code(c))} {mark_N(c, n_code(c))}{m}"
    grp = stage_group(labels["T"], labels["N"], labels["M"]) if not c["neoadjuvant"] else None
    summary = f"stage {grp} ({tnm})" if grp and (c["M"] or rng.random() < 0.3) else \
        rng.choice([tnm, f"({tnm})", f"path stage {tnm}"])
    if grp and "stage" in summary:
        tags.append("stage_group")
    m_dx = rng.randint(1, 8)  # diagnosis, surgery and this visit, in that order
    bullets = [f"- {m_dx:02d}/{yr} {rng.choice(['screening mammo', 'self-palpated lump', 'dx mammo/us'])}: "
               f"{rng.uniform(0.6, 5.5):.1f} cm mass {side} breast {c['quadrant']}",
               "- us-guided core bx: carcinoma" + ("; neoadjuvant chemo completed" if c["neoadjuvant"] else ""),
               f"- {m_dx + 2:02d}/{rng.randint(1, 28):02d}/{yr} {side} {c['procedure'].lower()}"
               + (" + slnb" if c["sentinel"] else " + alnd" if c["N"] else "")]
    onc = ""
    if c["ER"] == "Positive" and c["HER2"] == "Negative" and c["N"] in ("N0", "N1mi", "N1") and rng.random() < 0.6:
        onc = rng.choice([f"oncotype dx rs {rng.randint(4, 38)}", "oncotype sent, pending"]) + "; "
    L = [f"{rng.choice(['HEMATOLOGY/ONCOLOGY', 'Breast Medical Oncology'])} - "
         f"{rng.choice(['New Patient Consult', 'Follow-up Visit', 'Progress Note'])}",
         f"pt: [REDACTED]  mrn: [REDACTED]  dos: {m_dx + rng.randint(3, 4):02d}/{rng.randint(1, 28):02d}/{yr}",
         f"hpi: {age} yo {menopause(age)} f with {side} breast cancer, here to discuss "
         f"{rng.choice(['adjuvant therapy', 'path results', 'next steps'])}. feels well, incision healing.",
         "oncologic history:"] + bullets + _ehr_filler(rng) + ["", path, recept, f"{onc}ki-67 {c['ki67']}%", "",
                                            "pathology (copied from report):"] + _ehr_table(c, rng)
    L += ["", f"a/p: {age} yo f with {summary} {side} breast ca.",
          rng.choice(["- discussed endocrine therapy, start after xrt", "- refer rad onc", "- chemo teach scheduled",
                      "- dexa baseline, labs today"]), "- rtc 3 wk", "[REDACTED], MD"]
    if rng.random() < 0.3:
        tags.append("lost_linebreaks")
        text = " ".join(L)
    else:
        text = "\n".join(L)
    return finish(text, labels, tags)


# ==========================================================================================================
# 5. c_pdf_twocolumn

_BREAKS = {"Progesterone": "Progester- one", "Histologic": "Histo- logic", "Lymphovascular": "Lympho- vascular",
           "carcinoma": "carci- noma", "Specimen": "Speci- men", "Immunohistochemistry": "Immunohisto- chemistry",
           "examined": "exam- ined", "Estrogen": "Estro- gen", "micrometastases": "micrometas- tases"}


def broken(s, rng):
    """PDF line-end hyphenation left in the extracted text."""
    for w, b in _BREAKS.items():
        if w in s and rng.random() < 0.35:
            s = s.replace(w, b, 1)
    return s


def render_block(rows, rng, mode, ev):
    """rows: (label, value, task or None). mode 'separated': all labels, then all values; 'glued': label value
    pairs on one line. Evidence is the value itself, plus its neighbour when the value is a short token."""
    labels = [broken(l, rng) + ":" for l, _, _ in rows]
    vals = [v for _, v, _ in rows]
    if mode == "separated":
        for i, (_, v, task) in enumerate(rows):
            if task:
                phrase = v if len(v) > 3 else (f"{vals[i - 1]} {v}" if i else f"{v} {vals[i + 1]}")
                ev.setdefault(task, []).append(phrase)
        return " ".join(labels) + " " + " ".join(vals)
    for (l, v, task), lab in zip(rows, labels):
        if task:
            ev.setdefault(task, []).append(f"{lab} {v}" if len(v) <= 3 else v)
    return " ".join(f"{lab} {v}" for lab, v in zip(labels, vals))


def twocolumn(c, rng):
    tags = base_tags(c) + ["pdf_extraction"]
    labels = labels_of(c)
    ev = {}
    yr = rng.randint(2017, 2024)
    acc = accession(rng, yr, "UH{yy}-{n:06d}")
    head = f"{rng.choice(['UNIVERSITY HOSPITAL', '[REDACTED] HEALTH'])} LABORATORY MEDICINE Breast Pathology Report"
    tumor = [("Histologic type", broken(c["type"], rng), None)]
    if c["size_mm"]:
        tumor.append(("Tumor size", f"{c['size_mm'] / 10:.1f} cm", None))
    if c["grade"]:
        t, n, m, tot = nottingham(c, rng)
        tumor.append(("Histologic grade", rng.choice([f"{grade_n(c)}", f"Grade {grade_n(c)}", f"G{grade_n(c)}",
                                                      f"{grade_n(c)} (score {tot}/9)"]), "grade"))
        if rng.random() < 0.5:
            tumor += [("Tubule formation", str(t), None), ("Nuclear pleomorphism", str(n), None),
                      ("Mitotic count", str(m), None)]
    if c["T"] not in ("T0",) and rng.random() < 0.4:
        tumor.append(("DCIS nuclear grade", str(c["nuclear_grade"]), None))
    tumor += [("Lymphovascular invasion", "Present" if c["lvi"] else "Not identified", None),
              ("Margins", f"Negative ({c['margin_mm']} mm)", None)]
    nodes = [("Lymph nodes examined", str(c["nodes_examined"]) if c["N"] else "0", None),
             ("Nodes with macrometastases", str(c["nodes_pos"] if c["N"] not in ("N1mi", None) else 0), None),
             ("Nodes with micrometastases", "1" if c["N"] == "N1mi" else "0", None)]
    stage = [("pT", t_code(c), None if c["tx"] else "T"), ("pN", n_code(c), "N" if c["N"] else None),
             ("pM", {"M0": "cM0", "M1": f"pM1 ({c['M_site']})", None: "not applicable"}[c["M"]],
              "M" if c["M"] else None)]
    bio = []
    for t, name in (("ER", "Estrogen receptor"), ("PR", "Progesterone receptor")):
        pct = c[t + "_pct"]
        v = {"Positive": f"Positive ({pct}%)", "Negative": f"Negative ({'<1' if pct == 0 else pct}%)",
             "Equivocal": "Equivocal (repeat requested)", None: "Not performed"}[c[t]]
        bio.append((name, v, t if c[t] else None))
    dec = her2_decider(c)
    bio.append(("HER2 IHC", {"0": "0", "1+": "1+", "2+": "2+", "3+": "3+", None: "Not performed"}[c["ihc"]],
                "HER2" if dec == "ihc" else None))
    ish = {"amplified": f"Amplified (ratio {c['ratio']})", "not amplified": f"Not amplified (ratio {c['ratio']})",
           None: "Pending" if c["ihc"] == "2+" else "Not performed"}[c["ish"]]
    bio += [("HER2 ISH", ish, "HER2" if dec == "ish" else None), ("Ki-67", f"{c['ki67']}%", None)]
    blocks = [("SPECIMEN", [("Procedure", c["procedure"], None), ("Laterality", c["side"], None),
                            ("Site", c["quadrant"], None)]),
              ("TUMOR", tumor), ("LYMPH NODES", nodes) if c["N"] else None, ("STAGE (AJCC 8)", stage),
              ("BIOMARKERS (Immunohistochemistry)", bio)]
    out = [f"{head} Page 1 of 2", f"Patient: Accession: Collected: [REDACTED] {acc} {date(rng, yr)}"]
    for i, blk in enumerate(b for b in blocks if b):
        name, rows = blk
        mode = "glued" if name.startswith("STAGE") and rng.random() < 0.8 else rng.choice(["separated", "separated",
                                                                                           "glued"])
        tags.append(f"{mode}_layout")
        out += [name, render_block(rows, rng, mode, ev)]
        if i == 2:
            out.append(f"{head} Page 2 of 2 {acc}")
            tags.append("repeated_header")
    dx = f"{c['side']} breast, {c['procedure'].lower()}: " + (
        "no residual invasive carcinoma." if c["T"] == "T0" else "ductal carcinoma in situ; no invasion." if
        c["T"] == "Tis" else f"{c['type'].split(' (')[0].lower()}; see synoptic data above.")
    out += ["DIAGNOSIS", broken(dx, rng), "CLINICAL", broken(render_block(
        [("Pre-operative diagnosis", f"{c['side']} breast carcinoma", None),
         ("Neoadjuvant therapy", "Yes" if c["neoadjuvant"] else "No", None),
         ("Imaging", rng.choice(["Mass", "Calcifications", "Architectural distortion"]), None)], rng,
        rng.choice(["separated", "glued"]), ev), rng)]
    out += ["Gross Description", broken(gross_breast(c, rng), rng),
            "Microscopic", broken(micro_text(c, rng), rng), "Electronically signed: [REDACTED], MD"]
    text = "\n".join(out) if rng.random() < 0.5 else " ".join(out)
    if c["tx"]:
        ev.pop("T", None)
    if not c["N"]:
        ev.pop("N", None)
    return finish(text, labels, tags, evidence=ev)


STYLES = {"c_scanned_pdf": scanned_pdf, "c_legacy_caps": legacy_caps, "c_history_heavy": history_heavy,
          "c_ehr_paste": ehr_paste, "c_pdf_twocolumn": twocolumn}


# ----------------------------------------------------------------------------------------------------------

def _selfcheck(n=300, seed=7):
    import collections
    import pathlib
    import sys
    here = pathlib.Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent)]
    import data
    from make_examples import sample_tumour
    norm = lambda s: re.sub(r"\s+", " ", s).strip()
    for name, fn in STYLES.items():
        rng = random.Random(seed)
        recs, counts, tags, lens, cut = [], {t: collections.Counter() for t in TASKS}, collections.Counter(), [], 0
        for _ in range(n):
            c = sample_tumour(rng)
            rec = fn(c, rng)
            text = norm(rec["text"])
            for t in TASKS:
                lab = rec["labels"][t]
                counts[t][lab] += 1
                assert lab is None or lab in data.LABEL_SETS[t], (name, t, lab)
                assert (lab is None) == (t not in rec["evidence"]), (name, t, lab, rec["evidence"])
                for p in rec["evidence"].get(t, []):
                    assert norm(p) in text, (name, t, p)
                if lab is not None and c[t] != lab:
                    raise AssertionError((name, t, c[t], lab))
            assert "\x01" not in rec["text"] and "\x03" not in rec["text"]
            window = norm(data.window_slice(rec["text"]))
            cut += any(norm(p) not in window for ps in rec["evidence"].values() for p in ps)
            tags.update(rec["tags"])
            lens.append(len(rec["text"]))
            recs.append(rec)
        print(f"=== {name}: {n} records, {min(lens)}-{max(lens)} chars (median {sorted(lens)[n // 2]}); "
              f"{cut} with evidence outside data.window_slice")
        for t in TASKS:
            print(f"  {t:5s} " + ", ".join(f"{k} {v}" for k, v in sorted(counts[t].items(), key=lambda kv: str(kv[0]))))
        print("  tags: " + ", ".join(f"{k} {v}" for k, v in sorted(tags.items())))
        for t in TASKS:  # the most common evidence phrase and how often it occurs per label (shortcut check)
            common = collections.Counter(p.lower() for r in recs for p in r["evidence"].get(t, []))
            if not common:
                continue
            tok = common.most_common(1)[0][0]
            by = collections.defaultdict(lambda: [0, 0])
            for r in recs:
                by[r["labels"][t]][0] += tok in r["text"].lower()
                by[r["labels"][t]][1] += 1
            print(f"  {t:5s} most common evidence {tok!r}: " +
                  ", ".join(f"{k} {a}/{b}" for k, (a, b) in sorted(by.items(), key=lambda kv: str(kv[0]))))
    for name, fn in STYLES.items():
        rng = random.Random(seed + 1)
        rec = fn(sample_tumour(rng), rng)
        print(f"\n##### sample {name}  labels={rec['labels']}\n  evidence={rec['evidence']}\n  tags={rec['tags']}")
        print(rec["text"])


if __name__ == "__main__":
    _selfcheck()
