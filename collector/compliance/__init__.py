"""Vietnamese limits as data, and the judging of readings against them."""
