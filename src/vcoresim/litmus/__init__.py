"""C litmus tests (the herd7 / Linux-kernel-memory-model subset) run on vcoresim's memory models."""
