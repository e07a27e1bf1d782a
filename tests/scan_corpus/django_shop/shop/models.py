from django.db import models


class Customer(models.Model):
    email = models.EmailField(unique=True)
    active = models.BooleanField(default=True)


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    total_cents = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)


class LoyaltyPoints(models.Model):
    customer = models.OneToOneField(Customer, on_delete=models.CASCADE)
    points = models.IntegerField(default=0)


class AuditLog(models.Model):
    action = models.CharField(max_length=40)
    detail = models.TextField()


class ReportFile:
    """Not a model: an in-memory report that 'saves' into a list."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.saved: list[str] = []

    def save(self) -> None:
        self.saved = list(self.lines)
