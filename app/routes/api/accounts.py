"""Accounts, sessions, profile and personal access tokens."""

from __future__ import annotations

from starlette.responses import JSONResponse

from app.errors import Forbidden, NotSignedIn
from app.http.context import Ctx
from app.i18n import N_
from app.routes.api.registry import router
from app.schemas.accounts import (
    Accepted,
    EmailAddress,
    EmailLinkToken,
    InvitationAccepted,
    PasswordChange,
    PasswordResetConfirm,
    ProfileUpdate,
    RecoveryCodes,
    SessionCreate,
    SessionInfo,
    SessionOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    TotpCode,
    TotpEnrolment,
    UserCreate,
    UserOut,
    Verified,
)
from app.services import account_links, accounts, documents, twostep

TAG = "accounts"


@router.route("POST", "/users",
              summary="Register an account (the first becomes site admin). 201 with the user; "
                      "202 {status: verification_sent} while e-mail verification is required, "
                      "for a taken address too", tag=TAG, body=UserCreate, response=UserOut,
              status=201, auth=False)
def create_user(ctx: Ctx, body: UserCreate) -> UserOut | JSONResponse:
    done = accounts.register(ctx.db, ctx.settings, ctx.runtime.passwords, email=body.email,
                             name=body.name, password=body.password)
    ctx.outbox.extend(done.mails)
    if done.user is None or done.user.email_verified_at is None and \
            ctx.settings.email_verification_required:
        # One answer for a new and a taken address: the mailbox tells them apart, not us.
        return JSONResponse(Accepted(status="verification_sent").model_dump(), status_code=202)
    return UserOut.of(done.user)


@router.route("POST", "/session", summary="Sign in (sets the session cookie)", tag=TAG,
              body=SessionCreate, response=UserOut, auth=False)
def sign_in(ctx: Ctx, body: SessionCreate) -> UserOut | None:
    user = accounts.authenticate(ctx.db, ctx.settings, ctx.runtime.passwords, email=body.email,
                                 password=body.password, ip=ctx.client_ip)
    if user is None:
        # Committed first, so the failure counts towards the growing delay.
        ctx.deferred_error = NotSignedIn(N_("E-mail address or password is wrong."),
                                         code="invalid_credentials")
        return None
    try:
        accounts.require_verified(ctx.settings, user)
    except Forbidden as exc:
        ctx.deferred_error = exc
        return None
    if twostep.enabled(ctx.db, user.id):
        if not body.otp:
            ctx.deferred_error = NotSignedIn(N_("Enter the code from your authenticator app."),
                                             code="otp_required")
            return None
        if not twostep.verify(ctx.db, ctx.settings, user, body.otp, ctx.client_ip):
            # Committed first, so the wrong code counts towards the growing delay.
            accounts.login_failed(ctx.db, email=user.email, user=user, ip=ctx.client_ip,
                                  reason="otp")
            ctx.deferred_error = NotSignedIn(N_("The code is wrong or has been used already."),
                                             code="invalid_otp")
            return None
    ctx.sign_in(user)
    accounts.logged_in(ctx.db, user, ip=ctx.client_ip,
                       method="totp" if body.otp else "password")
    return UserOut.of(user)


@router.route("POST", "/email-verification",
              summary="Confirm my e-mail address with the link's token (single use)", tag=TAG,
              body=EmailLinkToken, response=Verified, auth=False)
def verify_email(ctx: Ctx, body: EmailLinkToken) -> Verified:
    account_links.verify_email(ctx.db, body.token)
    return Verified()


@router.route("POST", "/email-verification/resend",
              summary="Send a new verification link (202 whether or not the address has an "
                      "account)", tag=TAG, body=EmailAddress, response=Accepted, status=202,
              auth=False)
def resend_verification(ctx: Ctx, body: EmailAddress) -> Accepted:
    ctx.outbox.extend(account_links.resend_verification(
        ctx.db, ctx.settings, accounts.normalize_email(body.email)))
    return Accepted(status="accepted")


@router.route("POST", "/password-reset",
              summary="Mail a password reset link (202 whether or not the address has an "
                      "account)", tag=TAG, body=EmailAddress, response=Accepted, status=202,
              auth=False)
