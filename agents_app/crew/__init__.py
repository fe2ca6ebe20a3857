"""Morvo's CrewAI specialists (crewai is imported lazily, inside the functions)."""
