"""The language: text to syntax tree to lowered labeled operations.

``tokens`` and ``parser`` (its parts ``parse_expressions``,
``parse_indices``) read a spec into the syntax tree of ``syntax`` (every
error points at a token), ``lower`` gives each assignment its meaning as
labeled operations (``operations``; its parts ``lower_arithmetic``,
``lower_references``, ``lower_calls``, ``lower_matrix``; printed back by
``show_lowered``), ``shapes`` binds indices to dims and checks sizes,
``losses`` expands the loss shorthands; declarations with value domains
(``domains``), shift tensors (``shift``), integer index tensors
(``gather``), reshapes and concatenation (``reindex``), selections
(``selections``), the Kronecker delta as a value (``delta_values``) and
user-registered functions (``user_functions``, ``user_function_checks``,
``user_function_calls``, ``user_function_source``) and the message for a
singular matrix, shared by the rules and the reference (``matrix_failures``); the text of a
spec (``spec_file``), and what the layers below the facade may ask of a
network (``network_like``, typing only).

May import: ``functions``, ``arrays``, ``errors``.
"""
