"""Synthetic data with a fixed seed (the real reports are private): breast pathology reports for the multi-task
classifier and brain-tumour radiology-pathology pairs for the staged embedder.

    python examples/make_examples.py                   # writes examples/reports.jsonl and examples/pairs.jsonl
    python examples/make_examples.py --reports 50 --pairs 20 --out /tmp/x

Reports: four institutional templates (CAP synoptic, narrative, legacy OCR'd, outside consult), long-tailed
classes like the MTL paper's Fig. S3, some labels not stated, and the paper's hard cases, named per record in
"hard_cases": history_stage, nuclear_grade, negation, her2_ish, bilateral, addendum, ocr, lost_linebreaks,
outside_review. Labels are the truth of the text (no label noise); check_report() asserts it for every record.

HER2 labelling rule (ASCO/CAP 2018): IHC 3+ -> Positive; IHC 0 or 1+ -> Negative; IHC 2+ -> Equivocal unless
in situ hybridisation resolves it (amplified -> Positive, not amplified -> Negative); ISH alone decides when no
IHC is reported. A later addendum that reports the ISH result replaces the earlier Equivocal.
"""
import argparse
import json
import pathlib
import random
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import data  # noqa: E402


def her2_status(ihc=None, ish=None):
    """ASCO/CAP HER2 category from the IHC score ('0', '1+', '2+', '3+') and ISH ('amplified'/'not amplified')."""
    if ihc == "3+":
        return "Positive"
    if ihc in ("0", "1+"):
        return "Negative"
    if ish == "amplified":
        return "Positive"
    if ish == "not amplified":
        return "Negative"
    return "Equivocal" if ihc == "2+" else None


def pick(rng, weights):
    """One key of {value: weight}."""
    keys = list(weights)
    return rng.choices(keys, [weights[k] for k in keys])[0]


# ----------------------------------------------------------------------------------------------------------
# one tumour: labels first, then every fact the text states, consistent with the labels

def sample_tumour(rng):
    c = {}
    c["T"] = pick(rng, {"Tis": 8, "T0": 2, "T1": 50, "T2": 28, "T3": 8, "T4": 4})
    c["neoadjuvant"] = c["T"] == "T0" or rng.random() < 0.06
    c["prefix"] = "yp" if c["neoadjuvant"] else "p"
    invasive = c["T"] not in ("Tis", "T0")
    c["type"] = pick(rng, {"Invasive ductal carcinoma (no special type)": 78, "Invasive lobular carcinoma": 13,
                           "Invasive carcinoma with mixed ductal and lobular features": 5,
                           "Invasive mucinous carcinoma": 2, "Invasive tubular carcinoma": 2}) if invasive else \
        ("Ductal carcinoma in situ" if c["T"] == "Tis" else "No residual invasive carcinoma")
    size = {"T1": rng.choice([rng.randint(2, 10), rng.randint(6, 20), rng.randint(11, 20)]),
            "T2": rng.randint(21, 50), "T3": rng.randint(51, 95), "T4": rng.randint(18, 90)}.get(c["T"])
    c["size_mm"] = size
    c["Tsub"] = {"T1": "1c" if (size or 0) > 10 else ("1b" if (size or 0) > 5 else "1a"), "T2": "2", "T3": "3",
                 "T4": rng.choice(["4b", "4b", "4d", "4a"]), "Tis": "is", "T0": "0"}[c["T"]]
    c["tx"] = c["T"] in ("T1", "T2", "T3") and rng.random() < 0.015  # pTX: fragmented, T not assessable
    c["N"] = pick(rng, {"N0": 62, "N1mi": 5, "N1": 20, "N2": 6, "N3": 2, None: 5}) if invasive else \
        pick(rng, {"N0": 40, None: 60}) if c["T"] == "Tis" else pick(rng, {"N0": 60, "N1": 30, "N2": 10})
    n_pos = {"N0": 0, "N1mi": 1, "N1": rng.randint(1, 3), "N2": rng.randint(4, 9), "N3": rng.randint(10, 18),
             None: 0}[c["N"]]
    c["nodes_pos"] = n_pos
    c["nodes_examined"] = n_pos + rng.randint(1 if c["N"] in ("N0", "N1mi") else 0, 4 if n_pos < 4 else 12)
    c["sentinel"] = c["N"] in ("N0", "N1mi") and rng.random() < 0.7
    c["Nsub"] = {"N0": "0" + rng.choice(["", "", "(sn)" if c["sentinel"] else "", "(i-)"]),
                 "N1mi": "1mi" + ("(sn)" if c["sentinel"] else ""),
                 "N1": rng.choice(["1a", "1a", "1"]), "N2": "2a", "N3": "3a", None: "X"}[c["N"]]
    c["M"] = pick(rng, {"M0": 36, "M1": 2, None: 62})
    c["M_site"] = rng.choice(["liver", "bone (T10 vertebra)", "lung", "brain"])
    # grade: Nottingham for invasive tumours only; DCIS has a nuclear grade instead
    c["grade"] = pick(rng, {"G1": 22, "G2": 43, "G3": 32, None: 3}) if invasive else None
    c["nuclear_grade"] = rng.choice([1, 2, 2, 3, 3])
    c["ER"] = pick(rng, {"Positive": 80, "Negative": 17, "Equivocal": 1, None: 2}) if c["T"] != "T0" else \
        pick(rng, {None: 70, "Positive": 20, "Negative": 10})
    if c["grade"] == "G3" and c["ER"] == "Positive" and rng.random() < 0.3:
        c["ER"] = "Negative"  # high-grade tumours are more often ER-negative
    c["PR"] = (pick(rng, {"Positive": 80, "Negative": 18, "Equivocal": 1, None: 1}) if c["ER"] == "Positive" else
               pick(rng, {"Positive": 6, "Negative": 90, None: 4}) if c["ER"] is not None else None)
    if c["T"] == "Tis" and rng.random() < 0.5:
        c["PR"] = None
    c["ER_pct"] = {"Positive": rng.choice([5, 30, 60, 80, 90, 95, 100]), "Negative": rng.choice([0, 0, 0]),
                   "Equivocal": None, None: None}[c["ER"]]
    c["PR_pct"] = {"Positive": rng.choice([2, 10, 20, 40, 60, 80, 90]), "Negative": rng.choice([0, 0]),
                   "Equivocal": None, None: None}[c["PR"]]
    # HER2 from the assays (see her2_status); ~3 % not performed
    if c["T"] in ("Tis", "T0") and rng.random() < 0.85:
        c["ihc"], c["ish"] = None, None
    else:
        c["ihc"] = pick(rng, {"0": 30, "1+": 34, "2+": 25, "3+": 6, None: 5})
        c["ish"] = None
        if c["ihc"] == "2+":
            c["ish"] = pick(rng, {"amplified": 15, "not amplified": 40, None: 45})  # None: pending / not done
        elif c["ihc"] is None:
            c["ish"] = pick(rng, {"amplified": 25, "not amplified": 55, None: 20})
    c["ratio"] = round(rng.uniform(2.1, 6.5), 1) if c["ish"] == "amplified" else round(rng.uniform(0.9, 1.7), 1)
    c["copies"] = round(rng.uniform(4.2, 12.0), 1) if c["ish"] == "amplified" else round(rng.uniform(1.6, 3.8), 1)
    c["HER2"] = her2_status(c["ihc"], c["ish"])
    c["ki67"] = rng.choice([5, 10, 15, 20, 30, 40, 60, 80])
    c["lvi"] = rng.random() < 0.3
    c["margin_mm"] = rng.choice([1, 2, 3, 5, 8, 10, 15])
    c["side"] = rng.choice(["Left", "Right"])
    c["quadrant"] = rng.choice(["upper outer quadrant", "upper inner quadrant", "lower outer quadrant",
                                "lower inner quadrant", "central/subareolar", "12 o'clock", "2 o'clock",
                                "10 o'clock", "retroareolar"])
    c["procedure"] = rng.choice(["Lumpectomy", "Partial mastectomy", "Total mastectomy", "Modified radical mastectomy",
                                 "Excision (wire-localized)"])
    return c


