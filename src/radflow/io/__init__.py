"""Input/output building blocks shared by all stages (atomic writes, tables, NIfTI)."""
