"""Contracting labeled operands with opt_einsum.

``einsum.contract`` turns operands whose axes carry labels into one planned
einsum, runs it on any array library, and reports its cost; ``paths`` plans
it with opt_einsum (cached); ``steps`` runs the planned path, each pairwise
step written once by ``pairwise`` (a matrix product, a broadcast multiply)
or ``batched`` (batch indices as stacked matrix products). Constant factors
of the language (shifts, selections, reshapes) are contracted as gathers,
slices and reshapes here.

May import: ``language``, ``functions``, ``arrays``, ``errors``.
"""
