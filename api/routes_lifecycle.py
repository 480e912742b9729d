"""One POST per lifecycle command on the consortium resource.

Each route parses its body, builds the domain's value objects, calls ONE ``Registry`` method and
maps the outcome; no rule of the guideline lives here (the domain checks them and answers with a
named ``DomainError``, which ``api.problems`` turns into problem+json). Every write on an existing
consortium names the version it saw in ``If-Match``; the answer's ``ETag`` is the new version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from fastapi import APIRouter, Depends, Path, Response
from fastapi.routing import APIRoute

from api.deps import (
    API_V1,
    FormationIdDep,
    IfMatchDep,
    RegistryDep,
    WriterDep,
    idempotency_key_header,
)
from api.etags import version_etag
from api.problems import ApiProblem, problem_responses
from api.schemas import (
    AdmitMember,
    AnnualReport,
    Approve,
    CommandResult,
    CompleteRectification,
    CreditRepair,
    CreditRevocation,
    CreditViolationIn,
    Delisting,
    DropMember,
    Evaluation,
    ExpertReview,
    OrderRectification,
    PublicityEnd,
    Recommend,
    Reject,
    ReturnApplication,
    SignAgreement,
    StartFormation,
    SubmitApplication,
    SupplementaryAgreement,
    document_of,
)
from domain.errors import StaleVersion


def _operation_id(route: APIRoute) -> str:
    return route.name


router = APIRouter(prefix="/consortia", tags=["登记 / lifecycle commands"],
                   generate_unique_id_function=_operation_id,
                   dependencies=[Depends(idempotency_key_header)])

_ETAG = {"description": '新版本号，如 "2"；下一次写入的 If-Match / the new version, e.g. "2": the '
                        "next write's If-Match", "schema": {"type": "string"}}
NEW: dict[int | str, dict[str, Any]] = {
    201: {"description": "已登记 / recorded", "headers": {
        "ETag": _ETAG,
        "Location": {"description": "新创新联合体的地址 / the new consortium",
                     "schema": {"type": "string"}}}},
    **problem_responses(400, 401, 403, 409, 413, 422, 500, 503)}
EXISTING: dict[int | str, dict[str, Any]] = {
    200: {"description": "已登记 / recorded", "headers": {"ETag": _ETAG}},
    **problem_responses(400, 401, 403, 404, 409, 412, 413, 422, 428, 500, 503)}
#: Every command answers a CommandResult; ``result`` appears only when the command has one.
COMMAND: dict[str, Any] = {"response_model": CommandResult, "response_model_exclude_unset": True}

ConsortiumId = Annotated[UUID, Path(description="创新联合体编号 / consortium id")]
RecordId = Annotated[str, Path(max_length=32, description="失信记录编号，如 CR-1 / record id",
                               examples=["CR-1"])]


def _write(response: Response, command: Callable[[], dict[str, Any]]) -> CommandResult:
    """Run one Registry command and map its outcome; a concurrent writer that saved the same
    version first makes this one stale (412), as a stale If-Match would."""
    try:
        outcome = command()
    except IntegrityError as e:
        raise StaleVersion(
            "另一写入已先保存同一版本，请刷新后重试 / another write to this consortium was saved "
            "first; reload and retry") from e
    response.headers["ETag"] = version_etag(outcome["version"])
    return CommandResult(**outcome)


# ---------------------------------------------------------------------------------- formation (§5)
@router.post("", status_code=201, **COMMAND, responses=NEW,
             summary="遴选牵头单位、开始组建 / Select the lead unit and start formation")
def start_formation(body: StartFormation, actor: WriterDep, registry: RegistryDep,
                    response: Response, formation_id: FormationIdDep = None) -> CommandResult:
    """§5.1 A city bureau selects a qualified lead unit: a new consortium starts forming."""
    try:
        result = _write(response, lambda: registry.select_lead(
            name=body.name, city=body.city, lead=body.lead.to_domain(),
            qualification=body.qualification.to_domain(), fields=list(body.fields),
            technologies=list(body.technologies), actor=actor, effective_date=body.effective_date,
            document=document_of(body.document), consortium_id=formation_id))
    except StaleVersion:
        if formation_id is None:
            raise
        location = f"{API_V1}/consortia/{formation_id}"
        raise ApiProblem("consortium-already-started", headers={"Location": location},
                         consortium_id=str(formation_id)) from None
    response.headers["Location"] = f"{API_V1}/consortia/{result.consortium_id}"
    return result


@router.post("/{consortium_id}/members", **COMMAND, responses=EXISTING,
             summary="吸收成员单位 / Admit a member unit")
def admit_member(consortium_id: ConsortiumId, body: AdmitMember, actor: WriterDep,
                 version: IfMatchDep, registry: RegistryDep, response: Response) -> CommandResult:
    """§5.2 The lead admits a member unit while forming."""
    return _write(response, lambda: registry.admit_member(
        consortium_id, body.unit.to_domain(), actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


@router.post("/{consortium_id}/members/{uscc}/drop", **COMMAND,
             responses=EXISTING, summary="成员单位退出 / Drop a member unit")
def drop_member(consortium_id: ConsortiumId,
                uscc: Annotated[str, Path(max_length=64, description="成员单位的统一社会信用代码")],
                body: DropMember, actor: WriterDep, version: IfMatchDep, registry: RegistryDep,
                response: Response) -> CommandResult:
    """§5.2 A member leaves while forming; the lead unit can never leave."""
    return _write(response, lambda: registry.drop_member(
        consortium_id, uscc, reason=body.reason, actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


@router.post("/{consortium_id}/agreement", **COMMAND, responses=EXISTING,
             summary="签署共建协议 / Sign the co-construction agreement")
def sign_agreement(consortium_id: ConsortiumId, body: SignAgreement, actor: WriterDep,
                   version: IfMatchDep, registry: RegistryDep,
                   response: Response) -> CommandResult:
    """§5.3 Record the agreement signed by the lead and every member."""
    return _write(response, lambda: registry.sign_agreement(
        consortium_id, signatories=list(body.signatories), mechanisms=list(body.mechanisms),
        construction_plan=body.construction_plan,
        no_university_justification=body.no_university_justification, actor=actor,
        effective_date=body.effective_date, document=document_of(body.document),
        expected_version=version))


@router.post("/{consortium_id}/application", **COMMAND, responses=EXISTING,
             summary="申报 / Submit the application")
def submit_application(consortium_id: ConsortiumId, body: SubmitApplication, actor: WriterDep,
                       version: IfMatchDep, registry: RegistryDep,
                       response: Response) -> CommandResult:
    """§5.4 Record the lead's application to its city bureau."""
    return _write(response, lambda: registry.submit_application(
        consortium_id, actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


@router.post("/{consortium_id}/recommendation", **COMMAND, responses=EXISTING,
             summary="设区市推荐 / City recommendation")
def recommend(consortium_id: ConsortiumId, body: Recommend, actor: WriterDep,
              version: IfMatchDep, registry: RegistryDep, response: Response) -> CommandResult:
    """§5.4 The city bureau recommends the application to the province."""
    return _write(response, lambda: registry.recommend(
        consortium_id, necessity=body.necessity, feasibility=body.feasibility, actor=actor,
        effective_date=body.effective_date, document=document_of(body.document),
        expected_version=version))


@router.post("/{consortium_id}/return", **COMMAND, responses=EXISTING,
             summary="退回申报 / Return the application")
def return_application(consortium_id: ConsortiumId, body: ReturnApplication, actor: WriterDep,
                       version: IfMatchDep, registry: RegistryDep,
                       response: Response) -> CommandResult:
    """§5.4 The city bureau returns the application for revision."""
    return _write(response, lambda: registry.return_application(
        consortium_id, reason=body.reason, actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


@router.post("/{consortium_id}/expert-review", **COMMAND, responses=EXISTING,
             summary="专家评估论证 / Expert review")
def record_expert_review(consortium_id: ConsortiumId, body: ExpertReview, actor: WriterDep,
                         version: IfMatchDep, registry: RegistryDep,
                         response: Response) -> CommandResult:
    """§5.4 Record the provincial expert review of the construction plan."""
    return _write(response, lambda: registry.record_expert_review(
        consortium_id, opinion=body.opinion, score=body.score, recommended=body.recommended,
        actor=actor, effective_date=body.effective_date, document=document_of(body.document),
        expected_version=version))


@router.post("/{consortium_id}/listing", **COMMAND, responses=EXISTING,
             summary="认定为省创新联合体 / List as a provincial consortium")
def approve(consortium_id: ConsortiumId, body: Approve, actor: WriterDep, version: IfMatchDep,
            registry: RegistryDep, response: Response) -> CommandResult:
    """§5.4 The province approves: the consortium is listed."""
    return _write(response, lambda: registry.approve(
        consortium_id, actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


@router.post("/{consortium_id}/rejection", **COMMAND, responses=EXISTING,
             summary="不予支持 / Reject the application")
def reject(consortium_id: ConsortiumId, body: Reject, actor: WriterDep, version: IfMatchDep,
           registry: RegistryDep, response: Response) -> CommandResult:
    """§5.4 The province does not support the application."""
    return _write(response, lambda: registry.reject(
        consortium_id, reason=body.reason, actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


# ---------------------------------------------------------------------------------- operation (§7)
@router.post("/{consortium_id}/supplementary-agreements", **COMMAND,
             responses=EXISTING, summary="签署补充协议 / Sign a supplementary agreement")
def sign_supplementary_agreement(consortium_id: ConsortiumId, body: SupplementaryAgreement,
                                 actor: WriterDep, version: IfMatchDep, registry: RegistryDep,
                                 response: Response) -> CommandResult:
    """§7.3 Record a supplementary agreement; ``result`` is its id (SA-n)."""
    return _write(response, lambda: registry.sign_supplementary_agreement(
        consortium_id, changes=[c.to_domain() for c in body.changes],
        signatories=list(body.signatories),
        no_university_justification=body.no_university_justification, actor=actor,
        effective_date=body.effective_date, document=document_of(body.document),
        expected_version=version))


@router.post("/{consortium_id}/annual-reports", **COMMAND, responses=EXISTING,
             summary="报送年度报告 / File the annual report")
def file_annual_report(consortium_id: ConsortiumId, body: AnnualReport, actor: WriterDep,
                       version: IfMatchDep, registry: RegistryDep,
                       response: Response) -> CommandResult:
    """§7.1 Record the year's annual report; ``result.late`` says whether it is late."""
    return _write(response, lambda: registry.file_annual_report(
        consortium_id, year=body.year, sections=dict(body.sections),
        explanations=dict(body.explanations), actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


@router.post("/{consortium_id}/evaluations", **COMMAND, responses=EXISTING,
             summary="绩效评价 / Record a performance evaluation")
def record_evaluation(consortium_id: ConsortiumId, body: Evaluation, actor: WriterDep,
                      version: IfMatchDep, registry: RegistryDep,
                      response: Response) -> CommandResult:
    """§7.2 Record a third-party performance evaluation."""
    return _write(response, lambda: registry.record_evaluation(
        consortium_id, agency=body.agency, period=body.period, scores=dict(body.scores),
        grade=body.grade, actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


@router.post("/{consortium_id}/rectification", **COMMAND, responses=EXISTING,
             summary="督促整改 / Order rectification")
def order_rectification(consortium_id: ConsortiumId, body: OrderRectification, actor: WriterDep,
                        version: IfMatchDep, registry: RegistryDep,
                        response: Response) -> CommandResult:
    """§7.2 Order rectification after a poor evaluation."""
    return _write(response, lambda: registry.order_rectification(
        consortium_id, requirements=body.requirements, deadline=body.deadline, actor=actor,
        effective_date=body.effective_date, document=document_of(body.document),
        expected_version=version))


@router.post("/{consortium_id}/rectification/completion", **COMMAND,
             responses=EXISTING, summary="整改完成 / Complete the rectification")
def complete_rectification(consortium_id: ConsortiumId, body: CompleteRectification,
                           actor: WriterDep, version: IfMatchDep, registry: RegistryDep,
                           response: Response) -> CommandResult:
    """§7.2 Record that the rectification was completed."""
    return _write(response, lambda: registry.complete_rectification(
        consortium_id, outcome=body.outcome, actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


@router.post("/{consortium_id}/delisting", **COMMAND, responses=EXISTING,
             summary="摘牌 / Delist")
def delist(consortium_id: ConsortiumId, body: Delisting, actor: WriterDep, version: IfMatchDep,
           registry: RegistryDep, response: Response) -> CommandResult:
    """§7.2/§7.3 Delist the consortium on a decision document."""
    return _write(response, lambda: registry.delist(
        consortium_id, reason=body.reason, explanation=body.explanation, actor=actor,
        effective_date=body.effective_date, document=document_of(body.document),
        expected_version=version))


# ---------------------------------------------------------------------------------- credit (§7.3)
@router.post("/{consortium_id}/credit-violations", **COMMAND,
             responses=EXISTING, summary="记录失信信息 / Record a credit violation")
def record_credit_violation(consortium_id: ConsortiumId, body: CreditViolationIn,
                            actor: WriterDep, version: IfMatchDep, registry: RegistryDep,
                            response: Response) -> CommandResult:
    """§7.3 Record a dishonesty record; ``result`` is its id (CR-n)."""
    return _write(response, lambda: registry.record_credit_violation(
        consortium_id, body.violation(), actor=actor, effective_date=body.effective_date,
        document=document_of(body.document), expected_version=version))


@router.post("/{consortium_id}/credit-violations/{record_id}/repair",
             **COMMAND, responses=EXISTING,
             summary="信用修复 / Repair a credit record")
def repair_credit(consortium_id: ConsortiumId, record_id: RecordId, body: CreditRepair,
                  actor: WriterDep, version: IfMatchDep, registry: RegistryDep,
                  response: Response) -> CommandResult:
    """Record the repair of a dishonesty record (not before its earliest repair date)."""
    return _write(response, lambda: registry.repair_credit(
        consortium_id, record_id, measures=body.measures, actor=actor,
        effective_date=body.effective_date, document=document_of(body.document),
        expected_version=version))


@router.post("/{consortium_id}/credit-violations/{record_id}/revocation",
             **COMMAND, responses=EXISTING,
             summary="撤销失信记录 / Revoke a credit record")
def revoke_credit(consortium_id: ConsortiumId, record_id: RecordId, body: CreditRevocation,
                  actor: WriterDep, version: IfMatchDep, registry: RegistryDep,
                  response: Response) -> CommandResult:
    """Revoke a dishonesty record made in error."""
    return _write(response, lambda: registry.revoke_credit(
        consortium_id, record_id, reason=body.reason, actor=actor,
        effective_date=body.effective_date, document=document_of(body.document),
        expected_version=version))


@router.post("/{consortium_id}/credit-violations/{record_id}/publicity-end",
             **COMMAND, responses=EXISTING,
             summary="公示期满 / End a credit record's publicity")
def end_credit_publicity(consortium_id: ConsortiumId, record_id: RecordId, body: PublicityEnd,
                         actor: WriterDep, version: IfMatchDep, registry: RegistryDep,
                         response: Response) -> CommandResult:
    """Record the end of a dishonesty record's publicity period."""
    return _write(response, lambda: registry.end_credit_publicity(
        consortium_id, record_id, actor=actor, effective_date=body.effective_date,
        expected_version=version))
