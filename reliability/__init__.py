"""Reliability proofs: seeded bad input, faults and load, measured rather than assumed (`make reliability`)."""
