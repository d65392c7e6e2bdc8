"""Controlled RippleEdit (PropMEND paper, section 5 and Appendix E): the split table (`splits`),
generation (`templates`, `generate`, `write`, `card`), checks (`kb_checks`, `split_checks`),
reading (`read`) and the `ripplebench data controlled-ripple` command (`cli`). The knowledge
base's schema and loader are `ripplebench.core.knowledge_base`; its files are in `kb/`."""
