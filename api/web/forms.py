"""One form per lifecycle command: which inputs it shows, how the submitted form becomes the
command's request body (the API's own pydantic schema parses and validates it) and which API
route function records it. Nothing here judges the guideline: the schema checks the shape, the
domain checks the rules, and their errors are placed next to the input they concern.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from fastapi import Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from api import routes_lifecycle as routes
from api import schemas
from api.problems import english_title
from api.web.i18n import bilingual_part, label, translate
from domain.cities import CITIES
from domain.errors import DomainError, InvalidUSCC
from domain.fields import FIELDS, TechnologyKind
from domain.records import Actor, Role
from domain.registry import Registry
from domain.rules import (
    ChangeKind,
    DelistingReason,
    Grade,
    Mechanism,
    ReportSection,
    Severity,
    ViolationContext,
)
from domain.units import USCC, LeadCategory, SpecialisedRole, UnitKind


@dataclass(frozen=True)
class Context:
    """What a form needs to offer its choices: the consortium (None for a new one), who fills it
    in, today's date in the registry, the language and, for a credit step, the record."""

    doc: dict[str, Any] | None
    actor: Actor
    today: date
    lang: str
    record_id: str | None = None


Options = Callable[[Context], list[tuple[str, str]]]


@dataclass(frozen=True)
class Input:
    """One input. ``name`` is the dotted path of the value in the schema's body (``@x``: a path
    parameter of the route); ``target`` another path it is merged into (extra signatories)."""

    name: str
    label: str
    kind: str = "text"  # text textarea date select checkboxes bool checkbox int decimal sha256
    #                     uscc lines scores
    required: bool = False
    options: Options | None = None
    default: Callable[[Context], Any] | None = None
    group: str | None = None
    label_values: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    hint: str | None = None


# ------------------------------------------------------------------------------ choices
def _enum(prefix: str, values: Sequence[Any]) -> Options:
    return lambda ctx: [(v.value, label(prefix, v.value, ctx.lang)) for v in values]


def _fields(ctx: Context) -> list[tuple[str, str]]:
    return [(code, label("fieldcode", code, ctx.lang)) for code in FIELDS]


def _cities(ctx: Context) -> list[tuple[str, str]]:
    codes = [ctx.actor.city] if ctx.actor.role is Role.CITY_BUREAU and ctx.actor.city else CITIES
    return [(code, label("city", code, ctx.lang)) for code in codes]


def _unit_label(unit: dict[str, Any], ctx: Context, lead: bool = False) -> str:
    mark = f"（{translate('consortium.lead', ctx.lang)}）" if lead else ""
    return f"{unit['name']} {unit['uscc']}{mark}"


def _lead_and_members(ctx: Context) -> list[tuple[str, str]]:
    doc = ctx.doc or {}
    lead = doc.get("lead")
    out = [(lead["uscc"], _unit_label(lead, ctx, lead=True))] if lead else []
    return out + [(m["uscc"], _unit_label(m, ctx)) for m in doc.get("members", [])]


def _members(ctx: Context) -> list[tuple[str, str]]:
    return [(m["uscc"], _unit_label(m, ctx)) for m in (ctx.doc or {}).get("members", [])]


def _credit_subjects(ctx: Context) -> list[tuple[str, str]]:
    former = [(m["uscc"], _unit_label(m, ctx)) for m in (ctx.doc or {}).get("former_members", [])]
    return _lead_and_members(ctx) + former


def _today(ctx: Context) -> str:
    return ctx.today.isoformat()


def _organisation(ctx: Context) -> str:
    return ctx.actor.organisation


# ------------------------------------------------------------------------------ inputs
DATE = Input("effective_date", "field.effective_date", "date", required=True, default=_today)
DOCUMENT = [Input("document.title", "field.document.title", group="form.document"),
            Input("document.sha256", "field.document.sha256", "sha256", group="form.document")]


def _dated(*inputs: Input, document: bool = True) -> list[Input]:
    return [*inputs, DATE, *(DOCUMENT if document else [])]


