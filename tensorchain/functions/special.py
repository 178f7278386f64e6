"""The error function and the normal distribution function, with numpy alone.

numpy has no ``erf``, and ``math.erf`` one number at a time is slow, so
:func:`cody_erf` evaluates W. J. Cody's rational Chebyshev approximations
("Rational Chebyshev approximations for the error function", Math. Comp. 23
(1969) 631-638, with the coefficients of his CALERF in netlib's specfun,
which approximate erf and erfc to at least 18 significant digits) on whole
arrays:

* ``|x| ≤ 0.46875``: ``erf(x) = x R₁(x²)``;
* ``0.46875 < |x| ≤ 4``: ``erfc(|x|) = exp(−x²) R₂(|x|)``;
* ``|x| > 4``: ``erfc(|x|) = exp(−x²)/|x| (1/√π − R₃(1/x²)/x²)``;

with ``exp(−x²)`` computed as ``exp(−u²) exp(−(|x| − u)(|x| + u))`` for ``u``
``|x|`` rounded down to a sixteenth, so that ``x²`` loses nothing to rounding.
Measured against ``math.erf``/``math.erfc`` (tests/test_functions_more.py):
relative error below 1e-15 for both wherever the result is a normal number.

The functions take the array library's namespace ``xp`` (numpy by default);
numpy arrays take a path that evaluates each formula only where it applies,
other libraries one of array-API operations only (``where``, ``exp``), so the
same code runs on torch, JAX and dask arrays. Generated code copies them.
"""

from __future__ import annotations

import numpy as np


def cody_erf(x: np.ndarray, complement: bool, xp: object = np) -> np.ndarray:
    """erf(x), or erfc(x) with ``complement``, by Cody's approximations (see
    the module). Coefficients: W. J. Cody, Math. Comp. 23 (1969), as in CALERF."""
    a = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02)
    a += (3.20937758913846947e03, 1.85777706184603153e-1)
    b = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03)
    b += (2.84423683343917062e03,)
    c = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01)
    c += (2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03)
    c += (2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
    d = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02)
    d += (1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03)
    d += (3.43936767414372164e03, 1.23033935480374942e03)
    p = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1)
    p += (1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
    q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1)
    q += (6.05183413124413191e-2, 2.33520497626869185e-3)

    def horner(top, coeffs, v, inplace):  # (...((top v + c0) v + c1) v ...) v
        out = top * v
        for k in coeffs:
            if inplace:
                out += k
                out *= v
            else:
                out = (out + k) * v
        return out

    def near(v, inplace=False):  # erf(v) = v R1(v²) for |v| ≤ 0.46875
        z = v * v
        num = horner(a[4], a[:3], z, inplace) + a[3]
        return v * num / (horner(1.0, b[:3], z, inplace) + b[3])

    def middle(y, inplace=False):  # erfc(y) exp(y²) = R2(y) for 0.46875 < y ≤ 4
        num = horner(c[8], c[:7], y, inplace) + c[7]
        return num / (horner(1.0, d[:7], y, inplace) + d[7])

    def tail(y):  # erfc(y) exp(y²) for y > 4
        z = 1.0 / (y * y)
        num = horner(p[5], p[:4], z, False) + p[4]
        return (0.56418958354775628695 - z * num / (horner(1.0, q[:4], z, False) + q[4])) / y

    def gauss(y):  # exp(-y²) without rounding y²: y = u + (y - u), u = y to 1/16
        u = xp.floor(y * 16.0) / 16.0
        return xp.exp(-u * u) * xp.exp(-(y - u) * (y + u))

    if xp is np:  # the same formulas, in place and each where it applies
        x = np.asarray(x)
        x = x if x.dtype.kind == "f" else x.astype(np.float64)
        if x.ndim != 1:
            return cody_erf(x.reshape(-1), complement).reshape(x.shape)
        if x.size > 16384:  # blocks that stay in the cache: measured 3× faster
            out = np.empty_like(x)
            for start in range(0, x.size, 16384):
                out[start : start + 16384] = cody_erf(x[start : start + 16384], complement)
            return out
        y = np.abs(x)
        m = np.clip(y, 0.46875, 4.0)
        upper = middle(m, inplace=True)
        big = y > 4.0
        if big.any():  # rare: |x| > 4
            far = np.minimum(y[big], 26.543)  # erfc(y) underflows from 26.543 on
            upper[big] = np.where(y[big] < 26.543, tail(far), 0.0)
            m[big] = far
        u = np.multiply(m, 16.0)
        np.floor(u, out=u)
        u *= 0.0625
        v = np.add(m, u)
        m -= u
        m *= v
        np.negative(m, out=m)
        np.exp(m, out=m)
        upper *= m
        np.multiply(u, u, out=u)
        np.negative(u, out=u)
        np.exp(u, out=u)
        upper *= u  # erfc(|x|)
        small = np.flatnonzero(y <= 0.46875)
        inner = near(x[small], inplace=True)
        if complement:
            out = np.where(x < 0.0, 2.0 - upper, upper)
            out[small] = 1.0 - inner
        else:
            out = np.subtract(1.0, upper, out=upper)
            np.copysign(out, x, out=out)  # erf is odd
            out[small] = inner
        nan = np.isnan(x)
        if nan.any():
            out[nan] = np.nan
        return out
    y = xp.abs(x)
    small = y <= 0.46875
    inner = near(xp.where(small, x, 0.0))
    clipped = xp.clip(y, 0.46875, 26.543)
    big = clipped > 4.0
    scaled = xp.where(big, tail(xp.where(big, clipped, 5.0)), middle(xp.where(big, 1.0, clipped)))
    upper = xp.where(y < 26.543, scaled * gauss(clipped), 0.0)  # erfc(|x|)
    if complement:
        out = xp.where(small, 1.0 - inner, xp.where(x < 0.0, 2.0 - upper, upper))
    else:
        out = xp.where(small, inner, xp.where(x < 0.0, upper - 1.0, 1.0 - upper))
    return xp.where(xp.isnan(x), x, out)


