"""Stage ``report``: one HTML page per cohort that a researcher opens offline (README, "Report").

Reads the stages' files (never their code): ``qc/run_summary.tsv``, ``merge/clinical_join_
report.tsv``, the pair records ``pair/<pair_id>.json`` (and the images and masks they name),
``crawl/series.tsv`` (each image's modality), ``merge/dataset.parquet`` and the header of
``merge/features_wide.csv``, ``merge/landmarks.tsv`` (the RECIST axes of the QC pictures),
and, when the analysis ran, ``analysis/redundancy_clusters.tsv``, ``associations.tsv``,
``model_ready.parquet`` and ``baseline.tsv``. Writes ``<results>/report/``:

``index.html``
    The page (:mod:`.page`): run summary, the QC gallery (paged and filtered by its script),
    feature distributions, correlation heatmap, associations, provenance.
``qc/<pair_id>.png``
    One QC picture per pair (:mod:`.qc`, :mod:`.gallery`).
``assets/``
    Thumbnails (``assets/thumbs/<pair_id>.png``), plots (:mod:`.plots`), the stylesheet and
    script.

Two runs on the same inputs write the same bytes.

Modules: :mod:`.stage` (the rule's entry point :func:`~radflow.report.stage.run_report_stage`),
:mod:`.settings`, :mod:`.gallery`, :mod:`.qc` and :mod:`.overlay` (QC pictures), :mod:`.plots`,
:mod:`.content` (the page's tables from the stages' files), :mod:`.page` (HTML),
:mod:`.resources` (the job's run-time request, read by the Snakefile: this package imports
nothing when it is imported).
"""
