"""Verification as a feature: ``net.verify`` (``verify``) compares one
derivative with every reference at hand; ``tc.check_gradient``
(``check_gradient``) checks a user's own gradient code and diagnoses a wrong
one (``suspects``).

May import: ``reference``, ``runtime`` and every layer below.
"""
