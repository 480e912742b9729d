"""The pages. Each handler reads through the existing read models and API functions, and writes
through ``api.web.forms`` (the API's schemas and route functions); which steps a user is offered
is the domain's answer (``domain.rules.available_commands``)."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from api import routes_audit
from api.auth import ApiKey
from api.deps import formation_id_for
from api.idempotency import IdempotencyStore, StoredResponse, fingerprint
from api.problems import ApiProblem, status_for
from api.web import forms, sessions
from api.web.i18n import label, normalise_language, translate
from audit import ledger, signing, tree
from audit.ledger import consortium_history
from domain.cities import CITIES
from domain.errors import DomainError, StaleVersion
from domain.fields import FIELDS
from domain.rules import Status, available_commands, may_record
from domain.units import USCC_ALPHABET
from projections.views import CursorError, RegistryViewSQL

HERE = Path(__file__).parent
STATIC = HERE / "static"
PREFIX = "/web"
#: The longest a page waits for the read view to show a write just made (seconds).
VIEW_WAIT_SECONDS = 5.0
PAGE_SIZE = 25

_env = Environment(loader=FileSystemLoader(HERE / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
_USCC_RE = re.compile(f"^[{USCC_ALPHABET}]{{18}}$")
_IDEMPOTENCY_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")
#: The API's auditor dependency (roles that may see proofs and run verifications), reused as is.
_audit_access: Callable[[ApiKey | None], ApiKey] = get_args(routes_audit.AuditorDep)[1].dependency
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


# ------------------------------------------------------------------------------ plumbing
def _lang(request: Request) -> str:
    return normalise_language(request.cookies.get(sessions.LANG_COOKIE))


def current_session(request: Request) -> sessions.WebSession | None:
    store: sessions.SessionStore = request.app.state.web_sessions
    return store.find(request.cookies.get(sessions.SESSION_COOKIE))


SessionDep = Annotated[sessions.WebSession | None, Depends(current_session)]


def _view(request: Request) -> RegistryViewSQL:
    view: RegistryViewSQL = request.app.state.view
    return view


def _may_audit(principal: ApiKey | None) -> bool:
    try:
        _audit_access(principal)
    except ApiProblem:
        return False
    return True


def render(request: Request, template: str, session: sessions.WebSession | None,
           status: int = 200, **context: Any) -> HTMLResponse:
    """A page in the browser's language, with the frame's user, CSRF token and language switch."""
    lang = _lang(request)
    principal = session.principal if session else None
    csrf = session.csrf if session else sessions.anonymous_csrf(request)

    def t(key: str, **values: Any) -> str:
        return translate(key, lang, **values)

    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    html = _env.get_template(template).render(
        request=request, lang=lang, t=t, label=lambda p, v: label(p, v, lang), user=principal,
        csrf=csrf, can_audit=_may_audit(principal), switch_url=f"{PREFIX}/lang/"
        f"{'zh' if lang == 'en' else 'en'}?" + urlencode({"next": here}), **context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    new_csrf = getattr(request.state, "new_csrf_cookie", None)
    if session is None and new_csrf:
        sessions.set_csrf_cookie(response, request, new_csrf)
    return response


def message_page(request: Request, session: sessions.WebSession | None, status: int,
                 title_key: str, message: str) -> HTMLResponse:
    return render(request, "message.html", session, status=status, title=translate(
        title_key, _lang(request)), message=message)


def _local(next_url: str | None, default: str = f"{PREFIX}/registry") -> str:
    """Only a path of this site is followed after a login or a language switch."""
    if next_url and next_url.startswith(PREFIX) and not next_url.startswith("//") \
            and "\\" not in next_url and "\n" not in next_url:
        return next_url
    return default


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def _login_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _see_other(f"{PREFIX}/login?" + urlencode({"next": here}))


def _caught_up(request: Request, position: int | None) -> bool:
    """Wait until the read view shows ``position`` (the page after a write, a form's version)."""
    registry = request.app.state.registry
    return _view(request).wait_for(registry.name, position, VIEW_WAIT_SECONDS)


def _head(request: Request) -> int:
    return int(request.app.state.registry.recorder.max_notification_id() or 0)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None and value.strip() else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------ frame
@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home() -> RedirectResponse:
    return _see_other(f"{PREFIX}/registry")


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str | None = None) -> RedirectResponse:
    """Remember the chosen language (中文 or English) in a cookie and go back."""
    response = _see_other(_local(next))
    response.set_cookie(sessions.LANG_COOKIE, normalise_language(code), max_age=365 * 86400,
                        path=sessions.COOKIE_PATH, httponly=True, samesite="lax",
                        secure=sessions.is_secure(request))
    return response


