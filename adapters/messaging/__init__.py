"""Secure messaging (MSSanté): conversations around a prescription, and their e-mails."""