def labels_of(c):
    return {t: None if t == "T" and c.get("tx") else c[t] for t in data.TASKS}


# ----------------------------------------------------------------------------------------------------------
# spellings: how each template writes a value (each spelling canonicalises to the label; checked below)

def t_raw(c):
    return c["prefix"] + "T" + ("X" if c.get("tx") else c["Tsub"])


def n_raw(c):
    return c["prefix"] + "N" + c["Nsub"]


def grade_words(g, style):
    n = g[1]
    return {"synoptic": f"Grade {n}", "roman": f"Grade {'I' * int(n)}", "fraction": f"{n}/3",
            "words": {"1": "well differentiated", "2": "moderately differentiated", "3": "poorly differentiated"}[n],
            "nottingham": f"Nottingham grade {n}", "legacy": f"{'I' * int(n)}/III"}[style]


def nottingham_scores(g, rng):
    total = {"G1": rng.randint(3, 5), "G2": rng.randint(6, 7), "G3": rng.randint(8, 9)}[g]
    while True:
        s = [rng.randint(1, 3) for _ in range(3)]
        if sum(s) == total:
            return s, total


def status_text(status, pct, rng, upper=False):
    if status == "Positive":
        s = f"Positive ({pct}%, {rng.choice(['strong', 'moderate', 'moderate to strong', 'weak'])} intensity)" \
            if pct and pct >= 10 else f"Low Positive ({pct}%)" if pct else "Positive"
    elif status == "Negative":
        s = rng.choice(["Negative (0%)", "Negative (<1%)", "Negative (0%, internal control positive)"])
    else:
        s = "Equivocal"
    return s.upper() if upper else s


def ihc_text(ihc, rng):
    return {"0": rng.choice(["Negative (score 0)", "Negative (0)"]), "1+": rng.choice(["Negative (1+)", "Negative (score 1+)"]),
            "2+": rng.choice(["Equivocal (2+)", "Equivocal (score 2+)"]), "3+": rng.choice(["Positive (3+)", "Positive (score 3+)"])}[ihc]


def ish_text(c):
    if c["ish"] == "amplified":
        return f"Amplified (HER2/CEP17 ratio {c['ratio']}; average HER2 copy number {c['copies']} signals/cell)"
    return f"Not amplified (HER2/CEP17 ratio {c['ratio']}; average HER2 copy number {c['copies']} signals/cell)"


# ----------------------------------------------------------------------------------------------------------
# filler text (gross and microscopic descriptions): what makes real reports long

INKS = ["black", "blue", "green", "red", "yellow", "orange", "violet"]


def gross_paragraph(c, rng, letter="A"):
    w, h, d = rng.randint(6, 22), rng.randint(5, 15), rng.randint(2, 6)
    skin = f" with an attached skin ellipse measuring {rng.randint(3, 14)} x {rng.uniform(0.5, 3):.1f} cm" \
        if "mastectomy" in c["procedure"].lower() else ""
    inks = rng.sample(INKS, 3)
    lesion = (f"a firm, tan-white, stellate mass measuring {c['size_mm'] / 10:.1f} x {rng.uniform(0.5, 2.5):.1f} cm"
              if c["size_mm"] else "an ill-defined area of fibrosis and a biopsy clip")
    return (f"{letter}. Received fresh, labeled with the patient's name and \"{c['side'].lower()} breast, "
            f"{c['procedure'].lower()}\", is an oriented {c['procedure'].lower()} specimen measuring {w} x {h} x {d} cm"
            f"{skin}. The margins are inked as follows: superior {inks[0]}, inferior {inks[1]}, deep {inks[2]}. "
            f"Serial sectioning from medial to lateral reveals {lesion}, located "
            f"{rng.uniform(0.2, 2.5):.1f} cm from the closest ({rng.choice(['deep', 'superior', 'anterior', 'medial'])}) "
            f"margin. The remaining breast tissue is {rng.choice(['fibrofatty', 'predominantly fatty', 'dense fibrous'])}. "
            f"Representative sections are submitted in cassettes {letter}1-{letter}{rng.randint(8, 24)}.")


def micro_paragraph(c, rng):
    bits = [rng.choice(["Sections show an infiltrating carcinoma composed of nests and cords of atypical cells",
                        "The tumor consists of irregular nests and single files of malignant epithelial cells",
                        "Sections demonstrate a proliferation of atypical ductal cells"]) +
            rng.choice([" within a desmoplastic stroma.", " infiltrating adipose tissue.", "."])]
    bits.append(rng.choice(["Lymphovascular invasion is identified." if c["lvi"] else
                            "No definite lymphovascular invasion is identified.",
                            "Negative for lymphovascular invasion." if not c["lvi"] else
                            "Tumor emboli are present in dermal lymphatics."]))
    bits.append(rng.choice(["Microcalcifications are present in benign ducts.",
                            "Background breast shows fibrocystic change and columnar cell change.",
                            "The biopsy site changes are identified adjacent to the tumor.",
                            "No carcinoma is seen in the skin or nipple."]))
    return " ".join(bits)


def clinical_history(c, rng, hard):
    age = rng.randint(32, 88)
    c["age"] = age
    base = rng.choice([f"{age}-year-old woman with a palpable {c['side'].lower()} breast mass.",
                       f"{age} y/o F, screen-detected {c['side'].lower()} breast lesion, core biopsy positive for carcinoma.",
                       f"{age}-year-old female with {c['side'].lower()} breast carcinoma diagnosed on needle biopsy."])
    if c["neoadjuvant"]:
        base += " Status post neoadjuvant chemotherapy."
    if "history_stage" in hard:  # a prior tumour's stage, written before the current one (the naive trap)
        prior = rng.choice([t for t in ["1c", "2", "1b", "3"] if t != c["Tsub"]])
        other = "right" if c["side"] == "Left" else "left"
        yr = rng.randint(2005, 2019)
        base += rng.choice([f" History of {other} breast carcinoma in {yr} (pT{prior} pN0, ER+), treated with "
                            f"lumpectomy and radiation.",
                            f" Prior {other} breast cancer {yr}, staged pT{prior}N{rng.choice(['0', '1a'])}M0, "
                            f"on tamoxifen until {yr + 5}.",
                            f" Previously treated for {other} breast IDC (pT{prior}, grade {rng.randint(1, 3)}) in {yr}."])
    return base


# ----------------------------------------------------------------------------------------------------------
# the four templates; each returns (lines, evidence) where evidence[task] are phrases that decide the label

