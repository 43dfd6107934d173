"""Aggregates the station computes itself from an approved query's answer, and their rules."""
