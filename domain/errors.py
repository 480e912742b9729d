"""Every broken rule of the guideline is one named ``DomainError`` subclass.

The API maps each class to one HTTP status in one table; the verifier reports them by name.
Each class carries a stable ``code`` (used in problem+json ``type`` URIs) and a Chinese title.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused because it would break a rule of the guideline."""

    code = "domain-error"
    title_zh = "违反指引规则"
    #: "conflict" — the request is well formed but the registry's state forbids it (HTTP 409);
    #: "invalid" — the request itself is bad input (HTTP 422); "forbidden" — the actor may not (403).
    kind = "conflict"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# --- identity and qualification (§4) ------------------------------------------------------------
class InvalidUSCC(DomainError):
    code, title_zh, kind = "invalid-uscc", "统一社会信用代码无效", "invalid"


class InvalidUnit(DomainError):
    code, title_zh, kind = "invalid-unit", "单位信息无效", "invalid"


class LeadNotRegisteredInJiangsu(DomainError):
    code, title_zh, kind = "lead-not-registered-in-jiangsu", "牵头单位未在江苏注册", "invalid"


class LeadNotQualified(DomainError):
    code, title_zh, kind = "lead-not-qualified", "牵头单位不符合基本条件", "invalid"


class SpecialisedMemberNotQualified(DomainError):
    code, title_zh, kind = "specialised-member-not-qualified", "专业机构成员不具备相应资质", "invalid"


class UnknownField(DomainError):
    code, title_zh, kind = "unknown-field", "未知的产业领域", "invalid"


class NoFieldNamed(DomainError):
    code, title_zh, kind = "no-field-named", "未明确产业领域", "invalid"


class UnknownCity(DomainError):
    code, title_zh, kind = "unknown-city", "未知的设区市", "invalid"


class InvalidDocument(DomainError):
    code, title_zh, kind = "invalid-document", "文件信息无效", "invalid"


class InvalidValue(DomainError):
    code, title_zh, kind = "invalid-value", "取值无效", "invalid"


# --- who may record what ------------------------------------------------------------------------
class RoleNotPermitted(DomainError):
    code, title_zh, kind = "role-not-permitted", "当前角色无权办理此事项", "forbidden"


class OutsideJurisdiction(DomainError):
    code, title_zh, kind = "outside-jurisdiction", "不属于本设区市管辖", "forbidden"


# --- lifecycle ----------------------------------------------------------------------------------
class InvalidTransition(DomainError):
    code, title_zh = "invalid-transition", "当前状态下不能办理此事项"


class LeadUnitCannotChange(DomainError):
    code, title_zh = "lead-unit-cannot-change", "牵头单位不可发生变动"


class DuplicateMember(DomainError):
    code, title_zh = "duplicate-member", "成员单位重复"


class NotAMember(DomainError):
    code, title_zh = "not-a-member", "不是成员单位"


class ChangeRequiresSupplementaryAgreement(DomainError):
    code, title_zh = "change-requires-supplementary-agreement", "变动须签署补充协议"


class UniversityOrInstituteRequired(DomainError):
    code, title_zh = "university-or-institute-required", "原则上应包含高校或科研院所"


class AgreementIncomplete(DomainError):
    code, title_zh, kind = "agreement-incomplete", "共建协议内容不完整", "invalid"


class AgreementNotSignedByAll(DomainError):
    code, title_zh = "agreement-not-signed-by-all", "共建协议未由全体成员签署"


class MembersRequired(DomainError):
    code, title_zh = "members-required", "创新联合体须有成员单位"


class SupplementaryAgreementNotSigned(DomainError):
    code, title_zh = "supplementary-agreement-not-signed", "补充协议未由相关单位签署"


class AnnualReportAlreadyFiled(DomainError):
    code, title_zh = "annual-report-already-filed", "该年度报告已报送"


class AnnualReportYearNotAllowed(DomainError):
    code, title_zh = "annual-report-year-not-allowed", "年度报告年度不符合要求"


class AnnualReportIncomplete(DomainError):
    code, title_zh, kind = "annual-report-incomplete", "年度报告内容不完整", "invalid"


class SupplementaryAgreementNotExplained(DomainError):
    code, title_zh = "supplementary-agreement-not-explained", "年度报告未说明补充协议"


class ApprovalWithoutFavourableReview(DomainError):
    code, title_zh = "approval-without-favourable-review", "专家评估未予推荐，不能认定"


class RectificationNotAllowed(DomainError):
    code, title_zh = "rectification-not-allowed", "不符合整改条件"


class DelistingNotJustified(DomainError):
    code, title_zh = "delisting-not-justified", "摘牌理由不成立"


class ConsortiumDelisted(DomainError):
    code, title_zh = "consortium-delisted", "已摘牌，仅可记录信用信息"


class SeriousCreditRecordInPublicity(DomainError):
    code, title_zh = "serious-credit-record-in-publicity", "存在公示期内的严重失信记录"


class CreditSubjectNotInConsortium(DomainError):
    code, title_zh = "credit-subject-not-in-consortium", "失信主体不是牵头单位或成员单位"


class CreditRecordNotFound(DomainError):
    code, title_zh = "credit-record-not-found", "失信记录不存在"


class CreditRecordClosed(DomainError):
    code, title_zh = "credit-record-closed", "失信记录已修复或撤销"


class CreditRepairTooEarly(DomainError):
    code, title_zh = "credit-repair-too-early", "未到最短公示期，不能信用修复"


class EffectiveDateInFuture(DomainError):
    code, title_zh, kind = "effective-date-in-future", "生效日期不能晚于今天", "invalid"


class EffectiveDateBeforePreviousEvent(DomainError):
    code, title_zh = "effective-date-before-previous-event", "生效日期早于上一事项"


class ConsortiumNotFound(DomainError):
    code, title_zh, kind = "consortium-not-found", "创新联合体不存在", "not-found"


def all_error_classes() -> list[type[DomainError]]:
    """Every concrete rule error, for the API's status table and the documentation."""
    found: list[type[DomainError]] = []
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


class StaleVersion(DomainError):
    """The writer's view of the consortium is out of date (optimistic concurrency)."""

    code, title_zh, kind = "stale-version", "数据已被他人修改，请刷新后重试", "precondition"