def _unit_inputs(prefix: str, label_prefix: str, group: str | None = None) -> list[Input]:
    return [Input(f"{prefix}.uscc", f"{label_prefix}.uscc", "uscc", required=True, group=group),
            Input(f"{prefix}.name", f"{label_prefix}.name", required=True, group=group),
            Input(f"{prefix}.kind", f"{label_prefix}.kind", "select", required=True,
                  options=_enum("kind", list(UnitKind)), group=group)]


_SPEC = "form.specialisation"
_SPECIALISATION = [
    Input("unit.specialisation.role", "field.unit.specialisation.role", "select",
          options=_enum("specialised", list(SpecialisedRole)), group=_SPEC),
    Input("unit.specialisation.jiangsu_poc_centre", "field.unit.specialisation.jiangsu_poc_centre",
          "checkbox", group=_SPEC),
    Input("unit.specialisation.accreditation", "field.unit.specialisation.accreditation",
          group=_SPEC),
    Input("unit.specialisation.technology_managers",
          "field.unit.specialisation.technology_managers", "int", group=_SPEC),
    Input("unit.specialisation.startup_services", "field.unit.specialisation.startup_services",
          group=_SPEC),
]
#: How many change rows a supplementary-agreement form offers.
CHANGE_ROWS = 3


def _change_rows() -> list[Input]:
    out: list[Input] = []
    for i in range(CHANGE_ROWS):
        group = f"form.change_row#{i + 1}"
        out += [
            Input(f"changes.{i}.kind", "field.change.kind", "select", required=i == 0,
                  options=_enum("change", list(ChangeKind)), group=group),
            Input(f"changes.{i}.description", "field.change.description", "textarea",
                  group=group),
            Input(f"changes.{i}.unit.uscc", "field.change.unit.uscc", "uscc", group=group),
            Input(f"changes.{i}.unit.name", "field.change.unit.name", group=group),
            Input(f"changes.{i}.unit.kind", "field.change.unit.kind", "select",
                  options=_enum("kind", list(UnitKind)), group=group),
            Input(f"changes.{i}.uscc", "field.change.uscc", "select", options=_lead_and_members,
                  group=group),
        ]
    return out


def _report_inputs(ctx: Context) -> list[Input]:
    sections = [Input(f"sections.{s.value}", f"section.{s.value}", "textarea", required=True)
                for s in ReportSection]
    explanations = [Input(f"explanations.{a['id']}", "field.explanation", "textarea",
                          label_values={"id": a["id"]})
                    for a in (ctx.doc or {}).get("supplementary_agreements", [])]
    year = Input("year", "field.year", "int", required=True,
                 default=lambda c: str(c.today.year - 1))
    return _dated(year, *sections, *explanations)


@dataclass(frozen=True)
class Command:
    """A lifecycle step as a form: the API's schema and route, and the form's inputs."""

    name: str
    schema: type[BaseModel]
    route: Callable[..., schemas.CommandResult]
    inputs: Callable[[Context], list[Input]]
    per_record: bool = False  # a credit step on one record (CR-n)


def _static(*inputs: Input) -> Callable[[Context], list[Input]]:
    return lambda ctx: list(inputs)


