"""Planning: the order in which a derivative's chain is multiplied.

``chain_orders`` costs and picks chain orders (``net.plan``, the ``Plan``
object), ``explore`` compares every order of one derivative (``tensorchain
paths``); the public ``tc.contract`` on labeled tensors is ``calculus.contract``.

How to add a chain order: a function in ``chain_orders`` that returns a path
for the delta-reduced factors, and its name in ``ORDERS``.

May import: ``runtime`` and every layer below.
"""