def synoptic_block(c, rng, hard, site_header=None):
    """CAP-style synoptic summary with stage and biomarkers; the decisive lines are recorded as evidence."""
    L, ev = [], {}
    L.append(site_header or rng.choice(["SYNOPTIC SUMMARY", "SYNOPTIC REPORT (CAP Breast Invasive Resection v4.8)",
                                        "CANCER CASE SUMMARY"]))
    L.append(f"Procedure: {c['procedure']}")
    L.append(f"Specimen Laterality: {c['side']}; Tumor Site: {c['quadrant']}")
    L.append(f"Histologic Type: {c['type']}")
    if c["size_mm"]:
        L.append(f"Tumor Size: {c['size_mm']} mm (greatest dimension of largest invasive focus)")
    if c["T"] == "T4":
        L.append("Skin: " + {"4b": "Invasive carcinoma directly invades the dermis with skin ulceration",
                             "4d": "Clinical inflammatory carcinoma; dermal lymphatic invasion present",
                             "4a": "Tumor invades the chest wall (ribs and intercostal muscle)"}[c["Tsub"]])
    if c["T"] == "Tis" or "nuclear_grade" in hard:
        L.append(f"Ductal Carcinoma In Situ: Present, nuclear grade {c['nuclear_grade']}"
                 f"{', with comedonecrosis' if c['nuclear_grade'] == 3 else ''}")
    if c["grade"]:
        s, total = nottingham_scores(c["grade"], rng)
        L.append("Histologic Grade (Nottingham Histologic Score):")
        L.append(f"  Glandular (Acinar)/Tubular Differentiation: Score {s[0]}")
        L.append(f"  Nuclear Pleomorphism: Score {s[1]}")
        L.append(f"  Mitotic Rate: Score {s[2]}")
        g = f"Overall Grade: {grade_words(c['grade'], 'synoptic')} (score of {total})"
        L.append("  " + g)
        ev["grade"] = [g]
    elif c["T"] not in ("Tis",) and c["T"] != "T0":
        L.append("Histologic Grade (Nottingham Histologic Score): Cannot be assessed")
    L.append("Lymphovascular Invasion: " + ("Present" if c["lvi"] else "Not identified"))
    L.append(f"Margins: Uninvolved by invasive carcinoma; closest margin {c['margin_mm']} mm")
    if c["N"] is not None:
        L.append(f"Lymph Nodes Examined: {c['nodes_examined']}" + (" (sentinel)" if c["sentinel"] else "")
                 + f"; with macrometastases: {c['nodes_pos'] if c['N'] != 'N1mi' else 0}; "
                 f"with micrometastases: {1 if c['N'] == 'N1mi' else 0}")
    L.append("Pathologic Stage Classification (pTNM, AJCC 8th Edition):")
    if c["neoadjuvant"]:
        L.append("  TNM Descriptors: y (post-treatment)")
    tl = f"  Primary Tumor (pT): {t_raw(c)}"
    L.append(tl)
    ev["T"] = [t_raw(c)]
    if c["N"] is not None:
        L.append(f"  Regional Lymph Nodes (pN): {n_raw(c)}")
        ev["N"] = [n_raw(c)]
    else:
        L.append(f"  Regional Lymph Nodes (pN): pNX (no lymph nodes submitted)")
    if c["M"] == "M1":
        L.append(f"  Distant Metastasis (pM): pM1 (biopsy-proven metastasis, {c['M_site']})")
        ev["M"] = ["pM1"]
    elif c["M"] == "M0":
        L.append("  Distant Metastasis (M): cM0 (no clinical or radiographic evidence of distant metastasis)")
        ev["M"] = ["cM0"]
    else:
        L.append("  Distant Metastasis (pM): Not applicable - pM cannot be determined from the submitted specimen(s)")
    bl, bev = biomarker_lines(c, rng, hard, style="synoptic")
    return L + bl, {**ev, **bev}


def biomarker_lines(c, rng, hard, style="synoptic", upper=False):
    L, ev = [], {}
    if c["ER"] is None and c["PR"] is None and c["ihc"] is None and c["ish"] is None:
        L.append("Breast Biomarker Studies: " + rng.choice(["Not performed on this specimen",
                                                           "Performed on the prior core biopsy; see separate report",
                                                           "Pending; will be reported in an addendum"]))
        return L, ev
    L.append(rng.choice(["BREAST BIOMARKER STUDIES (block A3):", "Breast Biomarker Testing Performed on Block A4:",
                         "PROGNOSTIC MARKERS:"]))
    order = ["ER", "PR", "HER2"]
    if rng.random() < 0.25:
        order = ["HER2", "PR", "ER"] if rng.random() < 0.5 else ["PR", "ER", "HER2"]
    for t in order:
        if t == "ER":
            if c.get("er_revised"):
                L.append("  Estrogen Receptor (ER): Negative (0%) - suboptimal fixation suspected, repeat requested")
            elif c["ER"] is not None:
                s = status_text(c["ER"], c["ER_pct"], rng)
                L.append(f"  Estrogen Receptor (ER): {s}")
                ev["ER"] = [s.split(" (")[0]]
            else:
                L.append("  Estrogen Receptor (ER): Not performed")
        elif t == "PR":
            if c["PR"] is not None:
                s = status_text(c["PR"], c["PR_pct"], rng)
                L.append(f"  Progesterone Receptor (PgR): {s}")
                ev["PR"] = [s.split(" (")[0]]
            else:
                L.append("  Progesterone Receptor (PgR): Not performed")
        else:
            L.extend(her2_lines(c, rng, hard, ev))
    L.append(f"  Ki-67: {c['ki67']}%")
    if rng.random() < 0.4:
        L.append("  Controls: " + rng.choice(["External and internal controls show appropriate reactivity",
                                              "Positive and negative controls stain appropriately"]))
    return L, ev


def her2_lines(c, rng, hard, ev):
    L = []
    pending_addendum = "addendum_her2" in hard
    if c["ihc"] is not None:
        t = ihc_text(c["ihc"], rng)
        L.append(f"  HER2 (by immunohistochemistry): {t}")
        if c["HER2"] and c["ish"] is None or c["ihc"] != "2+":
            ev["HER2"] = [t]
    if c["ihc"] == "2+" and (c["ish"] is None or pending_addendum):
        L.append("  HER2 (by in situ hybridization): " + rng.choice(["Pending; reflex FISH ordered",
                                                                     "Reflex testing ordered; results to follow in an addendum"]))
    elif c["ish"] is not None:
        t = ish_text(c)
        L.append(f"  HER2 (by in situ hybridization): {t}")
        ev["HER2"] = [t.split(" (")[0]]
        if "negation" in hard and c["ish"] == "not amplified":
            L.append("  No HER2 gene amplification is detected.")
    if c["ihc"] is None and c["ish"] is None:
        L.append("  HER2: Not performed")
    return L


def synoptic_report(c, rng, hard):
    top = ["SURGICAL PATHOLOGY REPORT",
         f"Accession #: S{rng.randint(15, 24)}-{rng.randint(1000, 99999):05d}    Collected: [DATE]    Received: [DATE]",
         "Patient: [REDACTED]    MRN: [REDACTED]    DOB: [REDACTED]",
         f"Submitting physician: [REDACTED], MD    Service: {rng.choice(['Breast Surgery', 'Surgical Oncology'])}", ""]
    L = ["CLINICAL HISTORY:", clinical_history(c, rng, hard), "",
         "SPECIMEN(S) SUBMITTED:", f"A. {c['side']} breast, {c['procedure'].lower()}"]
    if c["N"] is not None:
        L.append(f"B. {c['side']} axillary {'sentinel lymph node(s)' if c['sentinel'] else 'lymph node dissection'}")
    L += ["", "GROSS DESCRIPTION:", gross_paragraph(c, rng)]
    if c["N"] is not None:
        L.append(f"B. Received in formalin are {c['nodes_examined']} fragments of fibroadipose tissue "
                 f"with possible lymph nodes, the largest {rng.uniform(0.5, 2.5):.1f} cm. Entirely submitted.")
    L += ["", "MICROSCOPIC DESCRIPTION:", micro_paragraph(c, rng), ""]
    D = ["FINAL DIAGNOSIS:", f"A. {c['side'].upper()} BREAST, {c['procedure'].upper()}:"]
    if c["T"] == "T0":
        D.append("   - NO RESIDUAL INVASIVE CARCINOMA; TUMOR BED WITH TREATMENT EFFECT.")
    elif c["T"] == "Tis":
        D.append(f"   - DUCTAL CARCINOMA IN SITU, NUCLEAR GRADE {c['nuclear_grade']}, SPANNING "
                 f"{rng.randint(4, 40)} MM. NO INVASIVE CARCINOMA IDENTIFIED.")
    else:
        if "nuclear_grade" in hard:  # the DCIS nuclear grade comes first (the naive trap)
            D.append(f"   - DUCTAL CARCINOMA IN SITU, NUCLEAR GRADE {c['nuclear_grade']}, ADJACENT TO THE INVASIVE TUMOR.")
        D.append(f"   - {c['type'].split(' (')[0].upper()}, {c['size_mm']} MM.")
        D.append("   - MARGINS NEGATIVE FOR CARCINOMA.")
    if c["N"] is not None:
        D.append(f"B. LYMPH NODES: "
                 + (f"{c['nodes_examined']} LYMPH NODE(S) NEGATIVE FOR METASTATIC CARCINOMA (0/{c['nodes_examined']})."
                    if c["nodes_pos"] == 0 else
                    f"MICROMETASTASIS IN 1 OF {c['nodes_examined']} LYMPH NODES (1/{c['nodes_examined']})."
                    if c["N"] == "N1mi" else
                    f"METASTATIC CARCINOMA IN {c['nodes_pos']} OF {c['nodes_examined']} LYMPH NODES "
                    f"({c['nodes_pos']}/{c['nodes_examined']})."))
    S, ev = synoptic_block(c, rng, hard)
    D += [""] + S + [""]
    # half the institutions put the diagnosis first and the history/gross/microscopic after it
    L = top + (D + L if rng.random() < 0.5 else L + [""] + D)
    L += ["", "Electronically signed out by: [REDACTED], MD"]
    return L, ev


