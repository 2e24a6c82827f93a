"""Weights shipped inside blendfix (package data), registered as ``bundled`` checkpoints.

``blendfix-cpu-cleaner``: the default cleaner (``blendfix clean --method auto``). How it was trained,
on what data, its curve and its measured quality: docs/training.md and docs/evaluation.md.
"""
