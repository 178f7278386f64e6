"""tensorchain: the chain rule of tensor networks, planned by opt_einsum."""

__version__ = "0.1.0"  # first, so that modules can import it

from .contraction import contract
from .derivation import Derivation
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
from .explore import Exploration
from .extend import register_function, unregister_function
from .jets import reference_derivative
from .labeled import LabeledTensor
from .limits import get_memory_limit, set_memory_limit
from .lower import SpecWarning
from .network import Network, load, parse
from .networks import builtin
from .paths import Plan
from .reshape import reshape_hessian, reshape_method
from .usercheck import check_gradient

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
