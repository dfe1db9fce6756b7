"""Report styles D: a hospital network's synoptic report (writer D).

d_synoptic_network: a regional hospital network whose LIS prints a short final diagnosis, then a synoptic block
    after the CAP breast protocol (one "Item: value" per line, optional items left empty or "Not applicable",
    pT/pN/pM as separate categories, the AJCC anatomic stage group), then a biomarker block in CAP's wording
    (ER/PgR bins such as "81-90%", "Low Positive", HER2 IHC score, ISH group, the HER2-low comment). The clinical
    information carries what real requisitions carry: a clinical stage, a prior breast cancer with its own stage and
    receptors (either breast, before or after the current findings), and staging imaging, often negative. pM is
    "Not applicable" on nearly every resection; M0 is stated only as a clinical cM0. Some reports reach the
    archive as PDF text with the line breaks lost; pending HER2 ISH is resulted in an addendum. A corrected report
    keeps the item as first signed out in the synoptic block and states the corrected value in a correction note,
    at the top or the bottom; the label is the corrected value.

The renderer takes a sampled tumour `c` (examples/make_examples.py: sample_tumour) and a random.Random and returns
{"text", "labels", "evidence", "tags"}. Run this file to self-check 300 reports.
"""
from styles_a import Report, accession, dates, ihc_criteria, ish_detail, nottingham, signature

BINS = [(0, "0%"), (10, "1-10%"), (20, "11-20%"), (30, "21-30%"), (40, "31-40%"), (50, "41-50%"), (60, "51-60%"),
        (70, "61-70%"), (80, "71-80%"), (90, "81-90%"), (100, "91-100%")]
NEGATIVE_STAGING = ["Staging PET-CT: no evidence of distant metastatic disease.",
                    "CT chest/abdomen/pelvis and bone scan negative for metastases.",
                    "Staging work-up negative.", "No distant disease on staging imaging.",
                    "Bone scan: no scintigraphic evidence of osseous metastasis.",
                    "MRI breast: single lesion; no suspicious axillary nodes. Staging CT clear."]
SITE_M1 = {"liver": "liver", "bone (T10 vertebra)": "T10 vertebral body", "lung": "right lower lobe of lung",
           "brain": "left frontal lobe"}


def pct_bin(pct):
    return next(name for top, name in BINS if pct <= top)


def stage_group(c):
    """AJCC 8th anatomic stage group from T, N and M (cM0 assumed unless M1), or None where it is undefined."""
    if c["tx"] or c["N"] is None:
        return None
    if c["M"] == "M1":
        return "IV"
    t, n = c["T"], c["N"]
    if t == "Tis":
        return "0" if n == "N0" else None
    if n == "N3":
        return "IIIC"
    if t == "T4":
        return "IIIB"
    if n == "N2" or (t == "T3" and n == "N1"):
        return "IIIA"
    if (t == "T2" and n == "N1") or (t == "T3" and n == "N0"):
        return "IIB"
    if (t in ("T0", "T1") and n == "N1") or (t == "T2" and n == "N0"):
        return "IIA"
    if t in ("T0", "T1") and n == "N1mi":
        return "IB"
    return "IA" if t == "T1" and n == "N0" else None


def prior_cancer(rng, yr):
    """A previous breast cancer with its own stage, grade and receptors: values that are not the current tumour's."""
    side = rng.choice(["right", "left"])
    t, n = rng.choice(["pT1c", "pT2", "pT1b", "T2", "ypT1a"]), rng.choice(["pN0", "pN1a", "N0", "pN0(sn)"])
    er = rng.choice(["ER positive", "ER+", "ER negative", "ER-"])
    her2 = rng.choice(["HER2 negative", "HER2 positive (3+)", "HER2 not amplified", "HER2-"])
    grade = rng.choice(["grade 1", "grade 2", "grade 3", "Nottingham grade III", "well differentiated"])
    return (f"{side} breast invasive carcinoma ({yr - rng.randint(3, 18)}), {t} {n}, {grade}, {er}, {her2}, "
            f"treated with {rng.choice(['lumpectomy and radiation', 'mastectomy and chemotherapy', 'lumpectomy, radiation and tamoxifen'])}")