def narrative_report(c, rng, hard):
    """Community-hospital style: prose, few headers, Title Case, stage written inline."""
    ev = {}
    L = [rng.choice(["Department of Pathology", "PATHOLOGY CONSULTATION", "Anatomic Pathology Report"]),
         f"Case: {rng.choice(['SP', 'PS'])}-{rng.randint(10000, 99999)}", "",
         "Clinical Information: " + clinical_history(c, rng, hard), "",
         "Gross Description: " + gross_paragraph(c, rng), "",
         "Microscopic Description: " + micro_paragraph(c, rng)]
    if c["grade"]:
        style = rng.choice(["words", "nottingham", "roman", "fraction"])
        s, total = nottingham_scores(c["grade"], rng)
        gw = grade_words(c["grade"], style)
        sent = (f"The invasive tumor is {gw} (Nottingham score {total}/9; tubules {s[0]}, nuclei {s[1]}, mitoses {s[2]})."
                if style == "words" else
                f"The invasive carcinoma is {gw} (tubules {s[0]}, nuclei {s[1]}, mitoses {s[2]}; total {total}/9)."
                if style == "nottingham" else f"Histologic grade {gw.split()[-1]} of III." if style == "roman" else
                f"Overall histologic grade {gw} (score {total}).")
        ev["grade"] = [gw.split()[-1] if style == "roman" else gw]
        if "nuclear_grade" in hard:
            sent = f"The in situ component is of nuclear grade {c['nuclear_grade']}. " + sent
        L[-1] += " " + sent
    L += ["", "Diagnosis:", f"{c['side']} breast, {c['procedure'].lower()}:"]
    if c["T"] == "T0":
        L.append("  No residual invasive carcinoma (complete pathologic response in the breast).")
    elif c["T"] == "Tis":
        L.append(f"  Ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}; no invasion seen.")
    else:
        L.append(f"  {c['type'].split(' (')[0]}, {c['size_mm'] / 10:.1f} cm in greatest dimension.")
        if c["T"] == "T4":
            L.append("  The tumor " + {"4b": "ulcerates the overlying skin", "4d": "shows extensive dermal lymphatic "
                                       "involvement (inflammatory carcinoma)", "4a": "invades the chest wall"}[c["Tsub"]] + ".")
    if c["N"] is not None:
        if c["nodes_pos"] == 0:
            L.append(f"  {c['nodes_examined']} axillary lymph node(s), no metastatic carcinoma identified "
                     f"(0/{c['nodes_examined']}).")
        elif c["N"] == "N1mi":
            L.append(f"  Micrometastatic carcinoma (1.{rng.randint(0, 9)} mm) in one of {c['nodes_examined']} lymph nodes.")
        else:
            L.append(f"  Metastatic carcinoma in {c['nodes_pos']} of {c['nodes_examined']} lymph nodes, "
                     f"largest deposit {rng.randint(3, 22)} mm.")
    stage = f"{t_raw(c)} {n_raw(c) if c['N'] is not None else 'pNX'}" + {"M0": " cM0", "M1": " pM1", None: ""}[c["M"]]
    L.append(f"  Pathologic stage (AJCC 8th ed.): {stage}")
    ev["T"] = [t_raw(c)]
    if c["N"] is not None:
        ev["N"] = [n_raw(c)]
    if c["M"]:
        ev["M"] = [{"M0": "cM0", "M1": "pM1"}[c["M"]]]
        if c["M"] == "M1":
            L.append(f"  Distant metastasis ({c['M_site']}) documented on prior biopsy.")
    L.append("")
    # biomarkers as prose
    parts = []
    if c["ER"] is not None or c["PR"] is not None:
        if c["ER"] == c["PR"] == "Negative" and "negation" in hard:
            parts.append("The tumor cells are negative for estrogen and progesterone receptors (0%), with a "
                         "positive internal control.")
            ev["ER"], ev["PR"] = ["negative for estrogen"], ["negative for estrogen and progesterone"]
        else:
            for t, name in (("ER", "estrogen receptor"), ("PR", "progesterone receptor")):
                if c[t] is None:
                    continue
                if t == "ER" and c.get("er_revised"):
                    parts.append("The tumor is negative for estrogen receptor (0%) on this block; the internal "
                                 "control is weak and repeat staining has been requested.")
                    continue
                pct = c[f"{t}_pct"]
                word = {"Positive": rng.choice(["positive", "strongly positive"]) if pct and pct >= 10 else "low positive",
                        "Negative": rng.choice(["negative", "negative"]), "Equivocal": "equivocal"}[c[t]]
                extra = f" ({pct}% of tumor nuclei)" if pct is not None else ""
                parts.append(f"The tumor is {word} for {name}{extra}.")
                ev[t] = [f"{word} for {name}"]
    her = []
    if c["ihc"] is not None:
        w = {"0": "negative (score 0)", "1+": "negative (1+)", "2+": "equivocal (2+)", "3+": "positive (3+)"}[c["ihc"]]
        her.append(f"HER2 immunostain is {w}")
        if c["ish"] is None or c["ihc"] != "2+":
            ev["HER2"] = [f"HER2 immunostain is {w}"]
    if c["ish"] is not None and "addendum_her2" not in hard:
        w = "amplified" if c["ish"] == "amplified" else rng.choice(["not amplified", "negative for amplification"])
        her.append(f"HER2 FISH is {w} (ratio {c['ratio']})")
        ev["HER2"] = [f"FISH is {w}"]
    elif c["ihc"] == "2+":
        her.append("reflex FISH has been ordered and will be reported separately")
    if her:
        parts.append("; ".join(her) + ".")
    if parts:
        L.append(f"Prognostic markers (block A{rng.randint(2, 6)}): " + " ".join(parts) + f" Ki-67 approximately {c['ki67']}%.")
    else:
        L.append("Comment: Prognostic markers were performed on the core biopsy (see separate report).")
    L += ["", f"[REDACTED], M.D., Pathologist"]
    return L, ev


