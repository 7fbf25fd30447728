"""Sources: each turns one kind of model (live object or file) into a Report."""