def clinical_information(c, rng, r, yr):
    age = rng.randint(31, 88)
    s = [rng.choice([f"{age} y/o F, {c['side'].lower()} breast cancer", f"{age}-year-old woman",
                     f"Age {age}. Known {c['side'].lower()} breast carcinoma on core biopsy"]) + "."]
    prior, prior_first = None, rng.random() < 0.5
    if rng.random() < 0.3:
        prior = prior_cancer(rng, yr)
        r.tags.update(["prior_cancer", "history_stage"])
        if prior_first:
            s.append(f"History of {prior}.")
    ct = rng.choice(["cT1c", "cT2", "cT2", "cT3", "cT1b", "cT4b"]) if rng.random() < 0.5 else None
    cn = rng.choice(["cN0", "cN0", "cN1", "cN2a"])
    keep_m0 = c["M"] == "M0" and rng.random() < 0.45
    if ct or keep_m0:
        stage = " ".join(x for x in [ct, cn if ct else None, r.say("M", "cM0") if keep_m0 else None] if x)
        s.append(rng.choice([f"Clinical stage {stage}.", f"Clinical stage: {stage}.", f"Pre-op staging {stage}."]))
        r.tags.add("clinical_stage_distractor" if ct else "history_stage")
    if c["M"] == "M0" and not keep_m0:
        r.drop("M")
    if c["M"] == "M1":
        site = SITE_M1[c["M_site"]]
        s.append(f"Known {r.say('M', 'metastatic disease')} to the {site}." if rng.random() < 0.5 else
                 f"Stage IV: {r.say('M', 'biopsy-proven metastasis')} ({site}).")
        r.tags.add("history_metastasis")
    elif rng.random() < 0.4:  # same rate whatever M is: a negative staging scan does not state M here
        s.append(rng.choice(NEGATIVE_STAGING))
        r.tags.add("staging_scan")
    if c["neoadjuvant"]:
        s.append(rng.choice(["Status post neoadjuvant chemotherapy (AC-T).", "Post neoadjuvant TCHP.",
                             "Completed neoadjuvant endocrine therapy."]))
    if prior and not prior_first:
        s.append(f"Previous {prior}.")
    return " ".join(s)


def diagnosis(c, rng, r, wrong):
    side, proc = c["side"].upper(), c["procedure"].upper()
    inv = c["T"] not in ("Tis", "T0")
    what = (c["type"].upper() if inv else "DUCTAL CARCINOMA IN SITU" if c["T"] == "Tis"
            else "NO RESIDUAL INVASIVE CARCINOMA (COMPLETE PATHOLOGIC RESPONSE IN THE BREAST)")
    if inv and c["grade"] and "grade" not in wrong and rng.random() < 0.4:
        what += ", " + r.say("grade", f"NOTTINGHAM GRADE {c['grade'][1]}")
    if inv:
        what += f", {c['size_mm'] / 10:.1f} CM"
    L = [f"A. BREAST, {side}, {proc}:", f"   - {what}."]
    if c["N"] is not None:
        k, n = c["nodes_pos"], c["nodes_examined"]
        L += [f"B. LYMPH NODES, {side} AXILLA, {'SENTINEL BIOPSY' if c['sentinel'] else 'DISSECTION'}:",
              "   - " + (f"{n} LYMPH NODE{'S' if n > 1 else ''} NEGATIVE FOR METASTATIC CARCINOMA (0/{n})." if k == 0 else
                         f"MICROMETASTASIS IN 1 OF {n} LYMPH NODES (1/{n})." if c["N"] == "N1mi" else
                         f"METASTATIC CARCINOMA IN {k} OF {n} LYMPH NODES ({k}/{n})."),
              ]
    L.append("   - SEE SYNOPTIC REPORT AND BIOMARKER RESULTS BELOW.")
    return L


