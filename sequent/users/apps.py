from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "sequent.users"
    label = "users"
    verbose_name = "Users and roles"
