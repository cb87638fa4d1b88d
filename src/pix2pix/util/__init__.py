"""Small shared helpers with no knowledge of models or training: argument checks, optional extras,
files, devices and precision, image files and value ranges."""
