"""``/api/users``: admins manage accounts; ``/api/users/me``: everyone signed in edits their own profile.

Every change is audited (``user.create``, ``user.update``, ``user.disable``, ``user.enable``,
``user.password``) with what changed, never the password. No answer carries a password
hash. Disabling a user or changing a password ends the user's sessions at once (one's
own password change keeps the session it was made from). The last enabled admin cannot
be disabled or given another role: someone must be left to manage the installation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, patch, post, put
from litestar.params import KwargDefinition, PathParameter, RequestBody

from engine.people.passwords import PasswordRefused
from engine.people.roles import ADMIN_ONLY, SIGNED_IN, Role
from engine.server.api_auth import initials
from engine.server.api_models import ApiModel, described
from engine.server.api_models_people import Capacity, DisplayName, Language, NewEmail, PasswordToSet
from engine.server.api_request import ApiRequest
from engine.server.audit import audit
from engine.server.auth import principal_of
from engine.server.problems import MAX_SAFE_INTEGER, Problem, problem_responses
from engine.server.services import ServicesDep
from engine.store.tables import UserAccount
from engine.store.users import UserEmailTaken, UserInvalid

UserId = Annotated[int, PathParameter(ge=1, le=MAX_SAFE_INTEGER, description="the user's id")]
#: A role, by name (a plain string in the API description, as every other enumeration there).
RoleName = Literal["admin", "supervisor", "agent", "editor"]


class UserView(ApiModel):
    """A user account (never its password or its hash)."""

    id: int
    email: str
    display_name: str
    initials: Annotated[str, described("one or two letters for an avatar")]
    language: Annotated[str, described("the console's language for them (en, zh)")]
    role: Annotated[str, described("admin, supervisor, agent or editor")]
    capacity: Annotated[int | None, described("most conversations held at once; null: the queue's default")]
    presence: Annotated[str, described("online, away or offline")]
    created_at: Annotated[str, described("ISO 8601")]
    disabled: bool
    disabled_at: Annotated[str | None, described("ISO 8601; null while enabled")]


class UserList(ApiModel):
    """Every user, oldest first."""

    users: list[UserView]


@dataclass
class NewUser:
    """A new account: e-mail, role and first password (at least 10 characters)."""

    email: NewEmail
    password: PasswordToSet
    role: RoleName
    display_name: DisplayName = ""
    language: Language = "en"
    capacity: Capacity = None


@dataclass
class UserChange:
    """The fields to change; the ones left out stay as they are (`clear_capacity` gives back the queue's default)."""

    display_name: DisplayName | None = None
    language: Language | None = None
    role: RoleName | None = None
    capacity: Capacity = None
    # Any, checked by the handler: Litestar would take 0, 1 and "true" for a bool here.
    clear_capacity: Annotated[Any, KwargDefinition(schema_extra={"type": "boolean"})] = False


@dataclass
class NewPassword:
    """A new password (at least 10 characters)."""

    password: PasswordToSet


@dataclass
class ProfileChange:
    """One's own display name and language, and a new password with the current one."""

    display_name: DisplayName | None = None
    language: Language | None = None
    password: PasswordToSet | None = None
    current_password: Annotated[str | None, KwargDefinition(max_length=1024)] = None


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def user_view(user: UserAccount) -> UserView:
    assert user.id is not None
    return UserView(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        initials=initials(user.display_name),
        language=user.language,
        role=user.role,
        capacity=user.capacity,
        presence=user.presence,
        created_at=user.created_at.isoformat(),
        disabled=user.disabled_at is not None,
        disabled_at=_iso(user.disabled_at),
    )


def _refused(exc: Exception) -> Problem:
    if isinstance(exc, UserEmailTaken):
        return Problem(409, str(exc))
    return Problem(422, str(exc))


async def _user(services: ServicesDep, user_id: int) -> UserAccount:
    user = await asyncio.to_thread(services.store.get_user, user_id)
    if user is None:
        raise Problem(404, f"no user with id {user_id}")
    return user


async def _keep_an_admin(services: ServicesDep, user: UserAccount) -> None:
    """409 when ``user`` is the last enabled admin (about to be disabled or demoted)."""
    if user.role != Role.ADMIN or user.disabled_at is not None:
        return
    admins = [
        u for u in await asyncio.to_thread(services.store.list_users, include_disabled=False) if u.role == "admin"
    ]
    if len(admins) <= 1:
        raise Problem(409, f"{user.email} is the last enabled admin: make another admin first")


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]  # noqa: RUF012 - Litestar declares it as a plain attribute
    request_class = ApiRequest
    opt = {"roles": ADMIN_ONLY}  # noqa: RUF012 - the profile routes below open themselves to everyone

    @get("/", summary="Every user, oldest first", operation_id="listUsers", responses=problem_responses(403))
    async def list_users(self, services: ServicesDep) -> UserList:
        users = await asyncio.to_thread(services.store.list_users)
        return UserList(users=[user_view(u) for u in users])

    @post(
        "/",
        summary="Create a user with a role and a first password",
        operation_id="createUser",
        responses=problem_responses(403, 409, 413, 415, 422),
    )
    async def create_user(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: RequestBody[NewUser]
    ) -> UserView:
        try:
            user = await asyncio.to_thread(
                services.store.create_user,
                data.email,
                data.password,
                role=data.role,
                display_name=data.display_name,
                language=data.language,
                capacity=data.capacity,
            )
        except (UserEmailTaken, UserInvalid, PasswordRefused) as exc:
            raise _refused(exc) from None
        await audit(request, "user.create", target=user.email, detail={"user_id": user.id, "role": user.role})
        return user_view(user)

    @get(
        "/me",
        opt={"roles": SIGNED_IN},
        summary="One's own account",
        operation_id="getMyAccount",
        responses=problem_responses(403, 404),
    )
    async def get_me(self, request: Request[Any, Any, Any], services: ServicesDep) -> UserView:
        return user_view(await _user(services, _own_id(request)))

    @put(
        "/me",
        opt={"roles": SIGNED_IN},
        summary="Change one's own display name, language or password (with the current password)",
        operation_id="updateMyAccount",
        responses=problem_responses(403, 404, 413, 415, 422),
    )
    async def update_me(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: RequestBody[ProfileChange]
    ) -> UserView:
        user_id = _own_id(request)
        user = await _user(services, user_id)
        store = services.store
        if data.password is not None:
            if not data.current_password or not await asyncio.to_thread(
                store.check_password, user, data.current_password
            ):
                raise Problem(403, "the current password is wrong: send it as `current_password` to set a new one")
            try:
                await asyncio.to_thread(
                    store.set_password, user_id, data.password, keep_session=request.state.get("session_cookie")
                )
            except PasswordRefused as exc:
                raise _refused(exc) from None
            await audit(request, "user.password", target=user.email, detail={"user_id": user_id, "own": True})
        changed: dict[str, Any] = {
            k: v for k, v in (("display_name", data.display_name), ("language", data.language)) if v is not None
        }
        if changed:
            try:
                updated = await asyncio.to_thread(store.update_user, user_id, **changed)
            except UserInvalid as exc:
                raise _refused(exc) from None
            await audit(request, "user.update", target=user.email, detail={"user_id": user_id, **changed})
            user = updated or user
        return user_view(await _user(services, user_id))

    @get(
        "/{user_id:int}",
        summary="One user",
        operation_id="getUser",
        responses=problem_responses(403, 404),
    )
    async def get_user(self, services: ServicesDep, user_id: UserId) -> UserView:
        return user_view(await _user(services, user_id))

    @patch(
        "/{user_id:int}",
        summary="Change a user's role, display name, language or capacity",
        operation_id="updateUser",
        responses=problem_responses(403, 404, 409, 413, 415, 422),
    )
    async def update_user(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        user_id: UserId,
        data: RequestBody[UserChange],
    ) -> UserView:
        if not isinstance(data.clear_capacity, bool):
            raise Problem(400, "`clear_capacity` is true or false")
        user = await _user(services, user_id)
        if data.role is not None and data.role != str(Role.ADMIN):
            await _keep_an_admin(services, user)
        changes: dict[str, Any] = {
            k: v
            for k, v in (("display_name", data.display_name), ("language", data.language), ("role", data.role))
            if v is not None
        }
        if data.capacity is not None or data.clear_capacity:
            changes["capacity"] = None if data.clear_capacity else data.capacity
        try:
            updated = await asyncio.to_thread(services.store.update_user, user_id, **changes)
        except UserInvalid as exc:
            raise _refused(exc) from None
        if updated is None:
            raise Problem(404, f"no user with id {user_id}")
        await audit(request, "user.update", target=user.email, detail={"user_id": user_id, **changes})
        return user_view(updated)

    @post(
        "/{user_id:int}/disable",
        summary="Disable a user: their sessions end at once and they cannot sign in",
        operation_id="disableUser",
        status_code=200,
        responses=problem_responses(403, 404, 409),
    )
    async def disable_user(self, request: Request[Any, Any, Any], services: ServicesDep, user_id: UserId) -> UserView:
        user = await _user(services, user_id)
        await _keep_an_admin(services, user)
        updated = await asyncio.to_thread(services.store.disable_user, user_id)
        assert updated is not None
        await audit(request, "user.disable", target=user.email, detail={"user_id": user_id})
        return user_view(updated)

    @post(
        "/{user_id:int}/enable",
        summary="Enable a disabled user again",
        operation_id="enableUser",
        status_code=200,
        responses=problem_responses(403, 404),
    )
    async def enable_user(self, request: Request[Any, Any, Any], services: ServicesDep, user_id: UserId) -> UserView:
        user = await _user(services, user_id)
        updated = await asyncio.to_thread(services.store.enable_user, user_id)
        assert updated is not None
        await audit(request, "user.enable", target=user.email, detail={"user_id": user_id})
        return user_view(updated)

    @post(
        "/{user_id:int}/password",
        summary="Set a user's password: their sessions end",
        operation_id="resetUserPassword",
        status_code=200,
        responses=problem_responses(403, 404, 413, 415, 422),
    )
    async def reset_password(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        user_id: UserId,
        data: RequestBody[NewPassword],
    ) -> UserView:
        user = await _user(services, user_id)
        try:
            await asyncio.to_thread(services.store.set_password, user_id, data.password)
        except PasswordRefused as exc:
            raise _refused(exc) from None
        await audit(request, "user.password", target=user.email, detail={"user_id": user_id})
        return user_view(user)


def _own_id(request: Request[Any, Any, Any]) -> int:
    principal = principal_of(request)
    if principal.user_id is None:
        raise Problem(404, "an API token is not a user account: it has no profile")
    return principal.user_id
