"""Scale-out: indexing in a Ray Data pipeline into a library that may live on object storage (docs/scale-out.md).

Ray, lance-ray and pylance come from the `scale` extra; nothing here is imported unless --ray is given."""
