"""Hypernetwork editors, one implementation configured three ways: MEND, PropMEND, RLEdit.

- network.py: the gradient transform g_phi and learned step sizes;
- grads.py: the edited weights and their rank-1 gradient factors;
- losses.py: inner (clm | sft), outer (propagation | paraphrase) and locality losses;
- data.py: Controlled RippleEdit training instances and locality inputs;
- config.py: training configs and the bundled presets (`editors/presets/train/`);
- train.py: meta-training (`ripplebench train-editor CONFIG`);
- checkpoint.py: saving, loading and checking hypernetworks;
- locations.py: where checkpoints are written and found ($RIPPLEBENCH_CACHE/hypernets/);
- editor.py: the editors `mend`, `propmend`, `rledit`.
"""