# ------------------------------------------------------------------------------ login
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str | None = None,
               logged_out: int = 0) -> HTMLResponse:
    return render(request, "login.html", session, next=_local(next), error=None,
                  logged_out=bool(logged_out))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_login, request, form)


def _login(request: Request, form: FormData) -> Response:
    next_url = _local(_text(form, "next"))
    before = current_session(request)  # signing in as someone else from a signed-in page
    if not sessions.csrf_ok(request, _text(form, "csrf_token"), before):
        return render(request, "login.html", None, status=403, next=next_url,
                      error=translate("csrf.invalid", _lang(request)), logged_out=False)
    principal = request.app.state.keys.authenticate(_text(form, "api_key").strip())
    if principal is None:
        return render(request, "login.html", None, status=401, next=next_url,
                      error=translate("login.invalid", _lang(request)), logged_out=False)
    if before is not None:
        request.app.state.web_sessions.close(request.cookies.get(sessions.SESSION_COOKIE))
    token, _ = request.app.state.web_sessions.open(principal)
    response = _see_other(next_url)
    sessions.set_session_cookie(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_logout, request, form)


def _logout(request: Request, form: FormData) -> Response:
    session = current_session(request)
    if session is not None and not sessions.csrf_ok(request, _text(form, "csrf_token"), session):
        return message_page(request, session, 403, "error.forbidden",
                            translate("csrf.invalid", _lang(request)))
    request.app.state.web_sessions.close(request.cookies.get(sessions.SESSION_COOKIE))
    response = _see_other(f"{PREFIX}/login?logged_out=1")
    sessions.clear_session_cookie(response, request)
    return response


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# ------------------------------------------------------------------------------ registry
@router.get("/registry", response_class=HTMLResponse)
def registry_page(request: Request, session: SessionDep, status: str | None = None,
                  field: str | None = None, city: str | None = None, q: str | None = None,
                  cursor: str | None = None, position: str | None = None) -> HTMLResponse:
    """The registry list; without a session only listed consortia (省创新联合体)."""
    _caught_up(request, _int(position))
    status = status if status in {s.value for s in Status} else None
    field = field if field in FIELDS else None
    city = city if city in CITIES else None
    search = (q or "").strip()[:100]
    uscc = search if _USCC_RE.match(search) else None
    try:
        items, next_cursor = _view(request).list_consortia(
            status=status, field=field, city=city, uscc=uscc,
            text=None if uscc else (search or None), listed_only=session is None,
            cursor=cursor, limit=PAGE_SIZE)
    except CursorError:
        items, next_cursor = [], None
    filters = {k: v for k, v in {"status": status, "field": field, "city": city,
                                 "q": search}.items() if v}
    return render(request, "registry.html", session, active="registry", items=items,
                  filters=filters, statuses=[s.value for s in Status], fields=list(FIELDS),
                  cities=list(CITIES), next_url=(f"{PREFIX}/registry?" + urlencode(
                      {**filters, "cursor": next_cursor})) if next_cursor else None,
                  paged=bool(cursor), may_start=_may_start(session))


def _may_start(session: sessions.WebSession | None) -> bool:
    return session is not None and not session.principal.read_only \
        and may_record("select_lead", session.principal.actor())


# ------------------------------------------------------------------------------ consortium
def _visible_doc(request: Request, session: sessions.WebSession | None,
                 consortium_id: str) -> dict[str, Any] | None:
    try:
        cid = str(uuid.UUID(consortium_id))
    except ValueError:
        return None
    doc = _view(request).consortium(cid)
    if doc is None or (session is None and doc["status"] != Status.LISTED.value):
        return None
    return doc


def _offered(session: sessions.WebSession | None, doc: dict[str, Any]) -> list[str]:
    if session is None or session.principal.read_only:
        return []
    return available_commands(doc["status"], session.principal.actor(), doc["city"])


@router.get("/consortia/new", response_class=HTMLResponse)
def new_consortium_form(request: Request, session: SessionDep) -> Response:
    return _command_form(request, session, None, "select_lead", None)


