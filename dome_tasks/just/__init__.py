"""just's argument semantics for invoke, the justfile bridge and the generated block."""
