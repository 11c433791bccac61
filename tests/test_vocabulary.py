"""Object names to concepts: plurals merge with their singulars, pluralia tantum stay."""

from __future__ import annotations

import pytest

from saldissect.data.vocabulary import (
    COCO_CATEGORIES,
    INVARIANT,
    PLURALIA_TANTUM,
    object_concept,
    singular,
)


@pytest.mark.parametrize(
    ("name", "concept"),
    [
        # lemminflect lists "letters" and "rails" as lemmas of their own
        ("letters", "letter"),
        ("rails", "rail"),
        ("frames", "frame"),
        ("shingles", "shingle"),
        # regular plurals
        ("numbers", "number"),
        ("lines", "line"),
        ("stripes", "stripe"),
        ("windows", "window"),
        ("bananas", "banana"),
        ("buses", "bus"),
        ("lenses", "lens"),
        ("leaves", "leaf"),
        ("tennis balls", "tennis ball"),
        ("t-shirts", "t-shirt"),
        ("Street  Signs", "street sign"),
        ("frisbees", "frisbee"),  # not in the dictionary: lemminflect's suffix rules
        # plurals only: they stay
        ("glasses", "glasses"),
        ("jeans", "jeans"),
        ("pants", "pants"),
        ("shorts", "shorts"),
        ("trousers", "trousers"),
        ("scissors", "scissors"),
        ("clothes", "clothes"),
        ("spectacles", "spectacles"),
        ("eye glasses", "eye glasses"),
        ("eye-glasses", "eye-glasses"),
        # ... unless the compound's plain plural reading is a COCO category
        ("wine glasses", "wine glass"),
        # singular nouns ending in -s stay
        ("bus", "bus"),
        ("glass", "glass"),
        ("grass", "grass"),
        ("dress", "dress"),
        ("lens", "lens"),
        ("cactus", "cactus"),
        ("kiss", "kiss"),
        ("news", "news"),
        ("species", "species"),
        ("series", "series"),
        ("biceps", "biceps"),
        # words the dictionary does not know, or gets wrong, keep their form
        ("data", "data"),
        ("pepperoni", "pepperoni"),
        ("graffiti", "graffiti"),
        ("plumbing", "plumbing"),
    ],
)
def test_known_singulars(name, concept):
    assert object_concept(name) == concept


def test_every_plurale_tantum_and_invariant_stays():
    for word in sorted(PLURALIA_TANTUM | INVARIANT):
        assert singular(word) == word, word
        assert object_concept(word) == word, word
        assert object_concept(f"blue {word}") == f"blue {word}", word


def test_coco_categories_are_their_own_concepts():
    assert all(object_concept(name) == name for name in COCO_CATEGORIES)
