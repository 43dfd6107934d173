"""The ROO/NCIT terms this train reads, copied so the image needs nothing from the station.

They are facts of the vocabulary (``pht_contract.vocabulary`` holds the same IRIs; a test
checks they agree), which is what lets one train run unchanged at every station.
"""

from typing import Final

NCIT: Final = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#"

DEAD: Final = NCIT + "C28554"
ALIVE: Final = NCIT + "C37987"
MISSING: Final = NCIT + "C54031"
