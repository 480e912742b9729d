"""The registry's read model of one consortium: its current state as a JSON-ready dict, derived
from the aggregate (so that the view and the domain never disagree about what an event means)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from domain.cities import CITIES
from domain.consortium import Consortium
from domain.fields import FIELDS
from domain.records import Actor, Document
from domain.units import Unit, organisation_code_ok


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _unit(u: Unit) -> dict[str, Any]:
    return {
        "uscc": u.uscc, "name": u.name, "kind": u.kind.value, "kind_zh": u.kind.label_zh,
        "specialised_role": u.specialisation.role.value if u.specialisation else None,
        "organisation_code_ok": organisation_code_ok(u.uscc),
    }


def _document(d: Document | None) -> dict[str, str] | None:
    return None if d is None else {"title": d.title, "sha256": d.sha256}


def _actor(a: Actor) -> dict[str, Any]:
    return {"user_id": a.user_id, "role": a.role.value, "organisation": a.organisation,
            "city": a.city}


def consortium_document(c: Consortium, position: int, created_position: int) -> dict[str, Any]:
    """Everything the registry shows about one consortium, as of ledger ``position``."""
    reports = sorted(c.reports.values(), key=lambda r: r.year)
    evaluations = [
        {"agency": e.agency, "period": e.period, "grade": e.grade.value,
         "scores": _jsonable(e.scores), "evaluated_on": _iso(e.evaluated_on)}
        for e in c.evaluations
    ]
    q = c.qualification
    return {
        "id": str(c.id),
        "name": c.name,
        "city": c.city,
        "city_zh": CITIES[c.city][0],
        "status": c.status.value,
        "status_zh": c.status.label_zh,
        "version": c.version,
        "position": position,
        "created_position": created_position,
        "lead": {**_unit(c.lead), "qualification": {
            "category": q.category.value, "category_zh": q.category.label_zh,
            "annual_revenue_yuan": q.annual_revenue_yuan,
            "rd_intensity": str(q.rd_intensity) if q.rd_intensity is not None else None}},
        "members": [_unit(m) for m in c.members.values()],
        "former_members": [_unit(m) for m in c.former_members.values()],
        "fields": [{"code": f, "zh": FIELDS[f].zh, "en": FIELDS[f].en} for f in c.fields],
        "technologies": [t.value for t in c.technologies],
        "agreement": None if c.agreement is None else {
            "signed_on": _iso(c.agreement.signed_on),
            "signatories": list(c.agreement.signatories),
            "mechanisms": [m.value for m in c.agreement.mechanisms],
            "document": _document(c.agreement.document),
        },
        "no_university_justification": c.no_university_justification,
        "application_submitted_on": _iso(c.application_submitted_on),
        "recommendation": _jsonable(c.recommendation),
        "expert_review": _jsonable(c.expert_review),
        "listed_on": _iso(c.listed_on),
        "rejected_on": _iso(c.rejected_on),
        "delisted_on": _iso(c.delisted_on),
        "delisting_reason": c.delisting_reason.value if c.delisting_reason else None,
        "supplementary_agreements": [
            {"id": a.agreement_id, "signed_on": _iso(a.signed_on),
             "changes": [{"kind": ch.kind.value, "description": ch.description,
                          "uscc": ch.unit.uscc if ch.unit else ch.uscc} for ch in a.changes]}
            for a in c.supplementary_agreements
        ],
        "reports": [{"year": r.year, "filed_on": _iso(r.filed_on), "late": r.late}
                    for r in reports],
        "latest_report": ({"year": reports[-1].year, "filed_on": _iso(reports[-1].filed_on),
                           "late": reports[-1].late} if reports else None),
        "evaluations": evaluations,
        "latest_grade": c.latest_grade.value if c.latest_grade else None,
        "rectification": {"open": c.rectification_open, **_jsonable(c.rectification or {})},
        "credit_records_in_publicity": [
            {"record_id": r.record_id, "subject_uscc": r.violation.subject_uscc,
             "subject_name": r.subject_name, "severity": r.violation.severity.value,
             "severity_zh": r.violation.severity.label_zh, "context": r.violation.context.value,
             "facts": r.violation.facts, "legal_basis": r.violation.legal_basis,
             "deciding_authority": r.violation.deciding_authority,
             "publicity_start": _iso(r.violation.publicity_start),
             "publicity_end": _iso(r.violation.publicity_end),
             "earliest_repair_date": _iso(r.violation.earliest_repair_date),
             "remedy": r.violation.remedy, "recorded_on": _iso(r.recorded_on)}
            for r in c.credit_records.values() if r.state == "in_publicity"
        ],
        "last_effective_date": _iso(c.last_effective_date),
        "last_recorded_by": _actor(c.last_actor),
    }
