"""Concept vocabulary: how scene-graph names become concepts (METHOD.md 4).

Object names are lower-cased, whitespace-collapsed and made singular with
`lemminflect`'s dictionary (no data download); a multi-word name stays one
concept and only its last word is made singular ("tennis balls" -> "tennis
ball"). Attributes are lower-cased only ("glasses" as an attribute stays).
Which concepts are kept (COCO categories, frequency cut-offs) is decided by
`keep_mask`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from lemminflect import getLemma

# The 80 COCO object categories, in their singular Visual Genome spelling.
COCO_CATEGORIES = frozenset(
    name
    for line in """person|bicycle|car|motorcycle|airplane|bus|train|truck|boat|traffic light|
    fire hydrant|stop sign|parking meter|bench|bird|cat|dog|horse|sheep|cow|elephant|bear|
    zebra|giraffe|backpack|umbrella|handbag|tie|suitcase|frisbee|ski|snowboard|sports ball|
    kite|baseball bat|baseball glove|skateboard|surfboard|tennis racket|bottle|wine glass|
    cup|fork|knife|spoon|bowl|banana|apple|sandwich|orange|broccoli|carrot|hot dog|pizza|
    donut|cake|chair|couch|potted plant|bed|dining table|toilet|tv|laptop|mouse|remote|
    keyboard|cell phone|microwave|oven|toaster|sink|refrigerator|book|clock|vase|scissors|
    teddy bear|hair drier|toothbrush""".split("|")
    if (name := " ".join(line.split()))
)

# Plural-only nouns whose dictionary lemma would change their meaning.
PLURALIA_TANTUM = frozenset(
    "glasses sunglasses eyeglasses jeans pants trousers shorts scissors goggles tongs "
    "pliers clothes leggings tights pajamas binoculars headphones earphones".split()
)


def _clean(name: str) -> str:
    return " ".join(str(name).lower().split())


# Where the dictionary's first lemma is the wrong one for scene graphs.
OVERRIDES = {"leaves": "leaf"}


@lru_cache(maxsize=1 << 16)
def singular(word: str) -> str:
    """The singular of one lower-case noun, from lemminflect's dictionary.

    A hyphenated word changes its last part ("t-shirts" -> "t-shirt"); a word
    that is itself one of its lemmas ("glasses", "data") stays as it is.
    """
    if "-" in word:
        head, _, tail = word.rpartition("-")
        return f"{head}-{singular(tail)}" if tail else word
    if word in PLURALIA_TANTUM or not word.isalpha():
        return word
    if word in OVERRIDES:
        return OVERRIDES[word]
    lemmas = getLemma(word, upos="NOUN")
    return word if not lemmas or word in lemmas else lemmas[0]


def object_concept(name: str) -> str:
    """An object name as a concept: lower case, singular last word, multi-word kept whole."""
    words = _clean(name).split(" ")
    if words == [""]:
        return ""
    return " ".join([*words[:-1], singular(words[-1])])


def attribute_concept(name: str) -> str:
    """An attribute as a concept: lower case, whitespace collapsed."""
    return _clean(name)


def keep_mask(
    names: Iterable[str],
    kinds: Iterable[str],
    *,
    min_object_count: int,
    min_attribute_count: int,
    keep_coco: bool = True,
) -> np.ndarray:
    """Which (concept, kind) rows to keep: COCO objects, and concepts seen often enough.

    Counts are occurrences (one per object or attribute annotation) over the
    whole probe set.
    """
    names, kinds = list(names), list(kinds)
    counts = Counter(zip(names, kinds, strict=True))
    return np.fromiter(
        (
            (
                kind == "object"
                and (
                    (keep_coco and name in COCO_CATEGORIES)
                    or counts[(name, kind)] >= min_object_count
                )
            )
            or (kind == "attribute" and counts[(name, kind)] >= min_attribute_count)
            for name, kind in zip(names, kinds, strict=True)
        ),
        dtype=bool,
        count=len(names),
    )
