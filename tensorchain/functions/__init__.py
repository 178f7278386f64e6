"""The vocabulary: the functions of the language and their values.

Elementwise functions with their derivatives (``registry``, the table, and
``kernels``, their array code; users add theirs through
``tensorchain.register_function``), the error function (``special``),
functions along indices such as softmax and logsumexp (``along``) and matrix
functions (``matrix``). The language takes their names from here, the
runtime their values, the calculus their derivatives.

How to add an elementwise function: one entry in ``registry.ELEMENTWISE``
(value, derivative, second derivative, how it prints; the array code, where a numpy function
will not do, in ``kernels``); the reference keeps
its own table (``tensorchain.reference.functions``), so add the function
there too, from the mathematics. tests/test_derivatives.py checks every
entry against central differences and the reference.

May import: ``arrays``, ``errors``.
"""