def legacy_report(c, rng, hard):
    """Older LIS printout, upper case, dotted leaders and roman numerals; OCR noise is added afterwards."""
    ev = {}
    L = [f"*** {rng.choice(['ST. [REDACTED] HOSPITAL', 'REGIONAL MEDICAL CENTER', 'COMMUNITY HOSPITAL'])} - "
         f"DEPARTMENT OF PATHOLOGY ***", "PAGE 1 OF 2", f"SURG PATH NO: {rng.randint(80, 99)}-{rng.randint(100, 9999)}",
         "", "CLINICAL DATA: " + clinical_history(c, rng, hard).upper(), "",
         "GROSS: " + gross_paragraph(c, rng).upper(), "", "MICROSCOPIC: " + micro_paragraph(c, rng).upper(), "",
         "DIAGNOSIS:", f"(A) {c['side'].upper()} BREAST, {c['procedure'].upper()}:"]
    if c["T"] == "T0":
        L.append("    NO RESIDUAL INVASIVE CARCINOMA.")
    elif c["T"] == "Tis":
        L.append(f"    INTRADUCTAL CARCINOMA (DCIS), NUCLEAR GRADE {c['nuclear_grade']}.")
    else:
        if "nuclear_grade" in hard:
            L.append(f"    NUCLEAR GRADE {c['nuclear_grade']}.")
        L.append(f"    {c['type'].split(' (')[0].upper()}, {c['size_mm'] / 10:.1f} CM.")
    if c["grade"]:
        g = grade_words(c["grade"], rng.choice(["legacy", "roman"])).upper()
        L.append(f"    {rng.choice(['MODIFIED BLOOM-RICHARDSON GRADE', 'SBR GRADE', 'HISTOLOGIC GRADE'])}: {g}")
        ev["grade"] = [g]
    if c["N"] is not None:
        L.append(f"    LYMPH NODES: {c['nodes_pos']}/{c['nodes_examined']}"
                 + (" (MICROMETASTASIS)" if c["N"] == "N1mi" else ""))
    tnm = f"{t_raw(c).upper()} {n_raw(c).upper() if c['N'] is not None else 'PNX'} " + \
        {"M0": "CM0", "M1": "PM1", None: "MX"}[c["M"]]
    L.append(f"    TNM (AJCC): {tnm}")
    ev["T"] = [t_raw(c).upper()]
    if c["N"] is not None:
        ev["N"] = [n_raw(c).upper()]
    if c["M"]:
        ev["M"] = [{"M0": "CM0", "M1": "PM1"}[c["M"]]]
    L.append("")
    L.append("RECEPTOR STATUS:")
    for t, name in (("ER", "ESTROGEN RECEPTOR"), ("PR", "PROGESTERONE RECEPTOR")):
        if c[t] is None:
            continue
        if t == "ER" and c.get("er_revised"):
            L.append("  ESTROGEN RECEPTOR: NEG (0%) - SEE ADDENDUM")
            continue
        word = {"Positive": rng.choice(["POSITIVE", "POS"]), "Negative": rng.choice(["NEGATIVE", "NEG"]),
                "Equivocal": "EQUIVOCAL"}[c[t]]
        pct = f" ({c[t + '_pct']}%)" if c[t + "_pct"] is not None else ""
        sep = rng.choice([": ", "......... ", " - "])
        L.append(f"  {name}{sep}{word}{pct}")
        ev[t] = [f"{name}{sep}{word}".strip()]
    if c["ihc"] is not None:
        w = {"0": "NEGATIVE (0)", "1+": "NEGATIVE (1+)", "2+": "EQUIVOCAL (2+)", "3+": "POSITIVE (3+)"}[c["ihc"]]
        L.append(f"  HER-2/NEU (IHC): {w}")
        if c["ish"] is None or c["ihc"] != "2+":
            ev["HER2"] = [w]
    if c["ish"] is not None and "addendum_her2" not in hard:
        w = "AMPLIFIED" if c["ish"] == "amplified" else "NOT AMPLIFIED"
        L.append(f"  HER-2/NEU FISH: {w} (RATIO {c['ratio']})")
        ev["HER2"] = [f"FISH: {w}"]
    elif c["ihc"] == "2+":
        L.append("  HER-2/NEU FISH: TO FOLLOW")
    L += ["", "PAGE 2 OF 2", "PATHOLOGIST: [REDACTED] M.D.   ** END OF REPORT **"]
    return L, ev


def consult_report(c, rng, hard):
    """Outside material review: the outside diagnosis first (may disagree), then ours; labels follow ours."""
    ev = {}
    outside_T = c["Tsub"]
    if c["T"] in ("T1", "T2") and rng.random() < 0.5:
        outside_T = "2" if c["T"] == "T1" else "1c"  # we re-measured on the slides
    og = c["grade"]
    if c["grade"] and rng.random() < 0.4:
        og = rng.choice([g for g in ("G1", "G2", "G3") if g != c["grade"]])
    hard.add("outside_review")
    L = ["CONSULTATION REPORT - REVIEW OF OUTSIDE MATERIAL",
         f"Referring institution: [REDACTED]    Outside case no.: {rng.choice(['OS', 'X'])}{rng.randint(10, 24)}-{rng.randint(100, 9999)}",
         f"Material received: {rng.randint(3, 14)} H&E slides, {rng.randint(1, 4)} paraffin block(s), outside pathology report",
         "", "History: " + clinical_history(c, rng, hard), "",
         "Outside diagnosis (as reported): " + (f"{c['type'].split(' (')[0]}, grade {og[1]}, pT{outside_T}."
                                                if c["grade"] else f"{c['type'].split(' (')[0]}, pT{outside_T}."), ""]
    L.append("OUR DIAGNOSIS:")
    L.append(f"{c['side']} breast, {c['procedure'].lower()} (outside slides):")
    if c["T"] == "Tis":
        L.append(f"  - Ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}, no invasive carcinoma seen.")
    elif c["T"] == "T0":
        L.append("  - No residual invasive carcinoma after neoadjuvant therapy.")
    else:
        if c["grade"]:
            g = grade_words(c["grade"], "nottingham")
            L.append(f"  - {c['type'].split(' (')[0]}, {g}.")
            ev["grade"] = [g]
        else:
            L.append(f"  - {c['type'].split(' (')[0]}.")
        if "nuclear_grade" in hard:
            L.append(f"  - Associated DCIS, nuclear grade {c['nuclear_grade']}.")
        L.append(f"  - Invasive tumor size {c['size_mm']} mm by our measurement on the slides.")
    stage = f"{t_raw(c)}" + (f" {n_raw(c)}" if c["N"] is not None else "")
    L.append(f"  - Pathologic stage: {stage}" + (" (the outside report staged this tumor differently)"
                                                 if outside_T != c["Tsub"] else ""))
    ev["T"] = [t_raw(c)]
    if c["N"] is not None:
        ev["N"] = [n_raw(c)]
        L.append(f"  - Lymph nodes: {c['nodes_pos']} of {c['nodes_examined']} involved.")
    if c["M"] == "M1":
        L.append(f"  - Clinical history of distant metastasis ({c['M_site']}), stage pM1 per outside records.")
        ev["M"] = ["pM1"]
    elif c["M"] == "M0":
        L.append("  - cM0 per submitted clinical records.")
        ev["M"] = ["cM0"]
    L.append("")
    L.append("COMMENT:")
    if og != c["grade"] or outside_T != c["Tsub"]:
        L.append("We respectfully disagree with the outside " + ("grade" if og != c["grade"] else "tumor size/stage")
                 + "; the findings were shown to a second breast pathologist who concurs.")
    bl, bev = biomarker_lines(c, rng, hard, style="consult")
    L.append("Biomarkers performed at the outside institution (reported, not repeated here):")
    L += bl[1:] if len(bl) > 1 else bl
    ev.update(bev)
    L += ["", "Reviewed by: [REDACTED], MD (Breast Pathology)"]
    return L, ev


TEMPLATES = {"synoptic": synoptic_report, "narrative": narrative_report, "legacy": legacy_report,
             "consult": consult_report}


# ----------------------------------------------------------------------------------------------------------
# hard cases that change a finished report: addenda, bilateral reports, OCR noise

def her2_addendum(c, rng, site=None):
    """IHC 2+ with reflex ISH reported later: the addendum resolves the earlier Equivocal."""
    head = f"ADDENDUM ({site.upper()} BREAST):" if site else rng.choice(["ADDENDUM:", "ADDENDUM #1", "ADDENDUM (HER2 FISH)"])
    w = "AMPLIFIED" if c["ish"] == "amplified" else "NOT AMPLIFIED"
    lines = [head, f"HER2 by in situ hybridization (block A{rng.randint(2, 5)}): {w}. HER2/CEP17 ratio {c['ratio']}; "
             f"average HER2 copy number {c['copies']} signals/cell.",
             f"Final HER2 status: {c['HER2'].upper()} (IHC 2+, ISH {w.lower()}). This addendum supersedes the "
             f"equivocal result in the original report."]
    return lines, {"HER2": [f"Final HER2 status: {c['HER2'].upper()}"]}


