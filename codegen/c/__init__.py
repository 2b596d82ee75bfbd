"""C code generation: Jinja2 templates per op per target family (``templates/<family>/<op>.c.j2``)."""
