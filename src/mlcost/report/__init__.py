"""Rendering only: terminal tables and JSON. Nothing here computes a cost."""