_TEXT_REQ = {"required": True}
COMMANDS: dict[str, Command] = {c.name: c for c in [
    Command("select_lead", schemas.StartFormation, routes.start_formation, _static(
        Input("name", "field.name", required=True),
        Input("city", "field.city", "select", required=True, options=_cities,
              default=lambda c: c.actor.city or ""),
        *_unit_inputs("lead", "field.lead"),
        Input("qualification.category", "field.qualification.category", "select", required=True,
              options=_enum("category", list(LeadCategory))),
        Input("qualification.annual_revenue_yuan", "field.qualification.annual_revenue_yuan",
              "int"),
        Input("qualification.rd_intensity", "field.qualification.rd_intensity", "decimal"),
        Input("fields", "field.fields", "checkboxes", required=True, options=_fields),
        Input("technologies", "field.technologies", "checkboxes",
              options=_enum("technology", list(TechnologyKind))),
        *_dated())),
    Command("admit_member", schemas.AdmitMember, routes.admit_member, _static(
        *_unit_inputs("unit", "field.unit"), *_SPECIALISATION, *_dated())),
    Command("drop_member", schemas.DropMember, routes.drop_member, _static(
        Input("@uscc", "field.member", "select", required=True, options=_members),
        Input("reason", "field.reason", "textarea"), *_dated())),
    Command("sign_agreement", schemas.SignAgreement, routes.sign_agreement, _static(
        Input("signatories", "field.signatories", "checkboxes", required=True,
              options=_lead_and_members),
        Input("mechanisms", "field.mechanisms", "checkboxes", required=True,
              options=_enum("mechanism", list(Mechanism))),
        Input("construction_plan", "field.construction_plan", "textarea", required=True),
        Input("no_university_justification", "field.no_university_justification", "textarea"),
        *_dated())),
    Command("submit_application", schemas.SubmitApplication, routes.submit_application,
            _static(*_dated())),
    Command("recommend", schemas.Recommend, routes.recommend, _static(
        Input("necessity", "field.necessity", "textarea", required=True),
        Input("feasibility", "field.feasibility", "textarea", required=True), *_dated())),
    Command("return_application", schemas.ReturnApplication, routes.return_application,
            _static(Input("reason", "field.reason", "textarea", required=True), *_dated())),
    Command("record_expert_review", schemas.ExpertReview, routes.record_expert_review, _static(
        Input("opinion", "field.opinion", "textarea", required=True),
        Input("score", "field.score", "decimal"),
        Input("recommended", "field.recommended", "bool", required=True), *_dated())),
    Command("approve", schemas.Approve, routes.approve, _static(*_dated())),
    Command("reject", schemas.Reject, routes.reject, _static(
        Input("reason", "field.reason", "textarea", required=True), *_dated())),
    Command("sign_supplementary_agreement", schemas.SupplementaryAgreement,
            routes.sign_supplementary_agreement, _static(
                *_change_rows(),
                Input("signatories", "field.signatories", "checkboxes", required=True,
                      options=_lead_and_members),
                Input("signatories_extra", "field.signatories_extra", "lines",
                      target="signatories", hint="form.lines_hint"),
                Input("no_university_justification", "field.no_university_justification",
                      "textarea"),
                DATE, Input("document.title", "field.document.title", required=True,
                            group="form.document"),
                Input("document.sha256", "field.document.sha256", "sha256", required=True,
                      group="form.document"))),
    Command("file_annual_report", schemas.AnnualReport, routes.file_annual_report,
            _report_inputs),
    Command("record_evaluation", schemas.Evaluation, routes.record_evaluation, _static(
        Input("agency", "field.agency", required=True, default=_organisation),
        Input("period", "field.period", required=True),
        Input("scores", "field.scores", "scores", hint="form.scores_hint"),
        Input("grade", "field.grade", "select", required=True, options=_enum("grade", list(Grade))),
        *_dated())),
    Command("order_rectification", schemas.OrderRectification, routes.order_rectification,
            _static(Input("requirements", "field.requirements", "textarea", required=True),
                    Input("deadline", "field.deadline", "date", required=True), *_dated())),
    Command("complete_rectification", schemas.CompleteRectification,
            routes.complete_rectification,
            _static(Input("outcome", "field.outcome", "textarea", required=True), *_dated())),
    Command("delist", schemas.Delisting, routes.delist, _static(
        Input("reason", "field.delisting_reason", "select", required=True,
              options=_enum("delisting", list(DelistingReason))),
        Input("explanation", "field.explanation_text", "textarea"),
        DATE, Input("document.title", "field.document.title", required=True,
                    group="form.document"),
        Input("document.sha256", "field.document.sha256", "sha256", required=True,
              group="form.document"))),
    Command("record_credit_violation", schemas.CreditViolationIn, routes.record_credit_violation,
            _static(
                Input("subject_uscc", "field.subject_uscc", "select", required=True,
                      options=_credit_subjects),
                Input("severity", "field.severity", "select", required=True,
                      options=_enum("severity", list(Severity))),
                Input("context", "field.context", "select", required=True,
                      options=_enum("context", list(ViolationContext))),
                Input("facts", "field.facts", "textarea", required=True),
                Input("legal_basis", "field.legal_basis", "textarea", required=True),
                Input("deciding_authority", "field.deciding_authority", required=True,
                      default=_organisation),
                Input("publicity_start", "field.publicity_start", "date", required=True),
                Input("publicity_end", "field.publicity_end", "date", required=True),
                Input("earliest_repair_date", "field.earliest_repair_date", "date",
                      required=True),
                Input("remedy", "field.remedy", "textarea"),
                DATE, Input("document.title", "field.document.title", required=True,
                            group="form.document"),
                Input("document.sha256", "field.document.sha256", "sha256", required=True,
                      group="form.document"))),
    Command("repair_credit", schemas.CreditRepair, routes.repair_credit, _static(
        Input("measures", "field.measures", "textarea", required=True), *_dated()),
        per_record=True),
    Command("revoke_credit", schemas.CreditRevocation, routes.revoke_credit, _static(
        Input("reason", "field.reason", "textarea", required=True), *_dated()), per_record=True),
    Command("end_credit_publicity", schemas.PublicityEnd, routes.end_credit_publicity,
            _static(DATE), per_record=True),
]}


