"""Report styles A: five North American breast-pathology reporting practices (writer A).

a_cap_checklist: a US laboratory information system printing the CAP electronic Cancer Checklist (eCC) for
    invasive carcinoma / DCIS resections, with empty and "Not applicable" fields, followed by the separate CAP
    Breast Biomarker Reporting Template (ER/PgR percentages and intensity, HER2 IHC score, ISH group 1-5).
a_dictated_narrative: a community hospital's dictated and transcribed report: prose diagnosis, stage said inline
    ("AJCC 8th edition pathologic staging is pT1c pN0(sn)" or just "T1c N0"), grade as a Nottingham grade, a
    score, a differentiation or a three-tier word ("intermediate grade"), receptors in a COMMENT sentence (often
    percentages only), speech-recognition artifacts.
a_core_biopsy: a breast-imaging centre's ultrasound-guided needle core biopsy report: BI-RADS history with a
    clinical stage, provisional grade, no pT/pN; biomarkers resulted, pending, or pending then an ADDENDUM.
a_neoadjuvant: a post-neoadjuvant resection as reported by US academic centres (MD Anderson RCB, ypTNM,
    treatment effect), with the pre-treatment clinical stage, biopsy grade and biopsy biomarkers in the history.
a_amended_addenda: an academic centre's final report with a tumour summary table, plus addenda and amendments
    as a US LIS appends them (reflex HER2 ISH, corrected stage typo, Ki-67 that changes nothing).

The dictated and core-biopsy styles (and b_uk_rcpath, b_euro_translated, b_outside_consult, d_synoptic_network)
sometimes print after a HER2 IHC score the ASCO/CAP staining pattern it stands for (IHC_CRITERIA).

Each renderer takes a sampled tumour `c` (examples/make_examples.py: sample_tumour) and a random.Random and returns
{"text", "labels", "evidence", "tags"}. Run this file to self-check 300 reports per style.
"""
import datetime
import re

CANON = {"T": {"Tis", "T0", "T1", "T2", "T3", "T4"}, "N": {"N0", "N1", "N1mi", "N2", "N3"}, "M": {"M0", "M1"},
         "grade": {"G1", "G2", "G3"}, "ER": {"Positive", "Negative", "Equivocal"},
         "PR": {"Positive", "Negative", "Equivocal"}, "HER2": {"Positive", "Negative", "Equivocal"}}


# ----------------------------------------------------------------------------------------------------------
# the record under construction: lines of text, evidence per task, tags

class Report:
    def __init__(self, c):
        self.lines, self.ev, self.tags = [], {}, set()
        self.labels = {"T": None if c["tx"] else c["T"], "N": c["N"], "M": c["M"], "grade": c["grade"],
                       "ER": c["ER"], "PR": c["PR"], "HER2": c["HER2"]}

    def add(self, *lines):
        self.lines.extend(lines)

    def say(self, task, phrase, replace=False):
        """Record `phrase` (verbatim in the text) as evidence for `task`; returns the phrase for inline use."""
        if replace or task not in self.ev:
            self.ev[task] = []
        self.ev[task].append(phrase)
        return phrase

    def drop(self, *tasks):
        """The style does not state these tasks: label None, no evidence."""
        for t in tasks:
            self.labels[t] = None
            self.ev.pop(t, None)

    def finish(self, text=None):
        text = "\n".join(self.lines) if text is None else text
        flat = " ".join(text.split())
        for t, v in self.labels.items():
            if v is None:
                assert not self.ev.get(t), f"{t} is None but has evidence {self.ev.get(t)}"
                self.ev.pop(t, None)
                continue
            assert v in CANON[t], (t, v)
            assert self.ev.get(t), f"{t}={v} has no evidence"
            for p in self.ev[t]:
                assert " ".join(p.split()) in flat, f"{t} evidence {p!r} not in text"
        return {"text": text, "labels": dict(self.labels), "evidence": {t: list(p) for t, p in self.ev.items()},
                "tags": sorted(self.tags)}


# ----------------------------------------------------------------------------------------------------------
# small facts every style needs

def accession(rng, fmt="S{yy}-{n:05d}", year=None):
    year = year or rng.randint(2016, 2024)
    return fmt.format(yy=year % 100, n=rng.randint(120, 39999)), year


def dates(rng, year, n=3, fmt="%m/%d/%Y"):
    """n increasing dates in `year` (procedure, receipt, sign-out, addenda...)."""
    d = datetime.date(year, rng.randint(1, 10), rng.randint(1, 28))
    out = []
    for _ in range(n):
        out.append(d.strftime(fmt))
        d += datetime.timedelta(days=rng.choice([0, 1, 1, 2, 3, 5, 7]))
    return out


def nottingham(grade, rng):
    """Tubule, nuclear and mitotic scores that add up to a total inside the grade's range."""
    lo, hi = {"G1": (3, 5), "G2": (6, 7), "G3": (8, 9)}[grade]
    total = rng.randint(lo, hi)
    while True:
        s = [rng.randint(1, 3) for _ in range(3)]
        if sum(s) == total:
            return s, total


def other_grade(grade, rng):
    return rng.choice([g for g in ("G1", "G2", "G3") if g != grade])


DIFF = {"G1": "well differentiated", "G2": "moderately differentiated", "G3": "poorly differentiated"}
TIER = {"G1": "low", "G2": "intermediate", "G3": "high"}  # the three-tier words many US reports grade in
ROMAN = {"G1": "I", "G2": "II", "G3": "III", 1: "I", 2: "II", 3: "III"}


def t_tok(c, prefix=None):
    return (c["prefix"] if prefix is None else prefix) + "T" + ("X" if c["tx"] else c["Tsub"])


def n_tok(c, prefix=None):
    return (c["prefix"] if prefix is None else prefix) + "N" + ("X" if c["N"] is None else c["Nsub"])


def short_type(c):
    return c["type"].split(" (")[0]


def intensity(rng, pct):
    return rng.choice(["weak", "weak to moderate"]) if pct <= 10 else rng.choice(["moderate", "strong", "strong",
                                                                                   "moderate to strong"])


def allred(pct, rng):
    """Allred proportion + intensity score consistent with the percentage (0 % -> 0, Negative)."""
    if not pct:
        return 0
    ps = 2 if pct <= 10 else 3 if pct <= 33 else 4 if pct <= 66 else 5
    return ps + (rng.choice([1, 2]) if pct <= 10 else rng.choice([2, 3, 3]))


def ish_detail(c, rng):
    """ISH numbers with the ASCO/CAP 2018 group; groups 2-4 are drawn only where they keep c's HER2 label."""
    amp = c["ish"] == "amplified"
    group, ratio, copies = (1 if amp else 5), c["ratio"], c["copies"]
    u = rng.random()
    if amp and c["ihc"] == "2+" and u < 0.2:  # group 3 with concurrent IHC 2+ -> positive
        group, ratio, copies = 3, round(rng.uniform(1.3, 1.9), 1), round(rng.uniform(6.1, 9.5), 1)
    elif not amp and u < 0.12:  # group 4 -> negative (with comment)
        group, ratio, copies = 4, round(rng.uniform(1.2, 1.9), 1), round(rng.uniform(4.1, 5.8), 1)
    elif not amp and c["ihc"] == "2+" and u < 0.22:  # group 2 with IHC 2+, recounted -> negative
        group, ratio, copies = 2, round(rng.uniform(2.0, 2.9), 1), round(rng.uniform(2.6, 3.9), 1)
    cep = round(copies / ratio, 1)
    return {"group": group, "ratio": ratio, "copies": copies, "cep17": cep, "amp": amp}


# The ASCO/CAP 2018 (2023) criterion behind each HER2 IHC score, which many laboratories print after the score
IHC_CRITERIA = {
    "0": ["no staining observed", "no membrane staining (HER2-null)",
          "faint, incomplete membrane staining in <=10% of tumor cells (HER2-ultralow)"],
    "1+": ["incomplete membrane staining that is faint/barely perceptible and in >10% of tumor cells",
           "faint, partial membrane staining in >10% of invasive cells (HER2-low)"],
    "2+": ["weak to moderate complete membrane staining in >10% of tumor cells",
           "circumferential membrane staining that is incomplete and/or weak to moderate in >10% of tumor cells"],
    "3+": ["circumferential membrane staining that is complete, intense and in >10% of tumor cells",
           "complete, intense circumferential membrane staining in >10% of invasive tumor cells"]}


def ihc_criteria(score, rng):
    """The staining pattern a HER2 IHC score stands for, as a report spells it out after the score."""
    return rng.choice(IHC_CRITERIA[score])


ISH_GROUP = {1: "Group 1: HER2/CEP17 ratio >=2.0 and average HER2 copy number >=4.0 signals/cell",
             2: "Group 2: HER2/CEP17 ratio >=2.0 and average HER2 copy number <4.0 signals/cell",
             3: "Group 3: HER2/CEP17 ratio <2.0 and average HER2 copy number >=6.0 signals/cell",
             4: "Group 4: HER2/CEP17 ratio <2.0 and average HER2 copy number >=4.0 and <6.0 signals/cell",
             5: "Group 5: HER2/CEP17 ratio <2.0 and average HER2 copy number <4.0 signals/cell"}

M1_HISTORY = {"liver": ["history of metastatic disease to liver", "known hepatic metastases (biopsy-proven)",
                        "metastatic disease to the liver diagnosed on staging CT"],
              "bone (T10 vertebra)": ["known osseous metastases", "biopsy-proven metastasis to the T10 vertebral body",
                                      "known metastatic disease to bone (T10 vertebra)"],
              "lung": ["known pulmonary metastases", "metastatic disease to the lung on staging CT",
                       "history of metastatic carcinoma to lung"],
              "brain": ["known brain metastasis", "a resected brain metastasis", "metastatic disease to the brain"]}


def m1_phrase(c, rng):
    return rng.choice(M1_HISTORY[c["M_site"]])


NEGATIVE_WORKUP = ["Staging CT chest/abdomen/pelvis: no evidence of metastatic disease.",
                   "Bone scan and CT negative for distant metastases.", "PET-CT without evidence of distant spread.",
                   "Metastatic survey negative.", "No evidence of metastatic disease on staging imaging."]


def history_m(c, rng, r, keep_m0, lead, keep_m1=False):
    """What a history says of M: 'cM0' or 'cM1' in its clinical stage (keep_m0, keep_m1), or a known metastasis
    after `lead` (a phrase, or a list to choose from) for M1; else M is not stated. A negative work-up, whatever M
    is, states no M category. Returns the sentences to add, if any."""
    if keep_m0:
        r.say("M", "cM0")
    elif keep_m1:
        r.say("M", "cM1")
    elif c["M"] == "M0":
        r.drop("M")
    if c["M"] != "M1":
        if rng.random() < 0.35:  # "no evidence of metastatic disease": the words of M1 under a negation
            r.tags.add("staging_scan")
            return " " + rng.choice(NEGATIVE_WORKUP)
        return ""
    r.tags.add("history_metastasis")
    lead = lead if isinstance(lead, str) else rng.choice(lead)
    return f" {lead} {r.say('M', m1_phrase(c, rng))}."


