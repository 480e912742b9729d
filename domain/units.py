"""Units (单位) and their identity: the unified social credit code (统一社会信用代码, GB 32100-2015),
unit kinds (§4.2), specialised member roles (§4.2.3) and lead-unit qualifications (§4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from domain.errors import (
    InvalidUnit,
    InvalidUSCC,
    LeadNotQualified,
    LeadNotRegisteredInJiangsu,
    SpecialisedMemberNotQualified,
)

#: The 31 symbols of GB 32100-2015 (no I, O, S, V, Z); a symbol's value is its index.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714 organisation code


def uscc_check_character(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def _organisation_code_is_valid(code9: str) -> bool:
    def value(c: str) -> int:
        return int(c) if c.isdigit() else ord(c) - 55

    total = sum(value(c) * w for c, w in zip(code9[:8], _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    expected = {10: "X", 11: "0"}.get(check, str(check))
    return code9[8] == expected


@lru_cache(maxsize=65_536)  # read models ask again for every member on every change
def organisation_code_ok(uscc: str) -> bool:
    """GB 11714 check of a USCC's characters 9–17 (False for anything malformed)."""
    code9 = uscc[8:17]
    if len(code9) != 9 or any(c not in USCC_ALPHABET for c in code9):
        return False
    return _organisation_code_is_valid(code9)


@dataclass(frozen=True, slots=True)
class USCC:
    """A validated unified social credit code. Its identity never changes, whatever the unit's name."""

    value: str

    def __post_init__(self) -> None:
        v = self.value
        if not isinstance(v, str) or len(v) != 18:
            n = len(v) if isinstance(v, str) else "?"
            raise InvalidUSCC(
                f"统一社会信用代码应为18位，实为{n}位 / a USCC has 18 characters, got {n}",
                reason="length", length=n,
            )
        for i, c in enumerate(v):
            if c not in USCC_ALPHABET:
                raise InvalidUSCC(
                    f"第{i + 1}位字符“{c}”不在代码字符集中 / character {i + 1} '{c}' is outside "
                    "the 31-symbol alphabet (no I, O, S, V, Z; upper case)",
                    reason="character", position=i + 1, character=c,
                )
        expected = uscc_check_character(v[:17])
        if v[17] != expected:
            raise InvalidUSCC(
                f"校验码应为“{expected}”，实为“{v[17]}” / wrong check character: "
                f"expected '{expected}', got '{v[17]}'",
                reason="check", expected=expected, got=v[17],
            )

    @classmethod
    def parse(cls, text: str) -> USCC:
        """Parse user input: surrounding blanks are dropped; case is kept (lower case is invalid)."""
        return cls(text.strip())

    @property
    def registering_authority(self) -> str:
        return self.value[0]

    @property
    def entity_type(self) -> str:
        return self.value[1]

    @property
    def division_code(self) -> str:
        """The registering authority's administrative division code (characters 3–8)."""
        return self.value[2:8]

    @property
    def organisation_code(self) -> str:
        return self.value[8:17]

    @property
    def is_jiangsu(self) -> bool:
        """Registered by a Jiangsu authority (division code 32xxxx)."""
        return self.division_code.startswith("32")

    @property
    def organisation_code_ok(self) -> bool:
        """GB 11714 check of characters 9–17. A failure is flagged, never rejected: codes issued
        to some entity types do not follow GB 11714."""
        return organisation_code_ok(self.value)

    def __str__(self) -> str:
        return self.value


class UnitKind(StrEnum):
    """Kinds of independent legal entity (§4.2)."""

    ENTERPRISE = "enterprise"  # 企业
    UNIVERSITY = "university"  # 高校
    RESEARCH_INSTITUTE = "research_institute"  # 科研院所
    OTHER = "other"  # 其他组织机构

    @property
    def label_zh(self) -> str:
        return {"enterprise": "企业", "university": "高校", "research_institute": "科研院所",
                "other": "其他组织机构"}[self.value]


