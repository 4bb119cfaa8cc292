"""Training: demonstration data (collection, storage, preprocessing) and, later, the VLA trainer."""
