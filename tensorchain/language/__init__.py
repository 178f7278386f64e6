"""The language: text to syntax tree to lowered labeled operations.

``syntax`` tokenizes and parses a spec into a syntax tree (every error points
at a token), ``lower`` gives each assignment its meaning as labeled
operations, ``shapes`` binds indices to dims and checks sizes, ``losses``
expands the loss shorthands; declarations with value domains (``domains``),
shift tensors (``shift``), integer index tensors (``gather``), reshapes and
concatenation (``reindex``), selections (``selections``), the Kronecker
delta as a value (``delta_values``) and user-registered functions
(``user_functions``, ``user_function_checks``); the text of a spec
(``spec_file``), and what the layers below the facade may ask of a network
(``network_like``, typing only).

May import: ``functions``, ``arrays``, ``errors``.
"""
