"""Group pages: create a group, the group page (join, members, requests, settings), leaving."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from app.access import Action, TotpRequired
from app.errors import NotFound
from app.models import AccessLevel, Group, GroupRole, Invitation, MembershipState
from app.pages.forms import FormError, attempt, validate
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.pages.notices import saved
from app.schemas.groups import GroupCreate, GroupUpdate, MemberAdd, MemberUpdate
from app.services import account_links, documents, groups, mail


def new_group(p: PageCtx) -> PageResult:
    if p.method == "GET":
        return Page("group_new.html", {"values": {"access": AccessLevel.OPEN}})
    values = {"name": p.form.get("name", ""), "description": p.form.get("description", ""),
              "access": p.form.get("access", "")}

    def create() -> Group:
        body = validate(GroupCreate, values)
        return groups.create_group(p.db, p.access, name=body.name, description=body.description,
                                   group_access=body.access)

    result = attempt(p, create)
    if isinstance(result, FormError):
        return Page("group_new.html", {"values": values, "error": result.message,
                                       "field": result.field}, status=result.status)
    return Redirect(f"/groups/{result.id}")


def group_page_result(p: PageCtx, group: Group, *, error: FormError | None = None,
                      values: dict[str, str] | None = None,
                      invite_link: tuple[str, str] | None = None) -> Page:
    """The group page; also the answer of a refused form on it (with the message and status)."""
    access = p.access
    role = access.group_role(group.id)
    can_manage_members = access.can_group(Action.GROUP_MANAGE_MEMBERS, group)
    context: dict[str, Any] = {
        "group": group,
        "my_role": role,
        "my_state": access.membership_state(group.id),
        "can_join": access.can_group(Action.GROUP_JOIN, group),
        "can_manage": access.can_group(Action.GROUP_MANAGE, group),
        "can_manage_members": can_manage_members,
        # Only owners (or a site admin) may hand out or take away the owner role.
        "can_grant_owner": access.can_group(Action.GROUP_TRANSFER_OWNERSHIP, group),
        "members": [],
        "requests": [],
        "invitations": [],
        "values": values or {},
        "error": error.message if error else None,
        "field": error.field if error else None,
        "usage": None,
        "quota": p.settings.group_quota_bytes,
        # (address, link): shown once, to who just made the invitation, when no mail goes out.
        "invite_link": invite_link,
        "invitation_days": p.settings.invitation_days,
        "mail_enabled": mail.enabled(p.settings),
    }
    # The meter counts every folder's files, closed ones too: shown to any member, its deltas
    # would tell of uploads (and their sizes) into folders that member cannot read. Owners and
    # admins read every folder of the group, so for them it reveals nothing new.
    if access.can_group(Action.GROUP_MANAGE, group):
        context["usage"] = documents.group_usage(p.db, p.settings, group.id)
    # Closed or not, the member list is for members (and site admins, who manage membership).
    if access.can_group(Action.GROUP_VIEW_MEMBERS, group):
        rows = groups.members(p.db, group)
        context["members"] = [(m, u) for m, u in rows if m.state == MembershipState.MEMBER]
        if can_manage_members:
            context["requests"] = [(m, u) for m, u in rows if m.state == MembershipState.REQUESTED]
            context["invitations"] = groups.invitations(p.db, group)
    return Page("group.html", context, status=error.status if error else 200)


def group_page(p: PageCtx, gid: str) -> PageResult:
    try:
        group = groups.get_group(p.db, p.access, gid)
    except TotpRequired:
        # A member of a group that requires two-step sign-in, without it: lead to enrolment.
        found = p.db.get(Group, gid)
        return Page("group_totp.html", {"group_name": found.name if found else ""}, status=403)
    return group_page_result(p, group)


def join(p: PageCtx, gid: str) -> PageResult:
    group = groups.get_group(p.db, p.access, gid)
    result = attempt(p, lambda: groups.join(p.db, p.access, group))
    if isinstance(result, FormError):
        return group_page_result(p, group, error=result)
    return Redirect(f"/groups/{group.id}")


def leave(p: PageCtx, gid: str) -> PageResult:
    group = groups.get_group(p.db, p.access, gid)
    user = p.access.require_user()
    result = attempt(p, lambda: groups.remove_member(p.db, p.access, group, user.id))
    if isinstance(result, FormError):
        return group_page_result(p, group, error=result)
    return Redirect("/")


def update_settings(p: PageCtx, gid: str) -> PageResult:
    group = groups.get_group(p.db, p.access, gid, Action.GROUP_MANAGE)
    values = {"name": p.form.get("name", ""), "description": p.form.get("description", ""),
              "access": p.form.get("access", "")}
    # The box is on the form for owners only; for others the setting stays as it is.
    require_totp = p.form.get("require_totp") == "1" \
        if p.access.group_role(group.id) == GroupRole.OWNER else None

    def update() -> None:
        body = validate(GroupUpdate, values)
        groups.update_group(group, name=body.name, description=body.description,
                            group_access=body.access)
        if require_totp is not None:
            groups.set_require_totp(p.access, group, require_totp)

    result = attempt(p, update)
    if isinstance(result, FormError):
        return group_page_result(p, group, error=result, values=values)
    return Redirect(saved(f"/groups/{group.id}#settings", "group"))


def add_member(p: PageCtx, gid: str) -> PageResult:
    group = groups.get_group(p.db, p.access, gid)
    values = {"email": p.form.get("email", ""), "role": p.form.get("role", GroupRole.MEMBER)}

    def add() -> tuple[str, str] | None:
        body = validate(MemberAdd, values)
        added = groups.add_member(p.db, p.access, group, email=body.email, role=body.role,
                                  invite_unproven=p.settings.email_verification_required)
        if not isinstance(added, Invitation):
            return None
        p.ctx.outbox.extend(account_links.invitation_mails(p.db, p.settings, added, group,
                                                           p.ctx.require_user()))
        link = account_links.invitation_link_to_copy(p.db, p.settings, added)
        return (added.email, link) if link is not None else None

    result = attempt(p, add)
    if isinstance(result, FormError):
        return group_page_result(p, group, error=result, values=values)
    if result is not None:
        # Not a redirect: the link is a secret and exists only in this answer (never in a URL).
        return group_page_result(p, group, invite_link=result)
    return Redirect(f"/groups/{group.id}#members")


def change_role(p: PageCtx, gid: str, uid: str) -> PageResult:
    group = groups.get_group(p.db, p.access, gid)

    def change() -> None:
        body = validate(MemberUpdate, {"role": p.form.get("role", "")})
        groups.change_role(p.db, p.access, group, uid, body.role)

    result = attempt(p, change)
    if isinstance(result, FormError):
        return group_page_result(p, group, error=result)
    return Redirect(f"/groups/{group.id}#members")


def remove_member(p: PageCtx, gid: str, uid: str) -> PageResult:
    group = groups.get_group(p.db, p.access, gid)
    result = attempt(p, lambda: groups.remove_member(p.db, p.access, group, uid))
    if isinstance(result, FormError):
        return group_page_result(p, group, error=result)
    return Redirect(f"/groups/{group.id}#members")


def decide_request(p: PageCtx, gid: str, uid: str, decision: str) -> PageResult:
    if decision not in ("approve", "reject"):
        raise NotFound()
    group = groups.get_group(p.db, p.access, gid)
    result = attempt(p, lambda: groups.decide_request(p.db, p.access, group, uid,
                                                      approve=decision == "approve"))
    if isinstance(result, FormError):
        return group_page_result(p, group, error=result)
    return Redirect(f"/groups/{group.id}#requests")


def revoke_invitation(p: PageCtx, gid: str, iid: str) -> PageResult:
    group = groups.get_group(p.db, p.access, gid)
    result = attempt(p, lambda: groups.revoke_invitation(p.db, p.access, group, iid))
    if isinstance(result, FormError):
        return group_page_result(p, group, error=result)
    return Redirect(f"/groups/{group.id}#members")


def new_invitation_link(p: PageCtx, gid: str, iid: str) -> PageResult:
    """A fresh link for a pending invitation, when this server sends no mail (the one shown when
    it was made is gone: only its hash is kept). Earlier links of it stop working."""
    group = groups.get_group(p.db, p.access, gid)
    invitation = groups.get_invitation(p.db, p.access, group, iid)
    link = account_links.invitation_link_to_copy(p.db, p.settings, invitation)
    if link is None:
        raise NotFound()
    return group_page_result(p, group, invite_link=(invitation.email, link))


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/groups/new", new_group, methods=("GET", "POST")),
        page("/groups/{gid}", group_page),
        page("/groups/{gid}/join", join, methods=post),
        page("/groups/{gid}/leave", leave, methods=post),
        page("/groups/{gid}/settings", update_settings, methods=post),
        page("/groups/{gid}/members", add_member, methods=post),
        page("/groups/{gid}/members/{uid}/role", change_role, methods=post),
        page("/groups/{gid}/members/{uid}/remove", remove_member, methods=post),
        page("/groups/{gid}/requests/{uid}/{decision}", decide_request, methods=post),
        page("/groups/{gid}/invitations/{iid}/revoke", revoke_invitation, methods=post),
        page("/groups/{gid}/invitations/{iid}/link", new_invitation_link, methods=post),
    ]
