"""Tests of rota.bench."""
