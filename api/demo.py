"""A realistic demo history, recorded through the domain: four consortia in different fields and
cities — one listed and changed by a supplementary agreement, one late with its report, rated poor
and rectified, one delisted after a serious credit violation, one still under application."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

from domain.consortium import Change, CreditViolation
from domain.records import Actor, Document, Role
from domain.registry import Registry
from domain.rules import (
    ChangeKind,
    Grade,
    Mechanism,
    ReportSection,
    Severity,
    ViolationContext,
)
from domain.units import (
    LeadCategory,
    LeadQualification,
    Specialisation,
    SpecialisedRole,
    Unit,
    UnitKind,
    make_uscc,
)

PROVINCE = Actor("wang.li", Role.PROVINCE, "江苏省科学技术厅")
AGENCY = Actor("zhao.min", Role.EVALUATION_AGENCY, "江苏省科技评估中心（第三方）")


def city(user: str, code: str, name: str) -> Actor:
    return Actor(user, Role.CITY_BUREAU, f"{name}科学技术局", city=code)


def doc(title: str) -> Document:
    return Document(title, hashlib.sha256(title.encode("utf-8")).hexdigest())


def unit(name: str, division: str, body: str, kind: UnitKind,
         specialisation: Specialisation | None = None) -> Unit:
    return Unit(make_uscc(division, body), name, kind, specialisation)


def report(summary: str) -> dict[str, str]:
    return {s.value: f"{summary}：{s.value}" for s in ReportSection}


ALL_MECHANISMS = list(Mechanism)


def _form(reg: Registry, *, actor: Actor, name: str, city_code: str, lead: Unit,
          qualification: LeadQualification, fields: list[str], members: list[Unit],
          dates: list[date]) -> str:
    """Formation through listing; ``dates`` = lead, members, agreement, submit, recommend, review,
    listing (the last three may be omitted to stop earlier)."""
    cid = reg.select_lead(name=name, city=city_code, lead=lead, qualification=qualification,
                          fields=fields, actor=actor, effective_date=dates[0],
                          document=doc(f"{name}牵头单位遴选意见"))["consortium_id"]
    for m in members:
        reg.admit_member(cid, m, actor=actor, effective_date=dates[1])
    reg.sign_agreement(cid, signatories=[lead.uscc, *[m.uscc for m in members]],
                       mechanisms=ALL_MECHANISMS, construction_plan=f"{name}建设方案",
                       actor=actor, effective_date=dates[2], document=doc(f"{name}共建协议"))
    reg.submit_application(cid, actor=actor, effective_date=dates[3],
                           document=doc(f"{name}申报书"))
    if len(dates) > 4:
        reg.recommend(cid, necessity="契合本市产业链“卡脖子”环节攻关需求",
                      feasibility="牵头单位研发实力强，成员互补", actor=actor,
                      effective_date=dates[4], document=doc(f"{name}推荐意见"))
    if len(dates) > 5:
        reg.record_expert_review(cid, opinion="建设方案目标明确，任务可行", score=Decimal("86.5"),
                                 recommended=True, actor=PROVINCE, effective_date=dates[5])
    if len(dates) > 6:
        reg.approve(cid, actor=PROVINCE, effective_date=dates[6],
                    document=doc(f"关于认定{name}为省创新联合体的通知"))
    return cid


def record_demo(reg: Registry) -> list[str]:
    """Record the demo history (once: an existing ledger is left as it is)."""
    existing = reg.recorder.max_notification_id() or 0
    if existing:
        return [f"ledger already holds records (head position {existing}); demo not recorded again"]
    lines: list[str] = []

    # 1. 南京 · 集成电路: listed, then a supplementary agreement changes its members.
    nj = city("chen.hao", "nanjing", "南京市")
    ic_lead = unit("江苏芯联微电子股份有限公司", "320100", "MA1XYW00", UnitKind.ENTERPRISE)
    seu = unit("东南大学", "320000", "46600730", UnitKind.UNIVERSITY)
    ic_inst = unit("南京集成电路产业研究院", "320100", "MA1Q3K21", UnitKind.RESEARCH_INSTITUTE)
    ic_test = unit("江苏华测电子检测有限公司", "320100", "MA1R7P45", UnitKind.ENTERPRISE,
                   Specialisation(SpecialisedRole.TESTING_INSPECTION, accreditation="CNAS L12345"))
    ic = _form(reg, actor=nj, name="江苏集成电路先进封装创新联合体", city_code="nanjing",
               lead=ic_lead,
               qualification=LeadQualification(LeadCategory.INDUSTRY_LEADER,
                                               annual_revenue_yuan=12_600_000_000,
                                               rd_intensity=Decimal("0.052")),
               fields=["integrated_circuits", "third_gen_semiconductors"],
               members=[seu, ic_inst, ic_test],
               dates=[date(2024, 1, 10), date(2024, 1, 22), date(2024, 2, 28), date(2024, 3, 15),
                      date(2024, 4, 10), date(2024, 5, 20), date(2024, 6, 28)])
    reg.file_annual_report(ic, year=2024, sections=report("2024年度运行情况"), actor=PROVINCE,
                           effective_date=date(2025, 5, 20), document=doc("芯联2024年度自评报告"))
    transfer = unit("江苏省技术产权交易所有限公司", "320100", "MA1U2C88", UnitKind.OTHER,
                    Specialisation(SpecialisedRole.TECHNOLOGY_TRANSFER, technology_managers=12))
    sa = reg.sign_supplementary_agreement(
        ic, changes=[Change(ChangeKind.MEMBER_JOINS, "引入成果转移转化机构", unit=transfer),
                     Change(ChangeKind.MEMBER_WITHDRAWS, "检测业务调整，协商退出",
                            uscc=ic_test.uscc)],
        signatories=[ic_lead.uscc, transfer.uscc, ic_test.uscc], actor=PROVINCE,
        effective_date=date(2025, 7, 15), document=doc("芯联创新联合体补充协议（一）"))["result"]
    reg.record_evaluation(ic, agency=AGENCY.organisation, period="2024—2025",
                          scores={"协同攻关": Decimal("88"), "成果转化": Decimal("84")},
                          grade=Grade.GOOD, actor=AGENCY, effective_date=date(2025, 11, 3))
    reg.file_annual_report(ic, year=2025, sections=report("2025年度运行情况"),
                           explanations={sa: "检测机构退出、技术产权交易所加入，已签补充协议"},
                           actor=PROVINCE, effective_date=date(2026, 5, 18),
                           document=doc("芯联2025年度自评报告"))
    lines.append(f"南京 集成电路  {ic}  listed; supplementary agreement {sa}; reports 2024, 2025")

    # 2. 苏州 · 生物医药: a platform lead; late report, poor evaluation, rectification.
    sz = city("li.na", "suzhou", "苏州市")
    bio_lead = unit("苏州生物医药省实验室", "320500", "MB1A2B33", UnitKind.RESEARCH_INSTITUTE)
    bio = _form(reg, actor=sz, name="苏州生物医药创新联合体", city_code="suzhou", lead=bio_lead,
                qualification=LeadQualification(LeadCategory.PROVINCIAL_LABORATORY),
                fields=["biomedicine", "cell_gene_technology"],
                members=[unit("苏州大学", "320500", "46690280", UnitKind.UNIVERSITY),
                         unit("苏州信达生物制药有限公司", "320500", "MA1C4D55", UnitKind.ENTERPRISE),
                         unit("江苏省概念验证中心（苏州）", "320500", "MA1E6F77", UnitKind.OTHER,
                              Specialisation(SpecialisedRole.PROOF_OF_CONCEPT,
                                             jiangsu_poc_centre=True))],
                dates=[date(2024, 2, 1), date(2024, 2, 20), date(2024, 3, 18), date(2024, 3, 29),
                       date(2024, 4, 25), date(2024, 5, 22), date(2024, 7, 5)])
    late = reg.file_annual_report(bio, year=2024, sections=report("2024年度运行情况"),
                                  actor=PROVINCE, effective_date=date(2025, 6, 20))["result"]
    reg.record_evaluation(bio, agency=AGENCY.organisation, period="2024—2025",
                          scores={"协同攻关": Decimal("52"), "成果转化": Decimal("48")},
                          grade=Grade.POOR, actor=AGENCY, effective_date=date(2025, 10, 9))
    reg.order_rectification(bio, requirements="完善理事会议事规则，明确年度攻关任务",
                            deadline=date(2026, 3, 31), actor=PROVINCE,
                            effective_date=date(2025, 10, 20), document=doc("整改通知"))
    reg.complete_rectification(bio, outcome="已完成整改，复核通过", actor=PROVINCE,
                               effective_date=date(2026, 3, 25))
    lines.append(f"苏州 生物医药  {bio}  listed; 2024 report late={late['late']}; poor → rectified")

    # 3. 无锡 · 物联网: delisted after a serious violation in its annual report.
    wx = city("zhou.jie", "wuxi", "无锡市")
    iot_lead = unit("无锡感知物联科技集团有限公司", "320200", "MA1G8H99", UnitKind.ENTERPRISE)
    iot = _form(reg, actor=wx, name="无锡物联网创新联合体", city_code="wuxi", lead=iot_lead,
                qualification=LeadQualification(
                    LeadCategory.PROVINCIAL_SCI_TECH_LEADING_ENTERPRISE),
                fields=["internet_of_things", "next_gen_ict"],
                members=[unit("江南大学", "320200", "46646321", UnitKind.UNIVERSITY),
                         unit("无锡物联网产业研究院", "320200", "MA1J1K12", UnitKind.RESEARCH_INSTITUTE)],
                dates=[date(2024, 1, 15), date(2024, 2, 2), date(2024, 3, 1), date(2024, 3, 20),
                       date(2024, 4, 18), date(2024, 5, 21), date(2024, 6, 28)])
    reg.file_annual_report(iot, year=2024, sections=report("2024年度运行情况"), actor=PROVINCE,
                           effective_date=date(2025, 5, 28))
    cr = reg.record_credit_violation(
        iot, CreditViolation(
            subject_uscc=iot_lead.uscc, severity=Severity.SERIOUS,
            context=ViolationContext.ANNUAL_REPORT,
            facts="2024年度报告虚报成果转化收入",
            legal_basis="《江苏省创新联合体建设工作指引（试行）》七（三）",
            deciding_authority="江苏省科学技术厅", publicity_start=date(2025, 9, 1),
            publicity_end=date(2028, 8, 31), earliest_repair_date=date(2026, 9, 1),
            remedy="整改到位满一年后可申请信用修复"),
        actor=PROVINCE, effective_date=date(2025, 9, 1), document=doc("失信行为认定决定书"))
    reg.repair_credit(iot, cr["result"], measures="已退回违规资金并公开作出信用承诺",
                      actor=PROVINCE, effective_date=date(2026, 9, 15),
                      document=doc("信用修复决定书"))
    lines.append(f"无锡 物联网    {iot}  delisted after serious violation {cr['result']}; repaired")

    # 4. 常州 · 新能源: recommended by the city, awaiting the provincial expert review.
    cz = city("sun.yu", "changzhou", "常州市")
    ne = _form(reg, actor=cz, name="常州新型储能创新联合体", city_code="changzhou",
               lead=unit("常州储能科技股份有限公司", "320400", "MA1L3M34", UnitKind.ENTERPRISE),
               qualification=LeadQualification(LeadCategory.UNICORN,
                                               rd_intensity=Decimal("0.081")),
               fields=["new_energy", "hydrogen_energy_storage"],
               members=[unit("常州大学", "320400", "46601234", UnitKind.UNIVERSITY),
                        unit("江苏科技金融服务有限公司", "320400", "MA1N5P56", UnitKind.OTHER,
                             Specialisation(SpecialisedRole.SCI_TECH_FINANCE,
                                            startup_services="服务初创期科技企业200余家"))],
               dates=[date(2026, 3, 2), date(2026, 3, 20), date(2026, 4, 15), date(2026, 5, 6),
                      date(2026, 6, 10)])
    lines.append(f"常州 新能源    {ne}  recommended by the city, awaiting expert review")
    head = reg.recorder.max_notification_id()
    lines.append(f"demo recorded: ledger head position {head}")
    return lines
