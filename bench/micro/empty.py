"""An empty program: what remains is the fixed cost of starting and finishing a recording."""
