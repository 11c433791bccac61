"""Concept vocabulary: how scene-graph names become concepts (docs/method.md 4).

Object names are lower-cased, whitespace-collapsed and made singular with
`lemminflect`'s dictionary (no data download); a multi-word name stays one
concept and only its last word is made singular ("tennis balls" -> "tennis
ball"). Attributes are lower-cased only ("glasses" as an attribute stays).
Which concepts are kept (COCO categories, frequency cut-offs) is decided by
`keep_mask`.

The singular of a word (`singular`):

- a plurale tantum (`PLURALIA_TANTUM`: "glasses", "jeans", "pants", ...) or
  a word kept as written (`INVARIANT`: "biceps", "graffiti", ...) stays;
- a word whose dictionary lemmas do not include itself becomes the first
  lemma ("buses" -> "bus", "men" -> "man");
- a word that is one of its own lemmas stays, unless it ends in -s and is the
  dictionary plural of another of its lemmas: then it merges with that
  singular ("letters" -> "letter", "rails" -> "rail"; lemminflect lists
  "letters" as a lemma of its own, and the word used to be kept apart);
- a word the dictionary does not know keeps its form unless it ends in -s,
  where lemminflect's suffix rules guess ("frisbees" -> "frisbee"; without
  the -s condition they turned "pepperoni" into "pepperonus").

Singular nouns that end in -s ("bus", "glass", "grass", "dress", "lens") are
their own only lemma and stay. A multi-word name ending in a plurale tantum
keeps it ("eye glasses") unless the dictionary singular names a COCO category
("wine glasses" -> "wine glass").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from lemminflect import getAllInflections, getLemma

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

# Plural-only nouns, and plurals whose singular means something else ("goods",
# "grounds", "contents"): they stay as written.
PLURALIA_TANTUM = frozenset(
    "glasses sunglasses eyeglasses spectacles jeans pants trousers shorts slacks overalls "
    "briefs knickers scissors shears clippers goggles tongs pliers tweezers clothes "
    "leggings tights pajamas pyjamas suspenders bloomers binoculars headphones earphones "
    "goods grounds contents checkers".split()
)

# Singular words that the dictionary would change: ending in -s, yet not the plural
# of the other lemma the dictionary offers ("biceps" / "bicep", "physics" /
# "physic"), or a mass noun whose dictionary singular is not used ("graffiti").
INVARIANT = frozenset(
    "biceps triceps crossroads means physics optics statistics tropics graffiti".split()
)


def _clean(name: str) -> str:
    return " ".join(str(name).lower().split())


# Where the dictionary's first lemma is the wrong one for scene graphs.
OVERRIDES = {"leaves": "leaf"}


@lru_cache(maxsize=1 << 16)
def singular(word: str) -> str:
    """The singular of one lower-case noun (the rules of the module docstring).

    A hyphenated word changes its last part ("t-shirts" -> "t-shirt").
    """
    if "-" in word:
        head, _, tail = word.rpartition("-")
        return f"{head}-{singular(tail)}" if tail else word
    if word in PLURALIA_TANTUM or word in INVARIANT or not word.isalpha():
        return word
    if word in OVERRIDES:
        return OVERRIDES[word]
    return _dictionary_singular(word)


@lru_cache(maxsize=1 << 16)
def _dictionary_singular(word: str) -> str:
    """lemminflect's singular, with no word list consulted."""
    lemmas = getLemma(word, upos="NOUN", lemmatize_oov=False)
    if not lemmas and word.endswith("s"):
        lemmas = getLemma(word, upos="NOUN")  # suffix rules for unknown words
    if not lemmas:
        return word
    if word not in lemmas:
        return lemmas[0]
    if word.endswith("s"):
        for lemma in lemmas:
            if lemma != word and word in getAllInflections(lemma, upos="NOUN").get("NNS", ()):
                return lemma
    return word


def object_concept(name: str) -> str:
    """An object name as a concept: lower case, singular last word, multi-word kept whole."""
    words = _clean(name).split(" ")
    if words == [""]:
        return ""
    last = words[-1]
    head = singular(last)
    if head == last and len(words) > 1 and last.isalpha():
        # "wine glasses": a plurale tantum whose plain plural reading is a COCO category
        coco = " ".join([*words[:-1], _dictionary_singular(last)])
        if coco in COCO_CATEGORIES:
            return coco
    return " ".join([*words[:-1], head])


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
