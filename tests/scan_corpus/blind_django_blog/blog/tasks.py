import hashlib
import hmac
import json

import boto3
import requests
from celery import shared_task
from django.conf import settings

from blog.models import Post, Webhook

_http = requests.Session()


@shared_task(bind=True, max_retries=3)
def send_digest(self, author_id: int, recipients: list[str]):
    ses = boto3.client("ses", region_name=settings.AWS_REGION)  # expect: SLP102
    posts = Post.objects.filter(author_id=author_id, published=True).order_by("-created")[:5]
    body = "\n".join(f"- {p.title}" for p in posts)
    ses.send_email(
        Source=settings.DIGEST_FROM,
        Destination={"ToAddresses": recipients},
        Message={"Subject": {"Data": "New posts"}, "Body": {"Text": {"Data": body}}},
    )


@shared_task
def notify_webhooks(post_id: int):
    post = Post.objects.get(pk=post_id)
    payload = json.dumps({"id": post.id, "title": post.title, "slug": post.slug})
    for hook in Webhook.objects.filter(active=True):
        signer = requests.Session()  # expect: SLP101
        signature = hmac.new(hook.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        signer.post(hook.url, data=payload, headers={"X-Signature": signature}, timeout=5)


@shared_task
def ping_search_engine(slug: str):
    _http.get("https://search.example/ping", params={"slug": slug}, timeout=5)  # ok: SLP102 module-level session reused
