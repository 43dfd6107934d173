"""Kaplan–Meier overall survival by overall stage, as a PHT train."""
