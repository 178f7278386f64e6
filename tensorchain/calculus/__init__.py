"""The calculus: labeled tensors and the chain rule.

``labeled`` holds a derivative as a sum of terms, each a coefficient times
factors times symbolic Kronecker deltas; ``rules`` and ``matrix_rules`` give
the local derivative of each operation; ``chain`` runs the chain rule over a
network; ``graph`` and ``differentiate`` build derivatives of any order as a
transformation of the lowered network (``from_spec`` builds a network's
graph from its syntax tree); ``products`` plans products of
derivatives (per-sample norms, clipped sums, the NTK).

How to add the derivative of a new operation: a rule in ``rules.RULES``
keyed by the operation's node type.

May import: ``contraction``, ``language``, ``functions``, ``arrays``, ``errors``.
"""
