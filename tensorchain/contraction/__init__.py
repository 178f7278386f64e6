"""Contracting labeled operands with opt_einsum.

``einsum.contract`` turns operands whose axes carry labels into one planned
einsum (paths from opt_einsum, cached), runs it on any array library, and
reports its cost; ``batched`` runs pairwise contractions with batch indices
as stacked matrix products. Constant factors of the language (shifts,
selections, reshapes) are contracted as gathers, slices and reshapes here.

May import: ``language``, ``functions``, ``arrays``, ``errors``.
"""