def clinical_stage(c, rng, with_m0, with_m1=False):
    """A clinical (imaging) stage for the history: a distractor for T and N; its cM0 or cM1 is the M label."""
    if c["T"] in ("T1", "T2", "T3", "T4") and rng.random() < 0.35:
        ct = "cT" + c["Tsub"]  # sometimes the same category as the pathologic one, sometimes not
    else:
        ct = rng.choice(["cT1c", "cT2", "cT2", "cT3", "cT1b", "cT4b", "cT4d"])
    cn = rng.choice(["cN0", "cN0", "cN1", "cN1", "cN2a", "cN3c"])
    return f"{ct} {cn}" + (" cM0" if with_m0 else " cM1" if with_m1 else "")


INKS = ["black", "blue", "green", "red", "yellow", "orange", "violet"]


def cm3(rng, first, lo, hi):
    """'a x b x c cm' with the dimensions in decreasing order, the first one given."""
    rest = sorted((round(rng.uniform(lo, min(hi, first)), 1) for _ in range(2)), reverse=True)
    return f"{first:.1f} x {rest[0]:.1f} x {rest[1]:.1f} cm"


def gross_breast(c, rng, voice, part="A", treated=False):
    """Gross description of the breast specimen in three voices: LIS template, dictated, academic."""
    proc, side = c["procedure"].lower(), c["side"].lower()
    big = "mastectomy" in proc and "partial" not in proc
    wt = rng.randint(240, 1300) if big else rng.randint(14, 160)
    dims = cm3(rng, rng.uniform(12, 28) if big else rng.uniform(4, 11), 1.5, 18)
    opener = {"lis": f"{part}. Received fresh, labeled with the patient's name and \"{side} breast, {proc}\", is a "
                     f"{wt} g {proc} specimen measuring {dims}.",
              "dictated": f"Specimen {part} is received fresh in a container labeled with the patient's name and "
                          f"\"{side} breast {proc}\". It consists of a {wt} gram portion of fibrofatty tissue "
                          f"measuring {dims}.",
              "academic": f"Part {part} is labeled \"{c['side']} breast, {proc}\" and consists of a {wt} g, {dims} "
                          f"specimen oriented with sutures (short - superior, long - lateral)."}[voice]
    inks = rng.sample(INKS, 4)
    bits = [opener]
    if big:
        bits.append(f"An ellipse of skin measuring {rng.uniform(8, 22):.1f} x {rng.uniform(2, 8):.1f} cm bears "
                    f"{rng.choice(['an unremarkable', 'an everted', 'a slightly retracted'])} nipple.")
    bits.append(f"The margins are inked: superior {inks[0]}, inferior {inks[1]}, anterior {inks[2]}, posterior "
                f"{inks[3]}.")
    where = (f"{rng.uniform(0.1, 2.4):.1f} cm from the nearest "
             f"({rng.choice(['posterior', 'superior', 'anterior', 'medial', 'inferior'])}) margin")
    if c["size_mm"] and c["T"] not in ("Tis", "T0") and not treated:
        bits.append(f"Serial sectioning reveals a {rng.choice(['firm', 'hard', 'rubbery'])}, "
                    f"{rng.choice(['tan-white', 'gray-white', 'yellow-tan'])}, "
                    f"{rng.choice(['stellate', 'ill-defined', 'well-circumscribed', 'spiculated'])} mass measuring "
                    f"{cm3(rng, c['size_mm'] / 10, 0.2, 3)}, {where}.")
    else:
        bits.append(f"Serial sectioning reveals an ill-defined area of firm, white fibrous tissue "
                    f"({cm3(rng, rng.uniform(0.8, 4.5), 0.3, 3)}) surrounding a "
                    f"{rng.choice(['coil', 'ribbon', 'wing', 'barbell'])}-shaped biopsy clip, {where}; no discrete "
                    f"mass is identified.")
    bits.append(f"The remaining tissue is {rng.choice(['fibrofatty', 'predominantly adipose', 'dense and fibrous'])}.")
    if rng.random() < 0.6:
        bits.append(f"Cold ischemia time: {rng.choice(['less than 1 hour', '22 minutes', '40 minutes'])}. "
                    f"Formalin fixation time: {rng.randint(8, 70)} hours.")
    n = rng.randint(8, 26)
    bits.append(f"Representative sections are submitted in cassettes {part}1-{part}{n}"
                + (f" (mass in {part}{rng.randint(3, 6)}-{part}{rng.randint(7, n)})." if rng.random() < 0.5 else "."))
    text = " ".join(bits)
    if rng.random() < 0.35:  # some laboratories print the cassette key as well
        key = ["superior margin", "inferior margin", "anterior margin", "posterior margin", "medial margin",
               "lateral margin", "lesion with closest margin", "lesion, full face", "biopsy clip site",
               "lesion, remaining", "random upper outer quadrant", "nipple", "random lower inner quadrant"]
        keys = key[:rng.randint(6, len(key))]
        text += "\nCassette key: " + "; ".join(f"{part}{i + 1} - {k}" for i, k in enumerate(keys)) + "."
    return text


def gross_nodes(c, rng, part="B"):
    label = "axillary sentinel lymph node" if c["sentinel"] else "axillary contents"
    n = c["nodes_examined"]
    return (f"{part}. Received in formalin, labeled \"{c['side'].lower()} {label}\", is "
            f"{'a' if n == 1 else rng.randint(2, 6)} fragment{'' if n == 1 else 's'} of yellow fibroadipose tissue, "
            f"{rng.uniform(1, 9):.1f} cm in aggregate, from which {n} lymph node{'' if n == 1 else 's'} "
            f"{'is' if n == 1 else 'are'} dissected (largest {rng.uniform(0.4, 2.8):.1f} cm). The nodes are serially "
            f"sectioned at 2 mm intervals and entirely submitted in {part}1-{part}{rng.randint(2, 9)}.")


def lvi_text(c, rng):
    return rng.choice(["Lymphovascular invasion is present.", "Lymphovascular invasion is identified."]) if c["lvi"] \
        else rng.choice(["No lymphovascular invasion is seen.", "Lymphovascular invasion is not identified."])


def node_sentence(c, rng):
    """Nodal findings in prose; returns (sentence, evidence phrase or None). Counts decide N (0/3 -> N0)."""
    k, n = c["nodes_pos"], c["nodes_examined"]
    if c["N"] is None:
        return rng.choice(["No lymph nodes are identified in the specimen.", ""]), None
    if c["N"] == "N0":
        p = rng.choice([f"negative for metastatic carcinoma (0/{n})", f"{n} lymph node{'s' if n > 1 else ''}, "
                        f"negative for carcinoma (0/{n})"])
        return f"{'Sentinel' if c['sentinel'] else 'Axillary'} lymph nodes: {p}.", p
    if c["N"] == "N1mi":
        p = f"micrometastasis ({rng.uniform(0.3, 1.9):.1f} mm) in 1 of {n} lymph node{'s' if n > 1 else ''}"
        return f"There is a {p}, without extranodal extension.", p
    p = f"metastatic carcinoma in {k} of {n} lymph nodes"
    return (f"There is {p} (largest deposit {rng.randint(3, 25)} mm), "
            f"{rng.choice(['with', 'without'])} extranodal extension."), p


def signature(rng, when):
    return rng.choice([f"Electronically signed by [REDACTED], MD on {when}",
                       f"[REDACTED], M.D., Pathologist   {when}",
                       f"Case signed out by: [REDACTED], MD ({when})"])


# ----------------------------------------------------------------------------------------------------------
# 1. CAP electronic cancer checklist as a US LIS prints it

CAP_TUBULE = {1: ">75% of tumor area forming glandular/tubular structures",
              2: "10% to 75% of tumor area forming glandular/tubular structures",
              3: "<10% of tumor area forming glandular/tubular structures"}
CAP_NUCLEI = {1: "Nuclei small with little increase in size in comparison with normal breast epithelial cells",
              2: "Cells larger than normal with open vesicular nuclei, visible nucleoli, and moderate variability",
              3: "Vesicular nuclei, often with prominent nucleoli, exhibiting marked variation in size and shape"}
CAP_MITOSES = {1: "<=3 mitoses per mm2", 2: "4 to 7 mitoses per mm2", 3: ">=8 mitoses per mm2"}
CAP_OVERALL = {"G1": "Grade 1 (scores of 3, 4, or 5)", "G2": "Grade 2 (scores of 6 or 7)",
               "G3": "Grade 3 (scores of 8 or 9)"}
CAP_T = {"1a": "Tumor > 1 mm but <= 5 mm in greatest dimension", "1b": "Tumor > 5 mm but <= 10 mm",
         "1c": "Tumor > 10 mm but <= 20 mm", "2": "Tumor > 20 mm but <= 50 mm", "3": "Tumor > 50 mm",
         "4a": "Extension to the chest wall", "4b": "Ulceration and/or ipsilateral macroscopic satellite nodules "
         "and/or edema of the skin", "4d": "Inflammatory carcinoma", "is": "Ductal carcinoma in situ",
         "0": "No evidence of primary tumor"}


def cap_receptor(task, status, pct, rng, r):
    head = {"ER": "Estrogen Receptor (ER) Status", "PR": "Progesterone Receptor (PgR) Status"}[task]
    if status is None:
        return [f"{head}: {rng.choice(['', 'Not performed', 'Not applicable'])}"]
    if status == "Equivocal":
        s = rng.choice(["Cannot be determined (equivocal) - no internal control staining",
                        "Equivocal / uninterpretable; repeat testing on excision recommended"])
        return [r.say(task, f"{head}: {s}")]
    if status == "Negative":
        L = [r.say(task, f"{head}: Negative") + " (less than 1% of cells demonstrate nuclear positivity)",
             f"  Percentage of Cells with Nuclear Positivity: {rng.choice(['0%', '<1%', '0%'])}"]
    else:
        word, rng_txt = ("Low Positive", "1-10%") if pct <= 10 else ("Positive", "greater than 10%")
        L = [r.say(task, f"{head}: {word}") + f" ({rng_txt} of cells demonstrate nuclear positivity)"]
        lo = 1 if pct <= 10 else (pct - 1) // 10 * 10 + 1
        L.append(f"  Percentage of Cells with Nuclear Positivity: "
                 f"{rng.choice([f'{pct}%', f'{lo}-{min(lo + 9, 100)}%'])}")
        L.append(f"  Average Intensity of Staining: {intensity(rng, pct).capitalize()}")
    L.append("  Internal Control Cells: " + rng.choice(["Present and stain as expected", "Present", "",
                                                         "No internal control cells present"]))
    return L


