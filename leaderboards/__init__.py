"""Results and the tables and plots that compare editors."""
