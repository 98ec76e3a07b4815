"""The pure domain: records, the event vocabulary, the reducer, and every decision.

Nothing here reads a clock, touches I/O or draws randomness: times and ids come in as
arguments, so the same code decides live, replays recovery, and runs under test clocks.
"""
