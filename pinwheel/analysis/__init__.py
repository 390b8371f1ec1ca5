"""Analysis of learned filters and maps (docs/models.md §7)."""
