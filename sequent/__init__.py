"""Sequent: self-hosted sales engagement."""
