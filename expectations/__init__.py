"""Great Expectations suites, one module per dataset, built in Python.

Each suite is a list of ``Check``: one GX expectation with the rule's code, the column a
sender would fix, its severity and plain-English message and fix hint. ``runner``
validates each dataset's rows from every file of a run in one batch; ``docs`` turns a
run's results into Great Expectations Data Docs under ``data/docs/``.
"""