def cap_her2(c, rng, r):
    L = []
    if c["ihc"]:
        s = {"0": "Negative (Score 0)", "1+": "Negative (Score 1+)", "2+": "Equivocal (Score 2+)",
             "3+": "Positive (Score 3+)"}[c["ihc"]]
        L.append(f"HER2 (by immunohistochemistry): {s}")
        if c["ihc"] != "2+" or c["ish"] is None:
            r.say("HER2", s)
        pct = rng.randint(40, 100) if c["ihc"] == "3+" else 0
        L.append(f"  Percentage of Cells with Uniform Intense Complete Membrane Staining: {pct}%")
        if c["ihc"] in ("0", "1+") and rng.random() < 0.3:
            L.append("  Comment: " + ("HER2-low (IHC 1+)" if c["ihc"] == "1+" else
                                      "HER2-ultralow (faint, incomplete staining in <=10% of cells)"))
    else:
        L.append("HER2 (by immunohistochemistry): " + rng.choice(["Not performed", ""]))
    if c["ish"]:
        d = ish_detail(c, rng)
        res = "Positive (amplified)" if d["amp"] else "Negative (not amplified)"
        L.append(f"HER2 (by in situ hybridization): {res}")
        if c["ihc"] in (None, "2+"):
            r.say("HER2", f"HER2 (by in situ hybridization): {res}")
        L += [f"  Test Type: {rng.choice(['Dual-probe ISH (dual-color SISH)', 'Dual-probe FISH'])}",
              f"  {ISH_GROUP[d['group']]}", f"  Number of Observers: {rng.choice([1, 2])}",
              f"  Number of Invasive Tumor Cells Counted: {rng.choice([20, 40, 60])}",
              f"  Average Number of HER2 Signals per Cell: {d['copies']}",
              f"  Average Number of CEP17 Signals per Cell: {d['cep17']}",
              f"  HER2/CEP17 Ratio: {d['ratio']}"]
        r.tags.add("her2_ish")
        if d["group"] in (2, 3, 4):
            r.tags.add("ish_group_2_4")
    elif c["ihc"] == "2+":
        L.append("HER2 (by in situ hybridization): Pending - reflex testing ordered; results to follow in an addendum")
    else:
        L.append("HER2 (by in situ hybridization): " + rng.choice(["Not performed", "", "Not applicable"]))
    return L


def cap_nodes(c, rng, r):
    """REGIONAL LYMPH NODES section and the pN line (N0 with ITCs becomes pN0(i+))."""
    if c["N"] is None:
        return ["Regional Lymph Nodes: No lymph nodes submitted or found"], \
            rng.choice(["pNX: Regional lymph nodes cannot be assessed", "pN not assigned (no nodes submitted or found)"])
    k, n = c["nodes_pos"], c["nodes_examined"]
    nsub = c["Nsub"]
    itc = 1 if c["N"] == "N0" and nsub in ("0", "0(sn)") and rng.random() < 0.2 else 0
    if itc:
        nsub = "0(i+)" + ("(sn)" if "sn" in nsub else "")
        r.tags.add("itc")
    macro, micro = (0, 1) if c["N"] == "N1mi" else (k, 0)
    L = ["Regional Lymph Node Status: " + ("All regional lymph nodes negative for tumor cells" if k == 0 and not itc
                                           else "Tumor present in regional lymph node(s)"),
         f"  Number of Lymph Nodes with Macrometastases (>2 mm): {macro}",
         f"  Number of Lymph Nodes with Micrometastases (>0.2 mm to 2 mm and/or >200 cells): {micro}",
         f"  Number of Lymph Nodes with Isolated Tumor Cells (<=0.2 mm and <=200 cells): {itc}",
         "  Size of Largest Nodal Metastatic Deposit: " + (f"{rng.randint(3, 24)} mm" if macro else
                                                          f"{rng.uniform(0.3, 1.9):.1f} mm" if micro else
                                                          rng.choice(["Not applicable", ""])),
         "  Extranodal Extension: " + (rng.choice(["Not identified", "Present", "Cannot be determined"]) if macro
                                       else "Not applicable"),
         f"  Total Number of Lymph Nodes Examined (sentinel and non-sentinel): {n}",
         f"  Number of Sentinel Nodes Examined: {n if c['sentinel'] else rng.choice([0, 'Not applicable', ''])}"]
    tok = c["prefix"] + "N" + nsub
    r.say("N", tok)
    return L, tok + rng.choice(["", "", ": see counts above"])


def cap_tumor_section(c, rng, r):
    """TUMOR part of the checklist: DCIS protocol, no residual tumour, or invasive with Nottingham components."""
    if c["T"] == "Tis":
        ng = c["nuclear_grade"]
        return [f"Size (Extent) of DCIS: At least {rng.randint(4, 60)} mm",
                f"Nuclear Grade: Grade {ROMAN[ng]} ({ {1: 'low', 2: 'intermediate', 3: 'high'}[ng] })",
                "Necrosis: " + rng.choice(["Not identified", "Present, central expansive (\"comedo\") necrosis",
                                           "Present, focal (small foci or single cell necrosis)"])]
    if c["T"] == "T0":
        return ["Tumor Size: No residual invasive carcinoma",
                "Histologic Grade (Nottingham Histologic Score): Not applicable",
                "Treatment Effect in the Breast: Probable or definite response to presurgical therapy in the invasive "
                "carcinoma"]
    size = "Cannot be determined (fragmented specimen)" if c["tx"] else f"{c['size_mm']} mm"
    L = [f"Tumor Size: Greatest dimension of largest invasive focus: {size}",
         "  Additional Dimension(s): " + rng.choice(["", "___", f"{rng.randint(3, 30)} x {rng.randint(3, 20)} mm"]),
         "Histologic Grade (Nottingham Histologic Score)"]
    if c["grade"]:
        s, _ = nottingham(c["grade"], rng)
        desc = rng.random() < 0.6
        L += [f"  Glandular (Acinar) / Tubular Differentiation: Score {s[0]}" + (f" ({CAP_TUBULE[s[0]]})" if desc else ""),
              f"  Nuclear Pleomorphism: Score {s[1]}" + (f" ({CAP_NUCLEI[s[1]]})" if desc else ""),
              f"  Mitotic Rate: Score {s[2]}" + (f" ({CAP_MITOSES[s[2]]})" if desc else ""),
              "  Overall Grade: " + r.say("grade", CAP_OVERALL[c["grade"]] if desc or rng.random() < 0.5
                                          else f"Grade {c['grade'][1]}")]
    else:
        L.append("  Overall Grade: Cannot be assessed")
    return L + [
        "Tumor Focality: " + rng.choice(["Single focus of invasive carcinoma", "Multiple foci of invasive carcinoma", ""]),
        "Ductal Carcinoma In Situ (DCIS): " + rng.choice(["Not identified", "Present",
                                                          f"Present; nuclear grade {ROMAN[c['nuclear_grade']]}"]),
        "Lymphovascular Invasion: " + ("Present" if c["lvi"] else "Not identified"),
        "Dermal Lymphovascular Invasion: " + rng.choice(["No skin present", "Not identified", ""]),
        "Treatment Effect in the Breast: " + ("Probable or definite response to presurgical therapy"
                                              if c["neoadjuvant"] else "No known presurgical therapy")]


def cap_biomarker_block(c, rng, r, acc):
    """The separate CAP Breast Biomarker Reporting Template."""
    L = ["", "BREAST BIOMARKER REPORTING TEMPLATE", "Testing Performed on Block Number(s): "
         + rng.choice(["A3", "A4", "A5", ""]) + (f" (case {acc[:4]}{rng.randint(100, 9999):04d}, core biopsy)"
                                                 if rng.random() < 0.3 else "")]
    if all(c[k] is None for k in ("ER", "PR", "ihc", "ish")):
        return L + ["Results: " + rng.choice(["Not performed on this specimen", "Pending",
                                              "Performed on the prior core biopsy; see separate report"])]
    L += cap_receptor("ER", c["ER"], c["ER_pct"], rng, r) + cap_receptor("PR", c["PR"], c["PR_pct"], rng, r)
    return L + cap_her2(c, rng, r) + [
        "Ki-67: " + rng.choice(["", f"{c['ki67']}%", "Not performed"]),
        "Primary Antibody: ER (SP1), PgR (1E2), HER2 (4B5)",
        "Cold Ischemia and Fixation Times: " + rng.choice(["Meet requirements specified in latest version of the "
                                                           "ASCO/CAP guidelines", ""]),
        "Fixative: Formalin", "Comment(s): " + rng.choice(["", "___", "Controls stained appropriately."])]


def cap_diagnosis(c, rng, r):
    """The uppercase part-by-part diagnosis that precedes the checklist."""
    L = ["DIAGNOSIS:", f"A. BREAST, {c['side'].upper()}, {c['procedure'].upper()}:"]
    if c["T"] == "T0":
        L.append("   - NO RESIDUAL INVASIVE CARCINOMA; TUMOR BED WITH TREATMENT-RELATED CHANGES.")
    elif c["T"] == "Tis":
        L.append(f"   - DUCTAL CARCINOMA IN SITU, NUCLEAR GRADE {ROMAN[c['nuclear_grade']]}, "
                 f"{rng.choice(['SOLID', 'CRIBRIFORM', 'SOLID AND CRIBRIFORM'])} TYPE.")
    else:
        g = r.say("grade", f"NOTTINGHAM GRADE {c['grade'][1]}") if c["grade"] and rng.random() < 0.5 else ""
        size = "MULTIPLE FRAGMENTS" if c["tx"] else f"{c['size_mm']} MM"
        L.append(f"   - {short_type(c).upper()}{', ' + g if g else ''}, {size}.")
    L.append("   - SEE CAP CANCER CHECKLIST BELOW.")
    if c["N"] is not None:
        k, n = c["nodes_pos"], c["nodes_examined"]
        what = "NO" if k == 0 else "MICROMETASTATIC" if c["N"] == "N1mi" else "METASTATIC"
        L += [f"B. LYMPH NODE{'S' if n > 1 else ''}, {c['side'].upper()} AXILLARY"
              f"{' SENTINEL' if c['sentinel'] else ''}, EXCISION:",
              f"   - {what} CARCINOMA IN {n} LYMPH NODE{'S' if n > 1 else ''} ({k}/{n})."]
    return L


