"""The request path: authenticate, find the declaration, bind parameters, run or queue, render.

Everything a client can get wrong ends as a CloudStack error envelope here, in one place, by the
error class's codes; anything else is logged once with its traceback and answered with 530.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from overcast.access.auth import UNAUTHORIZED_TEXT, make_caller, parse_expires
from overcast.access.caller import Caller
from overcast.access.signing import verify
from overcast.api.context import CallContext
from overcast.api.declare import Command, Park, registry
from overcast.api.params import PROTOCOL_PARAMS, Binder, RequestParams
from overcast.api.serialize import body_of, prune, render
from overcast.db.models import Account, AsyncJob, Domain, Role, User
from overcast.db.retry import is_transient, retrying
from overcast.errors import (
    USER_ERROR_MESSAGE,
    CloudError,
    InternalError,
    InvalidParameterValue,
    Unauthorized,
    UnsupportedAction,
)
from overcast.events.recorder import JOB_START_EVENT
from overcast.events.types import COMPLETED, SCHEDULED
from overcast.jobs.queue import FAILED, SUCCEEDED, JobHooks
from overcast.services import Services

logger = logging.getLogger(__name__)
access_log = logging.getLogger("overcast.access")

_JOB_ID = re.compile(r"^[0-9A-Za-z-]{1,40}$")


@dataclass
class Request:
    method: str
    pairs: list[tuple[str, str]]
    cookies: dict[str, str]
    remote_addr: str


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)


class AuthOutcome:
    __slots__ = ("caller", "via_session")

    def __init__(self, caller: Caller, via_session: bool) -> None:
        self.caller, self.via_session = caller, via_session


class Dispatcher:
    def __init__(self, services: Services) -> None:
        self.services = services
        from overcast.api.auth_commands import AuthHandler

        self.auth_handler = AuthHandler(self)

    # -- entry point -------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        fmt = "xml"
        response_key = "errorresponse"
        caller: Caller | None = None
        command = ""
        try:
            # Format and command first: a parameter that fails to decode is still reported in the
            # requested format, under the command's response name (CloudStack reads them up front).
            fmt = "json" if _first(request.pairs, "response").lower() == "json" else "xml"
            early = registry.get(_first(request.pairs, "command"))
            if early is not None:
                response_key = early.response_key
            req = RequestParams.decode(request.pairs)
            fmt = "json" if req.values.get("response", "").lower() == "json" else "xml"
            command = req.values.get("command", "")
            cls = registry.get(command)
            if cls is not None:
                response_key = cls.response_key
            if command.lower() in ("login", "logout"):
                resp = self.auth_handler.handle(request, req, command.lower(), fmt)
                caller = self.auth_handler.last_caller
                return self._log(resp, started, command, caller, request, None)
            if not command:
                raise UnsupportedAction("Invalid request, no command sent")
            req.check_characters()
            auth = self.authenticate(request, req)
            caller = auth.caller
            if cls is None:
                response_key = "errorresponse"
                raise UnsupportedAction(
                    f"The given command:{command} does not exist or it is not available for user")
            if not self.services.auth.allowed(caller, cls.name, cls.roles):
                raise Unauthorized(f"The given command '{command}' either does not exist, is not available for user.")
            body = self.run(cls, req, caller, request.remote_addr, request.method)
            payload, ctype = render(cls.response_key, body, fmt)
            return self._log(Response(200, payload, ctype), started, command, caller, request, None)
        except CloudError as exc:
            return self._log(self.error(exc, response_key, fmt, caller), started, command, caller, request, exc)
        except Exception as exc:  # a bug: log it once, tell the client little
            logger.exception("Unexpected error running %s", command or "(no command)")
            err = InternalError(f"Internal error executing command {command}: {type(exc).__name__}")
            return self._log(self.error(err, response_key, fmt, caller), started, command, caller, request, err)

    def error(self, exc: CloudError, response_key: str, fmt: str, caller: Caller | None) -> Response:
        text = exc.message
        if not exc.expose_to_users and not (caller is not None and caller.is_root_admin):
            text = USER_ERROR_MESSAGE
        body = error_body(exc, text)
        payload, ctype = render(response_key, body, fmt)
        header_text = text.encode("latin-1", "replace").decode("latin-1").replace("\n", " ")
        return Response(exc.error_code, payload, ctype, [("X-Description", header_text)])

    def _log(self, resp: Response, started: float, command: str, caller: Caller | None,
             request: Request, exc: Exception | None) -> Response:
        if self.services.config.access_log:
            ms = (time.perf_counter() - started) * 1000
            who = f"{caller.username}@{caller.domain_path}" if caller else "-"
            access_log.info("%s %s %s command=%s caller=%s status=%d ms=%.1f%s", request.remote_addr,
                            request.method, "/client/api", command or "-", who, resp.status, ms,
                            f" error={exc.message!r}" if isinstance(exc, CloudError) and resp.status >= 400 else "")
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("params %s", masked(request.pairs, command))
        return resp

    # -- authentication ----------------------------------------------------------------------
    def authenticate(self, request: Request, req: RequestParams) -> AuthOutcome:
        values = req.values
        api_key = values.get("apikey")
        if api_key is None and "JSESSIONID" in request.cookies:
            return self._by_session(request, req)
        if not api_key or not values.get("signature"):
            raise Unauthorized(UNAUTHORIZED_TEXT)
        record = self.services.auth.by_api_key(api_key)
        secret = record.secret if record is not None else "x" * 86
        sig_ok = verify(req.raw, secret, values["signature"])
        if record is None or not sig_ok or not record.active:
            raise Unauthorized(UNAUTHORIZED_TEXT)
        self._check_expiry(values)
        return AuthOutcome(record.caller, via_session=False)

    def _check_expiry(self, values: dict[str, str]) -> None:
        settings = self.services.settings
        version = values.get("signatureversion")
        enforce = bool(settings.get("enforce.post.requests.and.timestamps"))
        if version != "3":
            if enforce:
                raise Unauthorized(UNAUTHORIZED_TEXT)
            return
        expires = parse_expires(values.get("expires", ""))
        now = datetime.now(UTC)
        if expires is None or expires < now:
            raise Unauthorized(UNAUTHORIZED_TEXT)
        if expires > now + timedelta(seconds=int(settings.get("api.request.expires.max.seconds"))):
            raise Unauthorized(UNAUTHORIZED_TEXT)

    def _by_session(self, request: Request, req: RequestParams) -> AuthOutcome:
        sid = request.cookies.get("JSESSIONID", "")
        timeout = int(self.services.settings.get("session.timeout"))
        with self.services.db.writer.begin() as s:
            found = self.services.auth.by_session(s, sid, timeout=timeout)
        if found is None:
            raise Unauthorized(UNAUTHORIZED_TEXT)
        caller, key = found
        mode = str(self.services.settings.get("api.sessionkey.check.locations"))
        if not self.services.auth.session_key_ok(key, request.cookies.get("sessionkey"),
                                                 req.values.get("sessionkey"), mode):
            # A request with the session cookie but not its key may be a forged cross-site request:
            # the session ends, as CloudStack invalidates it.
            from overcast.db.models import Session as LoginSession

            with self.services.db.writer.begin() as s:
                s.execute(LoginSession.__table__.delete().where(LoginSession.id == sid))
            raise Unauthorized(UNAUTHORIZED_TEXT)
        return AuthOutcome(caller, via_session=True)

    # -- running commands --------------------------------------------------------------------
    def run(self, cls: type[Command], req: RequestParams, caller: Caller, remote_addr: str,
            method: str = "GET") -> dict[str, Any]:
        db = self.services.db
        factory = db.reader if cls.read_only else db.writer

        def attempt() -> dict[str, Any]:
            with factory() as session:
                ctx = CallContext(self.services, session, caller, remote_addr, http_method=method)
                try:
                    values = Binder(cls, ctx).bind(req)
                    cmd = cls(values)
                    if cls.is_async:
                        result = self.queue(cls, cmd, req, ctx)
                    else:
                        result = body_of(cmd.execute(ctx), cls.response.object_name)
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
                return result

        body = retrying(attempt, what=cls.name)
        if not cls.read_only:
            self.services.auth.invalidate()  # identity may have changed: keys, states, roles
            self.services.settings.invalidate()
            if cls.is_async:
                self.services.jobs.wake()
        return body

    def queue(self, cls: type[Command], cmd: Command, req: RequestParams, ctx: CallContext) -> dict[str, Any]:
        me = ctx.me
        job_uuid = getattr(cmd, "custom_job_id", None)
        if job_uuid is not None:
            if not _JOB_ID.match(job_uuid):
                raise InvalidParameterValue("customjobid must be up to 40 letters, digits and dashes")
            from sqlalchemy import select

            if ctx.session.scalar(select(AsyncJob.id).where(AsyncJob.uuid == job_uuid)) is not None:
                raise InvalidParameterValue(f"A job with the id {job_uuid} already exists")
        cmd.precheck(ctx)
        entity_uuid = cmd.prepare(ctx) if cls.creates_entity else None
        itype, iuuid = cmd.instance()
        if entity_uuid is not None:
            iuuid = entity_uuid
        start = None
        if cls.event_type:
            start = ctx.event(cls.event_type, f"{cls.name} scheduled", state=SCHEDULED,
                              resource_type=itype, resource_uuid=iuuid)
        payload = {"values": {k: v for k, v in req.values.items() if k not in PROTOCOL_PARAMS},
                   "maps": {k: {str(i): f for i, f in m.items()} for k, m in req.maps.items()}}
        job = self.services.jobs.submit(
            ctx.session, user_id=me.user_id, account_id=me.account_id, domain_id=me.domain_id,
            command=cls.name, params=payload, instance_type=itype, instance_uuid=iuuid, job_uuid=job_uuid,
            start_event_id=start.id if start is not None else None,
        )  # fmt: skip
        if cls.creates_entity:
            return {"id": entity_uuid, "jobid": job.uuid}
        return {"jobid": job.uuid}

    # -- the job side ------------------------------------------------------------------------
    def job_hooks(self) -> JobHooks:
        return JobHooks(run=self.run_job, is_idempotent=self._idempotent, abandon=self.abandon_job)

    @staticmethod
    def _idempotent(command: str) -> bool:
        cls = registry.get(command)
        return bool(cls is not None and cls.idempotent)

    def _job_context(self, session: Session, job: AsyncJob) -> tuple[type[Command], CallContext, RequestParams]:
        cls = registry.get(job.command)
        if cls is None:
            raise InternalError(f"Command {job.command} is no longer available on this server")
        row = session.execute(
            session.query(User, Account, Domain, Role)
            .join(Account, Account.id == User.account_id)
            .join(Domain, Domain.id == Account.domain_id)
            .outerjoin(Role, Role.id == Account.role_id)
            .filter(User.id == job.user_id)
            .statement
        ).first()
        if row is None:
            raise InternalError("The user that submitted this job no longer exists")
        caller = make_caller(row[0], row[1], row[2], row[3])
        payload = json.loads(job.params)
        maps = {k: {int(i): f for i, f in m.items()} for k, m in payload.get("maps", {}).items()}
        req = RequestParams(dict(payload.get("values", {})), maps, [])
        return cls, CallContext(self.services, session, caller, job=job), req

    def run_job(self, job_id: int) -> None:
        jobs = self.services.jobs
        failure: CloudError | None = None
        # One transaction, unless the command commits steps on the way (ctx.checkpoint()): then the
        # job completes in the transaction of its last step, and the command undoes its own earlier
        # steps on failure (or its recover() hook does, after a crash).
        job: AsyncJob | None = None
        for attempt in range(1, 7):
            with self.services.db.writer() as session:
                try:
                    job = session.get(AsyncJob, job_id)
                    if job is None or job.status != 0:
                        session.rollback()
                        return
                    session.info[JOB_START_EVENT] = job.start_event_id  # events of the job continue it
                    cls, ctx, req = self._job_context(session, job)
                    cmd = cls(Binder(cls, ctx).bind(req))
                    outcome = cmd.resume(ctx, job.resumed) if job.resumed else cmd.execute(ctx)
                    if not self._still_ours(session, job_id):
                        session.rollback()
                        return
                    if isinstance(outcome, Park):
                        jobs.park(job, outcome.key, outcome.until)
                        session.commit()
                        return
                    body = body_of(outcome, cls.response.object_name)
                    jobs.complete(job, status=SUCCEEDED, result_code=0, result=prune(body))
                    session.commit()
                except CloudError as exc:
                    session.rollback()
                    failure = exc
                except Exception as exc:
                    session.rollback()
                    # A deadlock aborts only the current step; an idempotent command resumes from its
                    # last committed step when run again.
                    if is_transient(exc) and attempt < 6 and self._idempotent(job.command if job else ""):
                        logger.info("Re-running job %s after a transient database conflict", job_id)
                        time.sleep(0.01 * attempt)
                        continue
                    logger.exception("Job %s raised", job_id)
                    failure = InternalError(f"Internal error executing job: {type(exc).__name__}")
            break
        if failure is not None:
            self._fail_job(job_id, failure)
        self.services.auth.invalidate()

    def _still_ours(self, session: Session, job_id: int) -> bool:
        """Whether this node still holds the job: a node that stalled past the node timeout may have
        had it taken over, and must then not complete it (the row is locked until commit)."""
        from sqlalchemy import select

        owner = session.scalar(select(AsyncJob.claimed_by).where(AsyncJob.id == job_id).with_for_update())
        if owner != self.services.node_id:
            logger.warning("Job %s was taken over by another node while this one ran it; dropping the result",
                           job_id)
            return False
        return True

    def _fail_job(self, job_id: int, exc: CloudError, text: str | None = None) -> None:
        with self.services.db.writer.begin() as session:
            job = session.get(AsyncJob, job_id)
            if job is None or job.status != 0:
                return
            self._record_failure(session, job, exc, text)

    def _record_failure(self, session: Session, job: AsyncJob, exc: CloudError, text: str | None = None) -> None:
        owner = session.get(User, job.user_id)
        message = text or exc.message
        is_root = False
        if owner is not None:
            acct = session.get(Account, owner.account_id)
            role = session.get(Role, acct.role_id) if acct and acct.role_id else None
            is_root = role is not None and role.role_type == "Admin"
        if not exc.expose_to_users and not is_root:
            message = USER_ERROR_MESSAGE
        self.services.jobs.complete(job, status=FAILED, result_code=exc.error_code,
                                    result=error_body(exc, message))
        cls = registry.get(job.command)
        if cls is not None and cls.event_type:
            self.services.events.record(
                session, cls.event_type, f"Error while running {job.command}: {message}", state=COMPLETED,
                level="ERROR", account_id=job.account_id, domain_id=job.domain_id, user_id=job.user_id,
                resource_type=job.instance_type, resource_uuid=job.instance_uuid, start_id=job.start_event_id,
            )  # fmt: skip

    def abandon_job(self, session: Session, job: AsyncJob, reason: str) -> None:
        try:
            with session.begin_nested():
                cls, ctx, req = self._job_context(session, job)
                cmd = cls(Binder(cls, ctx).bind(req))
                cmd.recover(ctx)
        except CloudError as exc:
            logger.warning("Could not run the recovery of job %s: %s", job.uuid, exc.message)
        except Exception:
            # A broken recover() must not keep every other orphan pending on every heartbeat.
            logger.exception("The recovery of job %s raised; failing the job anyway", job.uuid)
        self._record_failure(session, job, InternalError(reason), reason)
        job.status = FAILED


def _first(pairs: list[tuple[str, str]], name: str) -> str:
    """The first value of a parameter, its name matched case-insensitively ("" when absent)."""
    return next((v for k, v in pairs if k.lower() == name), "")


def error_body(exc: CloudError, text: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uuidList": [{"uuid": u, "uuidProperty": p} for u, p in exc.uuids],
        "errorcode": exc.error_code,
        "cserrorcode": exc.cs_error_code,
        "errortext": text,
    }
    return body


def masked(pairs: list[tuple[str, str]], command: str) -> str:
    """Parameters for a log line, with every sensitive value replaced by ``*****``."""
    cls = registry.get(command)
    sensitive = {"password", "currentpassword", "secretkey", "usersecretkey", "userapikey", "signature",
                 "sessionkey", "userdata", "apikey"}
    if cls is not None:
        sensitive |= {p.name for p in cls.params.values() if p.sensitive}
    return "&".join(f"{k}={'*****' if k.lower() in sensitive or k.split('[')[0].lower() in sensitive else v}"
                    for k, v in pairs)
