"""ripplebench harness: model loading, the edit-then-query engine, lm-eval integration, CLI.

Kept import-light on purpose: `lm_eval_plugin` is imported at interpreter start-up.
"""
