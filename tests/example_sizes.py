"""Small sizes for the example specs whose own sizes (the issue's transformer
block, an MNIST-sized CNN) are too large for the reshape method's dense
matrices: ``tc.load(spec).with_sizes(SMALL[spec.name])``."""

SMALL = {
    "transformer_block.tc": {"B": 2, "T": 3, "D": 4, "H": 2, "K": 2, "F": 3, "V": 5, "c": 3},
    "cnn.tc": {"B": 2, "C": 2, "N": 5, "C1": 2, "C2": 2, "c": 3},
}
