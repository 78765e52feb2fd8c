"""Small flows of every family, by name: the cases the reliability and compiled-flow tests share."""

from sandflow import flows

FLOWS = {
    "realnvp": lambda: flows.realnvp(3, layers=2, hidden=(8,)),
    "nice": lambda: flows.nice(3, layers=2, hidden=(8,)),
    "nsf": lambda: flows.nsf(3, layers=2, hidden=(8,), bins=4),
    "maf": lambda: flows.maf(3, layers=2, hidden=(8,)),
    "iaf": lambda: flows.maf(3, layers=2, hidden=(8,), iaf=True),
    "glow": lambda: flows.glow((1, 4, 4), levels=2, steps=1, hidden=8),
    "cnf": lambda: flows.cnf(3, hidden=(8,)),
    "realnvp_context": lambda: flows.realnvp(3, layers=2, hidden=(8,), context=2),
    "nsf_context": lambda: flows.nsf(3, layers=2, hidden=(8,), bins=3, context=2),
    "iaf_context": lambda: flows.maf(3, layers=2, hidden=(8,), context=2, iaf=True),
}
