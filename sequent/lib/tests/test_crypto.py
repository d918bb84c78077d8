import os
import stat

import pytest
from cryptography.fernet import Fernet
from django.db import connection, models
from django.test.utils import isolate_apps

from sequent.lib import crypto

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@pytest.fixture
def keys(monkeypatch):
    """Set SEQUENT_FERNET_KEYS for one test."""

    def use(*values):
        monkeypatch.setenv(crypto.KEYS_ENV, ",".join(values))

    return use


def test_it_round_trips_a_secret_without_storing_it_in_clear(keys):
    keys(KEY_A)
    token = crypto.encrypt("app-pässword 42")
    assert "pässword" not in token and "42" not in token
    assert crypto.decrypt(token) == "app-pässword 42"
    assert crypto.encrypt("same") != crypto.encrypt("same")


def test_it_decrypts_old_secrets_after_a_new_key_is_put_first(keys):
    keys(KEY_A)
    old = crypto.encrypt("old secret")
    keys(KEY_B, KEY_A)
    new = crypto.encrypt("new secret")
    assert crypto.decrypt(old) == "old secret"
    assert crypto.decrypt(new) == "new secret"
    rotated = crypto.rotate(old)
    keys(KEY_B)
    assert crypto.decrypt(rotated) == "old secret"
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(old)


def test_it_says_clearly_when_no_key_opens_a_secret(keys):
    keys(KEY_A)
    token = crypto.encrypt("secret")
    keys(KEY_B)
    with pytest.raises(crypto.CryptoError, match="no configured key opens it"):
        crypto.decrypt(token)
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt("not a token at all")


def test_it_names_a_malformed_key_in_the_environment(keys):
    keys(KEY_A, "too-short")
    with pytest.raises(crypto.CryptoError, match="SEQUENT_FERNET_KEYS: key 2 is not a Fernet key"):
        crypto.encrypt("x")


def test_it_generates_a_private_key_file_once_when_no_key_is_set(monkeypatch, settings, tmp_path):
    monkeypatch.delenv(crypto.KEYS_ENV, raising=False)
    settings.VAR_DIR = tmp_path
    token = crypto.encrypt("kept")
    key_file = tmp_path / "fernet.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    first_key = key_file.read_text()
    crypto._fernet_for.cache_clear()
    assert crypto.decrypt(token) == "kept"
    assert key_file.read_text() == first_key


def test_it_never_shows_a_decrypted_secret_in_a_repr(keys):
    keys(KEY_A)
    secret = crypto.decrypt(crypto.encrypt("hunter2"))
    assert secret == "hunter2"
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in repr({"password": secret})


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_stores_a_token_in_the_column_and_gives_back_text(keys):
    keys(KEY_A)
    with isolate_apps("sequent.users"):

        class Vault(models.Model):
            secret = crypto.EncryptedTextField(null=True)

            class Meta:
                app_label = "users"
                db_table = "test_crypto_vault"

            def __str__(self):
                return f"vault {self.pk}"

        with connection.schema_editor() as editor:
            editor.create_model(Vault)
        try:
            row = Vault.objects.create(secret="smtp-password")
            with connection.cursor() as cursor:
                cursor.execute("SELECT secret FROM test_crypto_vault WHERE id = %s", [row.pk])
                stored = cursor.fetchone()[0]
            assert "smtp-password" not in stored
            assert crypto.decrypt(stored) == "smtp-password"
            loaded = Vault.objects.get(pk=row.pk)
            assert loaded.secret == "smtp-password"
            assert "smtp-password" not in repr(loaded.secret)
            Vault.objects.create(secret=None)
            assert Vault.objects.filter(secret__isnull=True).count() == 1
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(Vault)
