"""The runtime: values in, arrays out.

``compiled`` traces a derivative once per sizes and dtype into a program
and replays it (``higher``: the last Jacobian of a higher derivative);
``fastcall`` writes the cheap call of a program on numpy values; ``calls``
runs a network's calls (the fast path, then the general one), with
``arguments`` checking their arguments, ``sizes`` inferring every dim's
size, ``leaves`` the placeholders programs are traced on and ``graphs`` the
cached graphs of derivatives; ``values`` checks the values of a call;
``finite`` checks results for NaN and infinity and names where they first
appear. (Evaluating lowered statements, and dense results block by block,
are the calculus's: ``calculus.forward``, ``calculus.blocks``.)

May import: every layer below (``calculus`` and down).
"""