@router.post("/consortia/new", response_class=HTMLResponse)
async def new_consortium(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_submit, request, None, "select_lead", form)


#: Events in one page of a consortium's timeline: the latest first, earlier ones a link away.
TIMELINE_PAGE = 100


@router.get("/consortia/{consortium_id}", response_class=HTMLResponse)
def consortium_page(request: Request, session: SessionDep, consortium_id: str,
                    done: str | None = None, position: str | None = None,
                    upto: str | None = None) -> HTMLResponse:
    """Current state (lead unit marked 牵头单位), the steps offered and the ledger timeline: the
    ``TIMELINE_PAGE`` events up to version ``upto`` (by default the latest), oldest first."""
    caught_up = _caught_up(request, _int(position))
    doc = _visible_doc(request, session, consortium_id)
    if doc is None:
        return message_page(request, session, 404, "error.not_found",
                            translate("error.not_found_consortium", _lang(request)))
    version = int(doc["version"])
    last = min(max(_int(upto) or version, 1), version)
    first = max(last - TIMELINE_PAGE, 0) + 1
    history = (consortium_history(request.app.state.database, uuid.UUID(doc["id"]),
                                  after_version=first - 1, limit=last - first + 1)
               if session is not None else None)
    offered = _offered(session, doc)
    return render(
        request, "consortium.html", session, active="registry", doc=doc, history=history,
        timeline=dict(first=first, last=last, total=version,
                      earlier=first - 1 if first > 1 else None,
                      later=min(last + TIMELINE_PAGE, version) if last < version else None),
        commands=[c for c in offered if not forms.COMMANDS[c].per_record],
        record_commands=[c for c in offered if forms.COMMANDS[c].per_record],
        proof_links=_may_audit(session.principal if session else None),
        done=done if done in forms.COMMANDS else None, done_position=_int(position),
        caught_up=caught_up, members_by_uscc={m["uscc"]: m for m in doc["members"]})


@router.get("/consortia/{consortium_id}/{command}", response_class=HTMLResponse)
def command_form(request: Request, session: SessionDep, consortium_id: str, command: str,
                 record: str | None = None) -> Response:
    return _command_form(request, session, consortium_id, command, record)


@router.post("/consortia/{consortium_id}/{command}", response_class=HTMLResponse)
async def submit_command(request: Request, consortium_id: str, command: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_submit, request, consortium_id, command, form)


def _form_state(request: Request, session: sessions.WebSession | None,
                consortium_id: str | None, command: str, record: str | None,
                posted_version: int | None = None,
                ) -> Response | tuple[forms.Command, forms.Context]:
    """The command and its context, or the page that says why this form is not offered."""
    if session is None:
        return _login_redirect(request)
    lang = _lang(request)
    spec = forms.COMMANDS.get(command)
    if spec is None or (consortium_id is None) != (command == "select_lead"):
        return message_page(request, session, 404, "error.not_found",
                            translate("error.not_found", lang))
    principal = session.principal
    if principal.read_only:
        return message_page(request, session, 403, "error.forbidden",
                            translate("form.read_only", lang))
    doc = None
    if consortium_id is not None:
        _caught_up(request, _head(request))  # the form's version is the latest one
        doc = _visible_doc(request, session, consortium_id)
        if doc is None:
            return message_page(request, session, 404, "error.not_found",
                                translate("error.not_found_consortium", lang))
        if command not in _offered(session, doc):
            if posted_version is not None and posted_version != doc["version"]:
                # Offered when the form was filled in: someone else has changed it since.
                return message_page(request, session, 412, "form.stale_title", translate(
                    "form.stale", lang, current=doc["version"], expected=posted_version))
            return message_page(request, session, 409, "form.not_available_title",
                                translate("form.not_available", lang))
        if spec.per_record and record not in {
                r["record_id"] for r in doc["credit_records_in_publicity"]}:
            return message_page(request, session, 404, "error.not_found",
                                translate("error.not_found", lang))
    elif not _may_start(session):
        return message_page(request, session, 403, "form.not_available_title",
                            translate("form.not_available", lang))
    ctx = forms.Context(doc=doc, actor=principal.actor(), today=request.app.state.registry.clock(),
                        lang=lang, record_id=record if spec.per_record else None)
    return spec, ctx