def er_addendum(c, rng):
    """ER repeated on another block (the first stain failed); the revised result replaces the original."""
    lines = ["AMENDED REPORT - ADDENDUM:", f"Estrogen receptor was repeated on block A{rng.randint(4, 8)} because of "
             f"suboptimal fixation of the original block.", f"Revised estrogen receptor result: POSITIVE "
             f"({c['ER_pct']}%, {rng.choice(['moderate', 'strong'])} intensity). The previously reported negative "
             f"result is withdrawn."]
    return lines, {"ER": ["Revised estrogen receptor result: POSITIVE"]}


def ocr_noise(lines, rng, rate=0.04, keep=()):
    """OCR look-alike letter swaps in ordinary words (never in digits, stage tokens, status words, or the lines
    holding the decisive phrases `keep`, so that the labels stay the truth of the text)."""
    swaps = {"I": "1", "O": "0", "S": "5", "B": "8", "l": "1", "o": "0", "rn": "m", "m": "rn", "e": "c", "E": "F",
             "i": "l", "a": "o"}
    protect = re.compile(r"\d|^(?:y?p?[TNM]\w*|POS\w*|NEG\w*|EQUIV\w*|AMPLIFIED|I{1,3}/III|GRADE|HER-?2\S*|"
                         r"ESTROGEN|PROGESTERONE|RECEPTORS?|NOT|NO|FISH|IHC|DCIS|NUCLEAR|ADDENDUM|SYNOPTIC|SUMMARY|"
                         r"DIAGNOSIS|FINAL|BREAST|LEFT|RIGHT)\W*$", re.I)
    out = []
    for line in lines:
        if any(k in line for k in keep):
            out.append(line)
            continue
        words = line.split(" ")
        for i, w in enumerate(words):
            if len(w) >= 4 and not protect.search(w) and rng.random() < rate:
                k = rng.choice([k for k in swaps if k in w] or [""])
                if k:
                    words[i] = w.replace(k, swaps[k], 1)
        line = " ".join(words)
        if rng.random() < 0.05:
            line = line.replace(" ", "  ", 1)
        out.append(line)
    return out


# ----------------------------------------------------------------------------------------------------------
# one report record, and its invariants

def make_report(i, rng):
    template = pick(rng, {"synoptic": 40, "narrative": 27, "legacy": 18, "consult": 15})
    hard = set()
    if rng.random() < 0.15:
        hard.add("history_stage")
    if rng.random() < 0.3:
        hard.add("nuclear_grade")
    if rng.random() < 0.3:
        hard.add("negation")
    bilateral = template in ("synoptic", "narrative") and rng.random() < 0.1
    c = sample_tumour(rng)
    if template == "consult" and c["T"] == "T0":
        c = sample_tumour(rng)
    add = None
    if c["ihc"] == "2+" and c["ish"] is not None and rng.random() < 0.5:
        add = "her2"
        hard.add("addendum_her2")
    elif c["ER"] == "Positive" and c["ER_pct"] and rng.random() < 0.06 and template != "consult":
        add = "er"
        c["er_revised"] = True  # the templates write the first, negative ER result
    if bilateral:
        return make_bilateral(i, rng, template, hard)
    lines, ev = TEMPLATES[template](c, rng, hard)
    if c["tx"]:
        ev.pop("T")
    if add == "er":  # the original report gave ER as negative; the addendum revises it
        a, aev = er_addendum(c, rng)
        lines += [""] + a
        ev.update(aev)
    if add == "her2":
        a, aev = her2_addendum(c, rng)
        lines += [""] + a
        ev.update(aev)
    if add:
        hard.add("addendum")
    hard.discard("addendum_her2")
    if template == "legacy":
        hard.add("ocr")
        lines = ocr_noise(lines, rng, keep=[p for ps in ev.values() for p in ps])
    text = "\n".join(lines)
    if template == "legacy" and rng.random() < 0.4:  # line breaks lost in the scan
        hard.add("lost_linebreaks")
        text = re.sub(r"\s*\n\s*", lambda m: rng.choice(["  ", " ", "   "]), text)
    if c["ER"] == "Negative" or c["PR"] == "Negative" or c["ish"] == "not amplified" or c["N"] == "N0":
        pass
    else:
        hard.discard("negation")
    rec = {"id": f"BR{i:05d}", "text": text, "labels": labels_of(c), "template": template,
           "hard_cases": sorted(hard)}
    return rec, ev


def make_bilateral(i, rng, template, hard):
    """Two tumours, one synoptic block per side; the record names one site and its labels follow that block."""
    hard.add("bilateral")
    cases = {}
    for side in ("Left", "Right"):
        c = sample_tumour(rng)
        while c["T"] in ("Tis", "T0") or c["tx"]:
            c = sample_tumour(rng)
        c["side"] = side
        cases[side] = c
    age = rng.randint(35, 85)
    L = ["SURGICAL PATHOLOGY REPORT", f"Accession #: S{rng.randint(15, 24)}-{rng.randint(1000, 99999):05d}", "",
         "CLINICAL HISTORY:", f"{age}-year-old woman with bilateral breast carcinoma, bilateral "
         f"{rng.choice(['mastectomies', 'lumpectomies'])} with sentinel lymph node biopsies.", "",
         "SPECIMEN(S) SUBMITTED:", "A. Left breast", "B. Left sentinel lymph node(s)", "C. Right breast",
         "D. Right sentinel lymph node(s)", "", "FINAL DIAGNOSIS:"]
    for letter, side in (("A", "Left"), ("C", "Right")):
        c = cases[side]
        L.append(f"{letter}. {side.upper()} BREAST: {c['type'].split(' (')[0].upper()}, {c['size_mm']} MM"
                 + (f", NOTTINGHAM {grade_words(c['grade'], 'synoptic').upper()}" if c["grade"] else "") + ".")
    L.append("")
    evs = {}
    for side in ("Left", "Right"):
        S, ev = synoptic_block(cases[side], rng, hard, site_header=f"SYNOPTIC SUMMARY ({side.upper()} BREAST)")
        L += S + [""]
        evs[side] = ev
    site = rng.choice(["Left", "Right"])
    c = cases[site]
    if c["ihc"] == "2+" and c["ish"] is not None:  # the pending FISH line was written; resolve it
        if any("Pending" in l or "to follow" in l for l in L):
            a, aev = her2_addendum(c, rng, site=site)
            L += a
            evs[site].update(aev)
            hard.add("addendum")
    hard.discard("addendum_her2")
    L += ["", "Electronically signed out by: [REDACTED], MD"]
    rec = {"id": f"BR{i:05d}", "text": "\n".join(L), "site": site.upper(), "labels": labels_of(c),
           "template": template if template == "synoptic" else "synoptic", "hard_cases": sorted(hard)}
    return rec, evs[site]


def _norm(s):
    return re.sub(r"\s+", " ", s).strip().lower()


def check_report(rec, ev):
    """The generator's invariants: every stated label has decisive evidence in the record's own site block and
    in its window slice; every spelling canonicalises; nothing stated for a task without a label."""
    block = data.site_text(rec["text"], rec.get("site"))
    window = _norm(data.window_slice(block))
    for task, label in rec["labels"].items():
        if label is None:
            assert task not in ev, (rec["id"], task, ev.get(task))
            continue
        assert ev.get(task), f"{rec['id']}: {task}={label} has no evidence"
        for phrase in ev[task]:
            assert _norm(phrase) in _norm(block), f"{rec['id']}: {task} evidence {phrase!r} not in its block"
            assert _norm(phrase) in window, f"{rec['id']}: {task} evidence {phrase!r} cut by window_slice"
    for task in ("T", "N", "M"):
        if ev.get(task):
            assert data.canonicalize(task, ev[task][0]) == rec["labels"][task], (rec["id"], task, ev[task])
    if rec.get("site"):  # the other side's block is not this record's input
        assert len(data.split_sites(rec["text"])) == 2