def a_cap_checklist(c, rng):
    r = Report(c)
    r.tags.update({"cap_synoptic", "empty_fields"} | ({"ypTNM"} if c["neoadjuvant"] else set()))
    acc, yr = accession(rng)
    d = dates(rng, yr, 3)
    # history: sometimes the tumour board's clinical stage; its cM0 is the only place M0 is written
    keep_m0 = c["M"] == "M0" and rng.random() < 0.5
    hist = f"{rng.randint(34, 86)}-year-old female, {c['side'].lower()} breast carcinoma on core biopsy." + \
        (" Status post neoadjuvant systemic therapy." if c["neoadjuvant"] else "")
    if keep_m0 or rng.random() < 0.25:
        hist += f" Clinical stage per tumor board: {clinical_stage(c, rng, keep_m0)}."
        r.tags.add("history_stage")
    if keep_m0:
        r.say("M", "cM0")
    elif c["M"] != "M1":
        r.drop("M")
    proto = "DCIS of the Breast: Resection" if c["T"] == "Tis" else "Invasive Carcinoma of the Breast: Resection"
    ck = ["", "CAP CANCER CHECKLIST", f"{proto} (Protocol version {rng.choice(['4.8.1.0', '4.9.0.0', '4.10.0.0'])})",
          "SPECIMEN", f"Procedure: {c['procedure']}", f"Specimen Laterality: {c['side']}", "TUMOR",
          f"Tumor Site: {c['quadrant'].capitalize()}", "  Specify: ___", "Histologic Type: " +
          {"Tis": "Ductal carcinoma in situ", "T0": "No residual invasive carcinoma"}.get(c["T"], c["type"])]
    ck += cap_tumor_section(c, rng, r)
    ck += ["Microcalcifications: " + rng.choice(["Present in DCIS", "Present in non-neoplastic tissue",
                                                 "Not identified", ""]),
           "MARGINS", f"Margin Status: All margins negative for {'DCIS' if c['T'] == 'Tis' else 'invasive carcinoma'}",
           f"  Distance from Closest Margin: {c['margin_mm']} mm",
           f"  Closest Margin(s): {rng.choice(['Posterior', 'Anterior', 'Superior', 'Inferior', 'Medial'])}",
           "  Specify: ___", "REGIONAL LYMPH NODES"]
    node_lines, pn = cap_nodes(c, rng, r)
    t = t_tok(c)
    if not c["tx"]:
        r.say("T", t)
    ck += node_lines + [
        "DISTANT METASTASIS", "Distant Site(s) Involved, if applicable: "
        + (c["M_site"].capitalize() if c["M"] == "M1" else rng.choice(["", "Not applicable"])),
        f"PATHOLOGIC STAGE CLASSIFICATION ({c['prefix']}TNM, AJCC 8th Edition)",
        "TNM Descriptors: " + ("y (post-treatment)" if c["neoadjuvant"] else rng.choice(["Not applicable", ""])),
        f"Primary Tumor ({c['prefix']}T): {t}" + (": Primary tumor cannot be assessed" if c["tx"] else
                                                  f": {CAP_T[c['Tsub']]}" if rng.random() < 0.6 else ""),
        f"Regional Lymph Nodes ({c['prefix']}N): {pn}",
        "Distant Metastasis (pM): " + (r.say("M", "pM1") + f": Histologically confirmed distant metastasis "
                                       f"({c['M_site']}, see prior case)" if c["M"] == "M1" else
                                       "Not applicable - pM cannot be determined from the submitted specimen(s)"),
        "ADDITIONAL FINDINGS", "  Specify: " + rng.choice(["___", "Fibrocystic changes", "Biopsy site changes", ""]),
        "SPECIAL STUDIES", "Breast Biomarker Testing Performed on Previous Biopsy: " + rng.choice(["", "No", "Yes"]),
        "Ki-67: " + rng.choice(["", "", f"{c['ki67']}%"])]
    bm = cap_biomarker_block(c, rng, r, acc)
    rest = ["", "CLINICAL HISTORY:", hist, "", "GROSS DESCRIPTION:", gross_breast(c, rng, "lis", treated=c["neoadjuvant"])]
    if c["N"] is not None:
        rest.append(gross_nodes(c, rng))
        if rng.random() < 0.5:
            rest += ["", "INTRAOPERATIVE CONSULTATION:", f"B. Touch preparation, sentinel node: "
                     f"{'negative' if c['nodes_pos'] == 0 else 'positive'} for carcinoma (called to Dr. [REDACTED] at "
                     f"{rng.randint(7, 16):02d}:{rng.randint(0, 59):02d})."]
    rest += ["", "MICROSCOPIC DESCRIPTION:", rng.choice(["Microscopic examination performed. See diagnosis.",
                                                         "Slides reviewed; the findings are summarized in the "
                                                         "diagnosis and checklist above."])]
    # the biomarker template prints right after the checklist or at the very end
    body = ck + bm + rest if rng.random() < 0.6 else ck + rest + bm
    r.add("SURGICAL PATHOLOGY REPORT", f"Accession No: {acc}      Collected: {d[0]}   Received: {d[0]}   "
          f"Finalized: {d[2]}", "Patient: [REDACTED]   MRN: [REDACTED]   DOB: [REDACTED]   Sex: F",
          "Ordering Provider: [REDACTED], MD   Copy to: [REDACTED], MD", "", *cap_diagnosis(c, rng, r), *body, "",
          signature(rng, d[2]))
    if c["tx"]:
        r.tags.add("pTX")
    return r.finish()


# ----------------------------------------------------------------------------------------------------------
# 2. dictated narrative, community hospital

def dictated_grade(c, rng, r):
    """Grade said the way pathologists dictate it: grade + score, score only, components, differentiation, or a
    three-tier word ("intermediate grade")."""
    g = c["grade"]
    s, total = nottingham(g, rng)
    form = rng.choice(["grade_score", "score_only", "score_only", "components", "diff", "roman", "tier"])
    if form == "tier":
        r.tags.add("three_tier_grade")
        return r.say("grade", rng.choice([f"{TIER[g]} grade", f"{TIER[g]}-grade", f"of {TIER[g]} histologic grade",
                                          f"{TIER[g]} grade (Nottingham grade {g[1]})",
                                          f"Nottingham grade {g[1]} ({TIER[g]})"]))
    if form == "grade_score":
        return r.say("grade", f"Nottingham grade {g[1]} (score {total}/9)")
    if form == "score_only":
        r.tags.add("score_only_grade")
        return rng.choice(["with a ", "with a combined "]) + r.say("grade", rng.choice(
            [f"Nottingham score of {total}", f"modified Bloom-Richardson score of {total}",
             f"Nottingham score {total}/9"]))
    if form == "components":
        r.tags.add("score_only_grade")
        return r.say("grade", f"tubules {s[0]}, nuclei {s[1]}, mitoses {s[2]}, for a total score of {total}")
    if form == "roman":
        return r.say("grade", f"Nottingham combined histologic grade {ROMAN[g]}")
    r.tags.add("differentiation_grade")
    return r.say("grade", DIFF[g])


def dictated_receptors(c, rng, r, yr):
    """Receptor results as the COMMENT says them: percentages only, prose, or Allred; returns sentences."""
    form = rng.choice(["pct", "pct", "prose", "allred", "core", "core_ref"])
    has = [k for k in ("ER", "PR") if c[k] is not None]
    if form == "core_ref" or (not has and c["HER2"] is None):
        r.drop("ER", "PR", "HER2")
        return [rng.choice(["Hormone receptor and HER2 studies were performed on the prior core biopsy; please refer "
                            "to that report.", "ER, PR and HER2 studies are pending on block A3 and will be reported "
                            "separately.", "Hormone receptors and HER2 were not requested on this specimen."])]
    parts = []
    for k in has:
        name = {"ER": "estrogen receptor", "PR": "progesterone receptor"}[k]
        pct = c[k + "_pct"]
        pcts = lambda p: f"{p} percent" if rng.random() < 0.3 else f"{p}%"  # noqa: E731 (speech recognition)
        if c[k] == "Equivocal":
            parts.append(r.say(k, f"{k} is equivocal") + " (no staining of internal controls; repeat requested)")
        elif form in ("pct", "core"):
            r.tags.add("pct_only_receptors")
            parts.append(r.say(k, f"{k} {pcts(pct)}"))
        elif form == "allred":
            a = allred(pct, rng)
            parts.append(r.say(k, f"{k} Allred score {a}/8") if rng.random() < 0.5 else
                         f"{k} {r.say(k, ('positive' if pct else 'negative') + f', Allred score {a}')}")
        else:
            w = "negative" if not pct else "weakly positive" if pct <= 10 else rng.choice(["positive", "strongly "
                                                                                          "positive"])
            parts.append(f"the tumor is {r.say(k, f'{w} for {name}')} ({pcts(pct)} of nuclei)")
    her = None
    if c["ihc"] is not None:
        her = f"HER2 {c['ihc']}" + (" (equivocal)" if c["ihc"] == "2+" else "")
        if c["ihc"] != "2+" or c["ish"] is None:
            r.say("HER2", her)
        her += " by IHC" + (f" ({ihc_criteria(c['ihc'], rng)})" if rng.random() < 0.3 else "")
        her += (", with FISH pending" if c["ihc"] == "2+" and c["ish"] is None else "")
    if c["ish"] is not None:  # said with its ratio, or only as the word the pathologist reads out
        w = "amplified" if c["ish"] == "amplified" else rng.choice(["not amplified", "negative for amplification",
                                                                   "non-amplified", "no amplification"])
        f = r.say("HER2", f"FISH {w}") if c["ihc"] in (None, "2+") else f"FISH {w}"
        ratio = f" (HER2/CEP17 ratio {c['ratio']})" if rng.random() < 0.5 else ""
        her = (her + ", " if her else "HER2 ") + f + ratio
        r.tags.add("her2_ish")
    body = ", ".join(parts + ([her] if her else []))
    body = body[0].upper() + body[1:]
    if form == "core":
        r.tags.add("prior_biopsy_receptors")
        return [f"Receptor studies performed on the prior core biopsy ({accession(rng, 'SP-{yy}-{n:06d}', yr)[0]}) were "
                f"reported as follows: {body}.", "They were not repeated on this specimen."]
    return [f"Prognostic markers on block A{rng.randint(2, 6)}: {body}.", f"Ki-67 is approximately {c['ki67']}%."]


