"""Cost accounting: what a run spent (rollouts, tokens by kind, FLOPs, wall time, GPU-hours).

``counters`` holds the running totals in a stateful trainer callback (saved in every checkpoint),
``trainers`` feeds them from the trainers' own hooks, ``estimate`` turns them into the ``cost`` block of
``metrics.json``, and ``report`` reads that block back for ``prefix-rft-compare``.
"""