# ----------------------------------------------------------------------------------------------------------
# brain-tumour radiology-pathology pairs

TUMOURS = {  # prevalence, age range, typical MRI features, WHO diagnosis lines
    "glioblastoma": (25, (45, 85)), "astrocytoma": (12, (22, 60)), "oligodendroglioma": (8, (28, 65)),
    "ependymoma": (6, (3, 60)), "medulloblastoma": (6, (3, 30)), "pilocytic_astrocytoma": (7, (3, 35)),
    "meningioma": (18, (35, 88)), "metastasis": (13, (40, 85)), "lymphoma": (5, (45, 82)),
}
LOBES = ["frontal lobe", "temporal lobe", "parietal lobe", "occipital lobe", "insula"]
FEATURES = {
    "glioblastoma": ["thick irregular peripheral enhancement surrounding central necrosis",
                     "extension across the corpus callosum", "marked surrounding T2/FLAIR hyperintensity",
                     "susceptibility foci consistent with intratumoral hemorrhage", "elevated relative cerebral blood volume"],
    "astrocytoma": ["an expansile T2/FLAIR hyperintense mass without enhancement", "T2-FLAIR mismatch sign",
                    "relatively well-defined margins", "no restricted diffusion", "minimal mass effect"],
    "oligodendroglioma": ["cortical and subcortical involvement", "coarse calcifications on the prior CT",
                          "heterogeneous T2 signal", "faint patchy enhancement", "scalloping of the inner table"],
    "ependymoma": ["a heterogeneous mass filling the fourth ventricle", "extension through the foramen of Luschka",
                   "obstructive hydrocephalus", "punctate calcifications", "heterogeneous enhancement"],
    "medulloblastoma": ["a midline cerebellar vermian mass", "restricted diffusion indicating high cellularity",
                        "avid heterogeneous enhancement", "effacement of the fourth ventricle",
                        "leptomeningeal enhancement along the spinal cord"],
    "pilocytic_astrocytoma": ["a cystic mass with an enhancing mural nodule", "location in the cerebellar hemisphere",
                              "little surrounding edema", "no restricted diffusion in the solid component",
                              "well-circumscribed margins"],
    "meningioma": ["an extra-axial dural-based mass", "homogeneous avid enhancement", "a dural tail",
                   "a CSF cleft between the mass and the cortex", "adjacent hyperostosis"],
    "metastasis": ["multiple ring-enhancing lesions at the gray-white matter junction",
                   "vasogenic edema disproportionate to lesion size", "a solitary round enhancing lesion",
                   "no involvement of the corpus callosum", "additional punctate enhancing foci"],
    "lymphoma": ["homogeneous solid enhancement", "periventricular location with ependymal contact",
                 "marked restricted diffusion", "involvement of the splenium of the corpus callosum",
                 "relatively little edema for its size"],
}
GENERIC = ["moderate mass effect with partial effacement of the adjacent sulci", "no midline shift",
           "mild surrounding edema", "no acute infarct", "no hydrocephalus", "the ventricles are otherwise normal",
           "mild chronic small vessel ischemic change", "heterogeneous enhancement"]
IMPRESSION = {
    "glioblastoma": ["high-grade glial neoplasm", "high-grade glioma", "glioblastoma"],
    "astrocytoma": ["infiltrative low-grade glial neoplasm", "diffuse glioma", "low-grade glioma"],
    "oligodendroglioma": ["infiltrative glioma, oligodendroglioma favored", "diffuse glioma", "low-grade glial neoplasm"],
    "ependymoma": ["posterior fossa tumor; ependymoma versus medulloblastoma", "intraventricular neoplasm"],
    "medulloblastoma": ["posterior fossa embryonal tumor", "posterior fossa neoplasm; medulloblastoma favored"],
    "pilocytic_astrocytoma": ["cystic posterior fossa neoplasm", "low-grade glial neoplasm, pilocytic astrocytoma favored"],
    "meningioma": ["extra-axial mass, likely meningioma", "dural-based mass", "extra-axial neoplasm"],
    "metastasis": ["metastatic disease", "multiple enhancing lesions, metastases favored over abscess",
                   "enhancing lesion; metastasis versus high-grade glioma"],
    "lymphoma": ["primary CNS lymphoma favored", "enhancing periventricular mass; lymphoma versus glioblastoma",
                 "deep enhancing lesion"],
}


def pathology_dx(tt, rng, mgmt):
    who = {
        "glioblastoma": ("Glioblastoma, IDH-wildtype, CNS WHO grade 4",
                         ["IDH1 R132H: negative (wild type)", "ATRX: retained", "EGFR amplification: present",
                          "TERT promoter mutation: detected", f"Ki-67: {rng.randint(20, 60)}%",
                          "Microvascular proliferation and palisading necrosis are present"]),
        "astrocytoma": (f"Astrocytoma, IDH-mutant, CNS WHO grade {rng.choice([2, 2, 3, 4])}",
                        ["IDH1 R132H: positive (mutant)", "ATRX: lost", "p53: strong nuclear staining in >50% of cells",
                         "1p/19q: not co-deleted", f"Ki-67: {rng.randint(2, 15)}%"]),
        "oligodendroglioma": (f"Oligodendroglioma, IDH-mutant and 1p/19q-codeleted, CNS WHO grade {rng.choice([2, 3])}",
                              ["IDH1 R132H: positive", "ATRX: retained", "1p/19q: co-deleted (FISH)",
                               "Round nuclei with perinuclear halos and a chicken-wire capillary network",
                               f"Ki-67: {rng.randint(2, 20)}%"]),
        "ependymoma": (f"Posterior fossa ependymoma, group {rng.choice(['A', 'B'])}, CNS WHO grade {rng.choice([2, 3])}",
                       ["Perivascular pseudorosettes are present", "GFAP: positive", "EMA: dot-like positivity",
                        "H3 K27me3: " + rng.choice(["lost", "retained"])]),
        "medulloblastoma": (f"Medulloblastoma, {rng.choice(['SHH-activated, TP53-wildtype', 'WNT-activated', 'non-WNT/non-SHH'])}, CNS WHO grade 4",
                            ["Sheets of small round blue cells with Homer Wright rosettes", "Synaptophysin: positive",
                             "beta-catenin: " + rng.choice(["nuclear", "cytoplasmic only"]), f"Ki-67: {rng.randint(40, 90)}%"]),
        "pilocytic_astrocytoma": ("Pilocytic astrocytoma, CNS WHO grade 1",
                                  ["Biphasic pattern with Rosenthal fibers and eosinophilic granular bodies",
                                   "KIAA1549::BRAF fusion: detected", "IDH1 R132H: negative", f"Ki-67: {rng.randint(1, 5)}%"]),
        "meningioma": (f"Meningioma, {rng.choice(['meningothelial', 'transitional', 'fibrous', 'atypical'])} type, "
                       f"CNS WHO grade {rng.choice([1, 1, 1, 2])}",
                       ["Whorls and psammoma bodies are present", "EMA: positive", "Progesterone receptor: positive",
                        "No brain invasion is identified", f"Mitoses: {rng.randint(0, 5)} per 10 HPF"]),
        "metastasis": (f"Metastatic {rng.choice(['adenocarcinoma, consistent with lung primary', 'carcinoma, consistent with breast primary', 'melanoma', 'renal cell carcinoma, clear cell type'])}",
                       ["CK7: positive", "TTF-1: " + rng.choice(["positive", "negative"]), "GFAP: negative in tumor cells",
                        "Sharp interface with the surrounding gliotic brain"]),
        "lymphoma": ("Diffuse large B-cell lymphoma, primary CNS",
                     ["CD20: diffusely positive", "Angiocentric growth pattern", "BCL6: positive", "MUM1: positive",
                      f"Ki-67: {rng.randint(70, 95)}%", "EBV (EBER): negative"]),
    }[tt]
    mol = list(who[1])
    rng.shuffle(mol)
    mol = mol[:rng.randint(2, len(mol))]
    if mgmt is not None:
        mol.append(f"MGMT promoter methylation (pyrosequencing): {'methylated' if mgmt == 'methylated' else 'unmethylated'}"
                   f" ({rng.randint(12, 45) if mgmt == 'methylated' else rng.randint(1, 6)}% mean methylation)")
    return who[0], mol