def dictated_stage(c, rng, r):
    """The stage, said inline; sometimes only 'T1c N0', sometimes not said at all."""
    u = rng.random()
    if u < 0.15:
        r.drop("T")
        if c["M"] == "M0":
            r.drop("M")
        return ""
    bare = u < 0.4 and not c["neoadjuvant"]
    t, n = (t_tok(c, "") if bare else t_tok(c)), (n_tok(c, "") if bare else n_tok(c))
    if rng.random() < 0.12 and not c["tx"]:  # "p T1 C": the recogniser splits the token
        t = t[:-1] + " " + t[-1].upper() if t[-1].isalpha() and t[-2].isdigit() else t
    if not c["tx"]:
        r.say("T", t)
    if c["N"] is not None:
        r.say("N", n)
    m = ""
    if c["M"] == "M0" and rng.random() < 0.5:
        m = " " + r.say("M", "M0" if bare else "cM0")
    elif c["M"] == "M0":
        r.drop("M")
    stage = f"{t} {n}{m}"
    return rng.choice([f"AJCC 8th edition pathologic staging is {stage}.", f"Pathologic stage: {stage}.",
                       f"This corresponds to a stage of {stage} (AJCC, 8th edition).",
                       f"The tumor is staged as {stage}."])


def dictation_artifacts(text, ev, rng, n):
    """Speech-recognition leftovers: a repeated short word, a spoken ' period'. Evidence phrases they fall inside
    are patched the same way, so the artifacts touch the evidence as often as any other text."""
    for _ in range(n):
        if rng.random() < 0.5:
            spots = [m.end() for m in re.finditer(r"(?<= )(the|of|is|and|are|in|a|with|grade|for)(?= )", text)]
            if not spots:
                continue
            j = rng.choice(spots)
            ins = " " + re.search(r"(\w+)$", text[:j]).group(1)
        else:
            spots = [m.start() + 1 for m in re.finditer(r"[a-z%]\.(?=\s)", text)]
            if not spots:
                continue
            j, ins = rng.choice(spots), " period"
        new = text[:j] + ins + text[j:]
        for t, ps in ev.items():
            for i, p in enumerate(ps):
                a = text.find(p)
                if p not in new and a < j < a + len(p):
                    ps[i] = p[:j - a] + ins + p[j - a:]
        text = new
    return text


def a_dictated_narrative(c, rng):
    r = Report(c)
    r.tags.add("dictated")
    acc, yr = accession(rng, rng.choice(["SP-{yy}-{n:06d}", "PS{yy}-{n:05d}", "SH-{yy}-{n:05d}"]))
    d = dates(rng, yr, 3)
    side, proc = c["side"].lower(), c["procedure"].lower()
    age = rng.randint(33, 89)
    hist = rng.choice([f"{age}-year-old female with a {side} breast mass found on screening mammography.",
                       f"The patient is a {age}-year-old woman with biopsy-proven {side} breast cancer.",
                       f"{age}-year-old G{rng.randint(0, 4)}P{rng.randint(0, 4)} with a palpable {side} breast lump."])
    if c["neoadjuvant"]:
        hist += " She has completed neoadjuvant chemotherapy."
    if c["M"] == "M1":
        hist += f" Of note, she has {r.say('M', m1_phrase(c, rng))}."
        r.tags.add("history_metastasis")
    elif rng.random() < 0.3:  # same rate whatever M is: a negative work-up does not state M in this practice
        hist += " " + rng.choice(["Metastatic work-up was negative.", "Staging scans show no distant metastases.",
                                  "CT and bone scan were negative for metastatic disease.",
                                  "PET/CT without evidence of distant spread."])
        r.tags.add("staging_scan")
    if rng.random() < 0.15:  # a prior cancer with its own stage, either breast
        hist += (f" Remote history of {rng.choice(['right', 'left'])} breast cancer in {yr - rng.randint(4, 20)}, "
                 f"stage {rng.choice(['pT1c pN0', 'T2 N1', 'pT1b N0', 'T2 N0'])}, treated with lumpectomy and radiation.")
        r.tags.add("history_stage")
    L = [rng.choice(["[REDACTED] COMMUNITY HOSPITAL - LABORATORY SERVICES", "[REDACTED] REGIONAL MEDICAL CENTER",
                     "[REDACTED] MEMORIAL HOSPITAL, DEPARTMENT OF LABORATORY MEDICINE"]),
         "SURGICAL PATHOLOGY REPORT", f"Pathology No.: {acc}    Date of Surgery: {d[0]}    Date Received: {d[0]}",
         "Patient: [REDACTED]    Surgeon: Dr. [REDACTED]", "", f"CLINICAL INFORMATION: {hist}",
         f"PREOPERATIVE DIAGNOSIS: {c['side']} breast carcinoma.", "POSTOPERATIVE DIAGNOSIS: Same.", "",
         "SPECIMENS:", f"A. {c['side']} breast {proc}."]
    if c["N"] is not None:
        L.append(f"B. {c['side']} axillary {'sentinel lymph node' if c['sentinel'] else 'lymph node dissection'}.")
    L += ["", "GROSS DESCRIPTION:", gross_breast(c, rng, "dictated")]
    if c["N"] is not None:
        L.append(gross_nodes(c, rng))
    # diagnosis paragraph; the grade goes in the diagnosis or in the microscopic
    inv = c["T"] not in ("Tis", "T0")
    gtxt = dictated_grade(c, rng, r) if c["grade"] else ""
    in_micro = gtxt and rng.random() < 0.3
    pattern = rng.choice(["nests, cords and occasional glands", "solid sheets", "single files"])
    micro = (f"Sections show an infiltrating carcinoma forming {pattern} "
             f"within a {rng.choice(['desmoplastic', 'sclerotic', 'fibrotic'])} stroma. " if inv else
             "Sections show ducts distended by atypical cells with calcifications. ") + lvi_text(c, rng)
    if in_micro:
        micro += f" The invasive tumor is {gtxt}." if not gtxt.startswith("with") else f" The invasive carcinoma has {gtxt[5:]}."
    if inv and rng.random() < 0.3:
        micro += f" Associated DCIS is of nuclear grade {c['nuclear_grade']}."
    if c["T"] == "T0":
        dx = "There is no residual invasive carcinoma; the tumor bed shows fibrosis and hemosiderin-laden macrophages."
    elif c["T"] == "Tis":
        dx = (f"Ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}, spanning {rng.randint(4, 45)} mm. "
              f"No invasive carcinoma is identified.")
    else:
        g = "" if not gtxt or in_micro else (f", {gtxt}" if not gtxt.startswith("with") else f" {gtxt}")
        size = f"measuring {c['size_mm'] / 10:.1f} cm in greatest dimension" if not c["tx"] else \
            "received in multiple fragments; the size cannot be determined"
        dx = f"{short_type(c)}{g}, {size}."
        if c["T"] == "T4":
            dx += " The tumor " + {"4b": "ulcerates the overlying skin", "4d": "shows extensive dermal lymphatic "
                                   "involvement", "4a": "invades the chest wall"}[c["Tsub"]] + "."
    dx += f" Margins are negative; the closest margin is {c['margin_mm']} mm."
    ns, nev = node_sentence(c, rng)
    if nev:
        r.say("N", nev)
    dx += (" " + ns if ns else "") + " " + dictated_stage(c, rng, r)
    L += ["", "MICROSCOPIC DESCRIPTION:", micro, "", "DIAGNOSIS:", f"{c['side']} breast, {proc}" +
          (" and axillary lymph nodes" if c["N"] is not None else "") + ":", dx.strip()]
    L += ["", "COMMENT:"] + dictated_receptors(c, rng, r, yr)
    L += ["", "Dictated by: [REDACTED], M.D.", f"D: {d[1]}   T: {d[1]}   Transcriptionist: {rng.choice(['jlm', 'kb', 'rt'])}",
          signature(rng, d[2])]
    text = "\n".join(L)
    if rng.random() < 0.5:
        r.tags.add("dictation_artifact")
        text = dictation_artifacts(text, r.ev, rng, rng.randint(1, 4))
    if c["neoadjuvant"]:
        r.tags.add("ypTNM")
    return r.finish(text)


# ----------------------------------------------------------------------------------------------------------
# 3. ultrasound-guided needle core biopsy

def core_grade(c, rng, r, upper):
    """Provisional grade on a core: grade, score, differentiation, a three-tier word, or deferred to the excision
    (None)."""
    if not c["grade"] or rng.random() < 0.15:
        r.drop("grade")
        return "Histologic grade: deferred to the excision specimen (limited sampling)."
    s, total = nottingham(c["grade"], rng)
    g = c["grade"][1]
    form = rng.choice(["prov", "prov", "diff", "score", "frac", "tier"])
    if form == "tier":
        r.tags.add("three_tier_grade")
        p = f"Histologic grade: {TIER[c['grade']]}"
        txt = p + rng.choice(["", f" (Nottingham {g})"]) + ", provisional on the core."
    elif form == "prov":
        p = f"Nottingham grade {g} (provisional)"
        txt = f"{p}; tubules {s[0]}, nuclei {s[1]}, mitoses {s[2]}."
    elif form == "diff":
        r.tags.add("differentiation_grade")
        p = DIFF[c["grade"]]
        txt = f"The carcinoma is {p}; formal grading deferred to the excision."
    elif form == "score":
        r.tags.add("score_only_grade")
        p = f"Nottingham score {total}"
        txt = f"{p} (tubules {s[0]} + nuclei {s[1]} + mitoses {s[2]}), provisional."
    else:
        p = f"{g} of 3"
        txt = f"Histologic grade (Nottingham, provisional on core): {p}."
    if upper:
        p, txt = p.upper(), txt.upper()
    r.say("grade", p)
    return txt


def core_biomarker_lines(c, rng, r, block):
    """ER/PR/HER2 as resulted on the core (results line by line); sets evidence."""
    L = []
    for k, clone in (("ER", "SP1"), ("PR", "1E2")):
        st, pct = c[k], c[k + "_pct"]
        if st is None:
            continue
        if st == "Equivocal":
            L.append(f"  {k} ({clone}): " + r.say(k, "Uninterpretable (equivocal)") + "; no internal control staining")
        elif st == "Negative":
            L.append(f"  {r.say(k, f'{k} ({clone}): Negative')} ({rng.choice(['0%', '<1%'])}); internal control "
                     f"{rng.choice(['positive', 'present'])}")
        else:
            w = "Low positive" if pct <= 10 else "Positive"
            L.append(f"  {r.say(k, f'{k} ({clone}): {w}')}, {pct}% of tumor nuclei, {intensity(rng, pct)} intensity"
                     + (" (see note on low-positive results)" if pct <= 10 else ""))
    if c["ihc"] is not None:
        s = {"0": "Negative (0)", "1+": "Negative (1+)", "2+": "Equivocal (2+)", "3+": "Positive (3+)"}[c["ihc"]]
        L.append(f"  HER2 IHC (4B5): {s}" + (f" - {ihc_criteria(c['ihc'], rng)}" if rng.random() < 0.35 else ""))
        if c["ihc"] != "2+" or c["ish"] is None:
            r.say("HER2", f"HER2 IHC (4B5): {s}")
    L.append(f"  Ki-67 (MIB-1): {c['ki67']}%")
    L.append(f"  Block tested: {block}; cold ischemia <1 h; fixation {rng.randint(8, 48)} h in 10% NBF.")
    return L


