"""The independent references every result is checked against.

``reshape`` is the article's reshape method generalised (dense local
Jacobians, matrices and reshapes only); ``jets`` the dense reference for
derivatives of every order, built on ``jet_algebra`` (jets and the Leibniz
and Faà di Bruno rules that combine them) and ``matrix_jets`` (matrix
functions from their defining identities); ``constants`` the constants a
network makes (reshapes, concatenations, shifts) from their definitions;
``functions`` their own table of elementwise derivatives (written from the
mathematics, not taken from the registry); ``differences`` central finite
differences.

The reference must not share code with what it checks: it imports the
language (to read a network) and the array layer, never the calculus,
contraction, planning, runtime or functions.

May import: ``language``, ``arrays``, ``errors``.
"""
