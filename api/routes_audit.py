"""Auditors' endpoints: signed checkpoints (public, so anyone can keep copies), inclusion and
consistency proofs, and verification runs that do not block the request."""

from __future__ import annotations

import threading
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from api.auth import ApiKey
from api.deps import require_role
from api.problems import ApiProblem, problem_responses
from audit import signing, tree
from audit.store import Database
from domain.records import Role

router = APIRouter(prefix="/audit", tags=["审计 / audit"])
AuditorDep = Annotated[ApiKey, Depends(require_role(Role.AUDITOR, Role.PROVINCE))]


class CheckpointOut(BaseModel):
    size: int
    signed_at: str
    note: str


class InclusionOut(BaseModel):
    position: int
    leaf_index: int
    tree_size: int
    record_hash: str
    leaf_hash: str
    proof: list[str]
    root: str


class ConsistencyOut(BaseModel):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]


class VerificationOut(BaseModel):
    id: str
    state: Literal["running", "done", "failed"]
    semantic: bool
    records_done: int
    records_total: int
    report: dict[str, Any] | None = None
    error: str | None = None


def _db(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


@router.get("/checkpoints", response_model=list[CheckpointOut], responses=problem_responses(503),
            summary="全部已签名检查点 / Every signed checkpoint")
def list_checkpoints(request: Request) -> list[CheckpointOut]:
    """Every checkpoint the registry has signed, oldest first (keep copies: a later rewrite of
    history cannot match what you already hold)."""
    return [CheckpointOut(size=s.size, signed_at=s.signed_at, note=s.note)
            for s in signing.stored_checkpoints(_db(request))]


@router.get("/checkpoints/latest", response_class=PlainTextResponse,
            responses={**problem_responses(404, 503),
                       200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
            summary="最新检查点（签名文本）/ The latest checkpoint, as a signed note")
def latest_checkpoint(request: Request) -> PlainTextResponse:
    """The latest signed checkpoint in the C2SP signed-note format (docs/ledger.md)."""
    stored = signing.stored_checkpoints(_db(request))
    if not stored:
        raise ApiProblem("not-found", "尚无已签名的检查点 / no checkpoint has been signed yet")
    return PlainTextResponse(stored[-1].note)


@router.get("/proofs/inclusion", response_model=InclusionOut,
            responses=problem_responses(401, 403, 404, 422),
            summary="包含证明 / Inclusion proof of a record")
def inclusion(request: Request, _: AuditorDep, position: Annotated[int, Query(ge=1)],
              tree_size: Annotated[int | None, Query(ge=1)] = None) -> InclusionOut:
    """RFC 9162 inclusion proof of the record at ``position`` in the tree of ``tree_size``
    records (default: the current tree)."""
    db = _db(request)
    tree.integrate(db)
    try:
        p = tree.inclusion_proof(db, position, tree_size)
    except KeyError:
        raise ApiProblem("not-found", f"账本中没有位置{position} / no record at position "
                         f"{position}") from None
    except ValueError as e:
        raise ApiProblem("validation-error", str(e), field="tree_size") from None
    return InclusionOut(position=p.position, leaf_index=p.leaf_index, tree_size=p.tree_size,
                        record_hash=p.record_hash.hex(), leaf_hash=p.leaf_hash.hex(),
                        proof=[h.hex() for h in p.proof], root=p.root.hex())


@router.get("/proofs/consistency", response_model=ConsistencyOut,
            responses=problem_responses(401, 403, 422),
            summary="一致性证明 / Consistency proof between two tree sizes")
def consistency(request: Request, _: AuditorDep, old_size: Annotated[int, Query(ge=1)],
                new_size: Annotated[int | None, Query(ge=1)] = None) -> ConsistencyOut:
    """RFC 9162 proof that the tree of ``old_size`` records is a prefix of the tree of
    ``new_size`` (default: the current tree)."""
    db = _db(request)
    size = tree.integrate(db)
    new = new_size or size
    try:
        if old_size > new:
            raise ValueError(f"old_size {old_size} is larger than new_size {new}")
        proof = tree.consistency_proof(db, old_size, new)
        old_root, new_root = tree.tree_head(db, old_size)[1], tree.tree_head(db, new)[1]
    except ValueError as e:
        raise ApiProblem("validation-error", str(e)) from None
    return ConsistencyOut(old_size=old_size, new_size=new, old_root=old_root.hex(),
                          new_root=new_root.hex(), proof=[h.hex() for h in proof])


# ------------------------------------------------------------------------------ verification
_jobs: dict[str, VerificationOut] = {}
_jobs_lock = threading.Lock()


def _run(job: VerificationOut, db: Database) -> None:
    from audit import ledger
    from audit.semantic import semantic_audit
    from audit.verify import verify_chain

    def progress(done: int) -> None:
        job.records_done = done

    try:
        job.records_total = ledger.count(db)
        checkpoints, problems = signing.verified_checkpoints(db)
        chain = verify_chain(db, progress=progress, checkpoints=checkpoints)
        report: dict[str, Any] = {"chain": _jsonable(chain), "checkpoint_problems": problems}
        ok = chain.ok and not problems
        if job.semantic:
            semantic = semantic_audit(db)
            report["semantic"] = _jsonable(semantic)
            ok = ok and semantic.ok
        report["ok"] = ok
        job.report, job.state = report, "done"
    except Exception as e:  # reported to the auditor, never raised into the server
        job.error, job.state = f"{type(e).__name__}: {e}", "failed"


def _jsonable(report: Any) -> dict[str, Any]:
    import json

    out: dict[str, Any] = json.loads(report.to_json())
    return out


@router.post("/verifications", response_model=VerificationOut, status_code=202,
             responses=problem_responses(401, 403, 413, 422, 503),
             summary="开始一次完整校验 / Start a full verification")
def start_verification(request: Request, response: Response, _: AuditorDep,
                       semantic: bool = True) -> VerificationOut:
    """Walks the whole chain against the stored checkpoints (and, with ``semantic``, re-checks
    the guideline's rules on the raw history) in the background; poll the Location."""
    job = VerificationOut(id=uuid.uuid4().hex, state="running", semantic=semantic,
                          records_done=0, records_total=0)
    with _jobs_lock:
        _jobs[job.id] = job
    threading.Thread(target=_run, args=(job, _db(request)), daemon=True,
                     name=f"verification-{job.id}").start()
    response.headers["Location"] = f"{request.url.path}/{job.id}"
    return job


@router.get("/verifications/{job_id}", response_model=VerificationOut,
            responses=problem_responses(401, 403, 404),
            summary="校验进度与报告 / Verification progress and report")
def get_verification(job_id: str, _: AuditorDep) -> VerificationOut:
    """Progress while running; the report (chain, checkpoints and rules) when done."""
    with _jobs_lock:
        job = _jobs.get(job_id)
    if job is None:
        raise ApiProblem("not-found", f"没有校验任务{job_id} / no verification {job_id}")
    return job


@router.get("/records/{position}/proof-bundle", response_model=dict[str, Any],
            responses=problem_responses(401, 403, 404, 422),
            summary="单条记录的证明包 / A record with its proof bundle")
def record_proof(request: Request, _: AuditorDep, position: int) -> dict[str, Any]:
    """The record at ``position`` (its exact stored bytes), its inclusion proof in the tree of
    the latest signed checkpoint, that checkpoint and the keyring's keys — what an auditor
    attaches to a finding; verify it anywhere with ``python audit/offline.py FILE``."""
    from audit.export import record_proof_bundle

    db = _db(request)
    tree.integrate(db)
    stored = signing.stored_checkpoints(db)
    if not stored:
        raise ApiProblem("not-found", "尚无已签名的检查点 / no checkpoint has been signed yet")
    try:
        return record_proof_bundle(db, position, checkpoint_note=stored[-1].note,
                                   keys=signing.key_validities(db))
    except LookupError:
        raise ApiProblem("not-found", f"账本中没有位置{position} / no record at position "
                         f"{position}") from None
    except ValueError:
        raise ApiProblem("not-found", f"位置{position}晚于最新检查点 / position {position} is "
                         "after the latest checkpoint: sign a new one first") from None
