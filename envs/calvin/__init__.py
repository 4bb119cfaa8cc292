"""CALVIN-style play-table suite: PyBullet scene, task oracle, chains and language."""