def grade_items(c, rng, r, wrong):
    """The Nottingham items: components with an overall grade, the overall grade alone, or a score alone; a grade
    signed out in error (wrong["grade"]) stands alone, without the scores of the true grade."""
    if c["T"] == "Tis":
        return [f"Nuclear Grade: Grade {['I', 'II', 'III'][c['nuclear_grade'] - 1]} "
                f"({['low', 'intermediate', 'high'][c['nuclear_grade'] - 1]})", "Histologic Grade: Not applicable"]
    if c["T"] == "T0":
        return ["Histologic Grade (Nottingham Histologic Score): Not applicable (no residual invasive carcinoma)"]
    if c["grade"] is None:
        return ["Histologic Grade (Nottingham Histologic Score): Cannot be assessed"]
    L = ["Histologic Grade (Nottingham Histologic Score)"]
    if "grade" in wrong:
        return L + ["  Glandular (Acinar)/Tubular Differentiation: ", "  Nuclear Pleomorphism: ", "  Mitotic Rate: ",
                    f"  Overall Grade: {wrong['grade']}"]
    s, total = nottingham(c["grade"], rng)
    g = c["grade"][1]
    form = rng.choice(["components", "components", "overall", "score"])
    if form == "score":
        r.tags.add("score_only_grade")
        return L + [f"  Glandular (Acinar)/Tubular Differentiation: Score {s[0]}", f"  Nuclear Pleomorphism: Score {s[1]}",
                    f"  Mitotic Rate: Score {s[2]}", "  " + r.say("grade", f"Total Score: {total}"), "  Overall Grade: "]
    if form == "overall":
        r.tags.add("empty_fields")
        return L + ["  Glandular (Acinar)/Tubular Differentiation: ", "  Nuclear Pleomorphism: ", "  Mitotic Rate: ",
                    "  " + r.say("grade", f"Overall Grade: Grade {g}")]
    r.tags.add("nottingham_components")
    return L + [f"  Glandular (Acinar)/Tubular Differentiation: Score {s[0]}", f"  Nuclear Pleomorphism: Score {s[1]}",
                f"  Mitotic Rate: Score {s[2]}", "  " + r.say("grade", f"Overall Grade: Grade {g}")
                + rng.choice([f" (scores of {'3, 4 or 5' if g == '1' else '6 or 7' if g == '2' else '8 or 9'})",
                              f" (total score {total})", ""])]


def synoptic(c, rng, r, wrong):
    inv = c["T"] not in ("Tis", "T0")
    y = c["neoadjuvant"]
    L = ["SYNOPTIC REPORT - BREAST (Invasive Carcinoma / DCIS, Resection)", f"Procedure: {c['procedure']}",
         f"Specimen Laterality: {c['side']}", "Tumor Site: " + rng.choice([c["quadrant"], ""]),
         "Histologic Type: " + (c["type"] if inv else "Ductal carcinoma in situ" if c["T"] == "Tis"
                                else "No residual invasive carcinoma"),
         "Tumor Size: " + (f"{c['size_mm']} mm" if inv else "Not applicable")]
    L += grade_items(c, rng, r, wrong)
    L += ["Tumor Focality: " + rng.choice(["Single focus", "Multiple foci", ""]),
          "Ductal Carcinoma In Situ (DCIS): " + rng.choice(["Present", "Not identified", ""]),
          "Lymphovascular Invasion: " + ("Present" if c["lvi"] else rng.choice(["Not identified", ""])),
          "Treatment Effect in the Breast: " + ("Present" if y else rng.choice(["Not applicable", ""])),
          "Margins: " + rng.choice(["Negative for invasive carcinoma", "Uninvolved"]) +
          f"; closest margin {c['margin_mm']} mm"]
    if c["N"] is None:
        L.append("Regional Lymph Nodes: No lymph nodes submitted or found")
    else:
        k, n = c["nodes_pos"], c["nodes_examined"]
        L += [f"Number of Lymph Nodes Examined: {n}", "Number of Sentinel Nodes Examined: " + (str(n) if c["sentinel"] else ""),
              f"Number of Lymph Nodes with Macrometastases (> 2 mm): {0 if c['N'] in ('N0', 'N1mi') else k}",
              f"Number of Lymph Nodes with Micrometastases: {1 if c['N'] == 'N1mi' else 0}",
              "Extranodal Extension: " + rng.choice(["Not identified", "Present"] if k else
                                                    ["Not applicable", "Not identified", ""])]
    pre = "yp" if y else "p"
    L += ["Pathologic Stage Classification (pTNM, AJCC 8th Edition)",
          "Modified Classification: " + ("y (post-treatment)" if y else rng.choice(["Not applicable", ""]))]
    t = pre + "T" + ("X" if c["tx"] else c["Tsub"])
    L.append("pT Category: " + (wrong.get("T") or (t if c["tx"] else r.say("T", t))))
    L.append("T Suffix: " + rng.choice(["Not applicable", "", "(m) multiple primary synchronous tumors"]))
    n_tok = pre + "N" + ("X" if c["N"] is None else c["Nsub"])
    L.append("pN Category: " + (wrong.get("N") or (n_tok if c["N"] is None else r.say("N", n_tok))))
    if c["M"] == "M1":
        L.append("pM Category: " + r.say("M", "pM1") + f" (histologically confirmed, {SITE_M1[c['M_site']]})")
    else:
        L.append("pM Category: " + rng.choice(["Not applicable - pM cannot be determined from the submitted specimen(s)",
                                               "Not applicable", "(not assigned)", ""]))
        r.tags.add("pM_not_applicable")
    group = stage_group(c)
    if group and rng.random() < 0.4:
        L.append(f"AJCC Anatomic Stage Group: {group}")
        r.tags.add("stage_group")
    return L


