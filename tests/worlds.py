"""The one factory of the tests' synthetic worlds: small, fast, and each test
says only how its world differs from this one."""

#: A small world with every key `saldissect.data.synthetic.write_world` reads.
BASE = {
    "seed": 0,
    "n_train": 16,
    "n_val": 8,
    "n_probe": 12,
    "height": 64,
    "width": 80,
    "objects_per_image": [1, 3],
    "object_size": [0.3, 0.45],
    "max_overlap": 0.2,
    "gain": 2.0,
    "center_bias_sigma": 0.3,
    "center_bias_strength": 0.5,
    "observers": 3,
    "fixations_per_observer": 5,
    "blur_sigma": 0.03,
    "weights": {"face": 1.0, "bus": 0.5, "sky": -1.0, "field": 0.2, "red": 0.3},
}


def world(**changes) -> dict:
    """`BASE` with ``changes`` (a key given replaces the base's, ``weights`` whole)."""
    unknown = set(changes) - set(BASE) - {"interaction", "shuffle_maps"}
    if unknown:
        raise KeyError(f"not a world key: {sorted(unknown)}")
    return {**BASE, **changes}


#: recovery.acceptance that any run meets: for worlds too small or runs too short
#: to recover the planted weights, where the check still runs (tests/test_recovery.py
#: checks the thresholds themselves, and test_workflow.py a strict check failing).
ANY_RUN = {
    "contrast": {"min_spearman": -1.0, "min_sign_agreement": 0.0},
    "top_k_iou": {"min_spearman": -1.0, "min_sign_agreement": 0.0},
    "regression": {"min_spearman": -1.0, "min_sign_agreement": 0.0},
    "max_control_spearman": 1.0,
}
