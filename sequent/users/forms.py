"""Forms of the users app."""

from __future__ import annotations

from django.contrib.auth.forms import AuthenticationForm


class LoginForm(AuthenticationForm):
    """Email and password. Emails are stored lower-cased, so the one typed is too."""

    error_messages = {
        **AuthenticationForm.error_messages,
        # Django's text warns that both fields may be case-sensitive; the email is not here.
        "invalid_login": "Wrong email or password. Passwords are case-sensitive.",
    }

    @staticmethod
    def normalize_email(value: str) -> str:
        """The email as stored: trimmed and lower-cased."""
        return (value or "").strip().lower()

    def clean_username(self) -> str:
        return self.normalize_email(self.cleaned_data.get("username") or "")
