"""The operator dashboard (Streamlit): what the desk holds and the few decisions a human makes.

`app.py` is the entry script (`breakout dashboard`, `make dashboard`), `views/` its pages,
`desk.py` the reads (read-only transactions) and `actions.py` the only writes: approvals through
`approvals.decide` and the kill-switch file, both on a button click, never on a page load.
"""
