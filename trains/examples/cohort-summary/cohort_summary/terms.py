"""The ROO/NCIT terms this train reads, copied so the image needs nothing from the station.

They are facts of the vocabulary (``pht_contract.vocabulary`` holds the same IRIs; a test
checks they agree), which is what lets one train run unchanged at every station.
"""

from typing import Final

NCIT: Final = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#"

MALE: Final = NCIT + "C20197"
FEMALE: Final = NCIT + "C16576"
MISSING: Final = NCIT + "C54031"

#: Readable labels for the coded values this train meets; other IRIs keep their local name.
LABELS: Final = {MALE: "male", FEMALE: "female"}