# ------------------------------------------------------------------------------ parsing
@dataclass
class Submission:
    """A submitted form: the body for the schema, the route's path parameters, what the user
    typed (to show the form again) and the errors by input name ("" = the whole form)."""

    body: dict[str, Any]
    path: dict[str, str]
    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    #: the position of each change row in ``body["changes"]`` → its row number in the form
    rows: dict[int, int] = field(default_factory=dict)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


_SCORE_LINE = re.compile(r"^(.+?)\s*[:：]\s*(\S+)$")


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    last = parts[-1]
    if isinstance(value, list) and isinstance(target.get(last), list):
        target[last] = [*target[last], *value]
    else:
        target[last] = value


def parse(command: Command, inputs: list[Input], form: FormData, lang: str) -> Submission:
    """The form as the schema's body; inputs that are empty are left out (the schema then says
    what is missing). USCCs are checked by the domain's own USCC rule, next to their input."""
    sub = Submission(body={}, path={}, values={})
    for spec in inputs:
        if spec.kind == "checkboxes":
            chosen = [v for v in form.getlist(spec.name) if isinstance(v, str) and v]
            sub.values[spec.name] = chosen
            if chosen:
                _put(sub.body, spec.target or spec.name, chosen)
            continue
        raw = form.get(spec.name)
        text = raw.strip() if isinstance(raw, str) else ""
        sub.values[spec.name] = text
        if spec.kind == "checkbox":
            if text:
                _put(sub.body, spec.name, True)
            continue
        if not text:
            continue
        value: Any = text
        if spec.kind == "int":
            try:
                value = int(text)
            except ValueError:
                sub.error(spec.name, translate("error.int", lang))
                continue
        elif spec.kind == "bool":
            if text not in ("true", "false"):
                sub.error(spec.name, translate("error.bool", lang))
                continue
            value = text == "true"
        elif spec.kind == "uscc":
            try:
                USCC.parse(text)
            except InvalidUSCC as e:
                sub.error(spec.name, domain_message(e, lang))
                continue
        elif spec.kind == "lines":
            value = [line.strip() for line in text.splitlines() if line.strip()]
        elif spec.kind == "scores":
            scores: dict[str, str] = {}
            for line in text.splitlines():
                if not line.strip():
                    continue
                m = _SCORE_LINE.match(line.strip())
                if m is None:
                    sub.error(spec.name, translate("error.scores", lang))
                    break
                scores[m.group(1)] = m.group(2)
            value = scores
        if spec.name.startswith("@"):
            sub.path[spec.name[1:]] = text
        else:
            _put(sub.body, spec.target or spec.name, value)
    if isinstance(sub.body.get("changes"), dict):  # rows → a list, in form order
        rows = sorted(sub.body["changes"].items(), key=lambda kv: int(kv[0]))
        sub.rows = {i: int(k) for i, (k, _) in enumerate(rows)}
        sub.body["changes"] = [row for _, row in rows]
    return sub


