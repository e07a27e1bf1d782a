from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from blog.models import Author, Comment, Post, Tag
from blog.text import render

_author_cache = {}  # expect: SLP501


def author_name(author_id: int) -> str:
    if author_id not in _author_cache:
        _author_cache[author_id] = Author.objects.get(pk=author_id).display_name
    return _author_cache[author_id]


def post_list(request):
    posts = Post.objects.filter(published=True).order_by("-created")[:20]
    data = []
    for post in posts:
        data.append(
            {
                "title": post.title,
                "author": author_name(post.author_id),  # expect: SLP201
                "comments": Comment.objects.filter(post=post, approved=True).count(),  # expect: SLP201
            }
        )
    return JsonResponse({"posts": data})


def post_list_fast(request):
    posts = (
        Post.objects.filter(published=True)
        .select_related("author")
        .annotate(n_comments=Count("comments"))
        .order_by("-created")[:20]
    )
    return JsonResponse(
        {
            "posts": [
                {"title": p.title, "author": p.author.display_name, "comments": p.n_comments}
                for p in posts
            ]
        }
    )


def post_detail(request, slug):
    post = get_object_or_404(Post.objects.select_related("author"), slug=slug)
    comments = list(post.comments.filter(approved=True).values("name", "body"))
    return JsonResponse(
        {"title": post.title, "body": render("plain", post.body), "comments": comments}
    )


@require_POST
def tag_post(request, slug):
    post = get_object_or_404(Post, slug=slug)
    names = request.POST.getlist("tag")
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n) for n in names if n not in existing]
    Tag.objects.bulk_create(missing)
    post.tags.add(*existing.values(), *missing)
    return JsonResponse({"tags": names})


@require_POST
def approve_comments(request, slug):
    post = get_object_or_404(Post, slug=slug)
    ids = [int(i) for i in request.POST.getlist("id")]
    for comment in Comment.objects.filter(post=post, id__in=ids):  # ok: SLP201 the queryset is the loop's iterable, evaluated once
        comment.approved = True
        comment.save(update_fields=["approved"])  # expect: SLP202
    post.comment_count = Comment.objects.filter(post=post, approved=True).count()
    post.save()
    return JsonResponse({"approved": len(ids)})


async def stats(request):
    published = await Post.objects.filter(published=True).acount()
    authors = await Author.objects.acount()
    return JsonResponse({"published": published, "authors": authors})
