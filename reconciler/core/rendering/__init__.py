"""Rendering: values in, text out for people and other tools. Plans as text, markdown and
JSON; validation reports; Talos machine-config patches; the JSON Schema and the field
reference generated from the models. Pure."""
