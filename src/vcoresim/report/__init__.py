"""Output formats: text step listings, JSON, timelines."""
