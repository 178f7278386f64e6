"""Built-in specs; ``article.tc`` is the network of the backprop article.

May import: nothing of the package (data, read with importlib.resources)."""

from importlib.resources import files


def builtin(name: str) -> str:
    """The text of the built-in spec ``name`` (without ``.tc``)."""
    return files(__package__).joinpath(f"{name}.tc").read_text(encoding="utf-8")
