"""tensorchain: the chain rule of tensor networks, planned by opt_einsum."""

from .arrays.limits import get_memory_limit, set_memory_limit
from .calculus.contract import contract
from .calculus.labeled import LabeledTensor
from .errors import (
    DerivativeError,
    MemoryLimitError,
    NonFiniteWarning,
    PlanError,
    ShapeError,
    SpecError,
    TensorchainError,
    ValuesError,
)
from .language.lower import SpecWarning
from .language.user_functions import register_function, unregister_function
from .network import Network, load, parse
from .networks import builtin
from .planning.explore import Exploration
from .planning.plan import Plan
from .presentation.derivation import Derivation
from .reference.jets import reference_derivative
from .reference.reshape import reshape_hessian, reshape_method
from .verification.check_gradient import check_gradient
from .version import __version__

ARTICLE: str = builtin("article")
"""The spec text of the article's one-layer network."""

__all__ = [
    "ARTICLE",
    "Derivation",
    "DerivativeError",
    "Exploration",
    "LabeledTensor",
    "MemoryLimitError",
    "Network",
    "NonFiniteWarning",
    "Plan",
    "PlanError",
    "ShapeError",
    "SpecError",
    "SpecWarning",
    "TensorchainError",
    "ValuesError",
    "__version__",
    "builtin",
    "check_gradient",
    "contract",
    "get_memory_limit",
    "load",
    "parse",
    "reference_derivative",
    "register_function",
    "reshape_hessian",
    "reshape_method",
    "set_memory_limit",
    "unregister_function",
]
