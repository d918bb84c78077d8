urlpatterns: list = [
]
