"""Finding and decoding media files."""
