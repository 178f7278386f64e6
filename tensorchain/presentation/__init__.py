"""Presentation: what people read.

``notation`` prints labeled tensors in index notation, ``derivation`` the
derivations (index notation, einsum, LaTeX, steps, generated numpy code),
``report`` what ``tensorchain derive`` prints, ``usercode`` the user's
modules named on the command line.

May import: every layer below (``planning`` and down; among them the
reference, whose results a report shows beside tensorchain's).
"""
