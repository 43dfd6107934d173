"""Cohort summary (patients by stage, histology and sex), as a PHT train."""
