"""The calculus: labeled tensors, forward evaluation and the chain rule.

``labeled`` holds a derivative as a sum of terms (``terms``: each a
coefficient times factors times symbolic Kronecker deltas) with its algebra;
``compact`` contracts its factors, ``dense`` and ``blocks`` make it dense
(whole, or block by block), ``printing`` writes it in index notation;
``contract`` is the public ``tc.contract`` on labeled tensors. ``forward``
evaluates lowered statements; ``rules`` and ``matrix_rules`` give the local
derivative of each operation, built from ``factors`` and named by
``node_names``; ``chain`` runs the chain rule over a network; ``graph``,
``differentiate`` and ``vjp`` build derivatives of any order as a
transformation of the lowered network (``from_spec`` builds a network's
graph from its syntax tree); ``products`` plans products of
derivatives (per-sample norms, clipped sums, the NTK).

How to add a new operation: the node class in ``language.operations``
(with ``Node``, ``children`` and ``relabel`` there), the lowering that
makes it (``language.lower_*``) and its text (``language.show_lowered``);
its value in ``forward.evaluate_node``; its local Jacobian, a labeled
tensor, in ``rules.RULES`` keyed by the node type (first derivatives), and
its names in ``node_names`` (``name_of``, ``tex_of``); its vector-Jacobian
product written as operations in ``vjp.local_vjp``, and its children
rebuilt in ``differentiate._with_children`` (second and higher
derivatives); and, independently, in the references:
``reference.reshape._local_matrix`` (its dense local Jacobian) and
``reference.jets._node`` (its jet, for every order). tests/test_any_order.py
and tests/test_derivatives.py compare the two on drawn networks once the
strategies of ``tensorchain.strategies`` draw the new operation.

May import: ``contraction``, ``language``, ``functions``, ``arrays``, ``errors``.
"""
