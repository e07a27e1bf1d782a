import csv

from django.core.management.base import BaseCommand

from shop.models import Customer, Order


class Command(BaseCommand):
    help = "Import orders from a CSV export"

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, **options):
        with open(options["path"], newline="") as f:
            rows = list(csv.DictReader(f))
        customers = {c.email: c for c in Customer.objects.filter(email__in=[r["email"] for r in rows])}  # ok: SLP201 runs once
        for row in rows:
            customer = customers.get(row["email"])  # ok: SLP201 a dict
            if customer is None:
                customer = Customer.objects.create(email=row["email"])  # expect: SLP202
                customers[row["email"]] = customer
            order = Order(customer=customer, total_cents=int(row["total_cents"]))
            order.save()  # expect: SLP202
        self.stdout.write(self.style.SUCCESS(f"imported {len(rows)} orders"))