def erf(x: np.ndarray, xp: object = np) -> np.ndarray:
    """The error function (2/√π) ∫₀ˣ exp(−t²) dt, elementwise (Cody 1969).

    Example:
        >>> round(float(erf(np.float64(0.5))), 15)
        0.520499877813047
    """
    return cody_erf(x, False, xp)


def erfc(x: np.ndarray, xp: object = np) -> np.ndarray:
    """The complementary error function 1 − erf(x), elementwise (Cody 1969),
    accurate relative to erfc where 1 − erf would lose every digit.

    Example:
        >>> round(float(erfc(np.float64(1.0))), 15)
        0.157299207050285
    """
    return cody_erf(x, True, xp)


def normal_cdf(x: np.ndarray, xp: object = np) -> np.ndarray:
    """Φ(x), the standard normal distribution function, as ``erfc(−x/√2)/2``
    (accurate relative to Φ in the lower tail, where ``(1 + erf)/2`` is not).

    Example:
        >>> float(normal_cdf(np.float64(0.0)))
        0.5
    """
    return 0.5 * cody_erf(-0.7071067811865476 * x, True, xp)


def gelu_cdf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Φ(x), given gelu's value ``y = x Φ(x)``: ``y / x``, within an ulp of Φ
    wherever ``y`` is a normal number, so that gelu's derivative
    ``Φ(x) + x φ(x)`` does not evaluate Φ a second time (Cody's erfc takes
    some thirty passes over the array); :func:`normal_cdf` where ``y / x`` is
    not exact: at 0, at ±inf and NaN, and where ``y`` underflows.

    Example:
        >>> x = np.array([-2.0, 0.0, 1.5])
        >>> bool(np.allclose(gelu_cdf(x, x * normal_cdf(x)), normal_cdf(x), rtol=1e-15))
        True
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind != "f" or y.dtype.kind != "f":
        return normal_cdf(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        cdf = np.divide(y, x)
    redo = np.abs(y) < np.finfo(y.dtype).tiny
    redo |= ~np.isfinite(cdf)
    if redo.any():
        cdf = np.array(cdf)  # a 0-d result is a scalar
        cdf[redo] = normal_cdf(x[redo])
    return cdf