def request_password_reset(ctx: Ctx, body: EmailAddress) -> Accepted:
    ctx.outbox.extend(account_links.request_password_reset(
        ctx.db, ctx.settings, accounts.normalize_email(body.email)))
    return Accepted(status="accepted")


@router.route("POST", "/password-reset/confirm",
              summary="Set a new password with the link's token (single use; ends every "
                      "session)", tag=TAG, body=PasswordResetConfirm, status=204, auth=False)
def confirm_password_reset(ctx: Ctx, body: PasswordResetConfirm) -> None:
    user = accounts.reset_password(ctx.db, ctx.runtime.passwords, body.token, body.password)
    if ctx.user is not None and ctx.user.id == user.id:
        ctx.sign_out()


@router.route("POST", "/invitations/accept",
              summary="Accept an invitation with the token from its e-mail (single use)",
              tag=TAG, body=EmailLinkToken, response=InvitationAccepted)
def accept_invitation(ctx: Ctx, body: EmailLinkToken) -> InvitationAccepted:
    membership = account_links.accept_invitation(ctx.db, ctx.require_user(), body.token)
    ctx.access.forget()
    return InvitationAccepted(group_id=membership.group_id, role=membership.role)


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
    accounts.change_password(ctx.db, ctx.runtime.passwords, user, current=body.current_password,
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


# -- two-step sign-in ------------------------------------------------------------------------

@router.route("POST", "/users/me/totp",
              summary="Start enrolling an authenticator app (TOTP): a new secret and its "
                      "otpauth:// URI, in force once confirmed", tag=TAG,
              response=TotpEnrolment)
def enrol_totp(ctx: Ctx) -> TotpEnrolment:
    secret, uri = twostep.enrol(ctx.db, ctx.require_user())
    return TotpEnrolment(secret=secret, otpauth_uri=uri)


@router.route("POST", "/users/me/totp/confirm",
              summary="Turn two-step sign-in on with a code from the app; answers ten "
                      "single-use recovery codes (shown once) and ends my other sessions",
              tag=TAG, body=TotpCode, response=RecoveryCodes)
def confirm_totp(ctx: Ctx, body: TotpCode) -> RecoveryCodes | None:
    user = ctx.require_user()
    twostep.require_pending(ctx.db, user)
    if not twostep.verify(ctx.db, ctx.settings, user, body.code, ctx.client_ip,
                          recovery=False):
        ctx.deferred_error = twostep.wrong_code()
        return None
    codes = twostep.confirm(ctx.db, user, keep_session=ctx.session_token)
    return RecoveryCodes(recovery_codes=codes)


@router.route("DELETE", "/users/me/totp",
              summary="Turn two-step sign-in off (needs a code from the app or a recovery "
                      "code)", tag=TAG, body=TotpCode, status=204)
def disable_totp(ctx: Ctx, body: TotpCode) -> None:
    user = ctx.require_user()
    twostep.require_enabled(ctx.db, user)
    if not twostep.verify(ctx.db, ctx.settings, user, body.code, ctx.client_ip):
        ctx.deferred_error = twostep.wrong_code()
        return
    twostep.disable(ctx.db, user)


# -- my sessions ---------------------------------------------------------------------------

@router.route("GET", "/users/me/sessions",
              summary="My browser sessions (device, IP, last seen; which one is this)",
              tag=TAG, response=list[SessionInfo])
def list_sessions(ctx: Ctx) -> list[SessionInfo]:
    user = ctx.require_user()
    current = accounts.sha256_hex(ctx.session_token) if ctx.session_token else None
    return [SessionInfo.of(row, current=row.token_hash == current)
            for row in accounts.list_sessions(ctx.db, user)]


@router.route("DELETE", "/users/me/sessions/{sid}",
              summary="End one of my sessions (its live channels close with it)", tag=TAG,
              status=204)
def end_session(ctx: Ctx, sid: str) -> None:
    ended = accounts.end_session(ctx.db, ctx.require_user(), sid)
    if ctx.session_token and ended.token_hash == accounts.sha256_hex(ctx.session_token):
        ctx.sign_out()