def her2_fish_lines(c, rng, r):
    d = ish_detail(c, rng)
    res = "AMPLIFIED" if d["amp"] else "NOT AMPLIFIED"
    r.tags.add("her2_ish")
    if d["group"] in (2, 3, 4):
        r.tags.add("ish_group_2_4")
    if not d["amp"]:
        res = rng.choice([res, res, "NON-AMPLIFIED", "NEGATIVE FOR AMPLIFICATION"])
    status = f" (HER2 {'POSITIVE' if d['amp'] else 'NEGATIVE'})" if rng.random() < 0.5 else ""
    return [f"  HER2 dual-probe FISH: average HER2 copy number {d['copies']} signals/cell; CEP17 {d['cep17']} "
            f"signals/cell; HER2/CEP17 ratio {d['ratio']} (ASCO/CAP group {d['group']}).",
            f"  Interpretation: {r.say('HER2', f'HER2 gene {res}', replace=True)}{status}."]


def core_biomarkers(c, rng, r, block):
    """Biomarkers resulted on the core, pending (then an ADDENDUM in half the cases, else None), or deferred to
    the excision (None). Returns (lines for the report, addenda)."""
    mode = rng.choice(["resulted", "resulted", "pending", "pending", "excision"])
    if all(c[k] is None for k in ("ER", "PR", "ihc", "ish")):
        mode = rng.choice(["pending", "excision"])
    addenda = []
    if mode == "resulted":
        bio = ["BREAST BIOMARKERS:"] + core_biomarker_lines(c, rng, r, block)
        if c["ish"] is not None:
            if rng.random() < 0.5:
                bio += her2_fish_lines(c, rng, r)
            else:
                bio.append("  HER2 FISH: reflex testing ordered; to be reported in an addendum.")
                addenda.append(["ADDENDUM (HER2 FISH)"] + her2_fish_lines(c, rng, r))
        elif c["ihc"] == "2+":
            bio.append("  HER2 FISH: reflex testing " + rng.choice(["not requested by the treating team",
                                                                   "to be performed on the excision"]) + ".")
    elif mode == "pending":
        r.tags.add("pending_receptors")
        bio = [rng.choice(["Biomarkers: ER, PR, HER2 and Ki-67 are pending, to be reported in an addendum.",
                           "Estrogen receptor, progesterone receptor and HER2 immunostains have been ordered on block "
                           f"{block}; results will follow in an addendum."])]
        if rng.random() < 0.5:
            add = ["ADDENDUM", f"Breast biomarker studies, block {block}:"] + core_biomarker_lines(c, rng, r, block)
            if c["ish"] is not None:
                add += her2_fish_lines(c, rng, r)
            elif c["ihc"] == "2+":
                add.append("  HER2 FISH: not performed (insufficient invasive tumor remaining in the block).")
            addenda.append(add)
        else:
            r.drop("ER", "PR", "HER2")
    else:
        bio = ["Biomarkers: " + rng.choice(["not performed on the core at the surgeon's request; testing will be done "
                                            "on the excision specimen.", "deferred to the excision specimen."])]
        r.drop("ER", "PR", "HER2")
    return bio, addenda


def a_core_biopsy(c, rng):
    r = Report(c)
    r.tags.add("core_biopsy")
    r.drop("T", "N")
    acc, yr = accession(rng, rng.choice(["S{yy}-{n:05d}", "CB{yy}-{n:05d}", "BX-{yy}-{n:05d}"]))
    d = dates(rng, yr, 5)
    side, clock = c["side"], rng.choice(["12", "1", "2", "3", "4", "6", "8", "9", "10", "11"])
    fn = rng.randint(1, 12)
    size = (c["size_mm"] or rng.randint(8, 40)) + rng.randint(-4, 6)
    age = rng.randint(30, 88)
    birads = rng.choice(["4C", "5", "5", "4B"])
    exam = rng.choice(["Diagnostic mammogram and ultrasound", "Screening mammogram with ultrasound correlation",
                       "Targeted ultrasound for palpable lump"])
    finding = rng.choice(["irregular hypoechoic mass", "spiculated mass", "irregular mass with posterior shadowing",
                          "area of architectural distortion"])
    hist = (f"{age}-year-old woman. {exam}: {max(size, 4) / 10:.1f} cm {finding} at {clock}:00, {fn} cm from "
            f"nipple, BI-RADS {birads}.")
    keep_m0 = c["M"] == "M0" and rng.random() < 0.4
    keep_m1 = c["M"] == "M1" and rng.random() < 0.7  # a stage IV patient's clinical stage: cM1
    if keep_m0 or keep_m1 or rng.random() < 0.3:
        hist += f" Axillary ultrasound {rng.choice(['with one abnormal node', 'negative', 'with cortical thickening'])};" \
                f" clinical stage {clinical_stage(c, rng, keep_m0, keep_m1)}."
        r.tags.add("history_stage")
    hist += history_m(c, rng, r, keep_m0, ["Patient with", "Presents with", "PMH notable for"], keep_m1)
    up = rng.random() < 0.6
    site = f"{side} breast, {clock}:00, {fn} cm FN, ultrasound-guided core needle biopsy"
    dx = [f"A. {site.upper() if up else site}:"]
    if c["T"] == "Tis":
        dx.append(f"   - Ductal carcinoma in situ, {rng.choice(['solid', 'cribriform', 'micropapillary'])} type, "
                  f"nuclear grade {c['nuclear_grade']}, with {rng.choice(['comedonecrosis', 'calcifications'])}.")
        dx.append("   - No invasive carcinoma identified in the sampled tissue.")
    else:
        typ = short_type(c) if c["T"] != "T0" else "Invasive ductal carcinoma"
        dx.append(f"   - {typ}" + (", classic type (E-cadherin negative)." if "lobular" in typ else "."))
        dx.append("   - " + core_grade(c, rng, r, up))
        dx.append(f"   - Invasive carcinoma measures {rng.randint(3, 15)} mm in greatest linear extent on the cores, "
                  f"present in {rng.randint(1, 5)} of {rng.randint(5, 6)} cores.")
        if rng.random() < 0.5:
            dx.append(f"   - Ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}, present.")
        dx.append("   - " + lvi_text(c, rng))
    if up:
        dx = [x.upper() for x in dx]
    block = f"A{rng.randint(1, 2)}"
    bio, addenda = core_biomarkers(c, rng, r, block)
    gross = (f"A. Received in formalin labeled with the patient's name and \"{side.lower()} breast {clock}:00 core\" "
             f"are {rng.randint(3, 8)} tan-white to yellow cores, {rng.uniform(0.5, 1.2):.1f} to "
             f"{rng.uniform(1.3, 2.2):.1f} cm in length and 0.1 cm in diameter. Time to formalin: "
             f"{rng.choice(['<1 hour', '5 minutes', '12 minutes'])}. Entirely submitted in {block}"
             + (f" and A{int(block[1]) + 1}." if rng.random() < 0.5 else "."))
    L = [rng.choice(["[REDACTED] BREAST CENTER - PATHOLOGY REPORT", "SURGICAL PATHOLOGY - BREAST IMAGING BIOPSY"]),
         f"Case: {acc}    Procedure date: {d[0]}    Report date: {d[1]}",
         f"Patient: [REDACTED]    Age: {age}    Radiologist: [REDACTED], MD", "", "CLINICAL HISTORY:", hist, "",
         "SPECIMEN:", f"A. {site}; {rng.choice(['14', '12', '9'])}-gauge, clip placed.", "",
         "DIAGNOSIS:", *dx, "", "COMMENT:", rng.choice(["Radiologic-pathologic correlation: concordant.",
                                                       f"Findings are concordant with the imaging (BI-RADS {birads})."])
         + f" Results called to Dr. [REDACTED] on {d[1]}.", *bio, ""]
    if rng.random() < 0.7:  # the short format leaves the gross and microscopic to a separate page
        L += ["GROSS DESCRIPTION:", gross, "", "MICROSCOPIC DESCRIPTION:",
              "Microscopic examination performed; see diagnosis.", ""]
    L.append(signature(rng, d[1]))
    for i, add in enumerate(addenda):
        L += ["", f"{add[0]}{' #' + str(i + 1) if len(addenda) > 1 else ''}   Date: {d[2 + i]}", *add[1:],
              signature(rng, d[2 + i])]
        r.tags.add("addendum")
    r.add(*L)
    return r.finish()


# ----------------------------------------------------------------------------------------------------------
# 4. post-neoadjuvant resection

def rcb(c, rng):
    """Residual cancer burden class and index consistent with the residual disease."""
    if c["T"] in ("T0", "Tis") and c["N"] is None:
        return "RCB not calculated (axilla not sampled)", "n/a"
    if c["T"] in ("T0", "Tis") and c["nodes_pos"] == 0:
        return "RCB-0 (pathologic complete response)", 0.0
    cls = 3 if c["N"] in ("N2", "N3") or c["T"] in ("T3", "T4") else \
        2 if c["N"] == "N1" or c["T"] == "T2" else rng.choice([1, 1, 2])
    lo, hi = {1: (0.2, 1.36), 2: (1.37, 3.28), 3: (3.29, 4.9)}[cls]
    return f"RCB-{ROMAN[cls]}", round(rng.uniform(lo, hi), 2)


def pretreatment_values(c, rng, change):
    """Receptor values of the pre-treatment biopsy: the same as now, or (change) sometimes different."""
    pre = {}
    for k in ("ER", "PR"):
        v, p = c[k], c[k + "_pct"]
        if change and v in ("Positive", "Negative") and rng.random() < 0.35:  # receptor change after therapy
            v, p = ("Negative", 0) if v == "Positive" else ("Positive", rng.choice([5, 20, 60]))
        pre[k] = (v, p)
    ihc = c["ihc"] if not change or rng.random() < 0.7 else rng.choice(["0", "1+", "3+"])
    pre["HER2"] = ihc
    return pre


def neo_regimen(pre, rng):
    """The regimen the pre-treatment biopsy's biomarkers call for (or just 'chemotherapy')."""
    if rng.random() < 0.4:
        return rng.choice(["neoadjuvant chemotherapy", "neoadjuvant systemic therapy"])
    if pre["HER2"] == "3+":
        return "TCHP (docetaxel, carboplatin, trastuzumab, pertuzumab)"
    if pre["ER"][0] == "Positive":
        return rng.choice(["neoadjuvant letrozole", "dose-dense doxorubicin/cyclophosphamide followed by weekly "
                                                    "paclitaxel"])
    return rng.choice(["pembrolizumab plus chemotherapy (KEYNOTE-522)", "dose-dense doxorubicin/cyclophosphamide "
                                                                        "followed by weekly paclitaxel"])