CORRECTION_REASONS = ["data entry error", "transcription error", "dictation error", "after review of the slides",
                      "after intradepartmental consultation"]


def corrected_item(c, rng):
    """(task, value as first signed out, corrected value) of a corrected report, or None: one synoptic item was
    signed out wrong (a neighbouring category, another grade) and a correction note gives the true value."""
    pre = "yp" if c["neoadjuvant"] else "p"
    options = []
    if c["grade"] and c["T"] not in ("Tis", "T0"):
        wrong = rng.choice([g for g in ("G1", "G2", "G3") if g != c["grade"]])
        options.append(("grade", f"Grade {wrong[1]}", f"Grade {c['grade'][1]}"))
    if not c["tx"] and c["T"] in ("T1", "T2", "T3"):
        wrong = {"T1": "T2", "T2": rng.choice(["T1c", "T3"]), "T3": "T2"}[c["T"]]
        options.append(("T", pre + wrong, pre + "T" + c["Tsub"]))
    if c["N"] in ("N0", "N1", "N2"):
        wrong = {"N0": "N1a", "N1": rng.choice(["N0", "N2a"]), "N2": "N1a"}[c["N"]]
        options.append(("N", pre + wrong, pre + "N" + c["Nsub"]))
    return rng.choice(options) if options else None


def correction_note(rng, r, fix, date):
    task, old, new = fix
    item = {"grade": "Overall Grade", "T": "pT Category", "N": "pN Category"}[task]
    why, new = rng.choice(CORRECTION_REASONS), r.say(task, new)
    return rng.choice([
        f"CORRECTED REPORT ({date}): synoptic item \"{item}\" changed from \"{old}\" to \"{new}\" ({why}). "
        "No other changes.",
        f"CORRECTION NOTE ({date}): {item} corrected to {new} (previously reported as {old}; {why}).",
        f"REVISED {date}. Reason for revision: {why}. {item}: {new} (was {old}). All other findings unchanged."])


def receptor_lines(c, rng, r, task):
    name = {"ER": "Estrogen Receptor (ER)", "PR": "Progesterone Receptor (PgR)"}[task]
    st, pct = c[task], c[task + "_pct"]
    if st is None:
        return [f"{name}: " + rng.choice(["Not performed", "Not performed on this specimen", ""])]
    if st == "Equivocal":
        return [f"{name}: Cannot be determined - " + r.say(task, "equivocal") + " (no internal control staining)"]
    if rng.random() < 0.25:  # the status item left empty: the percentage decides (ASCO/CAP: >= 1 % positive)
        r.tags.add("pct_only_receptors")
        shown = rng.choice(["<1%", "0%"]) if st == "Negative" else pct_bin(pct)
        return [f"{name}: ", "  " + r.say(task, f"Percentage of Cells with Nuclear Positivity: {shown}")]
    if st == "Negative":
        return [f"{name}: " + r.say(task, "Negative") + rng.choice([" (<1% of cells)", "", " (0%)"])]
    word = "Low Positive" if pct <= 10 else "Positive"
    if pct <= 10:
        r.tags.add("low_positive")
    return [f"{name}: " + r.say(task, word) + (" (1-10% of cells demonstrate nuclear positivity)" if pct <= 10 else ""),
            f"  Percentage of Cells with Nuclear Positivity: {pct_bin(pct)}",
            "  Average Intensity of Staining: " + (rng.choice(["Weak", "Moderate"]) if pct <= 10
                                                   else rng.choice(["Moderate", "Strong", "Strong"]))]


