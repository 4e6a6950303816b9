"""cnnlab's recipes: the YAML files beside this file, shipped as package data (``cnnlab.experiments``)."""
