"""``login`` and ``logout``: declared like every command, run before any caller is known."""

from __future__ import annotations

from typing import TYPE_CHECKING

from overcast.access.roles import ALL_ROLES
from overcast.api.context import CallContext
from overcast.api.declare import STRING, Command, FlatResult, Param, Result, api_command
from overcast.api.params import Binder, RequestParams
from overcast.api.responses.identity import LoginResponse, LogoutResponse
from overcast.api.serialize import render
from overcast.db.models import Session as LoginSession
from overcast.errors import AuthenticationFailed, MethodNotAllowed

if TYPE_CHECKING:
    from overcast.access.caller import Caller
    from overcast.api.dispatch import Dispatcher, Request, Response


@api_command("login", response=LoginResponse, roles=ALL_ROLES, requires_auth=False,
             description="Logs a user into the CloudStack. A successful login attempt will generate a"
             " JSESSIONID cookie value that can be passed in subsequent Query command calls until the"
             " \"logout\" command has been issued or the session has expired.")
class Login(Command):
    username = Param(STRING, required=True, description="Username")
    password = Param(STRING, required=True, sensitive=True, description="Password")
    domain = Param(STRING, description="Path of the domain that the user belongs to. Example:"
                   " domain=/com/cloud/internal. If no domain is passed in, the ROOT (/) domain is assumed.")
    domain_id = Param(STRING, "domainid", description="The id of the domain that the user belongs to. If"
                      " both domain and domainId are passed in, \"domainId\" parameter takes precedence.")

    def execute(self, ctx: CallContext) -> Result:  # pragma: no cover - run by AuthHandler
        raise NotImplementedError


@api_command("logout", response=LogoutResponse, roles=ALL_ROLES, requires_auth=False,
             description="Logs out the user")
class Logout(Command):
    def execute(self, ctx: CallContext) -> Result:  # pragma: no cover - run by AuthHandler
        raise NotImplementedError


class AuthHandler:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.services = dispatcher.services
        self.last_caller: Caller | None = None

    def handle(self, request: Request, req: RequestParams, name: str, fmt: str) -> Response:
        from overcast.api.dispatch import Response

        self.last_caller = None
        if name == "login":
            if request.method != "POST":
                raise MethodNotAllowed("Please use HTTP POST to authenticate using this API")
            return self.login(request, req, fmt)
        headers = self.logout(request)
        payload, ctype = render(Logout.response_key, {"description": "success"}, fmt)
        return Response(200, payload, ctype, headers)

    def login(self, request: Request, req: RequestParams, fmt: str) -> Response:
        from overcast.api.dispatch import Response

        services = self.services
        timeout = int(services.settings.get("session.timeout"))
        with services.db.writer() as session, session.begin():
            ctx = CallContext(services, session, None, request.remote_addr)
            cmd = Login(Binder(Login, ctx).bind(req))
            found = services.auth.login(session, cmd.username, cmd.password, domain_path=cmd.domain,
                                        domain_uuid=cmd.domain_id)
            if found is None:
                raise AuthenticationFailed(
                    f"Failed to authenticate user {cmd.username} in domain {cmd.domain or '/'}; please"
                    " provide valid credentials")
            sess, caller, user = found
            self.last_caller = caller
            services.events.record(session, "USER.LOGIN", f"user has logged in from IP Address {request.remote_addr}",
                                   account_id=caller.account_id, domain_id=caller.domain_id, user_id=caller.user_id,
                                   resource_type="User", resource_uuid=caller.user_uuid)
        fields = FlatResult({
            "username": caller.username, "userid": caller.user_uuid, "domainid": caller.domain_uuid,
            "timeout": timeout, "account": caller.account_name, "firstname": user.firstname,
            "lastname": user.lastname, "type": str(caller.account_type), "timezone": user.timezone,
            "registered": "false", "sessionkey": sess.session_key, "is2faenabled": "false",
            "is2faverified": "true",
        }).fields
        payload, ctype = render(Login.response_key, fields, fmt)
        cookie = "; Path=/client; HttpOnly; SameSite=Lax"
        return Response(200, payload, ctype, [
            ("Set-Cookie", f"JSESSIONID={sess.id}{cookie}"),
            ("Set-Cookie", f"sessionkey={sess.session_key}{cookie}"),
        ])

    def logout(self, request: Request) -> list[tuple[str, str]]:
        sid = request.cookies.get("JSESSIONID")
        if sid:
            with self.services.db.writer.begin() as session:
                sess = session.get(LoginSession, sid)
                if sess is not None:
                    from overcast.access.auth import _caller_row
                    from overcast.db.models import User

                    row = _caller_row(session, User.id == sess.user_id)
                    if row is not None:
                        self.services.events.record(
                            session, "USER.LOGOUT", "user has logged out", account_id=row[1].id,
                            domain_id=row[2].id, user_id=row[0].id, resource_type="User",
                            resource_uuid=row[0].uuid)
                    session.delete(sess)
        expired = "; Path=/client; Max-Age=0; HttpOnly; SameSite=Lax"
        return [("Set-Cookie", f"{name}={expired}") for name in request.cookies
                if name in ("JSESSIONID", "sessionkey")]
