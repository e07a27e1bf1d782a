from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count

from blog.models import Comment, Post
from blog.text import slugify_titles


class Command(BaseCommand):
    help = "Recompute comment counts and fix missing slugs"

    def add_arguments(self, parser):
        parser.add_argument("--fast", action="store_true")

    def handle(self, *args, **options):
        if options["fast"]:
            self.recount_fast()
        else:
            self.recount_slow()
        self.fix_slugs()

    def recount_slow(self):
        with transaction.atomic():
            for post in Post.objects.all():
                post.comment_count = Comment.objects.filter(post=post, approved=True).count()  # expect: SLP201
                post.save(update_fields=["comment_count"])  # expect: SLP202

    def recount_fast(self):
        counts = dict(
            Comment.objects.filter(approved=True)
            .values_list("post_id")
            .annotate(n=Count("id"))
            .values_list("post_id", "n")
        )
        posts = list(Post.objects.only("id", "comment_count"))
        for post in posts:
            post.comment_count = counts.get(post.id, 0)
        Post.objects.bulk_update(posts, ["comment_count"], batch_size=500)

    def fix_slugs(self):
        posts = list(Post.objects.filter(slug=""))
        for post, slug in zip(posts, slugify_titles([p.title for p in posts])):
            post.slug = slug
        Post.objects.bulk_update(posts, ["slug"])
        self.stdout.write(f"fixed {len(posts)} slugs")
