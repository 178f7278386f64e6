"""Verification as a feature: ``net.verify`` (``verify``) compares one
derivative with every reference at hand (JAX's and PyTorch's autodiff in
``autodiff``), reported in ``verify_report``; ``tc.check_gradient``
(``check_gradient``) checks a user's own gradient code (called through
``user_gradients``, on the examples ``search`` draws and shrinks), reports
in ``gradient_report`` and diagnoses a wrong one (``suspects``). ``entries``
names derivatives and entries in both reports.

May import: every layer below (``presentation`` and down).
"""
