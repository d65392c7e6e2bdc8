"""lm-eval task folders. lm-eval indexes the YAML files here (see harness.lm_eval_plugin)."""