def _command_form(request: Request, session: sessions.WebSession | None,
                  consortium_id: str | None, command: str, record: str | None) -> Response:
    state = _form_state(request, session, consortium_id, command, record)
    if isinstance(state, Response):
        return state
    spec, ctx = state
    inputs = spec.inputs(ctx)
    values = {i.name: i.default(ctx) for i in inputs if i.default is not None}
    return _form_page(request, session, spec, ctx, inputs, values, {}, 200,
                      idempotency_key=str(uuid.uuid4()))


def _form_page(request: Request, session: sessions.WebSession | None, spec: forms.Command,
               ctx: forms.Context, inputs: list[forms.Input], values: dict[str, Any],
               errors: dict[str, list[str]], status: int, *, idempotency_key: str,
               stale: dict[str, Any] | None = None, version: int | None = None) -> HTMLResponse:
    groups: list[tuple[str | None, list[forms.Input]]] = []
    for spec_input in inputs:
        if groups and groups[-1][0] == spec_input.group and spec_input.group is not None:
            groups[-1][1].append(spec_input)
        else:
            groups.append((spec_input.group, [spec_input]))
    doc = ctx.doc
    action = (f"{PREFIX}/consortia/{doc['id']}/{spec.name}" if doc is not None
              else f"{PREFIX}/consortia/new")
    return render(request, "command.html", session, status=status, active="registry",
                  command=spec, doc=doc, groups=groups, values=values, errors=errors,
                  options={i.name: i.options(ctx) for i in inputs if i.options is not None},
                  action=action, record_id=ctx.record_id, idempotency_key=idempotency_key,
                  version=version if version is not None else (doc or {}).get("version"),
                  stale=stale)


def _submit(request: Request, consortium_id: str | None, command: str,
            form: FormData) -> Response:
    """A submitted form. A reload or a second click resubmits the same idempotency key: it gets
    the first answer and nothing is recorded twice (the API's idempotency store, per user) —
    checked first, since the first submission may have changed what the form is offered for."""
    session = current_session(request)
    if session is None:
        return _login_redirect(request)
    if not sessions.csrf_ok(request, _text(form, "csrf_token"), session):
        return message_page(request, session, 403, "error.forbidden",
                            translate("csrf.invalid", _lang(request)))
    key = _text(form, "idempotency_key")
    if not _IDEMPOTENCY_RE.match(key):
        return _record_form(request, session, consortium_id, command, form)
    store: IdempotencyStore = request.app.state.idempotency
    client = f"web:{session.principal.key_id}"
    submitted = sorted((k, v) for k, v in form.multi_items() if isinstance(v, str))
    request_hash = fingerprint("POST", request.url.path, None,
                               json.dumps(submitted, ensure_ascii=False).encode("utf-8"))
    claim = store.claim(client, key, request_hash)
    deadline = time.monotonic() + 10
    while claim.outcome == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
        claim = store.claim(client, key, request_hash)
    if claim.outcome == "replay" and claim.response is not None:
        return _see_other(dict(claim.response.headers).get("location", f"{PREFIX}/registry"))
    if claim.outcome == "in_progress":
        return message_page(request, session, 409, "form.in_progress_title",
                            translate("form.in_progress", _lang(request)))
    if claim.outcome != "new":  # the key was used for another form: this one runs on its own
        return _record_form(request, session, consortium_id, command, form)
    try:
        response = _record_form(request, session, consortium_id, command, form)
    except BaseException:
        store.release(client, key, claim.token)
        raise
    location = response.headers.get("location")
    if response.status_code == 303 and location and "done=" in location:
        store.complete(client, key, claim.token,
                       StoredResponse(303, [("location", location)], b""))
    else:  # refused: the corrected form may be sent with the same key
        store.release(client, key, claim.token)
    return response