def validate(command: Command, sub: Submission, inputs: list[Input],
             lang: str) -> BaseModel | None:
    """The body parsed by the API's schema; its errors placed on the inputs."""
    try:
        return command.schema.model_validate(sub.body)
    except ValidationError as e:
        names = [i.name for i in inputs]
        for err in e.errors():
            loc = [str(p) for p in err.get("loc", ())]
            if len(loc) >= 2 and loc[0] == "changes" and loc[1].isdigit():
                loc[1] = str(sub.rows.get(int(loc[1]), loc[1]))
            sub.error(_place(".".join(loc), names), _pydantic_message(err, lang))
        return None


def _place(path: str, names: list[str]) -> str:
    """The input for an error about ``path``: itself, the first input under it, the input it
    is under, or the whole form."""
    if path in names:
        return path
    for name in names:
        if name.startswith(path + "."):
            return name
    for name in names:
        if name.endswith("." + path):
            return name
    parts = path.split(".")
    while parts:
        parts.pop()
        if ".".join(parts) in names:
            return ".".join(parts)
    return ""


_PYDANTIC_KEYS = {
    "missing": "error.missing", "string_too_long": "error.too_long", "too_long": "error.too_long",
    "int_type": "error.int", "int_parsing": "error.int", "int_from_float": "error.int",
    "enum": "error.choice", "literal_error": "error.choice", "bool_type": "error.bool",
    "bool_parsing": "error.bool", "greater_than_equal": "error.too_small",
    "less_than_equal": "error.too_large", "greater_than": "error.too_small",
    "less_than": "error.too_large",
}


def _pydantic_message(err: Any, lang: str) -> str:
    kind = str(err.get("type", ""))
    loc = [str(p) for p in err.get("loc", ())]
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "sha256":
        return translate("error.sha256", lang)
    if kind == "value_error":
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        return bilingual_part(message, lang)
    return translate(_PYDANTIC_KEYS.get(kind, "error.invalid"), lang)


def domain_message(error: DomainError, lang: str) -> str:
    """The rule's title and message in the page's language."""
    cls = type(error)
    title = english_title(cls) if lang == "en" else cls.title_zh
    detail = bilingual_part(error.message, lang)
    if detail.lower().startswith(title.lower()):
        return detail
    return f"{title}：{detail}" if lang != "en" else f"{title}: {detail}"


def place_domain_error(error: DomainError, sub: Submission, inputs: list[Input],
                       lang: str) -> None:
    """A refused command's error next to the input it concerns: the one the rule names
    (``field``; each ``missing`` part under it), else the one holding the unit it names
    (``uscc``), else the whole form."""
    names = [i.name for i in inputs]
    message = domain_message(error, lang)
    where = str(error.details.get("field") or "")
    missing = error.details.get("missing")
    if where and isinstance(missing, list):
        parts = [f"{where}.{m}" for m in missing if f"{where}.{m}" in names]
        if parts:
            for name in parts:
                sub.error(name, message)
            return
    if where:
        placed = _place(where, names)
        if placed:
            sub.error(placed, message)
            return
    uscc = error.details.get("uscc")
    if isinstance(uscc, str):
        for name in names:
            value = sub.values.get(name)
            if value == uscc or (isinstance(value, list) and uscc in value):
                sub.error(name, message)
                return
    sub.error("", message)


def record(command: Command, body: BaseModel, *, actor: Actor, registry: Registry,
           consortium_id: str | None, version: int | None,
           path: dict[str, str], formation_id: UUID | None = None) -> schemas.CommandResult:
    """Record the step through the API's own route function (the same mapping onto the Registry
    as a JSON request); raises the domain's error when a rule refuses it."""
    offered: dict[str, Any] = {"body": body, "actor": actor, "registry": registry,
                               "response": Response(), "version": version,
                               "formation_id": formation_id, **path}
    if consortium_id is not None:
        offered["consortium_id"] = UUID(consortium_id)
    wanted = inspect.signature(command.route).parameters
    return command.route(**{k: v for k, v in offered.items() if k in wanted})
