"""Synthetic data with a fixed seed (the real reports are private): breast pathology reports for the multi-task
classifier and brain-tumour radiology-pathology pairs for the staged embedder.

    python examples/make_examples.py                   # writes examples/reports.jsonl and examples/pairs.jsonl
    python examples/make_examples.py --reports 50 --pairs 20 --out /tmp/x

Reports: sixteen styles, each written independently after one real reporting practice (examples/styles_a.py:
North American CAP, dictated, core biopsy, neoadjuvant, addenda; styles_b.py: UK RCPath, translated European,
outside consultation, LIS shorthand, multi-part specimens; styles_c.py: scanned PDF/OCR, legacy upper case,
long histories, EHR copies, two-column PDF extraction; styles_d.py: a hospital network's synoptic report). One
sampled tumour per report, long-tailed classes like the MTL paper's Fig. S3; each style states what its practice
states, so some labels are null ("not stated"). Each record carries its "style", its "split" (HELD_OUT), the
verbatim "evidence" of every stated label, and "tags" naming its phenomena; check_report() asserts that labels
are the truth of the text. Training holds whole styles out (data.split_by_style), so the test split is text
written unlike anything the model was trained on.

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

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # data.py, and the style files beside this one
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
# report styles: each written independently, after one real reporting practice (styles_a/b/c.py say which)

def report_styles():
    """{style name: render(tumour, rng)} from the four style files (imported here: they import this module)."""
    import styles_a
    import styles_b
    import styles_c
    import styles_d
    return {**styles_a.STYLES, **styles_b.STYLES, **styles_c.STYLES, **styles_d.STYLES}


def _norm(s):
    return re.sub(r"\s+", " ", s).strip().lower()


# The held-out styles, fixed in the file (each record's "split"), so that a style added later trains and leaves
# them as they are. They are the ones data.split_by_style's seeded draw held out of the first fifteen styles.
HELD_OUT = {"a_amended_addenda": "val", "c_history_heavy": "val", "a_cap_checklist": "test", "c_ehr_paste": "test"}


def make_report(i, rng, style, render, seed=42):
    """One tumour written in one style: {id, style, split, text, labels, evidence, tags}; labels are what the text
    states."""
    c = sample_tumour(rng)
    # about one training tumour in eight is IHC 3+, as in practice; a draw of its own, so no other draw moves
    if style not in HELD_OUT and c["ihc"] in ("0", "1+") and random.Random(f"{seed}-{i}-3+").random() < 0.1:
        c["ihc"] = "3+"
        c["HER2"] = her2_status(c["ihc"], c["ish"])
    out = render(c, rng)
    return {"id": f"BR{i:05d}", "style": style, "split": HELD_OUT.get(style, "train"), "text": out["text"],
            "labels": out["labels"], "evidence": out["evidence"], "tags": sorted(set(out.get("tags", [])))}


def check_report(rec):
    """The corpus invariants: every label canonical, every stated label backed by a verbatim phrase of the text,
    no evidence for a label the text does not state."""
    text = _norm(rec["text"])
    for task, label in rec["labels"].items():
        if label is None:
            assert not rec["evidence"].get(task), (rec["id"], rec["style"], task, rec["evidence"].get(task))
            continue
        assert label in data.LABEL_SETS[task], (rec["id"], rec["style"], task, label)
        assert rec["evidence"].get(task), f"{rec['id']} ({rec['style']}): {task}={label} has no evidence"
        for phrase in rec["evidence"][task]:
            assert _norm(phrase) in text, f"{rec['id']} ({rec['style']}): {task} evidence {phrase!r} not in the text"


# ----------------------------------------------------------------------------------------------------------
# brain-tumour radiology-pathology pairs, with the division of knowledge of real practice. The MRI report
# describes what imaging shows (site, enhancement, necrosis, diffusion, perfusion, calcification, multiplicity,
# oedema, the patient's age) and, like real neuroradiology, hedges: its impression is a differential reasoned from
# those findings (radiologist_impression), or no diagnosis at all. Only the pathology report states histology,
# CNS WHO grade, IDH, 1p/19q, MGMT and Ki-67. One-year survival is written in neither report.

# prevalence, then the imaging phenotype: probabilities of a finding given the type (adult series, WHO CNS5 era)
TUMOURS = {
    "glioblastoma": 25, "astrocytoma": 12, "oligodendroglioma": 8, "ependymoma": 6, "medulloblastoma": 6,
    "pilocytic_astrocytoma": 7, "meningioma": 18, "metastasis": 13, "lymphoma": 5,
}
PHENOTYPE = {  # age: [(weight, mean, sd)], clipped to [lo, hi]; the rest: {value: weight} or P(finding)
    "glioblastoma": dict(age=([(1, 63, 11)], 22, 89), compartment={"hemisphere": 88, "deep": 10, "posterior_fossa": 2},
                         enhancement={"rim": 72, "heterogeneous": 22, "patchy": 6}, necrosis=.85, cyst=.08,
                         calcification=.03, hemorrhage=.35, diffusion={"intermediate": 55, "restricted": 30, "facilitated": 15},
                         rcbv_high=.9, edema={"marked": 50, "moderate": 42, "mild": 8}, multiple=.08, callosal=.15),
    "astrocytoma": dict(age=([(1, 38, 11)], 18, 76), compartment={"hemisphere": 92, "deep": 6, "posterior_fossa": 2},
                        enhancement={"none": 60, "patchy": 28, "rim": 7, "heterogeneous": 5}, necrosis=.6, cyst=.15,
                        calcification=.12, hemorrhage=.05, diffusion={"facilitated": 75, "intermediate": 22, "restricted": 3},
                        rcbv_high=.2, edema={"mild": 70, "moderate": 25, "marked": 5}, multiple=.02, callosal=.08,
                        mismatch=.3, cortical=.5),
    "oligodendroglioma": dict(age=([(1, 45, 12)], 20, 80), compartment={"hemisphere": 97, "deep": 3},
                              enhancement={"none": 45, "patchy": 45, "heterogeneous": 10}, necrosis=.05, cyst=.12,
                              calcification=.45, hemorrhage=.12, diffusion={"facilitated": 75, "intermediate": 23, "restricted": 2},
                              rcbv_high=.45, edema={"mild": 80, "moderate": 20}, multiple=.02, callosal=.05,
                              mismatch=.03, cortical=.75, scalloping=.12),
    "ependymoma": dict(age=([(.6, 6, 4), (.4, 38, 13)], 1, 75), compartment={"fourth_ventricle": 65, "hemisphere": 35},
                       enhancement={"heterogeneous": 70, "patchy": 20, "rim": 10}, necrosis=.25, cyst=.45,
                       calcification=.45, hemorrhage=.15, diffusion={"intermediate": 65, "facilitated": 15, "restricted": 20},
                       rcbv_high=.5, edema={"mild": 70, "moderate": 30}, foraminal=.5, hydrocephalus=.6),
    "medulloblastoma": dict(age=([(.75, 8, 4), (.25, 30, 8)], 1, 58), compartment={"posterior_fossa": 97, "hemisphere": 3},
                            enhancement={"heterogeneous": 60, "solid": 25, "patchy": 15}, necrosis=.15, cyst=.3,
                            calcification=.2, hemorrhage=.08, diffusion={"restricted": 80, "intermediate": 20},
                            rcbv_high=.5, edema={"mild": 75, "moderate": 25}, hydrocephalus=.7, leptomeningeal=.25),
    "pilocytic_astrocytoma": dict(age=([(1, 12, 7)], 1, 50),
                                  compartment={"cerebellar_hemisphere": 60, "optic_pathway": 15, "hemisphere": 15, "brainstem": 10},
                                  enhancement={"nodule_cyst": 45, "solid": 30, "heterogeneous": 25}, necrosis=.02, cyst=.7,
                                  calcification=.1, hemorrhage=.04, diffusion={"facilitated": 90, "intermediate": 10},
                                  rcbv_high=.1, edema={"mild": 90, "moderate": 10}, hydrocephalus=.4),
    "meningioma": dict(age=([(1, 60, 13)], 25, 92), compartment={"extra_axial": 80, "indeterminate": 20},
                       enhancement={"solid": 80, "heterogeneous": 20}, necrosis=.04, cyst=.05, calcification=.25,
                       hemorrhage=.02, diffusion={"intermediate": 80, "restricted": 15, "facilitated": 5}, rcbv_high=.8,
                       edema={"mild": 60, "moderate": 30, "marked": 10}, multiple=.07, dural_tail=.65, csf_cleft=.5,
                       hyperostosis=.2),
    "metastasis": dict(age=([(1, 62, 11)], 25, 90), compartment={"hemisphere": 75, "posterior_fossa": 20, "deep": 5},
                       enhancement={"rim": 55, "solid": 35, "heterogeneous": 10}, necrosis=.45, cyst=.1, calcification=.02,
                       hemorrhage=.2, diffusion={"facilitated": 60, "intermediate": 30, "restricted": 10}, rcbv_high=.5,
                       edema={"marked": 60, "moderate": 35, "mild": 5}, multiple=.45, callosal=.03, known_primary=.45),
    "lymphoma": dict(age=([(1, 64, 11)], 30, 88), compartment={"deep": 65, "hemisphere": 30, "posterior_fossa": 5},
                     enhancement={"solid": 65, "rim": 15, "heterogeneous": 20}, necrosis=.1, cyst=.02, calcification=0,
                     hemorrhage=.02, diffusion={"restricted": 75, "intermediate": 25}, rcbv_high=.15,
                     edema={"moderate": 60, "mild": 30, "marked": 10}, multiple=.3, callosal=.35, ependymal=.35),
}
LOBES = {"frontal lobe": 40, "temporal lobe": 25, "parietal lobe": 20, "occipital lobe": 7, "insula": 8}
SITES = {  # where each compartment puts the mass ({side} filled in)
    "hemisphere": None,  # {side} {lobe}, from LOBES
    "deep": ["{side} basal ganglia", "{side} thalamus", "periventricular white matter of the {side} frontal horn",
             "splenium of the corpus callosum", "genu of the corpus callosum"],
    "posterior_fossa": ["cerebellar vermis", "{side} cerebellar hemisphere", "roof of the fourth ventricle"],
    "fourth_ventricle": ["fourth ventricle"],
    "cerebellar_hemisphere": ["{side} cerebellar hemisphere"],
    "optic_pathway": ["optic chiasm and hypothalamus"], "brainstem": ["dorsal pons", "tectal plate"],
    "extra_axial": ["{side} frontal convexity", "{side} parietal convexity", "{side} sphenoid wing",
                    "parasagittal {side} frontal region along the falx", "olfactory groove", "{side} tentorium",
                    "{side} cerebellopontine angle"],
    "indeterminate": ["{side} frontal lobe periphery", "{side} parietal lobe periphery"],
}
PRIMARIES = {"lung": "non-small cell lung cancer", "breast": "breast cancer", "melanoma": "metastatic melanoma",
             "renal": "renal cell carcinoma", "colon": "colorectal adenocarcinoma"}


def sample_imaging(tt, rng):
    """What MRI shows for one patient with tumour type tt: a draw from PHENOTYPE[tt] (types overlap)."""
    ph = PHENOTYPE[tt]
    comps, lo, hi = ph["age"]
    _, mean, sd = rng.choices(comps, [c[0] for c in comps])[0]
    f = {"age": int(min(hi, max(lo, round(rng.gauss(mean, sd)))))}
    f["sex"] = pick(rng, {"female": 70, "male": 30} if tt == "meningioma" else {"female": 45, "male": 55})
    f["side"] = rng.choice(["left", "right"])
    f["compartment"] = pick(rng, ph["compartment"])
    if f["compartment"] == "posterior_fossa" and tt == "medulloblastoma" and f["age"] >= 18 and rng.random() < .6:
        f["compartment"] = "cerebellar_hemisphere"  # adult medulloblastoma sits laterally
    site = SITES[f["compartment"]]
    f["site"] = (f"{f['side']} {pick(rng, LOBES)}" if site is None else rng.choice(site)).format(side=f["side"])
    f["posterior_fossa"] = f["compartment"] in ("posterior_fossa", "fourth_ventricle", "cerebellar_hemisphere",
                                                "brainstem")
    for key in ("enhancement", "diffusion", "edema"):
        f[key] = pick(rng, ph[key])
    for key in ("necrosis", "cyst", "calcification", "hemorrhage", "rcbv_high", "multiple", "callosal", "mismatch",
                "cortical", "scalloping", "foraminal", "hydrocephalus", "leptomeningeal", "dural_tail", "csf_cleft",
                "hyperostosis", "ependymal", "known_primary"):
        f[key] = rng.random() < ph.get(key, 0)
    f["necrosis"] &= f["enhancement"] in ("rim", "heterogeneous")  # necrosis shows as non-enhancing tissue in a rim
    if f["enhancement"] == "none":
        f["rcbv_high"] = f["rcbv_high"] and rng.random() < .3
    f["foraminal"] &= f["compartment"] == "fourth_ventricle"
    f["hydrocephalus"] = (f["hydrocephalus"] and f["posterior_fossa"]) or (f["callosal"] and rng.random() < .1)
    f["callosal"] |= "corpus callosum" in f["site"]
    f["n_lesions"] = rng.choice([2, 2, 3, 3, 4, 5, 7]) if f["multiple"] else 1
    f["size"] = round(rng.uniform(*{"glioblastoma": (2.5, 7.0), "astrocytoma": (2.0, 7.0), "meningioma": (1.2, 6.0),
                                    "metastasis": (0.6, 3.8), "lymphoma": (1.2, 4.5)}.get(tt, (1.8, 5.5))), 1)
    f["shift_mm"] = rng.randint(3, 12) if f["size"] > 4.0 and not f["posterior_fossa"] and rng.random() < .6 else 0
    f["primary"] = rng.choice(list(PRIMARIES)) if f["known_primary"] else None
    f["perfusion"] = rng.random() < .55   # DSC perfusion is part of the tumour protocol at some sites only
    return f


def extent_of_resection(f, rng):
    """Deep, callosal, multifocal or eloquent lesions are biopsied more often than resected."""
    hard = f["compartment"] in ("deep", "optic_pathway", "brainstem") or f["callosal"] or f["n_lesions"] > 2
    return pick(rng, {"gross total resection": 10, "subtotal resection": 25, "biopsy": 65} if hard else
                {"gross total resection": 55, "subtotal resection": 30, "biopsy": 15})


def sample_mgmt(tt, rng):
    """MGMT promoter status of diffuse gliomas (tested in ~80 %): methylated in ~45 % of IDH-wildtype
    glioblastomas, most IDH-mutant astrocytomas and nearly all oligodendrogliomas."""
    p = {"glioblastoma": .45, "astrocytoma": .85, "oligodendroglioma": .95}.get(tt)
    if p is None or rng.random() > .8:
        return None
    return "methylated" if rng.random() < p else "unmethylated"


def sample_survival(tt, f, grade, mgmt, resection, rng):
    """Alive one year after diagnosis: type and grade, then published prognostic factors. In glioblastoma treated
    with temozolomide, MGMT methylation (Hegi et al., NEJM 2005: median 21.7 vs 15.3 months); older age; biopsy
    only; callosal spread; several metastases. Then a coin with that probability: learnable, never written."""
    p = {"glioblastoma": .62, "astrocytoma": .95, "oligodendroglioma": .97, "ependymoma": .92, "medulloblastoma": .88,
         "pilocytic_astrocytoma": .99, "meningioma": .98, "metastasis": .50, "lymphoma": .62}[tt]
    if tt == "glioblastoma":
        p = {"methylated": .80, "unmethylated": .52}.get(mgmt, p)
    if tt == "astrocytoma" and grade == 4:
        p = .80
    if tt == "meningioma" and grade == 2:
        p = .93
    if tt in ("glioblastoma", "metastasis", "lymphoma", "astrocytoma"):
        p -= .15 * (f["age"] > 70) + .05 * (f["age"] > 60)
    p -= .10 * (resection == "biopsy") - .05 * (resection == "gross total resection")
    p -= .10 * f["callosal"] + .04 * f["leptomeningeal"]
    if tt == "metastasis":
        p += -.12 if f["n_lesions"] > 2 else .06
    return "alive" if rng.random() < min(.99, max(.03, p)) else "deceased"

# ---- the radiology report: findings in neuroradiology prose, an impression reasoned from the findings alone

ENHANCEMENT = {
    "rim": ["thick, irregular peripheral enhancement", "nodular rim enhancement", "irregular ring enhancement",
            "peripheral enhancement with an irregular, shaggy inner margin"],
    "heterogeneous": ["heterogeneous enhancement", "heterogeneous, partly nodular enhancement",
                      "patchy and heterogeneous enhancement of the solid component"],
    "patchy": ["faint patchy enhancement", "a few small foci of faint enhancement", "mild, ill-defined enhancement"],
    "solid": ["avid homogeneous enhancement", "intense, fairly homogeneous enhancement", "solid homogeneous enhancement"],
    "nodule_cyst": ["a cystic component with an avidly enhancing mural nodule",
                    "an enhancing solid nodule along the wall of a larger cyst"],
    "none": ["no appreciable enhancement", "no enhancement after contrast", "no abnormal enhancement"],
}
DIFFUSION = {
    "restricted": ["The solid component shows reduced diffusion (low ADC).", "There is restricted diffusion within the "
                   "solid portions, suggesting high cellularity.", "DWI: diffusion restriction in the enhancing tissue."],
    "intermediate": ["Diffusion is intermediate, without convincing restriction.", "Mildly reduced diffusivity in "
                     "parts of the solid tissue.", "ADC values in the solid component are intermediate."],
    "facilitated": ["No restricted diffusion.", "Diffusion is facilitated (ADC elevated) throughout the lesion.",
                    "No reduced diffusion within the lesion."],
}
EDEMA = {"marked": ["extensive surrounding vasogenic edema", "marked surrounding T2/FLAIR hyperintensity",
                    "vasogenic edema out of proportion to the size of the lesion"],
         "moderate": ["moderate surrounding T2/FLAIR signal abnormality", "moderate perilesional edema"],
         "mild": ["little surrounding edema", "minimal perilesional signal abnormality", "mild surrounding edema"]}


def findings_text(f, rng):
    """FINDINGS: sentences in the order a neuroradiologist reads a tumour study, with house-to-house wording."""
    size2 = round(f["size"] * rng.uniform(.6, 1.0), 1)
    intra = f["compartment"] not in ("extra_axial", "indeterminate")
    if f["compartment"] == "extra_axial":
        opening = rng.choice([f"There is a {f['size']} x {size2} cm extra-axial, dural-based mass along the {f['site']}.",
                              f"A {f['size']} cm extra-axial mass arises from the dura of the {f['site']}.",
                              f"Dural-based mass at the {f['site']} measuring {f['size']} x {size2} cm."])
    elif f["compartment"] == "indeterminate":
        opening = f"There is a peripherally located {f['size']} cm mass in the {f['site']}, abutting the dura; " \
                  f"an intra- versus extra-axial origin is difficult to establish."
    else:
        what = ("infiltrative, expansile T2/FLAIR hyperintense mass" if f["enhancement"] in ("none", "patchy")
                else rng.choice(["heterogeneous mass", "mass", "solid and cystic mass" if f["cyst"] else "solid mass"]))
        opening = rng.choice([f"There is a {f['size']} x {size2} cm {what} centered in the {f['site']}.",
                              f"A {what} is centered in the {f['site']}, measuring {f['size']} x {size2} cm.",
                              f"{what[0].upper() + what[1:]} in the {f['site']} measures {f['size']} cm."])
    s = [opening]
    enh = rng.choice(ENHANCEMENT[f["enhancement"]])
    if f["necrosis"]:
        enh += rng.choice([" surrounding central necrosis", " around a central non-enhancing, necrotic component",
                           " with central necrosis"])
    s.append(rng.choice([f"Post-contrast images show {enh}.", f"There is {enh}.", f"The lesion demonstrates {enh}."]))
    if f["cyst"] and f["enhancement"] != "nodule_cyst":
        s.append(rng.choice(["Cystic components are present.", "There are intratumoral cysts."]))
    if f["cortical"]:
        s.append(rng.choice(["It involves the cortex and subcortical white matter.", "There is cortical expansion."]))
    if f["mismatch"]:
        s.append("The lesion is homogeneously T2 hyperintense with relative FLAIR suppression centrally and a "
                 "hyperintense rim (T2-FLAIR mismatch).")
    if f["scalloping"]:
        s.append("Scalloping of the overlying inner table of the calvarium.")
    if f["dural_tail"]:
        s.append(rng.choice(["A dural tail is present.", "There is enhancing dural thickening extending from the margins "
                             "of the mass (dural tail)."]))
    if f["csf_cleft"]:
        s.append("A CSF cleft separates the mass from the underlying cortex.")
    if f["hyperostosis"]:
        s.append("There is hyperostosis of the adjacent bone.")
    s.append(rng.choice(DIFFUSION[f["diffusion"]]))
    if f["calcification"]:
        s.append(rng.choice(["Susceptibility-weighted images show coarse calcification, confirmed on the prior CT.",
                             "Foci of calcification are present on SWI and CT.", "Dense calcifications are present."]))
    elif f["hemorrhage"]:
        s.append(rng.choice(["Foci of susceptibility within the lesion are compatible with blood products.",
                             "There is intratumoral hemorrhage."]))
    if f["perfusion"]:
        s.append(rng.choice(["DSC perfusion shows markedly elevated rCBV in the solid component.",
                             "Perfusion: increased relative cerebral blood volume."] if f["rcbv_high"] else
                            ["DSC perfusion shows no appreciable elevation of rCBV.", "Perfusion: rCBV is not elevated."]))
    if intra or f["edema"] != "mild":
        s.append(f"There is {rng.choice(EDEMA[f['edema']])}" + (f" with {f['shift_mm']} mm of midline shift." if
                                                               f["shift_mm"] else "."))
    if f["callosal"] and "corpus callosum" not in f["site"]:
        s.append(rng.choice(["Abnormal signal and enhancement extend across the corpus callosum.",
                             "The lesion crosses the midline via the corpus callosum."]))
    if f["ependymal"]:
        s.append("There is subependymal enhancement along the adjacent ventricle.")
    if f["foraminal"]:
        s.append(rng.choice(["Tumor extends through the foramen of Luschka into the cerebellopontine angle cistern.",
                             "The mass extrudes through the foramen of Magendie into the cisterna magna."]))
    if f["hydrocephalus"]:
        s.append(rng.choice(["There is obstructive hydrocephalus with transependymal flow.",
                             "The fourth ventricle is effaced and the lateral ventricles are enlarged."]))
    if f["n_lesions"] > 1:
        more = "One additional enhancing lesion is present, measuring" if f["n_lesions"] == 2 else \
            f"{f['n_lesions'] - 1} additional enhancing lesions are present, the largest"
        s.append(rng.choice([f"{more} {rng.uniform(.3, 1.5):.1f} cm, in the "
                             f"{rng.choice(['contralateral', 'ipsilateral'])} {rng.choice(['frontal', 'parietal', 'occipital', 'cerebellar'])} region.",
                             f"In total there are {f['n_lesions']} enhancing lesions, several at the gray-white "
                             f"matter junction."]))
    else:
        s.append(rng.choice(["No additional lesions.", "No other enhancing lesion.", ""]))
    if f["leptomeningeal"]:
        s.append("There is nodular leptomeningeal enhancement along the cerebellar folia.")
    s.append(rng.choice(["No acute infarct. Major vascular flow voids are preserved.", "Ventricles otherwise normal.",
                         "Orbits and paranasal sinuses are unremarkable.", ""]))
    return " ".join(x for x in s if x)


def radiologist_impression(f, rng):
    """The differential a neuroradiologist reasons from the imaging findings alone (never from the histology),
    ordered most likely first; [] when the findings do not single out a diagnosis."""
    child = f["age"] < 18
    if f["compartment"] == "extra_axial":
        return ["meningioma", "dural-based metastasis"] if f["dural_tail"] or f["csf_cleft"] else \
            ["meningioma", "dural metastasis", "solitary fibrous tumor"]
    if f["compartment"] == "indeterminate":
        return ["meningioma", "peripheral high-grade glioma", "metastasis"]
    if f["posterior_fossa"] or f["compartment"] == "fourth_ventricle":
        if f["enhancement"] == "nodule_cyst":
            return ["pilocytic astrocytoma", "hemangioblastoma"] if child else ["hemangioblastoma", "pilocytic astrocytoma", "metastasis"]
        if child:
            if f["diffusion"] == "restricted":
                return ["medulloblastoma", "atypical teratoid/rhabdoid tumor", "ependymoma"]
            if f["foraminal"] or f["calcification"]:
                return ["ependymoma", "medulloblastoma"]
            return ["pilocytic astrocytoma", "ependymoma", "medulloblastoma"]
        if f["n_lesions"] > 1 or f["primary"]:
            return ["metastatic disease", "hemangioblastoma"]
        return ["metastasis", "hemangioblastoma", "high-grade glioma"] if not f["foraminal"] else ["ependymoma", "metastasis"]
    if f["compartment"] == "optic_pathway":
        return ["optic pathway glioma", "craniopharyngioma"]
    if f["n_lesions"] > 1:
        if f["diffusion"] == "restricted" and f["enhancement"] == "solid":
            return ["primary CNS lymphoma", "metastases"]
        return ["metastatic disease", "multifocal high-grade glioma", "abscesses (less likely)"]
    if f["enhancement"] == "solid" and f["diffusion"] == "restricted":
        return ["primary CNS lymphoma", "high-grade glioma"] if f["compartment"] == "deep" or f["callosal"] or f["ependymal"] \
            else ["lymphoma", "metastasis", "high-grade glioma"]
    if f["enhancement"] in ("none", "patchy"):
        if f["calcification"] and f["cortical"]:
            return ["oligodendroglioma", "diffuse astrocytoma"]
        if f["mismatch"]:
            return ["diffuse astrocytoma"]
        return ["low-grade diffuse glioma", "higher-grade glioma (patchy enhancement)"] if f["enhancement"] == "patchy" \
            else ["low-grade glioma", "cerebritis or encephalitis (less likely)"]
    if f["primary"]:
        return ["metastasis", "high-grade glioma"]
    if f["callosal"]:
        return ["high-grade glioma", "lymphoma"]
    if f["enhancement"] in ("rim", "heterogeneous") and f["necrosis"]:
        return ["high-grade glioma", "solitary metastasis"] + (["abscess"] if f["diffusion"] == "restricted" else [])
    return ["high-grade glioma", "metastasis", "lymphoma"] if not child else ["high-grade glioma", "ependymoma"]


def impression_text(f, rng):
    """IMPRESSION: the lesion in a few words, then the differential in one of the hedged forms radiologists use,
    or no diagnosis at all (two reports in five)."""
    where = f"{f['site']}" + (" and elsewhere" if f["n_lesions"] > 1 else "")
    first = rng.choice([f"{f['size']} cm {'enhancing' if f['enhancement'] != 'none' else 'non-enhancing'} mass in the {where}",
                        f"{'Multiple enhancing lesions, the largest' if f['n_lesions'] > 1 else 'Mass'} in the {f['site']}",
                        f"{f['site'][0].upper() + f['site'][1:]} mass as described"])
    ddx = radiologist_impression(f, rng)
    if not ddx or rng.random() < .4:
        second = rng.choice(["Neoplasm is favored; tissue sampling is recommended.",
                             "Findings are nonspecific; correlation with tissue diagnosis is recommended.",
                             "Recommend neurosurgical consultation.", "Differential is broad; see findings."])
    elif len(ddx) == 1:
        second = rng.choice([f"Findings suggest {ddx[0]}.", f"Most consistent with {ddx[0]}, pending tissue diagnosis."])
    else:
        second = rng.choice([f"Differential diagnosis includes {', '.join(ddx[:-1])} and {ddx[-1]}.",
                             f"{ddx[0][0].upper() + ddx[0][1:]} is favored; {', '.join(ddx[1:])} is less likely.",
                             f"Considerations include {' versus '.join(ddx)}.",
                             f"Favor {ddx[0]}. Differential includes {', '.join(ddx[1:])}."])
    extra = [x for x in ([f"{f['shift_mm']} mm midline shift." if f["shift_mm"] else "",
                          "Obstructive hydrocephalus." if f["hydrocephalus"] else "",
                          "Leptomeningeal enhancement, concerning for dissemination." if f["leptomeningeal"] else ""]) if x]
    return [first + ".", second] + extra


def radiology_report(f, rng):
    """One of three house styles: a structured academic template, a narrative dictation, a terse outside read."""
    who = {"male": "man" if f["age"] >= 18 else "boy", "female": "woman" if f["age"] >= 18 else "girl"}[f["sex"]]
    symptom = rng.choice(["new-onset seizure", "headache", "progressive headaches and nausea", "word-finding difficulty",
                          "left-sided weakness" if f["side"] == "right" else "right-sided weakness", "confusion",
                          "visual disturbance"] +
                         (["morning vomiting and ataxia", "gait instability"] if f["posterior_fossa"] else []))
    history = f"{f['age']}-year-old {who} with {symptom}."
    if f["primary"]:
        history += f" History of {PRIMARIES[f['primary']]}."
    protocol = "with perfusion" if f["perfusion"] else "without perfusion"
    impression = impression_text(f, rng)
    findings = findings_text(f, rng)
    style = rng.choice(["structured", "narrative", "terse"])
    if style == "structured":
        lines = ["EXAM: MRI BRAIN WITH AND WITHOUT CONTRAST" + (", TUMOR PROTOCOL" if f["perfusion"] else ""),
                 f"CLINICAL HISTORY: {history}",
                 f"TECHNIQUE: Multiplanar multisequence MRI before and after {rng.choice(['gadobutrol', 'gadoterate'])}, "
                 f"{protocol}.",
                 f"COMPARISON: {rng.choice(['None.', 'CT head from the same day.', 'Outside CT, images reviewed.'])}",
                 "FINDINGS:", findings, "IMPRESSION:"] + [f"{k}. {x}" for k, x in enumerate(impression, 1)]
    elif style == "narrative":
        lines = [f"MRI brain without and with contrast. Indication: {history}", f"Findings: {findings}",
                 "Impression: " + " ".join(impression)]
    else:
        lines = [f"MR BRAIN W/WO. HX: {history.upper()}", findings, "IMP: " + " ".join(impression)]
    return "\n".join(lines)

# ---- the pathology report: the diagnosis (WHO CNS5 integrated diagnosis), grade and molecular results


def who_grade(tt, f, rng):
    """CNS WHO grade, consistent with imaging where the biology ties them (necrosis -> grade 4 astrocytoma)."""
    if tt == "astrocytoma":
        return 4 if f["necrosis"] else (3 if f["enhancement"] != "none" and rng.random() < .6 else rng.choice([2, 2, 2, 3]))
    if tt == "oligodendroglioma":
        return 3 if f["enhancement"] in ("patchy", "heterogeneous") and rng.random() < .6 else 2
    return {"glioblastoma": 4, "ependymoma": rng.choice([2, 3]), "medulloblastoma": 4, "pilocytic_astrocytoma": 1,
            "meningioma": 2 if f["edema"] == "marked" or rng.random() < .15 else 1}.get(tt)


def pathology_dx(tt, rng, mgmt, grade=None, f=None):
    """(integrated diagnosis line, ancillary results): histology, grade, IDH, 1p/19q, Ki-67; then MGMT if tested."""
    grade = grade or who_grade(tt, f or sample_imaging(tt, rng), rng)
    ki67 = {"glioblastoma": (15, 60), "astrocytoma": {2: (1, 5), 3: (5, 15), 4: (10, 30)}.get(grade, (2, 10)),
            "oligodendroglioma": (2, 8) if grade == 2 else (8, 25), "ependymoma": (2, 15), "medulloblastoma": (40, 90),
            "pilocytic_astrocytoma": (1, 4), "meningioma": (1, 4) if grade == 1 else (5, 15), "metastasis": (30, 80),
            "lymphoma": (70, 95)}[tt]
    ki = f"Ki-67 proliferation index: approximately {rng.randint(*ki67)}%"
    primary = (f or {}).get("primary")
    who = {
        "glioblastoma": ("Glioblastoma, IDH-wildtype, CNS WHO grade 4",
                         ["IDH1 R132H (IHC): negative; IDH1/2 sequencing: no mutation detected", "ATRX: retained",
                          "EGFR amplification: " + rng.choice(["present", "present", "not detected"]),
                          "TERT promoter mutation: detected", "CDKN2A/B: homozygous deletion",
                          "Microvascular proliferation and palisading necrosis are present"]),
        "astrocytoma": (f"Astrocytoma, IDH-mutant, CNS WHO grade {grade}",
                        ["IDH1 R132H (IHC): positive (mutant)", "ATRX: loss of nuclear expression",
                         "p53: strong nuclear staining in most tumor cells", "1p/19q (FISH): not co-deleted"]
                        + (["CDKN2A/B: homozygous deletion" if rng.random() < .5 else "Necrosis is present"]
                           if grade == 4 else ["No necrosis or microvascular proliferation"])),
        "oligodendroglioma": (f"Oligodendroglioma, IDH-mutant and 1p/19q-codeleted, CNS WHO grade {grade}",
                              ["IDH1 R132H (IHC): positive", "ATRX: retained", "1p/19q (FISH): co-deleted",
                               "Round nuclei with perinuclear halos and delicate branching capillaries",
                               "Microcalcifications are present"]),
        "ependymoma": ((f"Posterior fossa ependymoma, group {rng.choice(['A', 'A', 'B'])}, CNS WHO grade {grade}"
                        if (f or {}).get("posterior_fossa", True) else
                        f"Supratentorial ependymoma, ZFTA fusion-positive, CNS WHO grade {grade}"),
                       ["Perivascular pseudorosettes are present", "GFAP: positive", "EMA: dot-like cytoplasmic positivity",
                        "H3 K27me3: " + rng.choice(["lost", "retained"]), "Olig2: negative"]),
        "medulloblastoma": (f"Medulloblastoma, {rng.choice(['SHH-activated and TP53-wildtype', 'WNT-activated', 'non-WNT/non-SHH'])}, "
                            "CNS WHO grade 4",
                            ["Sheets of small round blue cells with Homer Wright rosettes", "Synaptophysin: positive",
                             "Beta-catenin: " + rng.choice(["nuclear", "cytoplasmic only"]), "INI1: retained"]),
        "pilocytic_astrocytoma": ("Pilocytic astrocytoma, CNS WHO grade 1",
                                  ["Biphasic pattern with Rosenthal fibers and eosinophilic granular bodies",
                                   "KIAA1549::BRAF fusion: detected", "IDH1 R132H (IHC): negative"]),
        "meningioma": (f"Meningioma, {'atypical' if grade == 2 else rng.choice(['meningothelial', 'transitional', 'fibrous'])}, "
                       f"CNS WHO grade {grade}",
                       ["Whorls and psammoma bodies are present", "EMA: positive", "SSTR2A: positive",
                        "Progesterone receptor: positive", "Brain invasion: " + ("present" if grade == 2 and rng.random() < .3
                                                                                 else "not identified"),
                        f"Mitoses: {rng.randint(4, 12) if grade == 2 else rng.randint(0, 3)} per 10 HPF"]),
        "metastasis": ({"lung": "Metastatic adenocarcinoma, consistent with lung primary",
                        "breast": "Metastatic carcinoma, consistent with breast primary",
                        "melanoma": "Metastatic melanoma", "renal": "Metastatic renal cell carcinoma, clear cell type",
                        "colon": "Metastatic adenocarcinoma, consistent with colorectal primary"}
                       [primary or rng.choice(list(PRIMARIES))],
                       ["GFAP: negative in tumor cells", "Sharp interface with the surrounding gliotic brain",
                        "CK7: " + rng.choice(["positive", "negative"]), "TTF-1: " + rng.choice(["positive", "negative"])]),
        "lymphoma": ("Diffuse large B-cell lymphoma of the CNS",
                     ["CD20: diffusely positive", "Angiocentric growth pattern", "BCL6: positive", "MUM1: positive",
                      "EBV (EBER ISH): negative"]),
    }[tt]
    mol = list(who[1])
    rng.shuffle(mol)
    mol = mol[:rng.randint(2, len(mol))] + ([ki] if tt not in ("metastasis",) or rng.random() < .3 else [])
    if mgmt is not None:
        mol.append(rng.choice([f"MGMT promoter methylation (pyrosequencing): {mgmt} "
                               f"({rng.randint(12, 45) if mgmt == 'methylated' else rng.randint(1, 6)}% mean methylation)",
                               f"MGMT promoter methylation (methylation-specific PCR): {mgmt}"]))
    elif tt in ("glioblastoma", "astrocytoma", "oligodendroglioma") and rng.random() < .4:
        mol.append("MGMT promoter methylation: pending; to be reported in an addendum")
    return who[0], mol


def make_pair(i, rng):
    """One patient: type, imaging, MGMT, treatment, survival; then the MRI report and the pathology report."""
    tt = pick(rng, TUMOURS)
    f = sample_imaging(tt, rng)
    mgmt = sample_mgmt(tt, rng)
    resection = extent_of_resection(f, rng)
    grade = who_grade(tt, f, rng)
    survival = sample_survival(tt, f, grade, mgmt, resection, rng)
    radiology = radiology_report(f, rng)
    dx, mol = pathology_dx(tt, rng, mgmt, grade, f)
    proc = {"gross total resection": "resection", "subtotal resection": "subtotal resection",
            "biopsy": "stereotactic biopsy"}[resection]
    frozen = {"metastasis": "metastatic carcinoma" if f["primary"] != "melanoma" else "malignant neoplasm",
              "meningioma": "meningioma", "lymphoma": "atypical lymphoid infiltrate, defer to permanents"}.get(
        tt, rng.choice(["glial neoplasm", "neoplasm, defer to permanent sections", "lesional tissue present"]))
    clinical = rng.choice([f"Clinical history: {f['age']}-year-old {f['sex']}, {f['site']} mass.",
                           f"Clinical history: {f['site']} lesion.", ""])
    pathology = "\n".join(x for x in [
        rng.choice(["NEUROPATHOLOGY REPORT", "SURGICAL PATHOLOGY REPORT"]), clinical,
        f"Specimen: Brain, {f['site']}, {proc}.",
        f"Intraoperative consultation: {frozen}.",
        "FINAL DIAGNOSIS:",
        f"Brain, {f['site']}, {proc}: {dx}.",
        "Ancillary studies:",
    ] + [f"  - {m}" for m in mol] + [rng.choice(["Comment: Integrated diagnosis per WHO CNS5 (2021).",
                                                 "Comment: Findings discussed with the neurosurgeon.", ""])] if x)
    labels = {"tumor_type": tt, "mgmt": mgmt, "survival_1y": survival}
    return {"id": f"BT{i:05d}", "radiology": radiology, "pathology": pathology, "labels": labels}


NOT_IN_RADIOLOGY = ("WHO", "IDH", "MGMT", "1p/19q", "Ki-67", "methylat", "grade 1", "grade 2", "grade 3", "grade 4")
DIAGNOSIS_WORDS = {"glioblastoma": "Glioblastoma", "astrocytoma": "Astrocytoma, IDH-mutant",
                   "oligodendroglioma": "Oligodendroglioma", "ependymoma": "ependymoma", "medulloblastoma": "Medulloblastoma",
                   "pilocytic_astrocytoma": "Pilocytic astrocytoma", "meningioma": "Meningioma",
                   "metastasis": "Metastatic", "lymphoma": "lymphoma"}


def check_pair(rec):
    """The division of knowledge: pathology states the diagnosis and the MGMT label; radiology states neither the
    final histology's grade, IDH, 1p/19q, Ki-67 nor MGMT."""
    rid, rad, path, lab = rec["id"], rec["radiology"], rec["pathology"], rec["labels"]
    dx = path.split("FINAL DIAGNOSIS:")[1]
    assert DIAGNOSIS_WORDS[lab["tumor_type"]] in dx, (rid, lab["tumor_type"])
    assert not any(w in rad for w in NOT_IN_RADIOLOGY), (rid, [w for w in NOT_IN_RADIOLOGY if w in rad])
    stated = re.findall(r"MGMT promoter methylation[^:\n]*: (methylated|unmethylated)", path)
    assert stated == ([lab["mgmt"]] if lab["mgmt"] else []), (rid, stated, lab["mgmt"])


# ----------------------------------------------------------------------------------------------------------

def generate_reports(n, seed=42):
    """n reports, the styles in turn (so every style has n / len(STYLES) of them). Each report draws from its own
    seeded generator, so editing one style leaves every other style's reports unchanged."""
    styles = report_styles()
    names = sorted(styles)
    out = [make_report(i, random.Random(seed * 1_000_003 + i), names[i % len(names)], styles[names[i % len(names)]],
                       seed) for i in range(n)]
    for r in out:
        check_report(r)
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
    p.add_argument("--reports", type=int, default=2400)
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
    tags = {}
    for r in reports:
        for h in r["tags"]:
            tags[h] = tags.get(h, 0) + 1
    print(f"  styles: {', '.join(sorted({r['style'] for r in reports}))}")
    print("  phenomena: " + ", ".join(f"{k} {v}" for k, v in sorted(tags.items())))
    for task, c in data.label_counts(prs, data.PAIR_LABEL_SETS).items():
        print(f"  {task:12s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))


if __name__ == "__main__":
    main()