def _record_form(request: Request, session: sessions.WebSession, consortium_id: str | None,
                 command: str, form: FormData) -> Response:
    """Parse the form with the command's schema and record it through the API's route."""
    lang = _lang(request)
    version = _int(_text(form, "version"))
    state = _form_state(request, session, consortium_id, command,
                        _text(form, "record") or None, posted_version=version)
    if isinstance(state, Response):
        return state
    spec, ctx = state
    inputs = spec.inputs(ctx)
    key = _text(form, "idempotency_key")
    key = key if _IDEMPOTENCY_RE.match(key) else str(uuid.uuid4())
    sub = forms.parse(spec, inputs, form, lang)
    body = forms.validate(spec, sub, inputs, lang) if not sub.errors else None

    def again(status: int, stale: dict[str, Any] | None = None) -> HTMLResponse:
        return _form_page(request, session, spec, ctx, inputs, sub.values, sub.errors, status,
                          idempotency_key=key, stale=stale, version=version)

    if body is None:
        return again(422)
    if ctx.doc is not None and version is None:
        sub.error("", translate("error.invalid", lang))
        return again(428)
    try:
        result = forms.record(spec, body, actor=session.principal.actor(),
                              registry=request.app.state.registry,
                              consortium_id=ctx.doc["id"] if ctx.doc else None,
                              version=version if ctx.doc else None, path=sub.path,
                              formation_id=formation_id_for(session.principal.key_id, key))
    except ApiProblem as e:
        if e.code != "consortium-already-started":
            raise
        return _see_other(f"{PREFIX}/consortia/{e.extensions['consortium_id']}")
    except StaleVersion as e:
        return again(412, stale={"current": e.details.get("current_version", "?"),
                                 "expected": e.details.get("expected_version", version)})
    except DomainError as e:
        forms.place_domain_error(e, sub, inputs, lang)
        return again(status_for(e))
    return _see_other(f"{PREFIX}/consortia/{result.consortium_id}?" + urlencode(
        {"done": command, "position": result.position or 0}))


# ------------------------------------------------------------------------------ dashboard
@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep) -> HTMLResponse:
    """Progress toward the target, listed consortia by field and city, grades, overdue reports:
    each a chart with its numbers in a table beside it."""
    lang = _lang(request)
    stats = _view(request).statistics()
    listed, target = int(stats["listed"]), int(stats["target"])
    charts: list[dict[str, Any]] = [
        _chart("progress", translate("dashboard.progress", lang, year=stats["target_year"],
                                     target=target), "doughnut",
               [(translate("dashboard.listed", lang), listed),
                (translate("dashboard.remaining", lang), max(target - listed, 0))]),
        _chart("by_field", translate("dashboard.by_field", lang), "bar",
               [(label("fieldcode", k, lang), v) for k, v in sorted(
                   stats["by_field"].items(), key=lambda kv: (-kv[1], kv[0]))]),
        _chart("by_city", translate("dashboard.by_city", lang), "bar",
               [(label("city", k, lang), stats["by_city"][k]) for k in CITIES
                if k in stats["by_city"]]),
        _chart("by_grade", translate("dashboard.by_grade", lang), "pie",
               [(label("grade", g, lang), stats["by_grade"][g])
                for g in ("excellent", "good", "qualified", "poor") if g in stats["by_grade"]]),
    ]
    overdue = None
    if session is not None:
        today = request.app.state.registry.clock()
        overdue = [r for r in _view(request).annual_reports(today) if r["state"] == "overdue"]
        by_year: dict[int, int] = {}
        for r in overdue:
            by_year[r["year"]] = by_year.get(r["year"], 0) + 1
        charts.append(_chart("overdue", translate("dashboard.overdue", lang), "bar",
                             [(str(y), n) for y, n in sorted(by_year.items())]))
    return render(request, "dashboard.html", session, active="dashboard", charts=charts,
                  overdue=overdue, stats=stats,
                  chart_library=(STATIC / "vendor" / "chart.umd.min.js").is_file())


def _chart(chart_id: str, title: str, kind: str, rows: list[tuple[str, int]]) -> dict[str, Any]:
    return {"id": chart_id, "title": title, "type": kind, "labels": [r[0] for r in rows],
            "values": [r[1] for r in rows]}


# ------------------------------------------------------------------------------ audit
def _auditor(request: Request, session: sessions.WebSession | None) -> Response | ApiKey:
    if session is None:
        return _login_redirect(request)
    if not _may_audit(session.principal):
        return message_page(request, session, 403, "error.forbidden",
                            translate("audit.forbidden", _lang(request)))
    return session.principal


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep) -> Response:
    """Ledger size, the latest signed checkpoint, verification and the evidence bundle."""
    principal = _auditor(request, session)
    if isinstance(principal, Response):
        return principal
    db = request.app.state.database
    size, root = tree.tree_head(db, tree.integrate(db))
    stored = signing.stored_checkpoints(db)
    return render(request, "audit.html", session, active="audit", records=ledger.count(db),
                  head=_head(request), tree_size=size, tree_root=root.hex(),
                  checkpoint=stored[-1] if stored else None, checkpoints=len(stored))


