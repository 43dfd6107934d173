"""The train: one query, three tables of patient counts (stage, histology, sex).

Parameters: ``query`` (default ``"characteristics"``), a named query selecting ``?patient``,
``?stage``, ``?histology`` and ``?sex``. Small cells are left as they are: suppressing or
blocking them is the station's disclosure gate's decision, under the hospital's policy.
"""

from cohort_summary.summaries import summarise
from pht_train import ResultManifest, Stage, TrainSession, count, group

#: Query variable → result table name.
TABLES = {
    "stage": "patients_by_stage",
    "histology": "patients_by_histology",
    "sex": "patients_by_sex",
}


def describe(train: TrainSession) -> None:
    train.progress(10, Stage.QUERYING)
    result = train.query(train.parameter("query", str, "characteristics"))
    train.progress(60, Stage.COMPUTING)
    counts, cohort = summarise(result.rows, [v for v in TABLES if v in result.variables])
    manifest = ResultManifest()
    for variable, table in counts.items():
        manifest.add_table(
            TABLES[variable],
            [group(variable), count("patients")],
            [[name, patients] for name, patients in table.items()],
            cohort_size=cohort,
        )
    train.progress(90, Stage.UPLOADING)
    train.upload(manifest)
