"""Each example train's copied ROO/NCIT IRIs are the contract vocabulary's."""

import cohort_summary.terms as summary_terms
import federated_logreg.terms as logreg_terms
import gpu_training_step.terms as gpu_terms
import kaplan_meier.terms as km_terms
import pytest

from pht_contract import vocabulary as voc

COMMON = ("NCIT", "MALE", "FEMALE", "DEAD", "ALIVE", "MISSING")


@pytest.mark.parametrize("module", [summary_terms, logreg_terms, gpu_terms, km_terms])
def test_copied_terms_equal_the_vocabulary(module: object) -> None:
    copied = [name for name in COMMON if hasattr(module, name)]
    assert copied, "each train copies some terms"
    for name in copied:
        assert getattr(module, name) == getattr(voc, name), name


def test_stage_codes_equal_the_vocabulary() -> None:
    for code, iri in gpu_terms.T_CODES.items():
        assert voc.T_CODES[code] == iri
    for code, iri in gpu_terms.N_CODES.items():
        assert voc.N_CODES[code] == iri
    assert summary_terms.LABELS == {voc.MALE: "male", voc.FEMALE: "female"}