@router.post("/audit/verifications")
async def start_verification(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_start_verification, request, form)


def _start_verification(request: Request, form: FormData) -> Response:
    session = current_session(request)
    principal = _auditor(request, session)
    if isinstance(principal, Response):
        return principal
    if not sessions.csrf_ok(request, _text(form, "csrf_token"), session):
        return message_page(request, session, 403, "error.forbidden",
                            translate("csrf.invalid", _lang(request)))
    job = routes_audit.start_verification(request, Response(), principal,
                                          semantic=_text(form, "semantic") == "1")
    return _see_other(f"{PREFIX}/audit/verifications/{job.id}")


def _job(request: Request, session: sessions.WebSession | None,
         job_id: str) -> Response | routes_audit.VerificationOut:
    principal = _auditor(request, session)
    if isinstance(principal, Response):
        return principal
    try:
        return routes_audit.get_verification(job_id, principal)
    except ApiProblem:
        return message_page(request, session, 404, "error.not_found",
                            translate("verification.unknown", _lang(request)))


@router.get("/audit/verifications/{job_id}", response_class=HTMLResponse)
def verification_page(request: Request, session: SessionDep, job_id: str) -> Response:
    job = _job(request, session, job_id)
    if isinstance(job, Response):
        return job
    return render(request, "verification.html", session, active="audit", job=job,
                  report_json=json.dumps(job.report, ensure_ascii=False, indent=2)
                  if job.report else None)


@router.get("/audit/verifications/{job_id}/status")
def verification_status(request: Request, session: SessionDep, job_id: str) -> Response:
    """The job's progress for the page's progress bar."""
    job = _job(request, session, job_id)
    if isinstance(job, Response):
        return job
    return JSONResponse({"state": job.state, "records_done": job.records_done,
                         "records_total": job.records_total},
                        headers={"Cache-Control": "no-store"})


@router.get("/audit/evidence")
def evidence_bundle(request: Request, session: SessionDep) -> Response:
    """The whole ledger with its checkpoints and keys, as ``consortia export`` writes it."""
    principal = _auditor(request, session)
    if isinstance(principal, Response):
        return principal
    from audit.export import export_bundle

    db = request.app.state.database
    tree.integrate(db)
    folder = tempfile.mkdtemp(prefix="consortia-evidence-")
    name = f"consortia-evidence-{_head(request)}.json"
    path = Path(folder) / name
    export_bundle(db, path, origin=signing.origin(),
                  checkpoints=[s.note for s in signing.stored_checkpoints(db)],
                  keys=signing.key_validities(db))

    def cleanup() -> None:
        path.unlink(missing_ok=True)
        os.rmdir(folder)

    return FileResponse(path, media_type="application/json", filename=name,
                        background=BackgroundTask(cleanup))


@router.get("/audit/proofs/{position}", response_class=HTMLResponse)
def proof_page(request: Request, session: SessionDep, position: int) -> Response:
    """The inclusion proof of one ledger record in the current tree."""
    principal = _auditor(request, session)
    if isinstance(principal, Response):
        return principal
    try:
        proof = routes_audit.inclusion(request, principal, position) if position >= 1 else None
    except ApiProblem:
        proof = None
    if proof is None:
        return message_page(request, session, 404, "error.not_found",
                            translate("proof.not_found", _lang(request)))
    return render(request, "proof.html", session, active="audit", proof=proof,
                  has_checkpoint=bool(signing.stored_checkpoints(request.app.state.database)))


@router.get("/audit/proofs/{position}/bundle")
def proof_bundle(request: Request, session: SessionDep, position: int) -> Response:
    """The record with its proof bundle against the latest signed checkpoint (JSON file)."""
    principal = _auditor(request, session)
    if isinstance(principal, Response):
        return principal
    try:
        bundle = routes_audit.record_proof(request, principal, position)
    except ApiProblem as e:
        return message_page(request, session, e.status, "error.not_found", e.detail)
    return JSONResponse(bundle, headers={
        "Content-Disposition": f'attachment; filename="record-{position}-proof.json"'})


# ------------------------------------------------------------------------------ installation
def install(app: FastAPI) -> None:
    """Add the pages, their static files and the sessions table to an app from ``create_app``."""
    store = sessions.SessionStore(app.state.sql, app.state.keys)
    store.create_table()
    app.state.web_sessions = store
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="web-static")
    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)


__all__ = ["install", "router"]
