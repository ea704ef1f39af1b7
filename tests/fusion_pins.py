"""Pins of the paper's methods (the fusions whose YAML has a ``paper:`` entry), shared by the tests.

Exact parameter counts with the paper backbones, and the golden forward values on the tiny backbones. A fusion
without ``paper:`` is not pinned (its own tests are the shared interface tests); a fusion with one must be.
"""

# Exact parameter counts with the paper backbones (docs/paper-facts.md#parameter-counts; mcbp and mmtm are ours).
PAPER_PARAMS = {
    "video_only": 25_882_056,
    "audio_only": 34_024,
    "averaging": 25_916_080,
    "prob_product": 25_916_080,
    "multiplicative_loss": 25_916_080,
    "concat_fc": 26_868_664,
    "mcbp": 26_044_088,
    "mmtm": 31_496_512,
    "msaf": 25_940_724,
    "cfnsr": 26_301_417,
}

# logits.sum() and logits[0, :3] of each fusion on the tiny backbones: seed 0, eval mode, tiny_inputs.
# They pin the math: a refactor that changes any of these must explain why.
GOLDEN = {
    "audio_only": (-0.841175, [-0.036381, -0.036507, -0.149504]),
    "averaging": (-33.336044, [-2.006387, -1.901139, -2.119669]),
    "cfnsr": (0.572081, [0.011593, 0.206056, 0.123518]),
    "concat_fc": (0.341470, [-0.005329, 0.062327, 0.022999]),
    "mcbp": (-0.017081, [0.007675, -0.005405, -0.002093]),
    "mmtm": (-1.334516, [0.084912, 0.297271, -0.121655]),
    "msaf": (-0.217205, [0.065139, 0.058161, 0.028548]),
    "prob_product": (-66.728310, [-4.015827, -3.803378, -4.239485]),
    "multiplicative_loss": (-33.336044, [-2.006387, -1.901139, -2.119669]),
    "video_only": (-0.810089, [0.088697, 0.106493, -0.090529]),
}