class SpecialisedRole(StrEnum):
    """Specialised members encouraged by §4.2.3, each needing its own qualification."""

    PROOF_OF_CONCEPT = "proof_of_concept"  # 概念验证机构: 江苏省概念验证中心建设单位
    TESTING_INSPECTION = "testing_inspection"  # 检验检测机构: 相关资质
    TECHNOLOGY_TRANSFER = "technology_transfer"  # 成果转移转化机构: 专业技术经理人队伍
    SCI_TECH_FINANCE = "sci_tech_finance"  # 科技金融机构: 服务初创期科技型中小企业的经验

    @property
    def label_zh(self) -> str:
        return {"proof_of_concept": "概念验证机构", "testing_inspection": "检验检测机构",
                "technology_transfer": "成果转移转化机构", "sci_tech_finance": "科技金融机构"}[
            self.value
        ]


@dataclass(frozen=True, slots=True)
class Specialisation:
    """A specialised role and the evidence of the qualification it needs (§4.2.3)."""

    role: SpecialisedRole
    #: 概念验证: designated a Jiangsu proof-of-concept centre construction unit.
    jiangsu_poc_centre: bool = False
    #: 检验检测: the accreditation held (e.g. a CMA or CNAS certificate number).
    accreditation: str = ""
    #: 成果转移转化: number of professional technology managers (技术经理人).
    technology_managers: int = 0
    #: 科技金融: experience of start-up mentoring, technical and financing services.
    startup_services: str = ""

    def check(self) -> None:
        """Raise ``SpecialisedMemberNotQualified`` unless the role's qualification is present."""
        missing = {
            SpecialisedRole.PROOF_OF_CONCEPT: (
                not self.jiangsu_poc_centre, "应为江苏省概念验证中心建设单位 / must be a Jiangsu "
                "proof-of-concept centre construction unit"),
            SpecialisedRole.TESTING_INSPECTION: (
                not self.accreditation.strip(), "应具有相关资质 / must hold the relevant accreditation"),
            SpecialisedRole.TECHNOLOGY_TRANSFER: (
                self.technology_managers < 1, "应具有专业技术经理人队伍 / must have professional "
                "technology managers"),
            SpecialisedRole.SCI_TECH_FINANCE: (
                not self.startup_services.strip(), "应具有服务初创期科技型中小企业的经验 / must have "
                "experience serving start-up technology SMEs"),
        }[self.role]
        if missing[0]:
            raise SpecialisedMemberNotQualified(missing[1], role=self.role.value)


@dataclass(frozen=True, slots=True)
class Unit:
    """An independent legal entity taking part in a consortium. Identity = USCC."""

    uscc: str
    name: str
    kind: UnitKind
    specialisation: Specialisation | None = None

    def __post_init__(self) -> None:
        USCC(self.uscc)
        if not self.name.strip():
            raise InvalidUnit("单位名称不能为空 / a unit needs a name", field="name")
        if len(self.name) > 200:
            raise InvalidUnit("单位名称过长 / unit name longer than 200 characters", field="name")
        if self.specialisation is not None:
            self.specialisation.check()

    @property
    def code(self) -> USCC:
        return USCC(self.uscc)

    @property
    def is_university_or_institute(self) -> bool:
        return self.kind in (UnitKind.UNIVERSITY, UnitKind.RESEARCH_INSTITUTE)


class LeadCategory(StrEnum):
    """§4.1: enterprise categories and major S&T platform categories that may lead."""

    NATIONAL_SCI_TECH_LEADING_ENTERPRISE = "national_sci_tech_leading_enterprise"  # 国家科技领军企业
    PROVINCIAL_SCI_TECH_LEADING_ENTERPRISE = "provincial_sci_tech_leading_enterprise"  # 省科技领军企业
    INDUSTRY_LEADER = "industry_leader"  # 行业龙头企业
    UNICORN = "unicorn"  # 独角兽企业
    NATIONAL_LABORATORY = "national_laboratory"  # 国家实验室
    PROVINCIAL_LABORATORY = "provincial_laboratory"  # 省实验室
    NATIONAL_TECH_INNOVATION_CENTRE = "national_tech_innovation_centre"  # 国家技术创新中心
    PROVINCIAL_TECH_INNOVATION_CENTRE = "provincial_tech_innovation_centre"  # 省技术创新中心

    @property
    def is_platform(self) -> bool:
        return self in _PLATFORMS

    @property
    def label_zh(self) -> str:
        return _LEAD_LABELS[self]


