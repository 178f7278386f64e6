"""The independent references every result is checked against.

``reshape`` is the article's reshape method generalised (dense local
Jacobians, matrices and reshapes only), ``jets`` and ``matrix_jets`` the
dense reference for derivatives of every order, ``functions`` their own
table of elementwise derivatives (written from the mathematics, not taken
from the registry), ``differences`` central finite differences.

The reference must not share code with what it checks: it imports the
language (to read a network) and the array layer, never the calculus or
planning.
"""
