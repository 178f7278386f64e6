"""Built-in specs; ``article.tc`` is the network of the backprop article.

May import: ``errors`` only (the specs are data, read with importlib.resources)."""

from importlib.resources import files

from ..errors import SpecError


def builtin(name: str) -> str:
    """The text of the built-in spec ``name`` (without ``.tc``).

    Raises:
        SpecError: there is no built-in spec of that name (the message lists them).

    Example:
        >>> import tensorchain as tc
        >>> tc.builtin("article") == tc.ARTICLE
        True
    """
    specs = sorted(p.name[:-3] for p in files(__package__).iterdir() if p.name.endswith(".tc"))
    if not isinstance(name, str) or name not in specs:
        raise SpecError(
            f"there is no built-in spec {name!r}; the built-in specs are {', '.join(specs)}"
            " (to read a spec of your own, use tc.load(path) or tc.parse(text))"
        )
    return files(__package__).joinpath(f"{name}.tc").read_text(encoding="utf-8")
