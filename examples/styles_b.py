"""Report styles B: breast pathology as written outside the US, and reports that quote other reports.

b_uk_rcpath        UK NHS cellular pathology report with the Royal College of Pathologists breast cancer dataset
                   (invasive grade with tubules/pleomorphism/mitoses, Allred or Quick score, NPI, UICC TNM 8).
b_euro_translated  German/Italian/Dutch university-hospital report in English translation: differentiation and
                   G tokens, receptors as % of nuclei and intensity (IRS), HercepTest + SISH/CISH, pT pN L V Pn R.
b_outside_consult  US academic second-opinion (consultation) report: the referring lab's values quoted, then our
                   own interpretation, which agrees in some fields and not in others; labels follow ours.
b_lis_telegraphic  Terse upper-case laboratory-information-system summary (semicolons, abbreviations, often
                   one run-on line), as printed on result-review screens and cancer-registry abstracts.
b_multi_specimen   Multi-part surgical case (sentinel nodes, lumpectomy, additional margins) with one diagnosis per
                   part, the nodal category summed over parts, and one shared biomarker table for the cancer.
"""
import random
import re

from styles_a import ihc_criteria

TASKS = ["T", "N", "M", "grade", "ER", "PR", "HER2"]

# ----------------------------------------------------------------------------------------------------------
# shared facts: what every style derives from the sampled tumour before writing it

TYPE_KEY = {"Invasive ductal carcinoma (no special type)": "nst", "Invasive lobular carcinoma": "lobular",
            "Invasive carcinoma with mixed ductal and lobular features": "mixed",
            "Invasive mucinous carcinoma": "mucinous", "Invasive tubular carcinoma": "tubular",
            "Ductal carcinoma in situ": "dcis", "No residual invasive carcinoma": "none"}
INTENSITY = {1: "weak", 2: "moderate", 3: "strong"}
DIFF = {"G1": "well differentiated", "G2": "moderately differentiated", "G3": "poorly differentiated"}
ROMAN = {"G1": "I", "G2": "II", "G3": "III"}
NG_WORD = {1: "low", 2: "intermediate", 3: "high"}
MET = {"liver": ("liver", "hepatic", "HEP"), "bone (T10 vertebra)": ("bone", "osseous", "OSS"),
       "lung": ("lung", "pulmonary", "PUL"), "brain": ("brain", "cerebral", "BRA")}


def start_labels(c):
    return {t: None if t == "T" and c.get("tx") else c[t] for t in TASKS}


def invasive(c):
    return c["T"] not in ("Tis", "T0")


def nottingham(grade, rng):
    """Tubule, pleomorphism and mitosis scores (1-3 each) whose sum falls in the grade's band."""
    lo, hi = {"G1": (3, 5), "G2": (6, 7), "G3": (8, 9)}[grade]
    while True:
        s = [rng.randint(1, 3) for _ in range(3)]
        if lo <= sum(s) <= hi:
            return s


def receptor(c, task, rng):
    """ER or PR as read on the slide: status, % text, Allred proportion (PS) and intensity (IS) scores."""
    st = c[task]
    if st is None:
        return None
    if st == "Equivocal":
        return {"status": st}
    if st == "Negative":
        trace = rng.random() < 0.3  # a few weakly stained nuclei, under 1 %
        return {"status": st, "pct": 0, "pct_text": "<1%" if trace else "0%", "ps": int(trace), "is": int(trace),
                "allred": 2 * int(trace), "intensity": "weak" if trace else None}
    pct = c[task + "_pct"]
    ps = 2 if pct <= 10 else 3 if pct <= 33 else 4 if pct <= 66 else 5
    is_ = rng.choice([1, 2, 2, 3] if pct <= 33 else [2, 3, 3])
    return {"status": st, "pct": pct, "pct_text": f"{pct}%", "ps": ps, "is": is_, "allred": ps + is_,
            "intensity": INTENSITY[is_]}


def irs(r):
    """German immunoreactive score (Remmele): percentage category 0-4 times intensity 0-3."""
    pc = 0 if r["pct"] == 0 and r["pct_text"] == "0%" else 1 if r["pct"] < 10 else 2 if r["pct"] <= 50 else \
        3 if r["pct"] <= 80 else 4
    return pc * r["is"]


def node_stage_text(c, prefix, itc=False):
    """The pN token: the tumour's own subcategory, ITC-positive if the style wrote isolated tumour cells."""
    if c["N"] is None:
        return prefix + "NX"
    sub = "0(i+)" if itc else c["Nsub"]
    return prefix + "N" + sub


def t_token(c, prefix=None):
    p = c["prefix"] if prefix is None else prefix
    return p + "T" + ("X" if c["tx"] else c["Tsub"])


def brit(s):
    for us, uk in (("tumor", "tumour"), ("Tumor", "Tumour"), ("estrogen", "oestrogen"), ("Estrogen", "Oestrogen"),
                   ("color", "colour"), ("oriented", "orientated"), ("labeled", "labelled"), ("ischemia", "ischaemia")):
        s = s.replace(us, uk)
    return s


