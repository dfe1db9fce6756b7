"""Synthetic data with a fixed seed (the real reports are private): breast pathology reports for the multi-task
classifier and brain-tumour radiology-pathology pairs for the staged embedder.

    python examples/make_examples.py                   # writes examples/reports.jsonl and examples/pairs.jsonl
    python examples/make_examples.py --reports 50 --pairs 20 --out /tmp/x

Reports: fifteen styles, each written independently after one real reporting practice (examples/styles_a.py:
North American CAP, dictated, core biopsy, neoadjuvant, addenda; styles_b.py: UK RCPath, translated European,
outside consultation, LIS shorthand, multi-part specimens; styles_c.py: scanned PDF/OCR, legacy upper case,
long histories, EHR copies, two-column PDF extraction). One sampled tumour per report, long-tailed classes like
the MTL paper's Fig. S3; each style states what its practice states, so some labels are null ("not stated").
Each record carries its "style", the verbatim "evidence" of every stated label, and "tags" naming its
phenomena; check_report() asserts that labels are the truth of the text. Training holds whole styles out
(data.split_by_style), so the test split is text written unlike anything the model was trained on.

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
    """{style name: render(tumour, rng)} from the three style files (imported here: they import this module)."""
    import styles_a
    import styles_b
    import styles_c
    return {**styles_a.STYLES, **styles_b.STYLES, **styles_c.STYLES}


def _norm(s):
    return re.sub(r"\s+", " ", s).strip().lower()


def make_report(i, rng, style, render):
    """One tumour written in one style: {id, style, text, labels, evidence, tags}; labels are what the text states."""
    out = render(sample_tumour(rng), rng)
    return {"id": f"BR{i:05d}", "style": style, "text": out["text"], "labels": out["labels"],
            "evidence": out["evidence"], "tags": sorted(set(out.get("tags", [])))}


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
    """n reports, the styles in turn (so every style has n / len(STYLES) of them)."""
    rng = random.Random(seed)
    styles = report_styles()
    names = sorted(styles)
    out = [make_report(i, rng, names[i % len(names)], styles[names[i % len(names)]]) for i in range(n)]
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
