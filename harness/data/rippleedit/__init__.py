"""RippleEdit (Cohen et al. 2024; PropMEND section 4 and Appendix D): the official files'
records (`records`), parsing and labelling (`parse`), the paper's splits (`splits`), download
(`download`), preparation (`prepare`), reading prepared data (`read`), statistics (`stats`) and
the `ripplebench data rippleedit` command (`cli`)."""