def make_pair(i, rng):
    tt = pick(rng, {t: v[0] for t, v in TUMOURS.items()})
    age = rng.randint(*TUMOURS[tt][1])
    sex = rng.choice(["male", "female"]) if tt != "meningioma" else pick(rng, {"female": 70, "male": 30})
    side = rng.choice(["left", "right"])
    if tt in ("ependymoma", "medulloblastoma", "pilocytic_astrocytoma") and rng.random() < 0.8:
        site = rng.choice(["cerebellum", "posterior fossa", "fourth ventricle"]) if tt != "pilocytic_astrocytoma" \
            else f"{side} cerebellar hemisphere"
    elif tt == "meningioma":
        site = rng.choice([f"{side} frontal convexity", f"{side} sphenoid wing", "parafalcine region",
                           f"{side} parietal convexity", "olfactory groove"])
    elif tt == "lymphoma":
        site = rng.choice(["periventricular white matter", "splenium of the corpus callosum", f"{side} basal ganglia"])
    else:
        site = f"{side} {rng.choice(LOBES)}"
    mgmt = None
    if tt in ("glioblastoma", "astrocytoma", "oligodendroglioma") and rng.random() < 0.8:
        p = {"glioblastoma": 0.45, "astrocytoma": 0.75, "oligodendroglioma": 0.9}[tt]
        mgmt = "methylated" if rng.random() < p else "unmethylated"
    resection = rng.choice(["gross total resection", "subtotal resection", "biopsy"])
    # one-year survival: type, age, MGMT and resection (not written in either text)
    p = {"glioblastoma": 0.55, "astrocytoma": 0.92, "oligodendroglioma": 0.96, "ependymoma": 0.9,
         "medulloblastoma": 0.85, "pilocytic_astrocytoma": 0.99, "meningioma": 0.97, "metastasis": 0.5,
         "lymphoma": 0.65}[tt]
    p += 0.15 * (mgmt == "methylated") - 0.15 * (mgmt == "unmethylated") - 0.2 * (age > 70) \
        + 0.08 * (resection == "gross total resection") - 0.1 * (resection == "biopsy")
    survival = "alive" if rng.random() < min(0.99, max(0.03, p)) else "deceased"
    # radiology: 2-4 typical features, some generic, sometimes a feature of another type (overlap)
    feats = rng.sample(FEATURES[tt], rng.randint(2, 4)) + rng.sample(GENERIC, rng.randint(1, 3))
    if rng.random() < 0.3:
        other = rng.choice([t for t in FEATURES if t != tt])
        feats.append(rng.choice(FEATURES[other]))
    rng.shuffle(feats)
    size = round(rng.uniform(1.0, 6.5), 1)
    who = "man" if sex == "male" else "woman"
    if age < 18:
        who = "boy" if sex == "male" else "girl"
    indication = rng.choice([f"{age}-year-old {who} with new-onset seizures.", f"{age}-year-old {who} with headache and "
                             f"{rng.choice(['nausea', 'gait instability', 'visual disturbance', 'confusion'])}.",
                             f"{age} y/o {sex[0].upper()}, {rng.choice(['word-finding difficulty', 'focal weakness', 'progressive headaches'])}."])
    if tt == "metastasis" and rng.random() < 0.5:
        indication += f" History of {rng.choice(['lung', 'breast', 'renal', 'melanoma'])} cancer."
    imp = rng.choice(IMPRESSION[tt])
    if rng.random() < 0.35:  # a non-committal impression
        imp = rng.choice(["enhancing intracranial mass; differential includes primary neoplasm and metastasis",
                          "intracranial mass lesion, neoplasm favored; tissue sampling recommended",
                          "mass lesion as described; recommend neurosurgical consultation"])
    radiology = "\n".join([
        f"EXAM: MRI BRAIN WITH AND WITHOUT CONTRAST",
        f"INDICATION: {indication}",
        f"TECHNIQUE: Multiplanar multisequence MRI of the brain before and after {rng.choice(['gadobutrol', 'gadoterate', 'IV gadolinium'])}.",
        f"COMPARISON: {rng.choice(['None.', 'CT head from the same day.', 'Outside MRI, not available for review.'])}",
        "FINDINGS:",
        f"There is a {size} x {round(size * rng.uniform(0.6, 1.0), 1)} cm mass centered in the {site}, with "
        + "; ".join(feats[:3]) + ".",
        ("Additional findings: " + "; ".join(feats[3:]) + ".") if feats[3:] else "No additional lesions.",
        f"The orbits and paranasal sinuses are {rng.choice(['unremarkable', 'clear', 'notable for mild mucosal thickening'])}.",
        f"IMPRESSION: {size} cm {site} lesion: {imp}.",
    ])
    dx, mol = pathology_dx(tt, rng, mgmt)
    proc = {"gross total resection": "resection", "subtotal resection": "subtotal resection", "biopsy": "stereotactic biopsy"}[resection]
    pathology = "\n".join([
        "NEUROPATHOLOGY REPORT",
        f"Clinical: {age} y/o {sex}, {site} mass.",
        f"Specimen: Brain, {site}, {proc}.",
        f"Intraoperative consultation: {rng.choice(['neoplasm, defer to permanents', 'glial neoplasm', 'tumor present', 'lesional tissue present'])}.",
        f"Gross: {rng.randint(1, 12)} fragments of soft tan-gray tissue, aggregate {rng.uniform(0.5, 4):.1f} cm.",
        "DIAGNOSIS:",
        f"Brain, {site}, {proc}: {dx}.",
        "Ancillary studies:",
    ] + [f"  - {m}" for m in mol] + [f"Comment: {rng.choice(['Integrated diagnosis per WHO CNS5 (2021).', 'Findings discussed with the neurosurgeon.', 'Molecular results were reviewed and are incorporated above.'])}"])
    labels = {"tumor_type": tt, "mgmt": mgmt, "survival_1y": survival}
    return {"id": f"BT{i:05d}", "radiology": radiology, "pathology": pathology, "labels": labels}


def check_pair(rec):
    if rec["labels"]["mgmt"] is not None:
        assert f"MGMT promoter methylation (pyrosequencing): {rec['labels']['mgmt']}" in rec["pathology"], rec["id"]
    else:
        assert "MGMT" not in rec["pathology"], rec["id"]


# ----------------------------------------------------------------------------------------------------------

def generate_reports(n, seed=42):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        rec, ev = make_report(i, rng)
        check_report(rec, ev)
        out.append(rec)
    return out


def generate_pairs(n, seed=42):
    rng = random.Random(seed + 1)
    out = [make_pair(i, rng) for i in range(n)]
    for r in out:
        check_pair(r)
    return out


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reports", type=int, default=2000)
    p.add_argument("--pairs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent))
    a = p.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    reports = generate_reports(a.reports, a.seed)
    pairs = generate_pairs(a.pairs, a.seed)
    write_jsonl(out / "reports.jsonl", reports)
    write_jsonl(out / "pairs.jsonl", pairs)
    recs = data.read_reports(out / "reports.jsonl")  # the files must pass our own validation
    prs = data.read_pairs(out / "pairs.jsonl")
    print(f"wrote {len(recs)} reports and {len(prs)} pairs to {out}")
    for task, c in data.label_counts(recs, data.LABEL_SETS).items():
        print(f"  {task:6s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    hard = {}
    for r in reports:
        for h in r["hard_cases"]:
            hard[h] = hard.get(h, 0) + 1
    print("  hard cases: " + ", ".join(f"{k} {v}" for k, v in sorted(hard.items())))
    for task, c in data.label_counts(prs, data.PAIR_LABEL_SETS).items():
        print(f"  {task:12s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))


if __name__ == "__main__":
    main()
