"""ROO / NCIT terms of the Maastricht FAIR stack, so one query runs at every hospital.

Sources: the public Lung1 R2RML mapping (MaastrichtU-CDS) and NCIT. Overall survival: the
R2RML mapping models it as an ``roo:overallsurvivaldays`` node with the value via
``roo:P100042`` and unit via ``roo:P100027`` (ncit:C25301, days); a public query browser uses
``roo:P100311`` instead. We follow the R2RML mapping and link the node with
:data:`HAS_SURVIVAL` (``roo:P100311``), so both spellings meet in one place here.
Histology and overall stage have no public NCIT mapping for Lung1: they stay literals.
"""

from typing import Final

ROO: Final = "http://www.cancerdata.org/roo/"
NCIT: Final = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#"
XSD: Final = "http://www.w3.org/2001/XMLSchema#"

PREFIXES: Final = {"roo": ROO, "ncit": NCIT, "xsd": XSD}


def roo(local: str) -> str:
    return ROO + local


def ncit(local: str) -> str:
    return NCIT + local


# Classes
PATIENT: Final = ncit("C16960")
SEX: Final = ncit("C28421")
NEOPLASM: Final = ncit("C3262")
T_STAGE: Final = ncit("C25728")
N_STAGE: Final = ncit("C25580")
M_STAGE: Final = ncit("C25727")
HISTOLOGY: Final = ncit("C16681")
DEATH_FINDING: Final = ncit("C28554")
DAYS: Final = ncit("C25301")

# Properties
HAS_SEX: Final = roo("P100018")
HAS_AGE_AT_DIAGNOSIS: Final = roo("P100016")
HAS_NEOPLASM: Final = roo("P100029")
HAS_T_STAGE: Final = roo("P100244")
HAS_N_STAGE: Final = roo("P100242")
HAS_M_STAGE: Final = roo("P100241")
HAS_OVERALL_STAGE: Final = roo("P100219")
HAS_HISTOLOGY: Final = roo("P100021")
HAS_DEATH_FINDING: Final = roo("P100254")
HAS_VALUE: Final = roo("P100042")
HAS_UNIT: Final = roo("P100027")
HAS_SURVIVAL: Final = roo("P100311")
SURVIVAL_DAYS_CLASS: Final = roo("overallsurvivaldays")

# Value codes
T_CODES: Final = {
    "T0": ncit("C48719"),
    "T1": ncit("C48720"),
    "T2": ncit("C48724"),
    "T3": ncit("C48728"),
    "T4": ncit("C48732"),
    "TX": ncit("C48737"),
}
N_CODES: Final = {
    "N0": ncit("C48705"),
    "N1": ncit("C48706"),
    "N2": ncit("C48786"),
    "N3": ncit("C48714"),
    "NX": ncit("C48718"),
}
M_CODES: Final = {"M0": ncit("C48699"), "M1": ncit("C48700")}
MALE: Final = ncit("C20197")
FEMALE: Final = ncit("C16576")
DEAD: Final = ncit("C28554")
ALIVE: Final = ncit("C37987")
MISSING: Final = ncit("C54031")

OVERALL_STAGES: Final = ("I", "II", "IIIa", "IIIb")
HISTOLOGIES: Final = (
    "squamous cell carcinoma",
    "large cell",
    "nos",
    "adenocarcinoma",
)