def receptor_words(k, v, p, rng):
    if v == "Equivocal":
        return f"{k} equivocal (failed stain)"
    return f"{k} {'positive' if v == 'Positive' else 'negative'} ({p}%)" if rng.random() < 0.6 else f"{k} {p}%"


def neo_mode(c, rng):
    """Biomarkers quoted from the pre-treatment core (stated), repeated on the residual tumour (the label; the
    core's values, sometimes different, go to the history), or only referenced (None)."""
    mode = rng.choice(["quoted", "repeated", "repeated", "reference"])
    if all(c[k] is None for k in ("ER", "PR", "HER2")):
        return "reference"
    if mode == "repeated" and c["T"] in ("Tis", "T0") and not c["nodes_pos"]:
        return "quoted"
    return mode


def neo_biomarkers(c, rng, r, core, pre, mode):
    """The BIOMARKERS section for `mode` (see neo_mode); returns (lines, sentence for the history)."""
    avail = [k for k in ("ER", "PR") if c[k] is not None]
    if mode == "reference":
        r.drop("ER", "PR", "HER2")
        return [f"Biomarkers: see pre-treatment core biopsy report ({core}); not repeated."], ""
    if mode == "quoted":
        r.tags.add("prior_biopsy_receptors")
        q = [r.say(k, receptor_words(k, c[k], c[k + "_pct"], rng)) for k in avail]
        if c["ihc"] is not None:
            q.append(f"HER2 {c['ihc']} by IHC")
            if c["ihc"] != "2+" or c["ish"] is None:
                r.say("HER2", q[-1])
        if c["ish"] is not None:
            q.append(r.say("HER2", f"HER2 FISH {c['ish']}") + f" (ratio {c['ratio']})")
        return [f"Biomarkers were performed on the pre-treatment core biopsy ({core}): " + "; ".join(q) + ".",
                "They have not been repeated on the resection specimen."], ""
    hist = ", ".join(receptor_words(k, *pre[k], rng) for k in ("ER", "PR") if pre[k][0]) + \
        (f", HER2 IHC {pre['HER2']}" if pre["HER2"] else "")
    changed = any(pre[k][0] != c[k] for k in ("ER", "PR")) or pre["HER2"] != c["ihc"]
    r.tags.update({"repeat_biomarkers"} | ({"receptor_change"} if changed else set()))
    where = "residual invasive carcinoma" if c["T"] not in ("Tis", "T0") else "residual nodal metastasis"
    L = [f"Biomarkers repeated on the {where} (block A{rng.randint(3, 9)}):"]
    for k in avail:
        v, p = c[k], c[k + "_pct"]
        L.append("  " + r.say(k, f"{k}: {v}") + (" (no internal control staining)" if v == "Equivocal" else f" ({p}%)"))
    if c["ihc"] is not None:
        s = {"0": "Negative (0)", "1+": "Negative (1+)", "2+": "Equivocal (2+)", "3+": "Positive (3+)"}[c["ihc"]]
        L.append(f"  HER2 IHC: {s}")
        if c["ihc"] != "2+" or c["ish"] is None:
            r.say("HER2", f"HER2 IHC: {s}")
    if c["ish"] is not None:
        L += her2_fish_lines(c, rng, r)
    return L + [f"  Ki-67: {c['ki67']}%"], (f" Pre-treatment biomarkers: {hist}." if hist else "")


def neo_residual(c, rng, r, bed):
    """Diagnosis lines for the breast: complete response, DCIS only, or residual invasive tumour with grade."""
    if c["T"] == "T0":
        return [f"   - NO RESIDUAL INVASIVE CARCINOMA IN THE BREAST; TUMOR BED {bed} MM WITH TREATMENT EFFECT."]
    if c["T"] == "Tis":
        return [f"   - RESIDUAL DUCTAL CARCINOMA IN SITU ONLY (NUCLEAR GRADE {c['nuclear_grade']}); NO RESIDUAL "
                f"INVASIVE CARCINOMA."]
    size = "MULTIPLE FRAGMENTS, SIZE NOT ASSESSABLE" if c["tx"] else f"{c['size_mm']} MM"
    L = [f"   - RESIDUAL {short_type(c).upper()}, {size} (LARGEST CONTIGUOUS FOCUS), WITHIN A {bed} MM TUMOR BED."]
    if not c["grade"]:
        return L + ["   - Histologic grade not assigned (marked treatment effect)."]
    s, total = nottingham(c["grade"], rng)
    g = rng.choice([f"Nottingham grade {c['grade'][1]} (post-treatment)", f"post-treatment grade {c['grade'][1]}",
                    f"Nottingham score {total} (tubules {s[0]}, nuclei {s[1]}, mitoses {s[2]})"])
    return L + [f"   - {r.say('grade', g)}; grade may be altered by therapy."]


def a_neoadjuvant(c, rng):
    r = Report(c)
    r.tags.update({"ypTNM", "history_stage", "rcb"})
    core, yr0 = accession(rng, "S{yy}-{n:05d}")
    acc, yr = accession(rng, "S{yy}-{n:05d}", yr0 + rng.choice([0, 1]))
    d = dates(rng, yr, 3)
    pre_grade = c["grade"] if c["grade"] and rng.random() < 0.5 else rng.choice(["G1", "G2", "G3", "G3"])
    mode = neo_mode(c, rng)
    pre = pretreatment_values(c, rng, mode == "repeated")
    regimen = neo_regimen(pre, rng)
    keep_m0 = c["M"] == "M0" and rng.random() < 0.5
    keep_m1 = c["M"] == "M1" and rng.random() < 0.7
    hist = (f"{rng.randint(29, 78)}-year-old woman with {c['side'].lower()} breast invasive carcinoma diagnosed on "
            f"core biopsy ({core}), Nottingham grade {pre_grade[1]}, clinical stage "
            f"{clinical_stage(c, rng, keep_m0, keep_m1)}, status post {regimen}, "
            f"completed {rng.randint(2, 8)} weeks ago.")
    hist += history_m(c, rng, r, keep_m0, "Stage IV at presentation with", keep_m1)
    bio, pre_txt = neo_biomarkers(c, rng, r, core, pre, mode)
    cls, idx = rcb(c, rng)
    bed = (c["size_mm"] or rng.randint(5, 30)) + rng.randint(5, 30)
    dx = [f"A. {c['side'].upper()} BREAST, {c['procedure'].upper()} (POST-NEOADJUVANT THERAPY):"]
    dx += neo_residual(c, rng, r, bed)
    if c["N"] is not None:
        ns, nev = node_sentence(c, rng)
        dx.append(f"B. LYMPH NODES: {ns}" + (f" {rng.randint(1, 3)} node(s) show fibrosis consistent with treated "
                                             f"metastasis." if rng.random() < 0.5 else ""))
        r.say("N", nev)
    t, n = t_tok(c, "yp"), n_tok(c, "yp")
    if not c["tx"]:
        r.say("T", t)
    if c["N"] is not None:
        r.say("N", n)
    summ = ["", "POST-NEOADJUVANT TUMOR SUMMARY", f"  Residual tumor bed: {bed} x {rng.randint(5, bed)} mm",
            f"  Overall cancer cellularity: {0 if c['T'] in ('T0', 'Tis') else rng.choice([5, 10, 20, 30, 50])}%",
            f"  Percentage of cancer in situ: {rng.choice([0, 0, 10, 30]) if c['T'] != 'Tis' else 100}%",
            f"  Positive lymph nodes: {c['nodes_pos'] if c['N'] is not None else 'none submitted'}",
            f"  Residual Cancer Burden: RCB index {idx}, {cls}",
            "  Treatment effect: " + rng.choice(["stromal fibrosis, elastosis and hemosiderin-laden macrophages",
                                                 "decreased cellularity with nuclear enlargement and vacuolated "
                                                 "cytoplasm", "hyalinized tumor bed with scattered residual nests"]),
            f"  ypTNM (AJCC 8th edition): {t} {n}" + (" (complete response)" if cls.startswith("RCB-0") else "")]
    gross = gross_breast(c, rng, "lis", treated=True) + ("\n" + gross_nodes(c, rng) if c["N"] is not None else "")
    scar = ["loose fibrosis with lymphocytes and foamy macrophages", "a well-defined fibrotic scar"]
    micro = ("Sections of the tumor bed show " + rng.choice(scar if c["T"] in ("T0", "Tis") else scar + [
        "a hyalinized stroma with scattered residual nests of carcinoma"])
             + ". " + lvi_text(c, rng))
    r.add(rng.choice(["SURGICAL PATHOLOGY - FINAL REPORT", "[REDACTED] CANCER CENTER - SURGICAL PATHOLOGY"]),
          f"Accession: {acc}    Procedure: {d[0]}    Signed: {d[2]}", "Patient: [REDACTED]    MRN: [REDACTED]", "",
          "CLINICAL HISTORY:", hist + pre_txt, "", "FINAL PATHOLOGIC DIAGNOSIS:", *dx, *summ, "", "BIOMARKERS:", *bio,
          "", "GROSS DESCRIPTION:", gross, "", "MICROSCOPIC DESCRIPTION:", micro, "", signature(rng, d[2]))
    return r.finish()


# ----------------------------------------------------------------------------------------------------------
# 5. final report with addenda and an amendment

WRONG_T = {"1a": "1b", "1b": "1c", "1c": "2", "2": "1c", "3": "2", "4b": "4d", "4d": "4b", "4a": "3"}
WRONG_N = {"0": "1a", "0(sn)": "1a", "0(i-)": "0(i+)", "1mi": "1a", "1mi(sn)": "0(sn)", "1a": "2a", "1": "2a",
           "2a": "1a", "3a": "2a"}


def summary_row(field, value):
    return f"  {field + ':':<28}{value}"


