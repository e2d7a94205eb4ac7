"""Charter's statistics: pure numpy (scipy only for distribution tails), no I/O, mergeable."""
