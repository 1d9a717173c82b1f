"""Prefect flows: each one only orchestrates tasks from the tasks package."""
