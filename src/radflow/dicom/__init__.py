"""DICOM building blocks: header indexing, series geometry, pixel volumes, sidecars."""
