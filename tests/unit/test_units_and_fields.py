"""Units (§4), lead-unit qualification (§4.1), specialised members (§4.2.3), the field catalogue
(§3.1), technology kinds (§2), cities and the small records every event carries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.cities import CITIES, check_city
from domain.consortium import Consortium
from domain.errors import (
    InvalidDocument,
    InvalidUnit,
    InvalidUSCC,
    InvalidValue,
    LeadNotQualified,
    LeadNotRegisteredInJiangsu,
    NoFieldNamed,
    SpecialisedMemberNotQualified,
    UnknownCity,
    UnknownField,
)
from domain.fields import FIELDS, FieldGroup, TechnologyKind, check_fields
from domain.records import Actor, Document, Role
from domain.units import (
    INDUSTRY_LEADER_MIN_REVENUE_YUAN,
    MIN_RD_INTENSITY,
    LeadCategory,
    LeadQualification,
    Specialisation,
    SpecialisedRole,
    Unit,
    UnitKind,
    make_uscc,
)
from tests.factories import NANJING, PROVINCE, TODAY, D, forming, lead_qualification, unit, uscc

BILLION = 1_000_000_000
ENTERPRISE_CATEGORIES = [
    LeadCategory.NATIONAL_SCI_TECH_LEADING_ENTERPRISE,
    LeadCategory.PROVINCIAL_SCI_TECH_LEADING_ENTERPRISE,
    LeadCategory.INDUSTRY_LEADER,
    LeadCategory.UNICORN,
]
PLATFORM_CATEGORIES = [
    LeadCategory.NATIONAL_LABORATORY,
    LeadCategory.PROVINCIAL_LABORATORY,
    LeadCategory.NATIONAL_TECH_INNOVATION_CENTRE,
    LeadCategory.PROVINCIAL_TECH_INNOVATION_CENTRE,
]


def jiangsu_enterprise() -> Unit:
    return unit(UnitKind.ENTERPRISE, division="320500")


# --- §4.1.2 thresholds ----------------------------------------------------------------------------
def test_thresholds_are_one_billion_yuan_and_three_percent():
    assert INDUSTRY_LEADER_MIN_REVENUE_YUAN == BILLION
    assert Decimal("0.03") == MIN_RD_INTENSITY


def test_industry_leader_at_both_thresholds_qualifies():
    LeadQualification(LeadCategory.INDUSTRY_LEADER, annual_revenue_yuan=BILLION,
                      rd_intensity=Decimal("0.03")).check(jiangsu_enterprise())


def test_industry_leader_well_above_thresholds_qualifies():
    LeadQualification(LeadCategory.INDUSTRY_LEADER, annual_revenue_yuan=50 * BILLION,
                      rd_intensity=Decimal("0.12")).check(jiangsu_enterprise())


@pytest.mark.parametrize("revenue", [None, 0, BILLION - 1, 999_000_000])
def test_industry_leader_below_one_billion_revenue_is_not_qualified(revenue):
    q = LeadQualification(LeadCategory.INDUSTRY_LEADER, annual_revenue_yuan=revenue,
                          rd_intensity=Decimal("0.10"))
    with pytest.raises(LeadNotQualified) as info:
        q.check(jiangsu_enterprise())
    assert info.value.details["field"] == "annual_revenue_yuan"


@pytest.mark.parametrize("intensity",
                         [None, Decimal("0"), Decimal("0.0299"), Decimal("0.02999999")])
def test_industry_leader_below_three_percent_rd_is_not_qualified(intensity):
    q = LeadQualification(LeadCategory.INDUSTRY_LEADER, annual_revenue_yuan=10 * BILLION,
                          rd_intensity=intensity)
    with pytest.raises(LeadNotQualified) as info:
        q.check(jiangsu_enterprise())
    assert info.value.details["field"] == "rd_intensity"


def test_industry_leader_needs_revenue_and_intensity_not_either():
    with pytest.raises(LeadNotQualified):
        LeadQualification(LeadCategory.INDUSTRY_LEADER, annual_revenue_yuan=BILLION,
                          rd_intensity=Decimal("0.01")).check(jiangsu_enterprise())
    with pytest.raises(LeadNotQualified):
        LeadQualification(LeadCategory.INDUSTRY_LEADER, annual_revenue_yuan=BILLION // 2,
                          rd_intensity=Decimal("0.50")).check(jiangsu_enterprise())


@pytest.mark.parametrize("intensity", [Decimal("0.03"), Decimal("0.031"), Decimal("0.8")])
def test_unicorn_with_three_percent_rd_qualifies_whatever_its_revenue(intensity):
    LeadQualification(LeadCategory.UNICORN, rd_intensity=intensity).check(jiangsu_enterprise())
    LeadQualification(LeadCategory.UNICORN, annual_revenue_yuan=1,
                      rd_intensity=intensity).check(jiangsu_enterprise())


@pytest.mark.parametrize("intensity", [None, Decimal("0.0299"), Decimal("0")])
def test_unicorn_below_three_percent_rd_is_not_qualified(intensity):
    with pytest.raises(LeadNotQualified) as info:
        LeadQualification(LeadCategory.UNICORN, rd_intensity=intensity).check(jiangsu_enterprise())
    assert info.value.details["field"] == "rd_intensity"


@pytest.mark.parametrize("category", [LeadCategory.NATIONAL_SCI_TECH_LEADING_ENTERPRISE,
                                      LeadCategory.PROVINCIAL_SCI_TECH_LEADING_ENTERPRISE])
def test_sci_tech_leading_enterprise_qualifies_without_figures(category):
    LeadQualification(category).check(jiangsu_enterprise())


@pytest.mark.parametrize("category", PLATFORM_CATEGORIES)
@pytest.mark.parametrize("kind", list(UnitKind))
def test_platform_categories_qualify_with_legal_personality(category, kind):
    assert category.is_platform
    LeadQualification(category).check(unit(kind, division="320100"))


@pytest.mark.parametrize("category", PLATFORM_CATEGORIES)
def test_platform_without_independent_legal_personality_is_not_qualified(category):
    q = LeadQualification(category, has_independent_legal_personality=False)
    with pytest.raises(LeadNotQualified):
        q.check(unit(UnitKind.RESEARCH_INSTITUTE))


@pytest.mark.parametrize("category", ENTERPRISE_CATEGORIES)
@pytest.mark.parametrize("kind", [UnitKind.UNIVERSITY, UnitKind.RESEARCH_INSTITUTE,
                                  UnitKind.OTHER])
def test_enterprise_categories_require_an_enterprise(category, kind):
    assert not category.is_platform
    q = LeadQualification(category, annual_revenue_yuan=10 * BILLION, rd_intensity=Decimal("0.1"))
    with pytest.raises(LeadNotQualified) as info:
        q.check(unit(kind))
    assert info.value.details["category"] == category.value


@pytest.mark.parametrize("category", list(LeadCategory))
@pytest.mark.parametrize("division", ["310100", "330100", "340100", "440300"])
def test_lead_registered_outside_jiangsu_is_refused(category, division):
    q = LeadQualification(category, annual_revenue_yuan=10 * BILLION, rd_intensity=Decimal("0.1"))
    with pytest.raises(LeadNotRegisteredInJiangsu) as info:
        q.check(unit(UnitKind.ENTERPRISE, division=division))
    assert info.value.details["division_code"] == division


def test_jiangsu_check_comes_before_other_conditions():
    # an unqualified, non-Jiangsu lead is told first about Jiangsu
    q = LeadQualification(LeadCategory.INDUSTRY_LEADER)
    with pytest.raises(LeadNotRegisteredInJiangsu):
        q.check(unit(UnitKind.UNIVERSITY, division="310100"))


def test_float_revenue_is_refused():
    with pytest.raises(LeadNotQualified):
        LeadQualification(LeadCategory.INDUSTRY_LEADER, annual_revenue_yuan=2e9,  # type: ignore
                          rd_intensity=Decimal("0.05"))


def test_float_rd_intensity_is_refused():
    with pytest.raises(LeadNotQualified):
        LeadQualification(LeadCategory.UNICORN, rd_intensity=0.05)  # type: ignore[arg-type]



@pytest.mark.parametrize("category", [LeadCategory.INDUSTRY_LEADER, LeadCategory.UNICORN])
def test_rd_intensity_that_is_not_a_number_is_not_qualified(category):
    q = LeadQualification(category, annual_revenue_yuan=10 * BILLION, rd_intensity=Decimal("NaN"))
    with pytest.raises(LeadNotQualified):
        q.check(jiangsu_enterprise())

def test_lead_category_labels_are_chinese():
    assert LeadCategory.INDUSTRY_LEADER.label_zh == "行业龙头企业"
    assert LeadCategory.UNICORN.label_zh == "独角兽企业"
    assert LeadCategory.NATIONAL_LABORATORY.label_zh == "国家实验室"
    assert LeadCategory.PROVINCIAL_TECH_INNOVATION_CENTRE.label_zh == "省技术创新中心"
    assert {c for c in LeadCategory if c.is_platform} == set(PLATFORM_CATEGORIES)


# --- select_lead applies §4.1 -------------------------------------------------------------------
def test_select_lead_refuses_a_lead_outside_jiangsu():
    with pytest.raises(LeadNotRegisteredInJiangsu):
        Consortium.select_lead(
            name="长三角联合体", city="nanjing", lead=unit(division="310100"),
            qualification=lead_qualification(), fields=["new_energy"], actor=NANJING,
            effective_date=D(2024, 1, 1), today=TODAY)


def test_select_lead_refuses_an_unqualified_lead():
    with pytest.raises(LeadNotQualified):
        Consortium.select_lead(
            name="联合体", city="nanjing", lead=unit(),
            qualification=LeadQualification(LeadCategory.INDUSTRY_LEADER,
                                            annual_revenue_yuan=BILLION - 1,
                                            rd_intensity=Decimal("0.05")),
            fields=["new_energy"], actor=NANJING, effective_date=D(2024, 1, 1), today=TODAY)


def test_select_lead_accepts_a_platform_lead():
    lab = unit(UnitKind.RESEARCH_INSTITUTE, name="紫金山实验室")
    c = Consortium.select_lead(
        name="未来网络创新联合体", city="nanjing", lead=lab,
        qualification=LeadQualification(LeadCategory.PROVINCIAL_LABORATORY),
        fields=["future_networks"], technologies=[TechnologyKind.FUNDAMENTAL_FRONTIER],
        actor=NANJING, effective_date=D(2024, 1, 1), today=TODAY)
    assert c.lead == lab
    assert c.technologies == (TechnologyKind.FUNDAMENTAL_FRONTIER,)


def test_members_may_be_registered_outside_jiangsu():
    c = forming()
    shanghai = unit(UnitKind.UNIVERSITY, division="310100")
    c.admit_member(shanghai, actor=NANJING, effective_date=D(2024, 2, 1), today=TODAY)
    assert shanghai.uscc in c.members


# --- units ----------------------------------------------------------------------------------------
def test_unit_identity_is_its_uscc():
    code = uscc()
    u = Unit(code, "某公司", UnitKind.ENTERPRISE)
    assert u.code.value == code


def test_unit_with_invalid_uscc_is_refused():
    with pytest.raises(InvalidUSCC):
        Unit("91320100ABCDEFGHIJ", "某公司", UnitKind.ENTERPRISE)


@pytest.mark.parametrize("name", ["", "   "])
def test_unit_needs_a_name(name):
    with pytest.raises(InvalidUnit):
        Unit(uscc(), name, UnitKind.ENTERPRISE)


def test_unit_name_at_most_200_characters():
    Unit(uscc(), "名" * 200, UnitKind.ENTERPRISE)
    with pytest.raises(InvalidUnit):
        Unit(uscc(), "名" * 201, UnitKind.ENTERPRISE)


@pytest.mark.parametrize(("kind", "expected"), [
    (UnitKind.UNIVERSITY, True), (UnitKind.RESEARCH_INSTITUTE, True),
    (UnitKind.ENTERPRISE, False), (UnitKind.OTHER, False),
])
def test_university_or_institute(kind, expected):
    assert unit(kind).is_university_or_institute is expected


def test_unit_kind_labels():
    assert [k.label_zh for k in UnitKind] == ["企业", "高校", "科研院所", "其他组织机构"]


# --- specialised members (§4.2.3) ---------------------------------------------------------------
SPECIALISED_CASES = [
    # role, qualifying evidence, non-qualifying evidence
    (SpecialisedRole.PROOF_OF_CONCEPT, {"jiangsu_poc_centre": True}, {"jiangsu_poc_centre": False}),
    (SpecialisedRole.TESTING_INSPECTION, {"accreditation": "CNAS L12345"}, {"accreditation": "  "}),
    (SpecialisedRole.TECHNOLOGY_TRANSFER, {"technology_managers": 1}, {"technology_managers": 0}),
    (SpecialisedRole.SCI_TECH_FINANCE, {"startup_services": "孵化投资服务"},
     {"startup_services": ""}),
]


@pytest.mark.parametrize(("role", "good", "bad"), SPECIALISED_CASES)
def test_specialised_member_with_its_qualification_is_accepted(role, good, bad):
    spec = Specialisation(role, **good)
    spec.check()
    u = unit(UnitKind.OTHER, specialisation=spec)
    assert u.specialisation == spec


@pytest.mark.parametrize(("role", "good", "bad"), SPECIALISED_CASES)
def test_specialised_member_without_its_qualification_is_refused(role, good, bad):
    spec = Specialisation(role, **bad)
    with pytest.raises(SpecialisedMemberNotQualified) as info:
        spec.check()
    assert info.value.details["role"] == role.value
    with pytest.raises(SpecialisedMemberNotQualified):
        unit(UnitKind.OTHER, specialisation=spec)


@pytest.mark.parametrize(("role", "good", "bad"), SPECIALISED_CASES)
def test_specialised_member_qualification_of_another_role_does_not_count(role, good, bad):
    # evidence for every other role, but not for this one
    evidence: dict[str, Any] = {"jiangsu_poc_centre": True, "accreditation": "CMA 2024",
                                "technology_managers": 5, "startup_services": "天使投资"}
    evidence.update(bad)
    with pytest.raises(SpecialisedMemberNotQualified):
        Specialisation(role, **evidence).check()


def test_specialised_roles_have_chinese_labels():
    assert SpecialisedRole.PROOF_OF_CONCEPT.label_zh == "概念验证机构"
    assert SpecialisedRole.TESTING_INSPECTION.label_zh == "检验检测机构"
    assert SpecialisedRole.TECHNOLOGY_TRANSFER.label_zh == "成果转移转化机构"
    assert SpecialisedRole.SCI_TECH_FINANCE.label_zh == "科技金融机构"


def test_specialised_member_can_be_admitted():
    c = forming()
    poc = unit(UnitKind.OTHER, specialisation=Specialisation(SpecialisedRole.PROOF_OF_CONCEPT,
                                                             jiangsu_poc_centre=True))
    c.admit_member(poc, actor=NANJING, effective_date=D(2024, 2, 1), today=TODAY)
    assert c.members[poc.uscc].specialisation is not None


# --- field catalogue (§3.1) ---------------------------------------------------------------------
EMERGING_ZH = {"高端装备", "集成电路", "新能源", "新材料", "生物医药", "新能源汽车", "新型电力装备",
               "节能环保", "软件与信息服务", "物联网", "新一代信息通信", "高技术船舶和海工装备",
               "航空航天"}
FUTURE_ZH = {"第三代半导体", "通用人工智能", "类脑智能", "量子科技", "氢能和新型储能",
             "深海深地空天", "合成生物", "细胞和基因技术", "未来网络", "先进计算", "元宇宙"}


def test_catalogue_has_13_emerging_and_11_future_fields():
    emerging = [f for f in FIELDS.values() if f.group is FieldGroup.EMERGING]
    future = [f for f in FIELDS.values() if f.group is FieldGroup.FUTURE]
    assert len(emerging) == 13
    assert len(future) == 11
    assert len(FIELDS) == 24


def test_catalogue_chinese_labels_match_the_guideline():
    assert {f.zh for f in FIELDS.values() if f.group is FieldGroup.EMERGING} == EMERGING_ZH
    assert {f.zh for f in FIELDS.values() if f.group is FieldGroup.FUTURE} == FUTURE_ZH


def test_every_field_has_code_chinese_and_english_labels():
    for code, f in FIELDS.items():
        assert f.code == code
        assert f.zh.strip() and f.en.strip()
        assert f.en.isascii()
        assert not f.zh.isascii()
    assert len({f.en for f in FIELDS.values()}) == 24


def test_three_technology_kinds_with_labels():
    assert len(TechnologyKind) == 3
    assert "卡脖子" in TechnologyKind.CHOKE_POINT.label_zh
    assert "先发优势" in TechnologyKind.FIRST_MOVER.label_zh
    assert "基础前沿" in TechnologyKind.FUNDAMENTAL_FRONTIER.label_zh
    for kind in TechnologyKind:
        assert kind.label_en.strip()


def test_check_fields_accepts_known_fields_and_drops_duplicates_keeping_order():
    assert check_fields(["quantum", "integrated_circuits", "quantum"]) == (
        "quantum", "integrated_circuits")
    assert check_fields(("aerospace",)) == ("aerospace",)


@pytest.mark.parametrize("codes", [[], ()])
def test_no_field_named_is_refused(codes):
    with pytest.raises(NoFieldNamed):
        check_fields(codes)


@pytest.mark.parametrize("code", ["blockchain", "集成电路", "QUANTUM", ""])
def test_unknown_field_is_refused(code):
    with pytest.raises(UnknownField) as info:
        check_fields(["quantum", code])
    assert info.value.details["field"] == code


def test_select_lead_needs_a_known_field():
    kw: dict[str, Any] = dict(name="联合体", city="nanjing", qualification=lead_qualification(),
                              actor=NANJING, effective_date=D(2024, 1, 1), today=TODAY)
    with pytest.raises(NoFieldNamed):
        Consortium.select_lead(lead=unit(), fields=[], **kw)
    with pytest.raises(UnknownField):
        Consortium.select_lead(lead=unit(), fields=["blockchain"], **kw)
    c = Consortium.select_lead(lead=unit(), fields=["metaverse", "metaverse"], **kw)
    assert c.fields == ("metaverse",)


# --- cities ---------------------------------------------------------------------------------------
def test_thirteen_jiangsu_cities_with_division_prefixes():
    assert len(CITIES) == 13
    prefixes = sorted(p for _, _, p in CITIES.values())
    assert prefixes == [f"32{n:02d}" for n in range(1, 14)]
    assert CITIES["nanjing"][:2] == ("南京市", "Nanjing")
    assert CITIES["suzhou"][2] == "3205"


@pytest.mark.parametrize("code", list(CITIES))
def test_check_city_accepts_each_city(code):
    assert check_city(code) == code


@pytest.mark.parametrize("code", ["shanghai", "Nanjing", "南京市", ""])
def test_unknown_city_is_refused(code):
    with pytest.raises(UnknownCity):
        check_city(code)


def test_select_lead_refuses_an_unknown_city():
    with pytest.raises(UnknownCity):
        Consortium.select_lead(name="联合体", city="hangzhou", lead=unit(),
                               qualification=lead_qualification(), fields=["quantum"],
                               actor=PROVINCE, effective_date=D(2024, 1, 1), today=TODAY)


def test_make_uscc_for_each_city_division_is_jiangsu():
    for _, _, prefix in CITIES.values():
        u = Unit(make_uscc(prefix + "00", "ABCDEFGH"), "单位", UnitKind.ENTERPRISE)
        assert u.code.is_jiangsu


# --- actors and documents -----------------------------------------------------------------------
def test_city_bureau_actor_needs_a_known_city():
    with pytest.raises(InvalidValue):
        Actor("u", Role.CITY_BUREAU, "某市科技局")
    with pytest.raises(UnknownCity):
        Actor("u", Role.CITY_BUREAU, "某市科技局", city="hangzhou")
    assert Actor("u", Role.CITY_BUREAU, "无锡市科学技术局", city="wuxi").city == "wuxi"


@pytest.mark.parametrize(("user", "org"), [("", "省科技厅"), ("u", " ")])
def test_actor_needs_user_and_organisation(user, org):
    with pytest.raises(InvalidValue):
        Actor(user, Role.PROVINCE, org)


def test_document_needs_title_and_sha256():
    Document("认定通知", "a" * 64)
    with pytest.raises(InvalidDocument):
        Document(" ", "a" * 64)
    for bad in ["A" * 64, "a" * 63, "g" * 64, ""]:
        with pytest.raises(InvalidDocument):
            Document("认定通知", bad)
