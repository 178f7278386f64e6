"""Planning: the order in which a derivative's chain is multiplied.

``chain_orders`` costs and picks the order of each term of a chain,
``plan`` makes a derivative's plan from them (``net.plan``, the ``Plan``
object), ``explore`` compares every order of one derivative (``tensorchain
paths``), ``pictures`` loads matplotlib for their pictures; the public
``tc.contract`` on labeled tensors is ``calculus.contract``.

How to add a chain order: a function of a term's ``Links`` that returns
their bracketing, and its name in ``chain_orders.ORDERS``
(docs/architecture.md, "How to add one").

May import: every layer below (``runtime`` and down).
"""
