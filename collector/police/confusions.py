"""The characters a camera confuses, folded together: what the watchlist matcher and plate
search both call "the same plate up to OCR confusions"."""

CONFUSABLE = str.maketrans("ODQBSZILG", "000852116")


def fold(text: str) -> str:
    """`text` with each confusable letter replaced by the digit it is mistaken for."""
    return text.translate(CONFUSABLE)
