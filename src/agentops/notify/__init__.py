"""Telling people when an agent needs them (and when it recovers)."""
