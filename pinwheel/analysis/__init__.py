"""Analysis of learned filters and maps (science.md §7)."""