def her2_lines(c, rng, r):
    """HER2 IHC and ISH; a pending reflex ISH is resulted in an addendum (returned separately)."""
    ihc, ish = c["ihc"], c["ish"]
    L, addendum = [], []
    if ihc is None and ish is None:
        return ["HER2: " + rng.choice(["Not performed", "Not performed on this specimen", ""])], []
    if ihc is not None:
        word = {"0": "Negative (Score 0)", "1+": "Negative (Score 1+)", "2+": "Equivocal (Score 2+)",
                "3+": "Positive (Score 3+)"}[ihc]
        L.append("HER2 (by immunohistochemistry): " + (r.say("HER2", word) if ish is None else word)
                 + (f" ({ihc_criteria(ihc, rng)})" if rng.random() < 0.4 else ""))
    low = []
    if (ihc == "1+" or (ihc == "2+" and ish == "not amplified")) and rng.random() < 0.5:
        low = ["  Comment: HER2-low (IHC 1+, or 2+ without amplification); may be relevant for eligibility for "
               "anti-HER2 antibody-drug conjugate therapy."]
        r.tags.add("her2_low")
    if ish is None:
        if ihc == "2+":
            L.append("HER2 (by in situ hybridization): Pending (reflex testing requested)")
        elif rng.random() < 0.6:  # any unequivocal IHC score, 3+ as often as 0: the line tells nothing of the status
            L.append("HER2 (by in situ hybridization): " + rng.choice(["Not performed", "Not indicated",
                                                                     "Not applicable (IHC not equivocal)"]))
        return L + low, []
    d = ish_detail(c, rng)
    result = rng.choice(["Positive (amplified)", "Amplified"] if ish == "amplified" else
                        ["Negative (not amplified)", "Not amplified", "Non-amplified"])
    ish_lines = ["HER2 (by in situ hybridization): " + r.say("HER2", result)]
    if rng.random() < 0.7:  # else the counts stay in the reference laboratory's report
        ish_lines += [f"  ISH Group: Group {d['group']}", f"  HER2/CEP17 Ratio: {d['ratio']}",
                      f"  Average HER2 Copy Number: {d['copies']} signals/cell"]
    r.tags.update(["her2_ish", "ish"])
    if ihc == "2+" and rng.random() < 0.4:
        L.append("HER2 (by in situ hybridization): Pending - see addendum")
        r.tags.add("addendum")
        return L, ish_lines + low
    return L + ish_lines + low, []


def d_synoptic_network(c, rng):
    r = Report(c)
    r.tags.add("cap_synoptic")
    acc, yr = accession(rng, rng.choice(["RHN{yy}-{n:05d}", "SP{yy}-{n:05d}"]))
    d = dates(rng, yr, 4)
    hist = clinical_information(c, rng, r, yr)
    fix = corrected_item(c, rng) if rng.random() < 0.2 else None
    wrong = {fix[0]: fix[1]} if fix else {}
    ER, PR = receptor_lines(c, rng, r, "ER"), receptor_lines(c, rng, r, "PR")
    her2, later = her2_lines(c, rng, r)
    L = [rng.choice(["[REDACTED] REGIONAL HEALTH NETWORK - ANATOMIC PATHOLOGY", "SURGICAL PATHOLOGY REPORT"]),
         f"Accession: {acc}   Collected: {d[0]}   Received: {d[0]}   Reported: {d[1]}",
         "Patient: [REDACTED]   MRN: [REDACTED]   Ordering: Dr. [REDACTED]", "",
         "CLINICAL INFORMATION:", hist, "", "FINAL DIAGNOSIS:", *diagnosis(c, rng, r, wrong), "",
         *synoptic(c, rng, r, wrong), "", "BREAST BIOMARKER RESULTS (block A3, formalin fixation 6-72 h)",
         *ER, *PR, *her2, f"Ki-67: {c['ki67']}%", "", signature(rng, d[1])]
    if later:
        L += ["", f"ADDENDUM ({d[3]}): reflex HER2 in situ hybridization on block A3.", *later, signature(rng, d[3])]
    if fix:  # the note under the three header lines (as the LIS prints it) or after everything else
        note = correction_note(rng, r, fix, d[2])
        L = L[:3] + [note, ""] + L[3:] if rng.random() < 0.5 else L + ["", note, signature(rng, d[2])]
        r.tags.add("corrected_report")
    text = "\n".join(L)
    if rng.random() < 0.15:  # PDF text with the line breaks lost
        text = " ".join(x.strip() for x in L if x.strip())
        r.tags.add("lost_linebreaks")
    return r.finish(text)


STYLES = {"d_synoptic_network": d_synoptic_network}


if __name__ == "__main__":
    import random
    import sys
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from make_examples import sample_tumour, check_report
    rng = random.Random(7)
    for i in range(300):
        rec = d_synoptic_network(sample_tumour(rng), rng)
        check_report({"id": f"D{i}", "style": "d_synoptic_network", **rec})
    print(d_synoptic_network(sample_tumour(rng), rng)["text"])
