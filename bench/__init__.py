"""`make bench`: the service's throughput beside the raw `cryptography` limits, its AWS calls per
operation, its cold start, and a side-by-side HTTP run with CFSSL. See docs/performance.md.

Not a test: it prints a table, writes bench/results.json (git-ignored) and always exits 0; a missed
budget is printed as FAIL and recorded in the results.
"""
