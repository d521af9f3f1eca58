"""Discussions beside a document: comments, threads, mentions, following a document."""

from __future__ import annotations

from app.http.context import Ctx
from app.models import Comment, Document
from app.routes.api.registry import router
from app.schemas.common import Page
from app.schemas.discussions import (
    CommentCreate,
    CommentOut,
    CommentPosted,
    CommentsPage,
    CommentUpdate,
    FollowOut,
    MentionCandidate,
    MentionQuery,
    comment_out,
)
from app.services import activity, discussions, documents, markdown

TAG = "discussions"


def _present(ctx: Ctx, doc: Document, items: list[discussions.Thread]) -> list[CommentOut]:
    """Render a page of threads: a fixed number of queries for authors and mentioned people."""
    everything = [c for t in items for c in (t.root, *t.replies)]
    users = discussions.people(ctx.db, [i for c in everything
                                        for i in (c.author_id, c.resolved_by)])
    named = discussions.mention_people(ctx.db, doc.group_id,
                                       [c.body for c in everything if c.deleted_at is None])
    me = ctx.require_user().id

    def one(comment: Comment, replies: list[CommentOut] | None = None) -> CommentOut:
        html = markdown.render(comment.body, named) if comment.deleted_at is None else ""
        return comment_out(comment, html=html, users=users, can_edit=comment.author_id == me,
                           can_delete=discussions.may_delete(ctx.access, comment, doc),
                           replies=replies)

    return [one(t.root, [one(r) for r in t.replies]) for t in items]


def _posted(ctx: Ctx, doc: Document, comment: Comment, unnotified: list[str]) -> CommentPosted:
    """The comment as listed (a thread root with its replies) plus the mentions that notify
    nobody, so the author can be told."""
    out = _present(ctx, doc, [discussions.thread_of(ctx.db, comment)])[0]
    return CommentPosted(**out.model_dump(), unnotified_mentions=unnotified)


@router.route("GET", "/documents/{doc_id}/comments",
              summary="The document's discussion: threads oldest first, with their replies",
              tag=TAG, response=CommentsPage, query=Page)
def list_comments(ctx: Ctx, doc_id: str, query: Page) -> CommentsPage:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    total, items = discussions.threads(ctx.db, ctx.access, doc, limit=query.limit,
                                       offset=query.offset)
    return CommentsPage(total=total, limit=query.limit, offset=query.offset,
                        comments=_present(ctx, doc, items))


@router.route("POST", "/documents/{doc_id}/comments",
              summary="Comment (Markdown; @mentions) or reply with parent_id", tag=TAG,
              body=CommentCreate, response=CommentPosted, status=201)
def create_comment(ctx: Ctx, doc_id: str, body: CommentCreate) -> CommentPosted:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    posted = discussions.create_comment(
        ctx.db, ctx.access, ctx.settings, doc, body=body.body, parent_id=body.parent_id,
        anchor=body.anchor.model_dump() if body.anchor is not None else None)
    return _posted(ctx, doc, posted.comment, posted.unnotified_mentions)


@router.route("GET", "/comments/{cid}", summary="One comment", tag=TAG, response=CommentOut)
def get_comment(ctx: Ctx, cid: str) -> CommentOut:
    comment, doc = discussions.get_comment(ctx.db, ctx.access, cid)
    return _present(ctx, doc, [discussions.thread_of(ctx.db, comment)])[0]


@router.route("PATCH", "/comments/{cid}",
              summary="Edit the text (author), resolve or reopen a thread, mark it detached",
              tag=TAG, body=CommentUpdate, response=CommentPosted)
def update_comment(ctx: Ctx, cid: str, body: CommentUpdate) -> CommentPosted:
    comment, doc = discussions.get_comment(ctx.db, ctx.access, cid)
    unnotified: list[str] = []
    if body.body is not None:
        unnotified = discussions.edit_comment(ctx.db, ctx.access, ctx.settings, comment, doc,
                                              body.body)
    if body.resolved is not None:
        discussions.set_resolved(ctx.access, comment, doc, body.resolved)
    if body.detached is not None:
        discussions.set_detached(ctx.access, comment, doc, body.detached)
    ctx.db.flush()
    return _posted(ctx, doc, comment, unnotified)


@router.route("DELETE", "/comments/{cid}",
              summary="Delete a comment (author, or a group owner/admin)", tag=TAG, status=204)
def delete_comment(ctx: Ctx, cid: str) -> None:
    comment, doc = discussions.get_comment(ctx.db, ctx.access, cid)
    discussions.delete_comment(ctx.db, ctx.access, comment, doc)


@router.route("GET", "/documents/{doc_id}/mention-candidates",
              summary="Members who may read the document, for the @-autocomplete", tag=TAG,
              response=list[MentionCandidate], query=MentionQuery)
def mention_candidates(ctx: Ctx, doc_id: str, query: MentionQuery) -> list[MentionCandidate]:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    return [MentionCandidate.of(u) for u in discussions.mention_candidates(
        ctx.db, ctx.access, doc, query.q, query.limit)]


@router.route("GET", "/documents/{doc_id}/follow",
              summary="Whether I follow the document (new versions and comments notify me)",
              tag=TAG, response=FollowOut)
def get_follow(ctx: Ctx, doc_id: str) -> FollowOut:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    return FollowOut(following=activity.is_following(ctx.db, ctx.require_user().id, doc.id))


@router.route("PUT", "/documents/{doc_id}/follow", summary="Follow the document", tag=TAG,
              response=FollowOut)
def follow_document(ctx: Ctx, doc_id: str) -> FollowOut:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    activity.follow(ctx.db, ctx.require_user().id, doc.id)
    return FollowOut(following=True)


@router.route("DELETE", "/documents/{doc_id}/follow", summary="Stop following the document",
              tag=TAG, response=FollowOut)
def unfollow_document(ctx: Ctx, doc_id: str) -> FollowOut:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    activity.unfollow(ctx.db, ctx.require_user().id, doc.id)
    return FollowOut(following=False)