_PLATFORMS = {
    LeadCategory.NATIONAL_LABORATORY, LeadCategory.PROVINCIAL_LABORATORY,
    LeadCategory.NATIONAL_TECH_INNOVATION_CENTRE, LeadCategory.PROVINCIAL_TECH_INNOVATION_CENTRE,
}
_LEAD_LABELS = {
    LeadCategory.NATIONAL_SCI_TECH_LEADING_ENTERPRISE: "国家科技领军企业",
    LeadCategory.PROVINCIAL_SCI_TECH_LEADING_ENTERPRISE: "省科技领军企业",
    LeadCategory.INDUSTRY_LEADER: "行业龙头企业",
    LeadCategory.UNICORN: "独角兽企业",
    LeadCategory.NATIONAL_LABORATORY: "国家实验室",
    LeadCategory.PROVINCIAL_LABORATORY: "省实验室",
    LeadCategory.NATIONAL_TECH_INNOVATION_CENTRE: "国家技术创新中心",
    LeadCategory.PROVINCIAL_TECH_INNOVATION_CENTRE: "省技术创新中心",
}

#: §4.1.2: an industry leader's annual sales revenue is at least 1 billion yuan (10亿元).
INDUSTRY_LEADER_MIN_REVENUE_YUAN = 1_000_000_000
#: §4.1.2: industry leaders and unicorns invest at least 3 % of revenue in R&D (研发投入强度).
MIN_RD_INTENSITY = Decimal("0.03")


@dataclass(frozen=True, slots=True)
class LeadQualification:
    """Evidence that a unit may lead (§4.1). Money is integer yuan; intensity a Decimal fraction."""

    category: LeadCategory
    annual_revenue_yuan: int | None = None
    rd_intensity: Decimal | None = None  # e.g. Decimal("0.045") for 4.5 %
    has_independent_legal_personality: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.annual_revenue_yuan, float) or isinstance(self.rd_intensity, float):
            raise LeadNotQualified("金额与比例不得使用浮点数 / money and ratios are never floats",
                                   field="annual_revenue_yuan")

    def check(self, lead: Unit) -> None:
        """Raise the named error of the first §4.1 condition the lead fails."""
        if not lead.code.is_jiangsu:
            raise LeadNotRegisteredInJiangsu(
                f"牵头单位应注册在江苏（代码第3–8位以32开头），实为{lead.code.division_code} / the lead "
                f"unit must be registered in Jiangsu (division 32xxxx), got {lead.code.division_code}",
                division_code=lead.code.division_code,
            )
        c = self.category
        if c.is_platform:
            if not self.has_independent_legal_personality:
                raise LeadNotQualified(
                    "重大科技平台应具有独立法人资格 / a platform lead needs independent legal personality",
                    category=c.value)
            return
        if lead.kind is not UnitKind.ENTERPRISE:
            raise LeadNotQualified(
                f"“{c.label_zh}”须为企业 / category {c.value} requires an enterprise",
                category=c.value)
        if c is LeadCategory.INDUSTRY_LEADER and (
            self.annual_revenue_yuan is None
            or self.annual_revenue_yuan < INDUSTRY_LEADER_MIN_REVENUE_YUAN
        ):
            raise LeadNotQualified(
                "行业龙头企业年销售收入应在10亿元以上 / an industry leader needs annual revenue of at "
                "least 1 billion yuan", category=c.value, field="annual_revenue_yuan")
        if c in (LeadCategory.INDUSTRY_LEADER, LeadCategory.UNICORN) and (
            self.rd_intensity is None or not self.rd_intensity.is_finite()
            or self.rd_intensity < MIN_RD_INTENSITY
        ):
            raise LeadNotQualified(
                "研发投入强度不低于3% / R&D intensity must be at least 3 %",
                category=c.value, field="rd_intensity")


def make_uscc(division_code: str, organisation_body: str, *, authority: str = "9",
              entity_type: str = "1") -> str:
    """Compose a valid USCC from a 6-digit division code and an 8-character organisation-code
    body (both check characters computed). For examples, fixtures and demos."""
    org = organisation_body
    if len(org) != 8 or any(c not in USCC_ALPHABET for c in org):
        raise InvalidUSCC("the organisation-code body is 8 characters of the USCC alphabet",
                          reason="character")
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w
                for c, w in zip(org, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    org += {10: "X", 11: "0"}.get(check, str(check))
    first17 = authority + entity_type + division_code + org
    return first17 + uscc_check_character(first17)
