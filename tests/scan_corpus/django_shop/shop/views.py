import redis
from django.conf import settings
from django.db.models import Count
from rest_framework.decorators import api_view
from rest_framework.response import Response

from shop.models import AuditLog, Customer, LoyaltyPoints, Order, ReportFile

_redis = redis.Redis.from_url(settings.REDIS_URL)


@api_view(["GET"])
def customer_summary(request):
    out = []
    for customer in Customer.objects.filter(active=True):  # ok: SLP201 the iterable runs once
        n = Order.objects.filter(customer_id=customer.id).count()  # expect: SLP201
        points = LoyaltyPoints.objects.get(customer=customer)  # expect: SLP201
        has_recent = Order.objects.filter(customer=customer, total_cents__gt=0).exists()  # expect: SLP201
        out.append({"email": customer.email, "orders": n, "points": points.points, "recent": has_recent})
    return Response(out)


@api_view(["GET"])
def customer_summary_fast(request):
    rows = Customer.objects.filter(active=True).annotate(n=Count("order")).select_related("loyaltypoints")
    params = request.query_params
    limit = int(params.get("limit", 100))  # ok: SLP201 query params are a dict
    out = [{"email": c.email, "orders": c.n, "points": c.loyaltypoints.points} for c in rows[:limit]]
    return Response(out)


@api_view(["POST"])
def rate_limit_probe(request):
    r = redis.Redis(host=settings.REDIS_HOST, port=6379)  # expect: SLP102
    hits = r.incr(f"probe:{request.user.id}")
    return Response({"hits": hits})


@api_view(["POST"])
def award_points(request):
    customer_ids = request.data["customer_ids"]
    for cid in customer_ids:
        lp = LoyaltyPoints.objects.get(customer_id=cid)  # expect: SLP201
        lp.points += 10
        lp.save()  # expect: SLP202
        AuditLog.objects.create(action="award", detail=str(cid))  # expect: SLP202
        _redis.set(f"points:{cid}", lp.points)  # expect: SLP202
    return Response({"ok": True})


@api_view(["POST"])
def award_points_bulk(request):
    customer_ids = request.data["customer_ids"]
    querysets = []
    for cid in customer_ids:
        querysets.append(Order.objects.filter(customer_id=cid))  # ok: SLP201 a lazy queryset, never evaluated here
    pipe = _redis.pipeline()
    for cid in customer_ids:
        pipe.set(f"points:{cid}", 10)  # ok: SLP202 queued on a pipeline
    pipe.execute()
    logs = [AuditLog(action="award", detail=str(cid)) for cid in customer_ids]
    AuditLog.objects.bulk_create(logs)
    report = ReportFile("awards")
    for cid in customer_ids:
        report.lines.append(str(cid))
        report.save()  # ok: SLP202 not a model
    return Response({"queued": len(querysets)})
