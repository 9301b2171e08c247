"""Importers: other frameworks' recorded runs into a researchgym run folder (store + trajectories)."""

from researchgym.importers.mlgym_runs import ImportReport, import_mlgym, mlgym_aup

__all__ = ["ImportReport", "import_mlgym", "mlgym_aup"]