def amended_summary(c, rng, r, fix):
    """The tumour summary as first signed out: the field named by `fix` carries the typo the amendment corrects."""
    inv = c["T"] not in ("Tis", "T0")
    t_old = c["prefix"] + "T" + WRONG_T[c["Tsub"]] if fix == "T" else t_tok(c)
    n_old = c["prefix"] + "N" + WRONG_N[c["Nsub"]] if fix == "N" else n_tok(c)
    rows = [summary_row("Specimen", f"{c['side']} breast, {c['procedure'].lower()}"),
            summary_row("Tumor type", c["type"]),
            summary_row("Invasive tumor size", f"{c['size_mm']} mm" if inv and not c["tx"] else "n/a")]
    if fix == "grade":
        rows.append(summary_row("Nottingham grade", other_grade(c["grade"], rng)[1]))
    elif c["grade"]:
        sc, total = nottingham(c["grade"], rng)
        rows.append(summary_row("Nottingham grade", f"{c['grade'][1]} (tubules {sc[0]} + nuclei {sc[1]} + "
                                                    f"mitoses {sc[2]} = {total}/9)"))
        r.say("grade", rows[-1].strip())
    elif inv:
        rows.append(summary_row("Nottingham grade", "not assessable"))
    nodes = "none submitted" if c["N"] is None else f"{c['nodes_pos']}/{c['nodes_examined']}" + \
        (" (micrometastasis)" if c["N"] == "N1mi" else "")
    rows += [summary_row("DCIS", f"present, nuclear grade {c['nuclear_grade']}" if rng.random() < 0.6 or
                         c["T"] == "Tis" else "not identified"),
             summary_row("Lymphovascular invasion", "present" if c["lvi"] else "not identified"),
             summary_row("Margins", f"negative; closest {c['margin_mm']} mm ({rng.choice(['posterior', 'superior'])})"),
             summary_row("Lymph nodes", nodes), summary_row("Stage (AJCC 8th)", f"{t_old} {n_old}")]
    if fix != "T" and not c["tx"]:
        r.say("T", t_old)
    if fix != "N" and c["N"] is not None:
        r.say("N", n_old)
    if c["M"] == "M0" and rng.random() < 0.4:
        rows.append(summary_row("Distant metastasis", r.say("M", "cM0") + " (per clinical team)"))
    elif c["M"] == "M1":
        rows.append(summary_row("Distant metastasis", r.say("M", f"pM1 ({c['M_site']}, prior biopsy)")))
    else:
        r.drop("M")
        rows.append(summary_row("Distant metastasis", "not applicable"))
    return rows, t_old, n_old


def amended_biomarkers(c, rng, r, her2_add):
    """ER/PR/HER2 rows of the original; the reflex ISH, when it comes later, resolves the 2+ in an addendum."""
    def rec(k):
        v, p = c[k], c[k + "_pct"]
        return "not performed" if v is None else "equivocal (uninterpretable)" if v == "Equivocal" else \
            f"{v.lower()} ({p}%, {intensity(rng, p) if p else 'no staining'})"
    rows = []
    for k in ("ER", "PR"):
        rows.append(summary_row(k, rec(k)))
        if c[k] is not None:
            r.say(k, rows[-1].split(" (")[0].strip())
    ihc = {"0": "negative (score 0)", "1+": "negative (score 1+)", "2+": "equivocal (score 2+)",
           "3+": "positive (score 3+)", None: "not performed"}[c["ihc"]]
    her = ihc
    if c["ish"] is not None and not her2_add:
        her += "; " + r.say("HER2", f"ISH {c['ish']}") + f" (ratio {c['ratio']}, {c['copies']} copies/cell)"
    elif c["ihc"] == "2+":
        her += "; reflex ISH ordered" + ("" if her2_add else ", results to follow")
    rows.append(summary_row("HER2", her))
    if c["ihc"] is not None and (c["ihc"] != "2+" or c["ish"] is None):
        r.say("HER2", summary_row("HER2", ihc).strip())
    if not her2_add:
        return rows, None
    dd = ish_detail(c, rng)
    w = "AMPLIFIED" if dd["amp"] else "NOT AMPLIFIED"
    r.tags.add("her2_ish")
    return rows, ("ADDENDUM (HER2 IN SITU HYBRIDIZATION)", [
        f"Reflex HER2 FISH on block A{rng.randint(2, 6)}: HER2/CEP17 ratio {dd['ratio']}; average HER2 copy number "
        f"{dd['copies']} signals/cell ({ISH_GROUP[dd['group']]}).",
        f"Result: {w}. " + r.say("HER2", f"Final HER2 status: {'POSITIVE' if dd['amp'] else 'NEGATIVE'}")
        + f" (IHC 2+, ISH {w.lower()}). This supersedes the equivocal IHC result above."])


def amendment_text(c, rng, r, fix, t_old, n_old):
    if fix in ("T", "N"):
        old, new = (t_old, t_tok(c)) if fix == "T" else (n_old, n_tok(c))
        r.tags.add("stage_typo_corrected")
        r.say(fix, new)
        return rng.choice([f"The pathologic stage was transcribed in error as {old}; the correct category is {new}.",
                           f"Typographical error in the tumor summary: \"{old}\" should read \"{new}\".",
                           f"Stage corrected from {old} to {new} (the tumor measurements are unchanged)."])
    if fix == "grade":
        r.tags.add("grade_typo_corrected")
        sc, total = nottingham(c["grade"], rng)
        g = c["grade"][1]
        return (f"The Nottingham grade was reported in error; "
                f"{r.say('grade', f'it should read grade {g} (score {total})')}.")
    return rng.choice(["The closest margin is the anterior margin (not the posterior margin as originally stated).",
                       "Part B container label corrected: \"sentinel lymph node #2\" (previously \"#3\").",
                       "The procedure date in the clinical data was corrected. No diagnostic change."])


def a_amended_addenda(c, rng):
    r = Report(c)
    acc, yr = accession(rng, "UH{yy}-S{n:05d}")
    d = dates(rng, yr, 6)
    # which events happen is drawn independently of the labels; at least one of them
    her2_add = c["ihc"] == "2+" and c["ish"] is not None and rng.random() < 0.7
    amend, ki67_add, rec_add = rng.random() < 0.45, rng.random() < 0.35, rng.random() < 0.2
    if not (her2_add or amend or ki67_add or rec_add):
        amend, ki67_add = (True, False) if rng.random() < 0.5 else (False, True)
    fix = None
    if amend:  # what the amendment corrects: T, N, grade, or something that is no label
        fix = rng.choice((["T"] if not c["tx"] and c["Tsub"] in WRONG_T else []) + (["N"] if c["N"] else [])
                         + (["grade"] if c["grade"] else []) + ["other"])
    rows, t_old, n_old = amended_summary(c, rng, r, fix)
    bio, her2_addendum = amended_biomarkers(c, rng, r, her2_add)
    addenda = [her2_addendum] if her2_addendum else []
    if rec_add:  # receptors "to follow" in the original, resulted in an addendum
        rows.append(summary_row("ER/PR/HER2", "to follow in an addendum"))
        addenda.append(("ADDENDUM (BREAST BIOMARKERS)", [f"Results of studies performed on block A{rng.randint(2, 6)}:"]
                        + bio))
    else:
        rows += bio
    if ki67_add:
        addenda.append(("ADDENDUM (KI-67)", [f"Ki-67 (MIB-1) performed on block A{rng.randint(2, 6)}: {c['ki67']}% "
                                             f"({rng.choice(['global', 'hot-spot', 'average'])} score).",
                                             "This result does not change the diagnosis or the tumor summary."]))
    rng.shuffle(addenda)
    am = amendment_text(c, rng, r, fix, t_old, n_old) if amend else None
    inv = c["T"] not in ("Tis", "T0")
    body = ["PATHOLOGIC DIAGNOSIS:", f"A. {c['side']} breast, {c['procedure'].lower()}:",
            "   - " + (f"{short_type(c)}; see tumor summary." if inv else "No residual invasive carcinoma; see summary."
                       if c["T"] == "T0" else "Ductal carcinoma in situ; see tumor summary.")]
    if c["N"] is not None:
        body.append(f"B. {c['side']} axillary lymph nodes: {c['nodes_pos']} of {c['nodes_examined']} involved.")
    body += ["", "BREAST TUMOR SUMMARY", *rows, "", "CLINICAL DATA:",
             f"{rng.randint(35, 84)}-year-old with {c['side'].lower()} breast cancer"
             + (" after neoadjuvant therapy." if c["neoadjuvant"] else "."), "", "GROSS DESCRIPTION:",
             gross_breast(c, rng, "academic", treated=c["neoadjuvant"])]
    if c["N"] is not None:
        body.append(gross_nodes(c, rng))
    body += ["", f"Original report signed: {d[1]}   " + signature(rng, d[1])]
    top = [rng.choice(["[REDACTED] UNIVERSITY MEDICAL CENTER", "[REDACTED] HEALTH SYSTEM - ACADEMIC PATHOLOGY"]),
           "Department of Pathology and Laboratory Medicine", f"Surgical Pathology Report  {acc}",
           f"Report status: {'AMENDED' if am else 'FINAL, WITH ADDENDA'}", "Patient: [REDACTED]   MRN: [REDACTED]", ""]
    tail = []
    for i, (head, lines) in enumerate(addenda):
        tail += ["", f"{head} - {d[2 + i]}", *lines, signature(rng, d[2 + i])]
    if am:  # the amendment banner sits on top of the report or after the addenda
        amd = [f"*** AMENDED REPORT ({d[5]}) ***", f"Reason for amendment: {am}", ""]
        top, tail = (top + amd, tail) if rng.random() < 0.5 else (top, tail + [""] + amd[:2])
    r.tags.update((["amended"] if am else []) + (["addendum"] if addenda else [])
                  + (["ypTNM"] if c["neoadjuvant"] else []))
    r.add(*top, *body, *tail)
    return r.finish()


STYLES = {"a_cap_checklist": a_cap_checklist, "a_dictated_narrative": a_dictated_narrative,
          "a_core_biopsy": a_core_biopsy, "a_neoadjuvant": a_neoadjuvant, "a_amended_addenda": a_amended_addenda}


# ----------------------------------------------------------------------------------------------------------

def _selfcheck(n=300):
    import collections
    import pathlib
    import random
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from make_examples import sample_tumour
    for i, (name, fn) in enumerate(STYLES.items()):
        rng = random.Random(1000 + i)
        recs = [fn(sample_tumour(rng), rng) for _ in range(n)]
        counts = {t: collections.Counter(r["labels"][t] for r in recs) for t in CANON}
        lens = sorted(len(r["text"]) for r in recs)
        tags = collections.Counter(t for r in recs for t in r["tags"])
        print(f"=== {name}: {n} reports, length min {lens[0]} median {lens[n // 2]} max {lens[-1]}")
        for t, cn in counts.items():
            print(f"  {t:5s} " + ", ".join(f"{k}: {v}" for k, v in sorted(cn.items(), key=lambda kv: str(kv[0]))))
            # shortcut check: the most common evidence phrase, and how often it appears per label value
            ph = collections.Counter(p for r in recs for p in r["evidence"].get(t, []))
            if ph:
                top = ph.most_common(1)[0][0]
                share = {str(v): f"{sum(top in r['text'] for r in recs if r['labels'][t] == v)}/{c}"
                         for v, c in cn.items()}
                print(f"        most common evidence {top!r}: present in {share}")
        print("  tags: " + ", ".join(f"{k} {v}" for k, v in sorted(tags.items())))
    for name, fn in STYLES.items():
        rng = random.Random(7)
        rec = fn(sample_tumour(rng), rng)
        print(f"\n##### sample {name} labels={rec['labels']}\n{rec['text']}\nevidence={rec['evidence']}")


if __name__ == "__main__":
    _selfcheck()
