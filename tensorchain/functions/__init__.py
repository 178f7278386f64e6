"""The vocabulary: the functions of the language and their values.

Elementwise functions with their derivatives (``registry``, the table, and
``kernels``, their array code; users add theirs through
``tensorchain.register_function``), the error function (``special``),
functions along indices such as softmax and logsumexp (``along``) and matrix
functions (``matrix``). The language takes their names from here, the
runtime their values, the calculus their derivatives.

How to add a built-in elementwise function (docs/architecture.md, "An
elementwise function", says which test checks each):

1. an entry in ``registry.ELEMENTWISE``: value, first derivative, both as
   numpy source, and how the derivative prints (array code that a numpy
   function will not do in ``kernels``, a generated-code helper in
   ``registry.HELPERS``);
2. f' written as operations in ``DERIVATIVES`` of
   ``tensorchain.calculus.vjp``: second and higher derivatives come from
   there, not from the entry;
3. ``value`` and ``derivative`` (every order) in
   ``tensorchain.reference.functions``, from the mathematics;
4. without a complex derivative: the name in ``registry.NOT_HOLOMORPHIC`` and
   in the reference's own ``NOT_HOLOMORPHIC``;
5. a row in the function tables of docs/language.md and the name in the list
   of known functions in docs/errors.md.

tests/test_function_tables.py fails, naming the file, for each place missed,
and checks every entry's derivatives of order 1 and 2 on arguments of both
signs against the reference.

May import: ``arrays``, ``errors``.
"""
