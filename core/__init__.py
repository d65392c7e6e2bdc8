"""The small core every layer builds on: the loaded model and its layers, the cache folder,
file IO, settings parsing, preset lookup and prompt rendering. It imports nothing else of
ripplebench (see ARCHITECTURE.md)."""
