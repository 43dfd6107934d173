"""The ROO/NCIT terms this train reads, copied so the image needs nothing from the station.

They are facts of the vocabulary (``pht_contract.vocabulary`` holds the same IRIs; a test
checks they agree), which is what lets one train run unchanged at every station.
"""

from typing import Final

NCIT: Final = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#"

T_CODES: Final = {
    "T0": NCIT + "C48719",
    "T1": NCIT + "C48720",
    "T2": NCIT + "C48724",
    "T3": NCIT + "C48728",
    "T4": NCIT + "C48732",
}
N_CODES: Final = {
    "N0": NCIT + "C48705",
    "N1": NCIT + "C48706",
    "N2": NCIT + "C48786",
    "N3": NCIT + "C48714",
}
DEAD: Final = NCIT + "C28554"
ALIVE: Final = NCIT + "C37987"
