"""The training machinery under the searches: a candidate's splits trained in
lock-step (``_outer_loop``), one split's life (``_fold``), one hyper-step
(``_hyper_step``), how the splits share numbers (``_exchange``), where jobs run
(``_dispatch``) and the trainings paused between calls of
``evaluate_candidates``, which the halving search resumes (``_paused``).

It may import the layers below the estimators (the engine, the families, the
skorch glue) and the search's values (``.._results``, ``.._tasks``), never the
estimators themselves (``.._search``, ``.._halving``, ``.._single_fit``).
"""
