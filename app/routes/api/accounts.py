"""Accounts, sessions, profile and personal access tokens."""

from __future__ import annotations

from app.errors import NotSignedIn
from app.http.context import Ctx
from app.routes.api import router
from app.schemas.accounts import (
    PasswordChange,
    ProfileUpdate,
    SessionCreate,
    SessionOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
)
from app.services import accounts, documents

TAG = "accounts"


@router.route("POST", "/users", summary="Register an account (the first becomes site admin)",
              tag=TAG, body=UserCreate, response=UserOut, status=201, auth=False)
def create_user(ctx: Ctx, body: UserCreate) -> UserOut:
    user = accounts.register(ctx.db, ctx.settings, ctx.services.passwords, email=body.email,
                             name=body.name, password=body.password)
    return UserOut.of(user)


@router.route("POST", "/session", summary="Sign in (sets the session cookie)", tag=TAG,
              body=SessionCreate, response=UserOut, auth=False)
def sign_in(ctx: Ctx, body: SessionCreate) -> UserOut | None:
    user = accounts.authenticate(ctx.db, ctx.settings, ctx.services.passwords, email=body.email,
                                 password=body.password, ip=ctx.client_ip)
    if user is None:
        # Committed first, so the failure counts towards the growing delay.
        ctx.deferred_error = NotSignedIn("E-mail address or password is wrong.",
                                         code="invalid_credentials")
        return None
    ctx.sign_in(user)
    return UserOut.of(user)


@router.route("GET", "/session", summary="Who am I, and the CSRF token for cookie requests",
              tag=TAG, response=SessionOut, auth=False)
def get_session(ctx: Ctx) -> SessionOut:
    return SessionOut(user=UserOut.of(ctx.user) if ctx.user else None,
                      csrf_token=ctx.csrf_token())


@router.route("DELETE", "/session", summary="Sign out (revokes the session)", tag=TAG,
              status=204, auth=False)
def sign_out(ctx: Ctx) -> None:
    ctx.sign_out()


@router.route("GET", "/users/me", summary="My profile", tag=TAG, response=UserOut)
def get_me(ctx: Ctx) -> UserOut:
    return UserOut.of(ctx.require_user())


@router.route("PATCH", "/users/me", summary="Update my profile", tag=TAG, body=ProfileUpdate,
              response=UserOut)
def update_me(ctx: Ctx, body: ProfileUpdate) -> UserOut:
    user = ctx.require_user()
    accounts.update_profile(user, name=body.name, bio=body.bio, organisation=body.organisation,
                            language=body.language)
    return UserOut.of(user)


@router.route("POST", "/users/me/password",
              summary="Change my password (revokes every session and every personal access "
                      "token; a cookie session is renewed)", tag=TAG,
              body=PasswordChange, status=204)
def change_password(ctx: Ctx, body: PasswordChange) -> None:
    user = ctx.require_user()
    had_session = ctx.session_token is not None
    accounts.change_password(ctx.db, ctx.services.passwords, user, current=body.current_password,
                             new=body.new_password)
    ctx.session_token = None
    if had_session:
        ctx.sign_in(user)


@router.route("GET", "/tokens", summary="My personal access tokens", tag=TAG,
              response=list[TokenOut])
def list_tokens(ctx: Ctx) -> list[TokenOut]:
    return [TokenOut.of(t) for t in accounts.list_tokens(ctx.db, ctx.require_user())]


@router.route("POST", "/tokens", summary="Create a personal access token (shown once)", tag=TAG,
              body=TokenCreate, response=TokenCreated, status=201)
def create_token(ctx: Ctx, body: TokenCreate) -> TokenCreated:
    user = ctx.require_user()
    document_id = None
    if body.document_id is not None:
        # Only a document the caller may read (404 like any hidden or missing one).
        document_id = documents.get_document(ctx.db, ctx.access, body.document_id).id
    row, secret = accounts.create_token(ctx.db, user, body.name, document_id)
    return TokenCreated(id=row.id, name=row.name, document_id=row.document_id, token=secret)


@router.route("DELETE", "/tokens/{token_id}", summary="Revoke a personal access token", tag=TAG,
              status=204)
def delete_token(ctx: Ctx, token_id: str) -> None:
    accounts.delete_token(ctx.db, ctx.require_user(), token_id)
