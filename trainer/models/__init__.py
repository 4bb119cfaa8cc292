"""VLA models: VLM backbones (transformers classes), VLA structures and action heads."""