def dates(rng, year, n=3, fmt="dmy", sep="/"):
    """n increasing dates in one year (received, reported, supplementary), a few days to weeks apart."""
    day, out = rng.randint(0, 300), []
    for _ in range(n):
        m, d = min(day // 28, 11) + 1, day % 28 + 1
        out.append(f"{d:02d}{sep}{m:02d}{sep}{year}" if fmt == "dmy" else f"{m:02d}{sep}{d:02d}{sep}{year}")
        day += rng.randint(2, 16)
    return out


def add(ev, task, *phrases):
    ev.setdefault(task, []).extend(p for p in phrases if p)


def finish(text, labels, ev, tags):
    """The record; M0 is often not written (most reports leave M to the clinicians): then M is not stated."""
    if labels["M"] == "M0" and not ev.get("M"):
        labels["M"] = None
    for t in TASKS:
        if labels[t] is None:
            ev.pop(t, None)
    return {"text": text, "labels": labels, "evidence": ev, "tags": sorted(set(tags))}


# ----------------------------------------------------------------------------------------------------------
# 1. UK: Royal College of Pathologists dataset

UK_TYPE = {"nst": "Invasive carcinoma of no special type (ductal NST)",
           "lobular": "Invasive lobular carcinoma (classical)",
           "mixed": "Mixed invasive carcinoma (NST and lobular)", "mucinous": "Mucinous carcinoma",
           "tubular": "Tubular carcinoma"}


def uk_receptor(name, r, rng, tags):
    """'ER: Allred score 8/8 (PS 5, IS 3)', 'PR Allred 0/8', 'ER: Positive, Quick score 7' -> (line, evidence)."""
    if r["status"] == "Equivocal":
        line = f"{name}: unsatisfactory - no internal control staining; equivocal, repeat requested on excision"
        return line, f"{name}: unsatisfactory"
    a, form = r["allred"], rng.choice(["full", "short", "quick_word", "quick"])
    tags.append("quick_score" if form.startswith("quick") else "allred")
    if form == "full":
        return f"{name}: Allred score {a}/8 (PS {r['ps']}, IS {r['is']})", f"{name}: Allred score {a}/8"
    if form == "short":
        return f"{name} Allred {a}/8", f"{name} Allred {a}/8"
    if form == "quick_word":
        w = "Positive" if r["status"] == "Positive" else "Negative"
        return f"{name}: {w}, Quick score {a}", f"{name}: {w}"
    return f"{name}: Quick score {a} ({r['pct_text']} of nuclei)", f"{name}: Quick score {a}"


def uk_her2(c, rng, ev, tags):
    """HER2 line(s) of the dataset and, when the ISH result came later, the supplementary report lines."""
    ihc, ish = c["ihc"], c["ish"]
    nums = f"HER2/CEP17 ratio {c['ratio']}, mean HER2 copy number {c['copies']} per nucleus"
    if ihc is None and ish is None:
        return [rng.choice(["HER2: not performed", "HER2: not requested on this specimen"])], []
    if ihc is None:
        tags.append("ish")
        line = f"HER2: IHC failed (poor fixation); ISH {ish} ({nums})"
        add(ev, "HER2", f"ISH {ish}")
        return [line], []
    if ihc != "2+":
        line = {"0": rng.choice(["HER2: score 0 (negative)", "HER2: 0 (negative)"]),
                "1+": rng.choice(["HER2: score 1+ (negative)", "HER2: 1+ (HER2-low)"]),
                "3+": rng.choice(["HER2: score 3+ (positive)", "HER2: 3+"])}[ihc]
        add(ev, "HER2", line)
        if rng.random() < 0.35:
            line += f"; {brit(ihc_criteria(ihc, rng))}"
        if rng.random() < 0.4:  # ISH is for a borderline 2+ only: said after 0, 1+ and 3+ alike
            line += rng.choice(["; ISH not required", "; in situ hybridisation not indicated"])
        return [line], []
    if ish is None:
        add(ev, "HER2", "2+ borderline")
        return ["HER2: 2+ borderline, ISH to follow"], []
    tags.append("ish")
    if rng.random() < 0.5:
        add(ev, "HER2", f"ISH {ish}")
        return [f"HER2: 2+ (borderline); ISH {ish} ({nums})"], []
    tags.append("addendum")
    final = "positive" if ish == "amplified" else "negative"
    add(ev, "HER2", f"Final HER2 status: {final}")
    return ["HER2: 2+ borderline, ISH to follow"], [
        f"HER2 in situ hybridisation (dual-probe, block A{rng.randint(2, 6)}): {nums}.",
        f"Result: {'amplified' if ish == 'amplified' else 'not amplified'}. Final HER2 status: {final}."]


def b_uk_rcpath(c, rng):
    labels, ev, tags = start_labels(c), {}, ["british_spelling", "uicc"]
    yr = rng.randint(2016, 2024)
    d_in, d_out, d_supp = dates(rng, yr)
    lab_no, core_no = (f"{rng.choice(['H', 'HS', 'CP'])}{yr % 100:02d}/{rng.randint(100, 29999):05d}" for _ in "ab")
    side, g = c["side"], c["grade"]
    mast = "mastectomy" in c["procedure"].lower()
    spec = "Mastectomy" if mast else rng.choice(["Wide local excision", "Wide local excision (wire-guided)"])
    itc = c["N"] == "N0" and rng.random() < 0.15
    cd, m0_in_cd = uk_clinical(c, rng, ev, tags, core_no, spec, yr)
    L = [f"{rng.choice(['Department of Cellular Pathology', 'Histopathology Department'])}, "
         f"[REDACTED] {rng.choice(['Hospitals NHS Foundation Trust', 'University Hospitals NHS Trust'])}",
         f"Lab No: {lab_no}    NHS No: [REDACTED]    Hospital No: [REDACTED]",
         f"Consultant: {rng.choice(['Mr', 'Ms', 'Miss'])} [REDACTED] (Breast Surgery)    "
         + f"Received: {d_in}    Reported: {d_out}", "",
         "Clinical details: " + cd, "", "Macroscopic description:"]
    L.append(uk_macro(c, rng, spec))
    L += ["", "Microscopic description:", uk_micro(c, rng, itc), "",
          rng.choice(["BREAST CANCER RESECTION DATASET (RCPath)", "Breast cancer minimum dataset"])]
    L += [f"Side: {side}    Specimen type: {spec}",
          f"Mammographic abnormality present in specimen: {rng.choice(['Yes', 'Yes', 'Uncertain'])}"]
    if c["T"] == "Tis":
        L += ["Invasive carcinoma: Not seen",
              f"DCIS: {NG_WORD[c['nuclear_grade']]} nuclear grade, size {rng.randint(6, 45)} mm"]
        tags.append("nuclear_grade")
    elif c["T"] == "T0":
        L += ["Invasive carcinoma: Not seen (tumour bed with therapy-related fibrosis)",
              "Pinder classification (breast): 1i - complete pathological response"]
    else:
        size = "not assessable (fragmented specimen)" if c["tx"] else f"{c['size_mm']} mm"
        L.append(f"{rng.choice(['Whole size of invasive tumour', 'Invasive tumour size'])}: {size}")
        L.append(f"Invasive tumour type: {UK_TYPE[TYPE_KEY[c['type']]]}")
        L.append(uk_grade(c, rng, ev, tags))
        L.append(f"Lymphovascular invasion: {'Present' if c['lvi'] else rng.choice(['Not seen', 'Not identified'])}")
        dcis = rng.random() < 0.5
        L.append("DCIS: " + (f"{NG_WORD[c['nuclear_grade']]} nuclear grade, within and around the tumour"
                             if dcis else "Not seen"))
        tags += ["nuclear_grade"] if dcis else []
    L.append(f"Distance to nearest relevant margin: {c['margin_mm']} mm "
             f"({rng.choice(['superior', 'inferior', 'anterior', 'posterior', 'medial'])})")
    L += uk_nodes(c, rng, ev, itc)
    stage = uk_stage(c, rng, ev, itc, m0=c["M"] == "M0" and not m0_in_cd and rng.random() < 0.6)
    L.append(f"Pathological staging: {stage} {rng.choice(['(UICC TNM 8)', '(TNM 8th edition)', '(UICC 8)'])}")
    if g and c["size_mm"] and not c["tx"] and c["N"] in ("N0", "N1", "N2", "N3") and rng.random() < 0.4:
        npi = 0.2 * c["size_mm"] / 10 + int(g[1]) + (1 if c["nodes_pos"] == 0 else 2 if c["nodes_pos"] <= 3 else 3)
        L.append(f"Nottingham Prognostic Index: {npi:.2f}")
    supp = []
    has_rx = any(c[t] is not None for t in ("ER", "PR")) or c["ihc"] or c["ish"]
    if has_rx and rng.random() < 0.08:  # receptors reported on the core only: not stated here
        labels["ER"] = labels["PR"] = labels["HER2"] = None
        has_rx = False
        tags.append("receptors_elsewhere")
    if has_rx:
        where = rng.choice([f"core biopsy {core_no}", f"block A{rng.randint(2, 6)}"])
        L.append(f"Receptors (performed on {where}):")
        for task, names in (("ER", ["ER", "Oestrogen receptor"]), ("PR", ["PR", "PgR", "Progesterone receptor"])):
            r = receptor(c, task, rng)
            if r is None:
                L.append(f"  {names[0]}: not assessed")
                continue
            line, e = uk_receptor(rng.choice(names), r, rng, tags)
            L.append("  " + line)
            add(ev, task, e)
        main, supp = uk_her2(c, rng, ev, tags)
        L += ["  " + x for x in main]
    else:
        L.append("Receptors: see core biopsy report (results not repeated here)")
    if not supp and rng.random() < 0.15:  # supplementary reports are issued for other reasons too
        supp = [f"Block A{rng.randint(2, 6)} sent for {rng.choice(['Oncotype DX', 'Prosigna (PAM50)'])} testing "
                f"at the request of the MDT."]
        tags.append("addendum")
    if supp:
        L += ["", f"SUPPLEMENTARY REPORT ({d_supp}):"] + supp
    L += ["", "Reported by: Dr [REDACTED], Consultant Histopathologist    "
          f"SNOMED: T04000 M{rng.choice(['85003', '85203', '85002'])}"]
    return finish("\n".join(L), labels, ev, tags)


def uk_clinical(c, rng, ev, tags, core_no, spec, yr):
    """Clinical details: imaging scores, the core (its grade may differ from the excision's), staging CT."""
    cd = f"{c['side']} breast {c['quadrant']}, U5 M{rng.randint(4, 5)}. Core {core_no}: "
    if c["T"] == "Tis":
        cd += f"B5a, {NG_WORD[c['nuclear_grade']]} grade DCIS."
    elif rng.random() < 0.7:
        cg = c["grade"] if c["grade"] and rng.random() < 0.6 else rng.choice(["G1", "G2", "G3"])
        cd += f"B5b, grade {cg[1]} {'lobular' if 'lobular' in c['type'] else 'NST'}."
        tags.append("core_grade_distractor")
    else:
        cd += "B5b, invasive carcinoma."
    if c["neoadjuvant"]:
        cd += f" Post NACT ({rng.choice(['6 cycles FEC-T', 'EC x4 then paclitaxel', 'TCHP'])})."
        tags.append("ypTNM")
    if c["M"] == "M1":
        phrase = f"{MET[c['M_site']][0]} metastases on staging CT"
        cd += f" Known {phrase}."
        add(ev, "M", f"Known {phrase}")
    m0_in_cd = c["M"] == "M0" and rng.random() < 0.5
    if m0_in_cd:
        cd += " Staging CT clear (M0)."
        add(ev, "M", "Staging CT clear (M0)")
    if rng.random() < 0.2:
        cd += (f" Previous {rng.choice(['left', 'right'])} breast cancer {yr - rng.randint(3, 15)} "
               f"(pT{rng.choice(['1b', '1c', '2'])} N0, grade {rng.randint(1, 3)}), WLE + RT.")
        tags.append("history_stage")
    return cd + f" {spec}{' + SLNB' if c['sentinel'] else ' + ANC' if c['N'] else ''}.", m0_in_cd


def uk_macro(c, rng, spec):
    w = rng.randint(160, 290) if spec == "Mastectomy" else rng.randint(40, 95)
    inks = rng.sample(["yellow", "green", "blue", "black", "red", "orange"], 4)
    if c["size_mm"] and not c["tx"]:
        lesion = f"a firm pale {rng.choice(['stellate', 'well-circumscribed', 'ill-defined'])} tumour {c['size_mm']} mm"
    else:
        lesion = "an ill-defined fibrous area with a marker clip"
    txt = (f"A: '{c['side']} {spec.lower()}'. An orientated specimen weighing "
           f"{w * rng.randint(1, 4) + rng.randint(0, 40)} g and measuring {w} mm (ML) x "
           f"{rng.randint(w * 2 // 3, w)} mm (SI) x {rng.randint(15, 50)} mm (AP). Painted: superior {inks[0]}, "
           f"inferior {inks[1]}, anterior {inks[2]}, posterior {inks[3]}. Serially sliced medial to lateral into "
           f"{rng.randint(6, 14)} slices, showing {lesion}. Specimen radiograph reviewed. "
           f"Blocks A1-A{rng.randint(8, 20)}.")
    if c["N"] is not None:
        txt += (f" B: '{'Sentinel node' if c['sentinel'] else 'Axillary contents'}'. "
                f"{'Node(s) blue and hot, ' if c['sentinel'] else ''}{c['nodes_examined']} node(s) identified, "
                f"all embedded.")
    return txt


def uk_micro(c, rng, itc):
    bits = [rng.choice(["Sections show an invasive carcinoma forming", "The excision contains invasive tumour forming"])
            + rng.choice([" trabeculae and small tubules in a desmoplastic stroma.", " solid sheets with scanty tubules.",
                          " single files of discohesive cells."]) if invasive(c) else
            "Sections show the lesion described below; no invasive tumour is seen in the levels examined."]
    bits.append(rng.choice(["Background breast shows columnar cell change.", "There is fibrocystic change.",
                            "Previous biopsy site identified."]))
    if itc:
        bits.append("Cytokeratin levels on the sentinel node show a few isolated tumour cells (under 0.2 mm).")
    return " ".join(bits)


def uk_grade(c, rng, ev, tags):
    g = c["grade"]
    if g is None:
        return "Invasive grade: not assessable" + (" (post-treatment changes)" if c["neoadjuvant"] else "")
    t, p, m = nottingham(g, rng)
    form = rng.choice(["full", "full", "grade_only", "score", "components"])
    if form == "full":
        add(ev, "grade", f"Invasive grade: {g[1]}")
        tags.append("nottingham_components")
        return f"Invasive grade: {g[1]} (tubules {t}, pleomorphism {p}, mitoses {m})"
    if form == "grade_only":
        s = rng.choice([f"Invasive grade: {g[1]}", f"Histological grade: {ROMAN[g]}"])
        add(ev, "grade", s)
        return s
    if form == "score":
        add(ev, "grade", f"score {t + p + m} (T{t} P{p} M{m})")
        tags.append("score_only_grade")
        return f"Invasive grade: score {t + p + m} (T{t} P{p} M{m})"
    add(ev, "grade", f"tubules {t}, pleomorphism {p}, mitoses {m}")
    tags += ["nottingham_components", "components_without_grade"]
    return f"Grading: tubules {t}, pleomorphism {p}, mitoses {m}"


def uk_nodes(c, rng, ev, itc):
    if c["N"] is None:
        return ["Axillary nodes present: No"]
    n, p = c["nodes_examined"], c["nodes_pos"]
    site = " (sentinel)" if c["sentinel"] else ""
    if c["N"] == "N1mi":
        s = f"Number of nodes: 1/{n} (micrometastasis only, {rng.uniform(0.3, 1.9):.1f} mm)"
        e = f"Number of nodes: 1/{n} (micrometastasis only"
    elif itc:
        s = f"Number of nodes: 0/{n}{site} (isolated tumour cells only)"
        e = f"Number of nodes: 0/{n}"
    elif rng.random() < 0.7:
        s = e = f"Number of nodes: {p}/{n}"
        s += site
    else:
        s = e = f"Total number of nodes: {n}, number positive: {p}"
    add(ev, "N", e)
    out = ["Axillary nodes present: Yes", s]
    if p and c["N"] != "N1mi":
        out.append(f"Extranodal extension: {rng.choice(['Not present', 'Present (<2 mm)'])}")
    return out


def uk_stage(c, rng, ev, itc, m0):
    bare = not c["neoadjuvant"] and rng.random() < 0.3  # "T1c N0(sn)" without the p prefix
    pre = "" if bare else c["prefix"]
    t = t_token(c, pre)
    n = node_stage_text(c, pre, itc)
    if not c["tx"]:
        add(ev, "T", t)
    if c["N"] is not None:
        add(ev, "N", n)
    s = f"{t} {n}"
    if m0:
        s += " M0" if bare else " cM0"
        add(ev, "M", "M0" if bare else "cM0")
    elif c["M"] == "M1" and rng.random() < 0.5:
        s += " M1"
    elif c["M"] != "M1" and rng.random() < 0.35:
        s += " pMX"  # distant spread not assessed: says nothing of M (label stays null)
    return s


# ----------------------------------------------------------------------------------------------------------
# 2. continental European report in English translation

EU_TYPE = {"nst": "invasive carcinoma of no special type (NST)", "lobular": "invasive lobular carcinoma",
           "mixed": "mixed invasive carcinoma (NST and lobular components)", "mucinous": "mucinous carcinoma",
           "tubular": "tubular carcinoma"}
EU_INST = [  # (institution, translation note, accession label, separator in the accession number)
    ("Institute of Pathology, University Hospital [REDACTED]", "[Translation of the German original]", "Entry no.", "."),
    ("Department of Pathological Anatomy, [REDACTED] Hospital", "[Translated from Italian]", "Histology no.", "/"),
    ("Pathology Laboratory, [REDACTED] Medical Centre", "[English translation of the Dutch report]", "T-number", "-")]


def eu_receptor(name, r, rng):
    if r["status"] == "Equivocal":
        s = f"{name}: not evaluable (no reaction in the internal control), result equivocal"
        return s, f"{name}: not evaluable"
    if r["pct_text"] == "0%":
        s = e = f"{name}: {rng.choice(['0% of tumour cell nuclei', 'no nuclear reaction (0%)'])}"
    else:
        s = e = f"{name}: {r['pct_text']} of nuclei, {r['intensity']} intensity"
    if rng.random() < 0.5:
        s += f" (IRS {irs(r)})"
    if rng.random() < 0.25:
        s += " - " + {"Positive": "positive" if r["pct"] >= 10 else "weakly positive (low positive)",
                      "Negative": "negative"}[r["status"]]
    return s, e


def eu_her2(c, rng, ev, tags):
    """HER2 lines and (when ISH came later) the supplementary report: 'c-erbB-2 (HercepTest): score 2+; SISH: ...'."""
    name = rng.choice(["c-erbB-2 (HercepTest)", "HER2/neu (clone 4B5)", "Her2neu (HercepTest, Dako)"])
    meth = rng.choice(["SISH", "CISH", "FISH"])
    ihc, ish = c["ihc"], c["ish"]
    word = "amplified" if ish == "amplified" else rng.choice(["not amplified", "no amplification"])
    nums = f"ratio {c['ratio']}" + (f", mean {c['copies']} HER2 signals per nucleus" if rng.random() < 0.5 else "")
    if ihc is None and ish is None:
        return ["HER2: not examined on this material"], []
    if ihc is None:
        tags.append("ish")
        add(ev, "HER2", f"HER2 {meth}: {word}")
        return [f"HER2 {meth}: {word}, {nums} (immunohistochemistry not evaluable)"], []
    if ihc != "2+" or ish is None:
        tail = {"0": " (negative)", "1+": " (negative)", "3+": " (positive)", "2+": ""}[ihc] if rng.random() < 0.4 else ""
        line = f"{name}: score {ihc}{tail}"
        add(ev, "HER2", f"{name}: score {ihc}")
        if rng.random() < 0.35:
            line += f" ({ihc_criteria(ihc, rng)})"
        if ihc == "2+":
            line += f"; {meth} has been initiated, the result will follow"
        return [line], []
    tags.append("ish")
    if rng.random() < 0.6:
        add(ev, "HER2", f"{meth}: {word}")
        return [f"{name}: score 2+; {meth}: {word}, {nums}"], []
    tags.append("addendum")
    final = "positive" if ish == "amplified" else "negative"
    add(ev, "HER2", f"HER2 status therefore: {final}")
    gene = "shows amplification of the HER2 gene" if ish == "amplified" else "shows no amplification of the HER2 gene"
    return [f"{name}: score 2+; {meth} has been initiated, the result will follow"], [
        f"The {meth} analysis on block 1{rng.choice('BCD')} {gene} ({nums}). HER2 status therefore: {final}."]


def eu_grade(c, rng, ev, tags):
    """Grade in the diagnosis ('moderately differentiated (G2)', words only, Elston-Ellis, 'high grade') and whether
    TNM has G."""
    g = c["grade"]
    if g is None:
        return ("; grading not meaningful after chemotherapy" if c["neoadjuvant"] else ""), (
            "GX" if rng.random() < 0.5 else "")
    mode = rng.choice(["diff_g", "diff", "tnm_only", "elston", "tier"])
    tags.append({"diff_g": "differentiation_grade", "diff": "differentiation_grade", "tnm_only": "grade_in_tnm_only",
                 "elston": "nottingham_components", "tier": "three_tier_grade"}[mode])
    if mode == "tnm_only":
        add(ev, "grade", g)
        return "", g
    if mode == "elston":
        t, p, m = nottingham(g, rng)
        add(ev, "grade", f"grade {ROMAN[g]} according to Elston and Ellis")
        phrase = f", grade {ROMAN[g]} according to Elston and Ellis ({t}+{p}+{m} = {t + p + m} points)"
    elif mode == "tier":
        phrase = f", {NG_WORD[int(g[1])]} grade" + rng.choice(["", f" ({g})"])
        add(ev, "grade", phrase[2:])
    else:
        phrase = f", {DIFF[g]}" + (f" ({g})" if mode == "diff_g" else "")
        add(ev, "grade", phrase[2:])
    g_in_tnm = mode != "diff" and rng.random() < 0.5
    if g_in_tnm:
        add(ev, "grade", g)
    return phrase, g if g_in_tnm else ""


def b_euro_translated(c, rng):
    labels, ev, tags = start_labels(c), {}, ["translated", "uicc"]
    inst, note, numname, sep = rng.choice(EU_INST)
    yr = rng.randint(2015, 2024)
    d_in, d_supp = dates(rng, yr, 2, sep=".")
    side = c["side"].lower()
    itc = c["N"] == "N0" and rng.random() < 0.15
    L = [inst, note, f"{numname} {rng.choice('EHB')}{sep}{yr}{sep}{rng.randint(1000, 39999)}    "
         f"Received: {d_in}    Sender: Breast Centre, Dr. [REDACTED]", "",
         "Clinical information: " + eu_clinical(c, rng, ev, tags), "", "Macroscopy:"]
    mast = "mastectomy" in c["procedure"].lower()
    spec = "Mastectomy" if mast else rng.choice(["Segmentectomy", "Breast-conserving excision", "Quadrantectomy"])
    size_cm = f"{c['size_mm'] / 10:.1f} cm" if c["size_mm"] and not c["tx"] else None
    dims = (f"{rng.randint(16, 28)} x {rng.randint(12, 20)} x {rng.randint(3, 7)} cm, {rng.randint(300, 1100)} g. "
            if mast else f"{rng.randint(5, 12)} x {rng.randint(4, 9)} x {rng.randint(2, 5)} cm, {rng.randint(20, 180)} g. ")
    L.append(f"1. {spec} {side} breast, thread-marked (long thread lateral, short thread cranial), {dims}"
             + (f"On lamellation a grey-white, firm tumour {size_cm} in diameter, " if size_cm else
                "On lamellation a poorly defined fibrotic area with clip, ")
             + f"{c['margin_mm']} mm from the nearest resection margin.")
    if c["N"] is not None:
        L.append(f"2. {'Sentinel lymph node' if c['sentinel'] else 'Axillary dissection'} {side}: fatty tissue with "
                 f"{c['nodes_examined']} lymph node(s) up to {rng.uniform(0.5, 2.2):.1f} cm.")
    L += ["", "Microscopy:", eu_micro(c, rng, itc), ""]
    grade_phrase, g_tok = eu_grade(c, rng, ev, tags) if invasive(c) else ("", "")
    ihc_lines, supp = [], []
    for task, name in (("ER", rng.choice(["Oestrogen receptors", "Oestrogen receptor (ER, clone SP1)"])),
                       ("PR", rng.choice(["Progesterone receptors", "PgR (clone 1E2)"]))):
        r = receptor(c, task, rng)
        if r is not None:
            s, e = eu_receptor(name, r, rng)
            ihc_lines.append(s)
            add(ev, task, e)
    if invasive(c) or c["ihc"] or c["ish"]:
        her, supp = eu_her2(c, rng, ev, tags)
        ihc_lines += her + [f"Ki-67 (MIB-1): {c['ki67']}%"]
    if ihc_lines:
        L += [f"Immunohistochemistry (block 1{rng.choice('BCD')}):"] + ["  " + x for x in ihc_lines] + [""]
    L.append(rng.choice(["Diagnosis:", "Critical report:", "Assessment:"]))
    L.append("1. " + eu_diagnosis(c, rng, spec, side, grade_phrase, tags))
    if c["N"] is not None:
        L.append("2. " + eu_nodes(c, rng, itc))
    L += ["", rng.choice(["Tumour classification (UICC, 8th edition 2017):", "TNM (UICC 8th ed.):", "pTNM:"]),
          eu_tnm(c, rng, ev, g_tok, itc)]
    if not supp and rng.random() < 0.15:
        supp = [f"Block 1{rng.choice('BCD')} has been sent for {rng.choice(['EndoPredict', 'Oncotype DX'])} analysis."]
    if supp:
        tags.append("addendum")
        L += ["", f"Supplementary report of {d_supp}:"] + supp
    L += ["", "[REDACTED], MD, Senior Physician / [REDACTED], MD, Professor of Pathology"]
    return finish("\n".join(L), labels, ev, tags)


def eu_clinical(c, rng, ev, tags):
    s = f"Carcinoma of the {c['side'].lower()} breast, {c['quadrant']}, confirmed on core biopsy."
    if c["neoadjuvant"]:
        s += f" Status after neoadjuvant chemotherapy ({rng.choice(['EC-Pac', 'TCHP', 'EC/docetaxel'])})."
        tags.append("ypTNM")
    if c["M"] == "M1" and rng.random() < 0.5:
        phr = f"known {MET[c['M_site']][1]} metastases"
        s += f" {phr[0].upper() + phr[1:]}."
        add(ev, "M", phr[0].upper() + phr[1:])
    if rng.random() < 0.2:
        s += (f" Status post breast-conserving therapy of the {rng.choice(['left', 'right'])} breast in "
              f"{rng.randint(2004, 2016)} (pT{rng.choice(['1b', '1c', '2'])} pN0 G{rng.randint(1, 3)}).")
        tags.append("history_stage")
    return s


def eu_micro(c, rng, itc):
    if c["T"] == "T0":
        s = "Ad 1: Tumour bed with hyalinised fibrosis, histiocytes and haemosiderin; no residual invasive carcinoma."
    elif c["T"] == "Tis":
        s = "Ad 1: Ducts filled by atypical epithelium with a cribriform and solid growth pattern; no stromal invasion."
    else:
        s = (f"Ad 1: Infiltrates of {EU_TYPE[TYPE_KEY[c['type']]]} with "
             f"{rng.choice(['solid and trabecular', 'tubular and cord-like', 'single-file'])} growth and "
             f"{rng.randint(1, 25)} mitoses per 10 HPF. "
             + ("Tumour cells in lymphatic vessels." if c["lvi"] else "No lymphatic or vascular invasion."))
    if c["N"] is not None:
        s += " Ad 2: " + ("A few isolated tumour cells in the subcapsular sinus (cytokeratin)." if itc else
                          "Lymph nodes with sinus histiocytosis." if c["nodes_pos"] == 0 else
                          "Lymph node metastases (see diagnosis).")
    return s


def eu_diagnosis(c, rng, spec, side, grade_phrase, tags):
    head = f"{spec} {side} breast: "
    if c["T"] == "T0":
        sinn = "4 (no residual invasive tumour)"
        return head + f"no residual invasive carcinoma after chemotherapy; regression grade according to Sinn: {sinn}."
    dcis = (f"ductal carcinoma in situ (DCIS), nuclear grade {c['nuclear_grade']} "
            f"({NG_WORD[c['nuclear_grade']]} grade), Van Nuys group {rng.randint(1, 3)}")
    if c["T"] == "Tis":
        tags.append("nuclear_grade")
        return head + f"{dcis}, extent {rng.uniform(0.5, 4.5):.1f} cm; resection margins free."
    size = "size not assessable (fragmented material)" if c["tx"] else f"maximum diameter {c['size_mm'] / 10:.1f} cm"
    s = head + f"{EU_TYPE[TYPE_KEY[c['type']]]}{grade_phrase}, {size}"
    if c["T"] == "T4":
        s += {"4b": ", with ulceration of the skin", "4d": ", extensive dermal lymphangiosis (inflammatory carcinoma)",
              "4a": ", infiltrating the chest wall"}[c["Tsub"]]
    if rng.random() < 0.5:
        tags.append("nuclear_grade")
        s += f"; accompanying {dcis.replace('ductal carcinoma in situ (DCIS)', 'DCIS component')}"
    if c["neoadjuvant"]:
        s += f"; regression grade according to Sinn: {rng.randint(1, 3)}"
    return s + f". Resection margins free (minimal distance {c['margin_mm']} mm)."


def eu_nodes(c, rng, itc):
    n, p = c["nodes_examined"], c["nodes_pos"]
    if c["N"] == "N1mi":
        return f"Micrometastasis ({rng.uniform(0.3, 1.9):.1f} mm) in 1 of {n} lymph nodes."
    if p == 0:
        return f"{n} lymph node(s) without tumour{' (isolated tumour cells only)' if itc else ''} (0/{n})."
    return (f"Metastases in {p} of {n} lymph nodes ({p}/{n}), largest {rng.randint(3, 25)} mm, "
            f"{rng.choice(['without', 'with'])} extracapsular extension.")


def eu_tnm(c, rng, ev, g_tok, itc):
    t = t_token(c) + (" (m)" if rng.random() < 0.1 and invasive(c) else "")
    if not c["tx"]:
        add(ev, "T", t_token(c))
    parts = [t]
    if c["N"] is not None:
        n = node_stage_text(c, c["prefix"], itc)
        add(ev, "N", n)
        parts.append(f"{n} ({c['nodes_pos']}/{c['nodes_examined']}{' sn' if c['sentinel'] else ''})")
    if c["M"] == "M0" and rng.random() < 0.6:
        parts.append("cM0")
        add(ev, "M", "cM0")
    elif c["M"] == "M1" and "M" not in ev:
        m = f"pM1 ({MET[c['M_site']][2]})"
        parts.append(m)
        add(ev, "M", m)
    elif c["M"] == "M0" and rng.random() < 0.5:
        parts.append("(cM0 according to clinical staging)")
        add(ev, "M", "cM0")
    elif c["M"] != "M1" and rng.random() < 0.4:
        parts.append(rng.choice(["pMX", "(distant metastases: not assessable on this specimen)"]))
    if invasive(c):
        parts += [f"L{int(c['lvi'])}", f"V{int(c['lvi'] and rng.random() < 0.3)}", f"Pn{rng.choice([0, 0, 1])}"]
    if g_tok:
        parts.append(g_tok)
    parts.append("R0")
    return rng.choice([" ", ", "]).join(parts)


# ----------------------------------------------------------------------------------------------------------
# 3. outside consultation / second opinion

OUT_LABS = ["St. Elsewhere Hospital", "Mercy Regional Medical Center", "Valley Pathology Associates",
            "[REDACTED] Community Hospital", "Lakeside Diagnostic Laboratory"]


def shifted(value, options, rng):
    return rng.choice([o for o in options if o != value])


def outside_values(c, rng, core):
    """What the referring lab reported: each field agrees with ours or not, independently of its value."""
    o = {}
    if c["grade"]:
        o["grade"] = c["grade"] if rng.random() < 0.65 else shifted(c["grade"], ["G1", "G2", "G3"], rng)
    if not core:
        o["T"] = c["Tsub"] if rng.random() < 0.6 or c["tx"] else shifted(c["Tsub"], ["is", "1b", "1c", "2", "3"], rng)
        if c["N"] is not None:
            o["N"] = c["Nsub"] if rng.random() < 0.7 else shifted(c["Nsub"], ["0", "0(i+)", "1mi", "1a", "2a"], rng)
    for t in ("ER", "PR"):
        if c[t] in ("Positive", "Negative"):
            o[t] = c[t] if rng.random() < 0.85 else {"Positive": "Negative", "Negative": "Positive"}[c[t]]
    if c["ihc"] == "2+" and c["ish"] or c["ihc"] is None and c["ish"]:
        o["HER2"] = "2+"
    elif c["ihc"]:
        o["HER2"] = c["ihc"] if rng.random() < 0.75 else shifted(c["ihc"], ["0", "1+", "2+", "3+"], rng)
    return o


def outside_receptor_text(c, t, status, rng):
    """'ER positive (90%)': the outside percentage is ours when the status agrees, else one of its own."""
    if rng.random() < 0.3:
        return f"{t} {status.lower()}"
    pct = c[t + "_pct"] if status == c[t] else rng.choice([0, 0, 0]) if status == "Negative" else \
        rng.choice([5, 20, 50, 80, 95])
    return f"{t} {status.lower()} ({pct}%)"


def b_outside_consult(c, rng):
    labels, ev, tags = start_labels(c), {}, ["outside_review"]
    core = invasive(c) and not c["neoadjuvant"] and rng.random() < 0.3  # consult on the core biopsy only
    if core:
        labels["T"], labels["N"] = None, None
        tags.append("core_biopsy")
    yr = rng.randint(2017, 2024)
    out_lab, out_no = rng.choice(OUT_LABS), f"S{yr % 100 - rng.randint(0, 1)}-{rng.randint(1000, 9999)}"
    o = outside_values(c, rng, core)
    # the outside report, quoted: the receptor phrases are kept because our report may agree "by reference"
    o_txt = {}
    kind = c["type"].split(" (")[0].lower() if invasive(c) else "ductal carcinoma in situ" if c["T"] == "Tis" else \
        "no residual invasive carcinoma"
    if "grade" in o:
        o_txt["grade"] = f"grade {o['grade'][1]}"
    if "T" in o:
        o_txt["T"] = f"{c['prefix']}T{o['T']}" + (f" N{o['N']}" if "N" in o else "")
    for t in ("ER", "PR"):
        if t in o:
            o_txt[t] = outside_receptor_text(c, t, o[t], rng)
    if "HER2" in o:
        o_txt["HER2"] = f"HER2 {o['HER2']}" + (" (equivocal)" if o["HER2"] == "2+" else "")
    agree_ref = [t for t in ("ER", "PR") if t in o and o[t] == c[t] and rng.random() < 0.3]
    outside_after = rng.random() < 0.3
    outside_line = (f"Outside diagnosis ({out_lab}, {out_no}): {kind}, "
                    + ", ".join(o_txt[k] for k in ("grade", "T", "ER", "PR", "HER2") if k in o_txt) + ".")
    L = [rng.choice(["BREAST PATHOLOGY CONSULTATION SERVICE", "CONSULTATION REPORT (SECOND OPINION)"]),
         "Department of Pathology, [REDACTED] University Medical Center    "
         f"Consult #: PC{yr % 100}-{rng.randint(100, 9999):04d}",
         "Received: {}    Reported: {}    Patient: [REDACTED]    DOB: [REDACTED]".format(*dates(rng, yr, 2, "mdy")),
         "Referring physician: [REDACTED], MD "
         f"({rng.choice(['Medical Oncology', 'Breast Surgery', 'Radiation Oncology'])})",
         "Reason for referral: " + rng.choice(["second opinion prior to definitive surgery", "transfer of care",
                                               "patient request", "tumor board review"]),
         "", f"MATERIALS RECEIVED: {rng.randint(2, 14)} H&E slides and {rng.randint(1, 3)} paraffin block(s) "
         f"({out_no}) from {out_lab}, with a copy of the outside pathology report.", "",
         "CLINICAL HISTORY: " + consult_history(c, rng, ev, tags, core), ""]
    if not outside_after:
        L += [outside_line, ""]
    L.append(rng.choice(["OUR INTERPRETATION:", "CONSULTATION DIAGNOSIS:", "DIAGNOSIS (our review):"]))
    L += consult_diagnosis(c, rng, ev, tags, core, out_no)
    L += consult_markers(c, rng, ev, tags, o_txt, agree_ref)
    ours = {"grade": c["grade"], "T": c["Tsub"], "ER": c["ER"], "PR": c["PR"], "HER2": c["ihc"]}
    notes = [k for k in ours if k in o and (o[k] != ours[k] or k == "T" and o.get("N", c["Nsub"]) != c["Nsub"])]
    L += ["", "COMMENT:"]
    if outside_after:
        L.append(f"The outside report ({out_lab}, {out_no}) had: {kind}, "
                 + "; ".join(o_txt[k] for k in ("grade", "T", "ER", "PR", "HER2") if k in o_txt) + ".")
    if notes:
        what = ", ".join({"grade": "grade", "T": "stage", "ER": "ER", "PR": "PR", "HER2": "HER2"}[k] for k in notes)
        L.append(f"Our interpretation differs from the outside report with regard to {what}. "
                 f"The case was reviewed at our intradepartmental breast consensus conference.")
    else:
        L.append("Our findings are concordant with the outside report.")
    if "addendum" not in tags and rng.random() < 0.1:  # addenda with no new result are common too
        tags.append("addendum")
        L += ["", "ADDENDUM:", rng.choice(["Additional outside slides (deeper levels) were received and reviewed; "
                                           "they do not change the diagnosis.",
                                           "The paraffin blocks were returned to the referring institution."])]
    L += ["", "[REDACTED], MD, Breast Pathology"]
    return finish("\n".join(L), labels, ev, tags)


def consult_history(c, rng, ev, tags, core):
    age = rng.randint(29, 86)
    s = f"{age}-year-old woman with a {c['side'].lower()} breast mass at {c['quadrant']}."
    if core:
        s += f" Clinical stage cT{rng.choice(['1c', '2', '3'])} cN{rng.choice(['0', '1'])} by imaging."
        tags.append("clinical_stage_distractor")
    if c["neoadjuvant"]:
        s += " Completed neoadjuvant chemotherapy before surgery."
        tags.append("ypTNM")
    if c["M"] == "M1":
        phr = f"known metastatic disease to the {MET[c['M_site']][0]}"
        s += f" {phr[0].upper() + phr[1:]}."
        add(ev, "M", phr[1:])
    elif rng.random() < 0.3:  # same rate whatever M is: the referral's imaging, not a stated M
        s += " " + rng.choice(["Staging CT: no evidence of metastasis.", "Bone scan negative.",
                               "No distant metastatic disease on PET-CT per referral note."])
        tags.append("staging_scan")
    return s


def consult_diagnosis(c, rng, ev, tags, core, out_no):
    proc = "core needle biopsy" if core else c["procedure"].lower()
    L = [f"{c['side']} breast, {proc} (outside {out_no}, slides reviewed):"]
    if c["T"] == "T0":
        L.append("  - No residual invasive carcinoma; tumor bed with treatment effect.")
    elif c["T"] == "Tis":
        L.append(f"  - Ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}; "
                 "no invasion identified on deeper levels.")
        tags.append("nuclear_grade")
    else:
        typ = c["type"].split(" (")[0]
        if c["grade"]:
            t, p, m = nottingham(c["grade"], rng)
            g = rng.choice([f"Nottingham grade {c['grade'][1]}", f"grade {ROMAN[c['grade']]}/III",
                            f"Nottingham score {t + p + m}/9"])
            add(ev, "grade", g)
            typ += f", {g} (tubules {t}, nuclei {p}, mitoses {m})"
        elif c["neoadjuvant"]:
            typ += ", not graded (treatment effect)"
        L.append(f"  - {typ}.")
        if core:
            L.append(f"  - Carcinoma present in {rng.randint(2, 5)} of {rng.randint(3, 6)} cores, "
                     f"up to {rng.randint(4, 15)} mm in a single core.")
        elif c["tx"]:
            L.append("  - Tumor size cannot be determined on the submitted slides (fragmented specimen).")
        else:
            L.append(f"  - Invasive tumor size {c['size_mm']} mm by our measurement.")
        if rng.random() < 0.35:
            L.append(f"  - Associated ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}.")
            tags.append("nuclear_grade")
    if core:
        return L
    if c["N"] is not None:
        n, p = c["nodes_examined"], c["nodes_pos"]
        L.append("  - Lymph nodes: " + ("micrometastasis (1.1 mm) in 1 of " + str(n) if c["N"] == "N1mi" else
                                        f"{p} of {n} involved") + f" ({p}/{n}).")
    st = t_token(c) + (" " + node_stage_text(c, c["prefix"]) if c["N"] is not None else "")
    if c["M"] == "M0" and rng.random() < 0.7:
        st += " cM0"
        add(ev, "M", "cM0")
    elif c["M"] == "M1" and rng.random() < 0.7:  # the referral's clinical M
        st += " cM1"
        add(ev, "M", "cM1")
    elif c["M"] != "M1" and rng.random() < 0.4:
        st += rng.choice([" pM: not applicable", "; distant metastasis: not applicable (pM cannot be assigned)"])
    L.append(f"  - Pathologic stage (AJCC 8th edition): {st}")
    if not c["tx"]:
        add(ev, "T", t_token(c))
    if c["N"] is not None:
        add(ev, "N", node_stage_text(c, c["prefix"]))
    return L


def consult_markers(c, rng, ev, tags, o_txt, agree_ref):
    """Our receptor and HER2 results; ER/PR may be stated only by agreeing with the quoted outside values."""
    blk = f"block A{rng.randint(2, 6)}"
    L = []
    if agree_ref:
        names = "/".join(agree_ref)
        s = f"We agree with the outside {names} result{'s' if len(agree_ref) > 1 else ''}"
        if rng.random() < 0.4:
            s += " (" + "; ".join(o_txt[t] for t in agree_ref) + ")"
        L.append(f"  - {s}; not repeated.")
        tags.append("agree_by_reference")
        for t in agree_ref:
            add(ev, t, s if "(" in s else None, o_txt[t])
    for t, name in (("ER", "Estrogen receptor"), ("PR", "Progesterone receptor")):
        if t in agree_ref:
            continue
        r = receptor(c, t, rng)
        if r is None:
            L.append(f"  - {name}: not repeated; no outside result available.")
            continue
        word = {"Positive": "positive" if r.get("pct", 0) >= 10 else "low positive", "Negative": "negative",
                "Equivocal": "equivocal (uninterpretable; no internal control staining)"}[r["status"]]
        pre = f"{name} (repeated on {blk}): {word}"
        L.append(f"  - {pre}" + (f" ({r['pct_text']}, {r['intensity'] or 'no'} staining)" if "pct" in r else ""))
        add(ev, t, pre)
    ihc, ish = c["ihc"], c["ish"]
    if ihc is None and ish is None:
        L.append("  - HER2: not repeated; outside result not provided.")
    elif ish is not None:
        w = "amplified" if ish == "amplified" else "not amplified"
        if ihc == "2+":
            L.append(f"  - HER2 IHC: 2+ (equivocal), concordant with the outside score.")
        tags.append("ish")
        s = (f"HER2 FISH (performed here on {blk}): {w}; HER2/CEP17 ratio {c['ratio']}, "
             f"average HER2 copy number {c['copies']} per cell (ISH group {1 if ish == 'amplified' else 5})")
        if rng.random() < 0.3:
            L += ["", "ADDENDUM:", s + "."]
            tags.append("addendum")
        else:
            L.append(f"  - {s}.")
        add(ev, "HER2", f"HER2 FISH (performed here on {blk}): {w}")
    else:
        word = {"0": "negative (score 0)", "1+": "negative (1+)", "3+": "positive (3+)",
                "2+": "equivocal (2+); FISH requested, to follow in an addendum"}[ihc]
        s = f"HER2 IHC (repeated on {blk}): {word}"
        L.append(f"  - {s}" + (f"; {ihc_criteria(ihc, rng)}." if ihc != "2+" and rng.random() < 0.35 else "."))
        add(ev, "HER2", s.split(";")[0])
    return L


# ----------------------------------------------------------------------------------------------------------
# 4. LIS telegraphic summary (upper case, semicolons, abbreviations, often one run-on line)

LIS_TYPE = {"nst": "IDC NST", "lobular": "ILC", "mixed": "INV CA W/ MIXED DUCTAL & LOB FEATURES",
            "mucinous": "MUCINOUS CA", "tubular": "TUBULAR CA"}
LIS_PROC = {"Lumpectomy": "LUMP", "Partial mastectomy": "PM", "Total mastectomy": "TM",
            "Modified radical mastectomy": "MRM", "Excision (wire-localized)": "WLE"}


def lis_receptor(name, r, rng):
    if r["status"] == "Equivocal":
        return f"{name} EQUIV (NO INT CONTROL)", f"{name} EQUIV"
    pos = r["status"] == "Positive"
    form = rng.choice(["allred", "pct", "word_pct", "sign"])
    if form == "allred":
        s = f"{name} {'POS' if pos else 'NEG'} ({r['allred']}/8)"
    elif form == "pct":
        s = f"{name} {r['pct_text']}" + (f" {r['intensity'].upper()}" if r["intensity"] else "")
    elif form == "word_pct":
        s = f"{name} {'LOW POS' if pos and r['pct'] < 10 else 'POS' if pos else 'NEG'} {r['pct_text']}"
    else:
        s = f"{name}{'+' if pos else '-'} {r['pct_text']}"
    return s, s


def lis_her2(c, rng, tags):
    ihc, ish = c["ihc"], c["ish"]
    if ihc is None and ish is None:
        return rng.choice(["HER2 NOT DONE", "HER2 ON CNB - SEE PRIOR"]), None, None
    amp = "AMP" if ish == "amplified" else rng.choice(["NOT AMP", "NOT AMP", "NON-AMP", "NEG"])
    fish = f"FISH {amp}" + (f" (RATIO {c['ratio']}, CN {c['copies']})" if rng.random() < 0.6 else "")
    if ihc is None:
        tags.append("ish")
        return f"HER2 {fish}", f"HER2 {fish.split(' (')[0]}", None
    if ihc == "2+" and ish:
        tags.append("ish")
        if rng.random() < 0.4:  # the FISH result came as an addendum line at the end of the record
            tags.append("addendum")
            final = f"FINAL HER2 {'POS' if ish == 'amplified' else 'NEG'}"
            return "HER2 2+ EQUIV, FISH PENDING", final, f"HER2 {fish} - {final}"
        return f"HER2 2+ EQUIV, {fish}", fish.split(" (")[0], None
    s = {"0": rng.choice(["HER2 NEG (0)", "HER2 0"]), "1+": rng.choice(["HER2 NEG (1+)", "HER2 LOW (1+)"]),
         "2+": "HER2 2+ EQUIV, FISH PENDING", "3+": rng.choice(["HER2 POS (3+)", "HER2 3+"])}[ihc]
    return s, s.split(",")[0], None


def lis_grade(c, rng, ev, tags):
    g = c["grade"]
    if g is None:
        return "GR NOT ASSESSED"
    t, p, m = nottingham(g, rng)
    form = rng.choice(["gr_comp", "gr", "nott", "sbr", "score", "tier"])
    s = {"gr_comp": f"GR {g[1]} (T{t} P{p} M{m})", "gr": f"GR {g[1]}", "nott": f"NOTT GR {ROMAN[g]}",
         "sbr": f"SBR {t + p + m}/9", "score": f"NOTT SCORE {t}+{p}+{m}={t + p + m}",
         "tier": {"G1": "LOW GR", "G2": "INT GR", "G3": "HIGH GR"}[g]}[form]
    add(ev, "grade", s.split(" (")[0])
    tags += {"sbr": ["score_only_grade"], "score": ["nottingham_components", "components_without_grade"],
             "gr_comp": ["nottingham_components"], "tier": ["three_tier_grade"]}.get(form, [])
    return s


def lis_nodes(c, rng, ev, tags):
    if c["N"] is None:
        return "NO LN RECD"
    n, p = c["nodes_examined"], c["nodes_pos"]
    lab = "SLN" if c["sentinel"] else "AX LN"
    if c["N"] == "N1mi":
        s = f"{lab} 1/{n} MICROMET {rng.uniform(0.3, 1.9):.1f}MM"
    elif p == 0:
        s = f"{lab} 0/{n}" + rng.choice(["", " NEG FOR MET CA", " (NEG)"])
        tags.append("negation")
    else:
        s = f"{lab} {p}/{n} (LARGEST {rng.randint(3, 25)}MM, ENE {rng.choice(['NEG', 'POS', 'NOT SEEN'])})"
    add(ev, "N", s.split(" (")[0].split(" NEG FOR")[0])
    return s


def b_lis_telegraphic(c, rng):
    labels, ev, tags = start_labels(c), {}, ["upper_case", "abbreviations"]
    yr = rng.randint(2012, 2024)
    d = dates(rng, yr, 4, "mdy")
    side = {"Left": "LT", "Right": "RT"}[c["side"]]
    proc = LIS_PROC[c["procedure"]]
    head = [f"{rng.choice(['SURG PATH FINAL RPT', 'AP RESULT', 'PATH SUMMARY (LIS)'])}  ACC# "
            f"{rng.choice(['SP', 'S', 'SG'])}-{yr % 100}-{rng.randint(100, 99999):06d}  "
            + "COLL {}  SIGNED {}".format(*d[:2]), "PT: [REDACTED]  MRN: [REDACTED]  ATT: [REDACTED]"]
    hx = f"CLIN HX: {rng.randint(30, 88)}F {side} BR MASS {c['quadrant'].upper()}, CNB + CA"
    if c["neoadjuvant"]:
        hx += ", S/P NEOADJ CHEMO"
        tags.append("ypTNM")
    if c["M"] == "M1" and rng.random() < 0.6:
        phr = f"KNOWN MET DZ TO {MET[c['M_site']][0].upper()}"
        hx += f", {phr}"
        add(ev, "M", phr)
    if rng.random() < 0.25:
        hx += (f"; HX {rng.choice(['LT', 'RT'])} BR CA {yr - rng.randint(3, 15)} PT{rng.choice(['1B', '1C', '2'])} "
               f"N{rng.choice(['0', '1A'])} S/P {rng.choice(['LUMP/XRT', 'MRM', 'WLE/XRT'])}")
        tags.append("history_stage")
    parts = [f"{side} BREAST, {proc}:"]
    if c["T"] == "T0":
        parts[0] += " NO RESID INV CA, TX EFFECT (TUMOR BED)"
    elif c["T"] == "Tis":
        parts[0] += f" DCIS ONLY, NG {c['nuclear_grade']}, {rng.randint(5, 40)}MM, NO INVASION"
        tags += ["nuclear_grade", "negation"]
    else:
        size = "SIZE NOT ASSESSABLE (FRAGMENTED)" if c["tx"] else \
            rng.choice([f"{c['size_mm']}MM", f"{c['size_mm'] / 10:.1f}CM"])
        parts[0] += f" {LIS_TYPE[TYPE_KEY[c['type']]]}, {lis_grade(c, rng, ev, tags)}, {size}"
        if c["T"] == "T4":
            parts.append({"4b": "SKIN ULCERATION PRESENT", "4d": "DERMAL LYMPHATIC INV (INFLAMMATORY)",
                          "4a": "INVADES CHEST WALL"}[c["Tsub"]])
        parts.append("LVI PRESENT" if c["lvi"] else rng.choice(["LVI NOT SEEN", "NO LVI", "LVI NEG"]))
        if rng.random() < 0.4:
            parts.append(f"ASSOC DCIS NG {c['nuclear_grade']}" + (" W/ COMEDO" if c["nuclear_grade"] == 3 else ""))
            tags.append("nuclear_grade")
        else:
            parts.append("NO DCIS")
        tags.append("negation")
    parts.append(f"MARGINS CLEAR ({'>5' if c['margin_mm'] > 5 else c['margin_mm']}MM)" if rng.random() < 0.6
                 else f"MARGINS NEG, CLOSEST {c['margin_mm']}MM ({rng.choice(['DEEP', 'SUP', 'INF', 'MED', 'LAT'])})")
    parts.append(lis_nodes(c, rng, ev, tags))
    rx, late = [], None
    for task, names in (("ER", ["ER"]), ("PR", ["PR", "PGR"])):
        r = receptor(c, task, rng)
        if r is not None:
            s, e = lis_receptor(rng.choice(names), r, rng)
            rx.append(s)
            add(ev, task, e)
    if invasive(c) or c["ihc"] or c["ish"]:
        s, e, late = lis_her2(c, rng, tags)
        rx.append(s)
        add(ev, "HER2", e)
    if rx:
        parts.append(" ".join(rx))
    stage = [t_token(c).upper()]
    if not c["tx"]:
        add(ev, "T", stage[0])
    if c["N"] is not None:
        stage.append(node_stage_text(c, c["prefix"]).upper())
        add(ev, "N", stage[-1])
    if c["M"] == "M0" and rng.random() < 0.7:
        stage.append("CM0")
        add(ev, "M", "CM0")
    elif c["M"] == "M1" and "M" not in ev:
        stage.append(f"PM1 ({MET[c['M_site']][0].upper()} BX)")
        add(ev, "M", stage[-1])
    elif c["M"] != "M1" and rng.random() < 0.3:
        stage.append("PM N/A")
    parts.append(" ".join(stage))
    dx = "DX: " + "; ".join(parts)
    gross = (f"GROSS: A) RECD FRESH {proc} {rng.randint(4, 20)}X{rng.randint(3, 12)}X{rng.randint(2, 6)}CM, "
             f"INKED, SERIALLY SECT, A1-A{rng.randint(6, 22)}" + (f". B) {c['nodes_examined']} LN, ALL SUBMITTED"
                                                                 if c["N"] is not None else ""))
    lines = head + [hx, gross]
    if rng.random() < 0.5:
        lines.append("MICRO: " + rng.choice(["SEE DX", "H&E AND LEVELS REVIEWED; FINDINGS AS IN DX",
                                             "SECTIONS SHOW INFILTRATING CA IN DESMOPLASTIC STROMA, BX SITE CHANGES"]))
    lines.append(dx)
    if rx and rng.random() < 0.5:
        lines.append(f"IHC: {rng.choice(['ER SP1', 'ER 6F11'])}/PR 1E2/HER2 4B5 (VENTANA), CONTROLS OK, FIX 6-72H")
    if late or rng.random() < 0.1:
        tags.append("addendum")
        lines.append(f"ADDENDUM {d[3]}: " + (late or rng.choice(
            ["BLOCK A4 SENT FOR ONCOTYPE DX", "CORRECTED CLINICIAN NAME, NO CHANGE TO DX", "D/W TUMOR BOARD"])))
    if rng.random() < 0.3:
        lines.append("CMT: " + rng.choice([f"D/W DR [REDACTED] {d[2]}", "RECEPTORS BY IHC, CAP/ASCO GUIDELINES",
                                           "SEE SYNOPTIC IN CANCER REGISTRY"]))
    if rng.random() < 0.4:  # record exported without line breaks
        tags.append("lost_linebreaks")
        return finish("  ".join(lines), labels, ev, tags)
    return finish("\n".join(lines), labels, ev, tags)


# ----------------------------------------------------------------------------------------------------------
# 5. multi-part specimen with one cancer

def split_nodes(c, rng):
    """Nodes per part: [(label, examined, positive)] summing to the tumour's counts."""
    n, p = c["nodes_examined"], c["nodes_pos"]
    if c["sentinel"] or (n <= 3 and rng.random() < 0.5):
        k = min(n, rng.randint(1, 3))
        ex = [1] * k
        for _ in range(n - k):
            ex[rng.randrange(k)] += 1
        parts = [f"sentinel lymph node #{i + 1}" for i in range(k)]
    else:
        ex, parts = [n], ["lymph nodes, level I-II dissection"]
        if rng.random() < 0.4 and n >= 3:
            ex, parts = [1, n - 1], ["sentinel lymph node #1", "lymph nodes, completion dissection"]
    pos = [0] * len(ex)
    for _ in range(p):
        i = rng.choice([j for j in range(len(ex)) if pos[j] < ex[j]])
        pos[i] += 1
    return list(zip(parts, ex, pos))


def node_part_text(c, e, p, itc_here, rng, ts):
    """One node part's diagnosis; the whole phrase is evidence (N is the sum over the parts)."""
    if c["N"] == "N1mi" and p:
        return f"micrometastasis {rng.uniform(0.3, 1.9):.1f} mm ({p}/{e})"
    if p:
        return (f"metastatic carcinoma in {p} of {e} lymph node{'s' if e > 1 else ''} ({p}/{e}); largest deposit "
                f"{rng.randint(3, 18)} mm; extranodal extension {rng.choice(['not identified', 'present'])}")
    if itc_here:
        return f"isolated {ts} cells (pN0(i+)) ({p}/{e})"
    return rng.choice([f"negative for metastatic carcinoma ({p}/{e})", f"{e} lymph node{'s' if e > 1 else ''}, "
                       f"no metastatic carcinoma ({p}/{e})", f"benign lymph node{'s' if e > 1 else ''} ({p}/{e})"])


def biomarker_table(c, rng, ev, tags):
    """A flattened table (Marker | Result | % | Intensity) or the ER/PR/HER2 +/- shorthand."""
    rs = {t: receptor(c, t, rng) for t in ("ER", "PR")}
    her = c["HER2"]
    avail = [t for t in ("ER", "PR") if rs[t]] + (["HER2"] if her else [])
    if not avail:
        return [f"Biomarkers: {rng.choice(['performed on the prior core biopsy; see that report', 'not performed'])}"]
    if rng.random() < 0.4:
        tags.append("shorthand_receptors")
        sym = {"Positive": "+", "Negative": "-", "Equivocal": "equivocal"}
        vals = [sym[rs[t]["status"]] for t in avail if t != "HER2"] + ([sym[her]] if her else [])
        s = f"{'/'.join(avail)}: {'/'.join(vals)}"
        for t in avail:
            add(ev, t, s)
        det = []
        if c["ihc"]:
            det.append(f"HER2 IHC {c['ihc']}")
        if c["ish"]:
            det.append(f"ISH {c['ish']}, ratio {c['ratio']}")
            tags.append("ish")
        return [s + (f" ({'; '.join(det)})" if det else "") + f"; Ki-67 {c['ki67']}%"]
    tags.append("biomarker_table")
    rows = ["Marker | Result | % | Intensity"]
    for t, name in (("ER", "ER"), ("PR", "PR")):
        r = rs[t]
        if r is None:
            rows.append(f"{name} | not performed | -- | --")
            continue
        word = {"Positive": "Positive" if r.get("pct", 0) >= 10 else "Low positive", "Negative": "Negative",
                "Equivocal": "Equivocal (control failed)"}[r["status"]]
        row = f"{name} | {word} | {r.get('pct_text', '--').rstrip('%')} | {(r.get('intensity') or '--').capitalize()}"
        rows.append(row)
        add(ev, t, f"{name} | {word}")
    if c["ihc"]:
        w = {"0": "Negative (0)", "1+": "Negative (1+)", "2+": "Equivocal (2+)", "3+": "Positive (3+)"}[c["ihc"]]
        rows.append(f"HER2 IHC (4B5) | {w} | -- | --")
        if not c["ish"]:
            add(ev, "HER2", f"HER2 IHC (4B5) | {w}")
    if c["ish"]:
        w = "Amplified" if c["ish"] == "amplified" else "Not amplified"
        rows.append(f"HER2 ISH | {w} | ratio {c['ratio']} | {c['copies']} copies/cell")
        add(ev, "HER2", f"HER2 ISH | {w}")
        tags.append("ish")
    rows.append(f"Ki-67 | -- | {c['ki67']} | --")
    return rows


def b_multi_specimen(c, rng):
    labels, ev, tags = start_labels(c), {}, ["multi_specimen"]
    uk = rng.random() < 0.3
    ts = "tumour" if uk else "tumor"
    side = c["side"]
    yr = rng.randint(2014, 2024)
    node_parts = split_nodes(c, rng) if c["N"] is not None else []
    itc = c["N"] == "N0" and node_parts and rng.random() < 0.2
    itc_i = rng.randrange(len(node_parts)) if itc else -1
    proc = c["procedure"].lower()
    margins = rng.sample(["superior", "inferior", "medial", "lateral", "anterior", "posterior (deep)"],
                         0 if "mastectomy" in proc and "partial" not in proc else rng.randint(1, 3))
    dcis_part = rng.randrange(len(margins)) if margins and rng.random() < 0.6 else -1
    specs = [("node", x) for x in node_parts]
    specs = specs + [("main", None)] if rng.random() < 0.6 else [("main", None)] + specs
    specs += [("margin", m) for m in margins]
    L = [rng.choice(["SURGICAL PATHOLOGY CONSULTATION", "Anatomical Pathology Report", "PATHOLOGY REPORT - BREAST"]),
         f"Case: {rng.choice(['S', 'AP', 'SP'])}{yr % 100}-{rng.randint(1000, 39999)}    Procedure date: "
         f"{dates(rng, yr, 1, 'dmy' if uk else 'mdy')[0]}    Surgeon: [REDACTED]", "",
         "CLINICAL: " + multi_history(c, rng, ev, tags), "",
         "SPECIMENS:"]
    letters = "ABCDEFGH"
    names = []
    for i, (kind, x) in enumerate(specs):
        name = {"node": lambda: f"{side} axillary {x[0]}", "main": lambda: f"{side} breast, {proc}",
                "margin": lambda: f"Additional {x} margin, {side.lower()} breast"}[kind]()
        names.append(name)
        L.append(f"{letters[i]}. {name}")
    L += ["", "GROSS DESCRIPTION:"]
    for i, (kind, x) in enumerate(specs):
        L.append(f"{letters[i]}. " + multi_gross(c, rng, kind, x, names[i], letters[i]))
    L += ["", "DIAGNOSIS:"]
    node_ev, ni, mi = [], 0, 0
    for i, (kind, x) in enumerate(specs):
        L.append(f"{letters[i]}. {names[i].upper()}:")
        if kind == "node":
            s = node_part_text(c, x[1], x[2], ni == itc_i, rng, ts)
            ni += 1
            s = s[0].upper() + s[1:]
            L.append(f"   - {s}.")
            node_ev.append(s)
        elif kind == "margin":
            mi += 1
            if mi - 1 == dcis_part:
                L.append(f"   - Ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}, "
                         f"{rng.choice(['solid', 'cribriform', 'micropapillary'])} pattern; "
                         f"new margin clear by {rng.randint(1, 9)} mm.")
                tags.append("nuclear_grade")
            else:
                L.append(f"   - Benign breast tissue; negative for carcinoma.")
                tags.append("negation")
        else:
            L += multi_main(c, rng, ev, tags, letters[i], ts)
    if node_parts:
        tags.append("negation")
    L += [""] + multi_stage(c, rng, ev, tags, node_parts, node_ev, letters, specs, itc)
    L += ["", rng.choice(["BREAST BIOMARKERS (on the invasive carcinoma):", "ER / PR / HER2 testing:",
                          "Prognostic/predictive markers (shared for all parts):"])]
    main_letter = letters[specs.index(("main", None))]
    L.append(f"(performed on block {main_letter}{rng.randint(2, 6)}; cold ischemia < 1 h, formalin fixation 6-72 h)")
    L += biomarker_table(c, rng, ev, tags)
    L += ["", f"Pathologist: [REDACTED], {'FRCPath' if uk else 'MD'}"]
    text = "\n".join(L)
    return finish(brit(text) if uk else text, labels, {k: [brit(p) for p in v] for k, v in ev.items()} if uk else ev,
                  tags)


def multi_history(c, rng, ev, tags):
    s = f"{rng.randint(30, 85)}F, {c['side'].lower()} breast carcinoma on core biopsy, {c['quadrant']}."
    if c["neoadjuvant"]:
        s += " Post neoadjuvant systemic therapy."
        tags.append("ypTNM")
    if c["M"] == "M1":
        phr = f"metastatic disease to the {MET[c['M_site']][0]}"
        s += f" Known {phr} ({rng.choice(['biopsy-proven', 'on PET-CT'])})."
        add(ev, "M", f"Known {phr}")
    return s


def multi_gross(c, rng, kind, x, name, letter):
    if kind == "node":
        return (f"Received in formalin labeled \"{name}\": {x[1]} lymph node candidate(s), up to "
                f"{rng.uniform(0.4, 2.5):.1f} cm, serially sectioned and entirely submitted in "
                f"{letter}1-{letter}{x[1] + rng.randint(1, 2)}.")
    if kind == "margin":
        return (f"Received in formalin labeled \"{name}\", a {rng.randint(2, 7)} x {rng.randint(1, 5)} x "
                f"{rng.uniform(0.3, 1.5):.1f} cm portion of fibrofatty tissue with a stitch marking the new margin, "
                f"inked blue, entirely submitted in {letter}1-{letter}{rng.randint(2, 5)}.")
    les = (f"a {c['size_mm'] / 10:.1f} cm firm tan-white mass" if c["size_mm"] and not c["tx"] else
           "an ill-defined fibrotic area around a biopsy clip")
    return (f"Received fresh, an oriented {rng.randint(5, 22)} x {rng.randint(4, 14)} x {rng.randint(2, 6)} cm "
            f"specimen (short stitch superior, long stitch lateral), inked per protocol. Sectioning shows {les}, "
            f"{c['margin_mm'] / 10:.1f} cm from the closest margin. Sections {letter}1-{letter}{rng.randint(8, 24)}.")


def multi_main(c, rng, ev, tags, letter, ts):
    L = []
    if c["T"] == "T0":
        return ["   - No residual invasive carcinoma; tumor bed with treatment effect (fibrosis, histiocytes)."]
    if c["T"] == "Tis":
        tags.append("nuclear_grade")
        return [f"   - Ductal carcinoma in situ, nuclear grade {c['nuclear_grade']}, {rng.randint(5, 45)} mm.",
                "   - Negative for invasive carcinoma.", f"   - Margins negative (closest {c['margin_mm']} mm)."]
    typ = c["type"].split(" (")[0]
    if c["grade"]:
        t, p, m = nottingham(c["grade"], rng)
        g = rng.choice([f"Nottingham grade {c['grade'][1]}", f"histologic grade {c['grade'][1]} of 3",
                        f"Nottingham score {t}+{p}+{m}={t + p + m}"])
        add(ev, "grade", g)
        typ += f", {g}"
    size = "size indeterminate (received fragmented)" if c["tx"] else f"{c['size_mm']} mm"
    L.append(f"   - {typ}, {size}.")
    L.append(f"   - Lymphovascular invasion {'present' if c['lvi'] else 'not identified'}.")
    if rng.random() < 0.3:
        L.append(f"   - Associated DCIS, nuclear grade {c['nuclear_grade']}.")
        tags.append("nuclear_grade")
    L.append(f"   - Margins negative for invasive carcinoma (closest {c['margin_mm']} mm).")
    return L


def multi_stage(c, rng, ev, tags, node_parts, node_ev, letters, specs, itc):
    """The pT (always) and pN (half the time; otherwise N is the sum over the node parts)."""
    st = t_token(c)
    if not c["tx"]:
        add(ev, "T", st)
    L = []
    if node_parts:
        tot_e, tot_p = sum(x[1] for x in node_parts), sum(x[2] for x in node_parts)
        if rng.random() < 0.5:
            st += " " + node_stage_text(c, c["prefix"], itc)
            add(ev, "N", node_stage_text(c, c["prefix"], itc))
        else:
            tags.append("N_derived_from_parts")
            add(ev, "N", *node_ev)
            if rng.random() < 0.5:
                L.append(f"Total lymph nodes (all parts): {tot_p}/{tot_e} positive"
                         + (" (micrometastasis only)" if c["N"] == "N1mi" else ""))
                add(ev, "N", f"Total lymph nodes (all parts): {tot_p}/{tot_e}")
    if c["M"] == "M0" and rng.random() < 0.7:
        st += " cM0"
        add(ev, "M", "cM0")
    elif c["M"] == "M1" and rng.random() < 0.7:
        st += " cM1"
        add(ev, "M", "cM1")
    return L + [f"Pathologic stage (AJCC 8th ed.): {st}"]


STYLES = {"b_uk_rcpath": b_uk_rcpath, "b_euro_translated": b_euro_translated, "b_outside_consult": b_outside_consult,
          "b_lis_telegraphic": b_lis_telegraphic, "b_multi_specimen": b_multi_specimen}


# ----------------------------------------------------------------------------------------------------------

def _selfcheck(n=300):
    import collections
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from make_examples import sample_tumour, labels_of
    canon = {"T": {"Tis", "T0", "T1", "T2", "T3", "T4"}, "N": {"N0", "N1", "N1mi", "N2", "N3"}, "M": {"M0", "M1"},
             "grade": {"G1", "G2", "G3"}, "ER": {"Positive", "Negative", "Equivocal"},
             "PR": {"Positive", "Negative", "Equivocal"}, "HER2": {"Positive", "Negative", "Equivocal"}}
    norm = lambda s: re.sub(r"\s+", " ", s)
    for name, fn in STYLES.items():
        rng = random.Random(sum(map(ord, name)))
        counts = {t: collections.Counter() for t in TASKS}
        phrases = {t: collections.Counter() for t in TASKS}
        recs, lens, tagc = [], [], collections.Counter()
        for i in range(n):
            c = sample_tumour(rng)
            out = fn(c, rng)
            text, lab, ev = norm(out["text"]), out["labels"], out["evidence"]
            truth = labels_of(c)
            for t in TASKS:
                v = lab[t]
                counts[t][v] += 1
                if v is None:
                    assert t not in ev, (name, i, t, ev.get(t))
                    continue
                assert v in canon[t], (name, t, v)
                assert v == truth[t], (name, i, t, v, truth[t])
                assert ev.get(t), (name, i, t, "no evidence")
                for p in ev[t]:
                    assert norm(p) in text, (name, i, t, p, out["text"])
                phrases[t][ev[t][0]] += 1
            recs.append(out)
            lens.append(len(out["text"]))
            tagc.update(out["tags"])
        print(f"=== {name}: {n} reports, length {min(lens)}-{max(lens)} (mean {sum(lens) // n})")
        for t in TASKS:
            print(f"  {t:5s} " + ", ".join(f"{k}: {v}" for k, v in sorted(counts[t].items(), key=str)))
        print("  tags: " + ", ".join(f"{k} {v}" for k, v in sorted(tagc.items())))
        print("  most common evidence phrase per task, share of texts containing it, by label:")
        for t in TASKS:
            if not phrases[t]:
                continue
            top = phrases[t].most_common(1)[0][0]
            by = collections.defaultdict(lambda: [0, 0])
            for r in recs:
                by[r["labels"][t]][1] += 1
                by[r["labels"][t]][0] += top in r["text"]
            print(f"    {t:5s} {top!r}: " + ", ".join(f"{k}: {a / b:.2f}" for k, (a, b) in sorted(by.items(), key=str)))
    for name, fn in STYLES.items():
        out = fn(sample_tumour(random.Random(7)), random.Random(7))
        print(f"\n--------- sample {name} ---------\n{out['text']}\n{out['labels']}\n{out['evidence']}\n{out['tags']}")


if __name__ == "__main__":
    _selfcheck()
