"""The web UI's catalogue: every label in 简体中文 (the default) and English.

Chinese terms are the guideline's own (shared DOMAIN.md); where the domain already names a value
in Chinese (``label_zh``) that name is used, so the UI and the domain never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from domain.cities import CITIES
from domain.fields import FIELDS, TechnologyKind
from domain.records import Role
from domain.rules import Status
from domain.units import LeadCategory, SpecialisedRole, UnitKind

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

#: key → (中文, English)
MESSAGES: dict[str, tuple[str, str]] = {
    # ------------------------------------------------------------------ frame and navigation
    "app.title": ("江苏省创新联合体登记簿", "Jiangsu innovation-consortium registry"),
    "app.guideline": ("依据《江苏省创新联合体建设工作指引（试行）》",
                      "Following the Jiangsu guideline for building innovation consortia (trial)"),
    "app.short": ("创新联合体登记簿", "Consortium registry"),
    "nav.skip": ("跳到主要内容", "Skip to main content"),
    "nav.registry": ("登记簿", "Registry"),
    "nav.dashboard": ("统计", "Dashboard"),
    "nav.audit": ("审计", "Audit"),
    "nav.login": ("登录", "Log in"),
    "nav.logout": ("退出", "Log out"),
    "nav.new": ("新建创新联合体", "New consortium"),
    "nav.main": ("主导航", "Main navigation"),
    "lang.switch": ("English", "中文"),
    "lang.switch_label": ("切换语言", "Switch language"),
    "user.signed_in_as": ("当前用户", "Signed in as"),
    "user.anonymous": ("未登录：仅显示省创新联合体", "Not signed in: listed consortia only"),
    # ------------------------------------------------------------------ login
    "login.title": ("登录", "Log in"),
    "login.key": ("访问密钥", "API key"),
    "login.key_hint": ("与 API 相同的访问密钥（cr_…），由管理员用 consortia keys create 创建",
                       "The same API key as for the API (cr_…), created with consortia keys create"),
    "login.submit": ("登录", "Log in"),
    "login.invalid": ("访问密钥无效或已吊销", "The API key is unknown or revoked"),
    "login.done": ("已登录", "Signed in"),
    "logout.done": ("已退出登录", "Signed out"),
    "csrf.invalid": ("页面已过期或请求来源无效，请刷新页面后重试",
                     "The page has expired or the request did not come from this site; reload "
                     "the page and try again"),
    # ------------------------------------------------------------------ registry
    "registry.title": ("创新联合体名录", "Consortium registry"),
    "registry.public_note": ("公众仅可查看已认定的省创新联合体。",
                             "The public sees listed provincial consortia only."),
    "registry.filters": ("筛选", "Filters"),
    "registry.search": ("名称或统一社会信用代码", "Name or unified social credit code"),
    "registry.status": ("状态", "Status"),
    "registry.field": ("产业领域", "Field"),
    "registry.city": ("设区市", "City"),
    "registry.any": ("全部", "All"),
    "registry.apply": ("查询", "Search"),
    "registry.reset": ("清除筛选", "Clear filters"),
    "registry.empty": ("没有符合条件的创新联合体", "No consortium matches"),
    "registry.next": ("下一页", "Next page"),
    "registry.first": ("第一页", "First page"),
    "registry.count": ("本页 {n} 个", "{n} on this page"),
    "col.name": ("名称", "Name"),
    "col.city": ("设区市", "City"),
    "col.status": ("状态", "Status"),
    "col.lead": ("牵头单位", "Lead unit"),
    "col.fields": ("产业领域", "Fields"),
    "col.listed_on": ("认定日期", "Listed on"),
    "col.grade": ("最近评价", "Latest grade"),
    "col.version": ("版本", "Version"),
    # ------------------------------------------------------------------ consortium page
    "consortium.state": ("当前状态", "Current state"),
    "consortium.lead": ("牵头单位", "Lead unit"),
    "consortium.lead_fixed": ("牵头单位不可变动（指引七（三））",
                              "The lead unit can never change (guideline §7.3)"),
    "consortium.members": ("成员单位", "Member units"),
    "consortium.no_members": ("尚无成员单位", "No member units yet"),
    "consortium.former_members": ("已退出的成员单位", "Former members"),
    "consortium.fields": ("产业领域", "Fields"),
    "consortium.technologies": ("攻关技术类型", "Kinds of technology"),
    "consortium.agreement": ("共建协议", "Co-construction agreement"),
    "consortium.no_agreement": ("尚未签署共建协议", "No co-construction agreement yet"),
    "consortium.signed_on": ("签署日期", "Signed on"),
    "consortium.mechanisms": ("合作机制", "Mechanisms"),
    "consortium.signatories": ("签署单位", "Signatories"),
    "consortium.supplementary": ("补充协议", "Supplementary agreements"),
    "consortium.latest_report": ("最近年度报告", "Latest annual report"),
    "consortium.no_report": ("尚无年度报告", "No annual report yet"),
    "consortium.report_year": ("{year}年度，{date}报送", "{year}, filed on {date}"),
    "consortium.late": ("逾期", "late"),
    "consortium.latest_grade": ("最近绩效评价", "Latest evaluation grade"),
    "consortium.no_grade": ("尚无绩效评价", "Not evaluated yet"),
    "consortium.rectification_open": ("整改进行中，期限 {deadline}",
                                      "Rectification open, due {deadline}"),
    "consortium.credit": ("公示中的失信信息记录", "Credit (dishonesty) records in publicity"),
    "consortium.no_credit": ("无公示中的失信信息记录", "No credit record in publicity"),
    "consortium.qualification": ("牵头单位条件", "Lead qualification"),
    "consortium.kind": ("类型", "Kind"),
    "consortium.uscc": ("统一社会信用代码", "USCC"),
    "consortium.specialised": ("专业机构", "Specialised role"),
    "consortium.version": ("版本", "Version"),
    "consortium.listed_on": ("认定日期", "Listed on"),
    "consortium.delisted_on": ("摘牌日期", "Delisted on"),
    "consortium.commands": ("可办理事项", "Available steps"),
    "consortium.no_commands": ("当前角色在此状态下没有可办理的事项",
                               "Your role has no step to record in this state"),
    "consortium.login_for_more": ("登录后可查看账本记录和办理事项",
                                  "Sign in to see the ledger records and record steps"),
    "consortium.record_actions": ("处理记录 {record}", "Act on record {record}"),
    "consortium.done": ("已登记：{command}（账本位置 {position}）",
                        "Recorded: {command} (ledger position {position})"),
    "consortium.view_behind": ("查询视图尚未更新到最新写入，请稍后刷新",
                               "The read view has not caught up with the latest write yet; reload "
                               "in a moment"),
    "timeline.title": ("事件时间线（账本记录）", "Timeline (ledger records)"),
    "timeline.date": ("生效日期", "Effective date"),
    "timeline.event": ("事项", "Event"),
    "timeline.actor": ("记录人", "Recorded by"),
    "timeline.document": ("来源文件 SHA-256", "Document SHA-256"),
    "timeline.position": ("账本位置", "Ledger position"),
    "timeline.hash": ("记录哈希", "Record hash"),
    "timeline.proof": ("包含证明", "Inclusion proof"),
    "timeline.proof_link": ("位置 {position} 的包含证明", "Inclusion proof of position {position}"),
    "timeline.none": ("无", "none"),
    "timeline.range": ("第 {first}–{last} 个事件，共 {total} 个", "Events {first}–{last} of {total}"),
    "timeline.earlier": ("← 更早的事件", "← Earlier events"),
    "timeline.later": ("较晚的事件 →", "Later events →"),
    "timeline.latest": ("最新事件", "Latest events"),
    # ------------------------------------------------------------------ forms
    "form.submit": ("提交登记", "Record"),
    "form.cancel": ("返回", "Back"),
    "form.required": ("必填", "required"),
    "form.optional": ("选填", "optional"),
    "form.errors": ("请修改标出的内容后重新提交", "Please correct the marked entries and submit again"),
    "form.not_available": ("当前角色在此状态下不能办理该事项",
                           "Your role cannot record this step in the consortium's current state"),
    "form.stale": ("他人已修改了该创新联合体（当前版本 {current}，您提交时为 {expected}）。"
                   "请查看最新状态后重新填写。",
                   "Someone else changed this consortium (it is now at version {current}; you "
                   "edited version {expected}). Review its current state and fill in the form "
                   "again."),
    "form.stale_title": ("数据已被他人修改", "Changed by someone else"),
    "form.in_progress_title": ("正在处理", "Being processed"),
    "form.not_available_title": ("不能办理", "Not available"),
    "form.stale_reload": ("查看最新状态", "See the current state"),
    "form.in_progress": ("相同的提交正在处理，请稍后刷新", "The same submission is being processed; "
                         "reload in a moment"),
    "form.version_note": ("基于版本 {version} 填写", "Filled in against version {version}"),
    "form.choose": ("请选择", "Choose"),
    "form.yes": ("是", "Yes"),
    "form.no": ("否", "No"),
    "form.document": ("来源文件", "Source document"),
    "form.change_row": ("变动事项 {n}", "Change {n}"),
    "form.specialisation": ("专业机构资质（如适用）", "Specialised member qualification (if any)"),
    "form.hash_file": ("从文件计算 SHA-256（文件不会上传）", "Compute the SHA-256 from a file (the "
                       "file is not uploaded)"),
    "form.read_only": ("当前角色仅可查询，不能登记", "This role may read but not record"),
    "form.lines_hint": ("每行一项", "One per line"),
    "form.scores_hint": ("每行一项：指标：分数，如 协同攻关：88", "One per line: indicator: score, "
                         "e.g. Collaborative R&D: 88"),
    "field.name": ("创新联合体名称", "Consortium name"),
    "field.city": ("设区市", "City"),
    "field.lead.uscc": ("牵头单位统一社会信用代码", "Lead unit USCC"),
    "field.lead.name": ("牵头单位名称", "Lead unit name"),
    "field.lead.kind": ("牵头单位类型", "Lead unit kind"),
    "field.qualification.category": ("牵头单位条件类别", "Lead qualification category"),
    "field.qualification.annual_revenue_yuan": ("年销售收入（元）", "Annual sales revenue (yuan)"),
    "field.qualification.rd_intensity": ("研发投入强度（如 0.052）", "R&D intensity (e.g. 0.052)"),
    "field.fields": ("产业领域（§3.1）", "Fields (§3.1)"),
    "field.technologies": ("攻关技术类型", "Kinds of technology"),
    "field.effective_date": ("生效日期", "Effective date"),
    "field.document.title": ("文件标题", "Document title"),
    "field.document.sha256": ("文件 SHA-256（64位十六进制）", "Document SHA-256 (64 hex digits)"),
    "field.unit.uscc": ("统一社会信用代码", "Unified social credit code"),
    "field.unit.name": ("单位名称", "Unit name"),
    "field.unit.kind": ("单位类型", "Unit kind"),
    "field.unit.specialisation.role": ("专业机构类型", "Specialised role"),
    "field.unit.specialisation.jiangsu_poc_centre": ("江苏省概念验证中心建设单位",
                                                     "Jiangsu proof-of-concept centre unit"),
    "field.unit.specialisation.accreditation": ("检验检测资质", "Accreditation"),
    "field.unit.specialisation.technology_managers": ("技术经理人人数", "Technology managers"),
    "field.unit.specialisation.startup_services": ("服务初创期科技企业经验",
                                                   "Start-up services experience"),
    "field.member": ("退出的成员单位", "Leaving member"),
    "field.reason": ("理由", "Reason"),
    "field.signatories": ("签署单位", "Signatories"),
    "field.signatories_extra": ("其他签署单位（新加入单位）统一社会信用代码",
                                "Other signatories (joining units): USCC"),
    "field.mechanisms": ("合作机制（§3.2、§5.3）", "Mechanisms (§3.2, §5.3)"),
    "field.construction_plan": ("建设方案", "Construction plan"),
    "field.no_university_justification": ("无高校或科研院所的理由", "Justification without a "
                                          "university or research institute"),
    "field.necessity": ("必要性意见", "Opinion on necessity"),
    "field.feasibility": ("可行性意见", "Opinion on feasibility"),
    "field.opinion": ("专家评估意见", "Expert opinion"),
    "field.score": ("评分（0–100）", "Score (0–100)"),
    "field.recommended": ("是否推荐认定", "Recommended for listing"),
    "field.change.kind": ("变动类型", "Kind of change"),
    "field.change.description": ("变动说明", "Description"),
    "field.change.unit.uscc": ("加入单位统一社会信用代码", "Joining unit USCC"),
    "field.change.unit.name": ("加入单位名称", "Joining unit name"),
    "field.change.unit.kind": ("加入单位类型", "Joining unit kind"),
    "field.change.uscc": ("退出或涉及的单位", "Unit leaving or concerned"),
    "field.year": ("报告年度", "Report year"),
    "field.explanation": ("对补充协议 {id} 的说明", "Explanation of supplementary agreement {id}"),
    "field.agency": ("评价机构", "Evaluation agency"),
    "field.period": ("评价期间", "Evaluation period"),
    "field.scores": ("指标得分", "Indicator scores"),
    "field.grade": ("评价等级", "Grade"),
    "field.requirements": ("整改要求", "Requirements"),
    "field.deadline": ("整改期限", "Deadline"),
    "field.outcome": ("整改结果", "Outcome"),
    "field.delisting_reason": ("摘牌理由", "Reason for delisting"),
    "field.explanation_text": ("说明", "Explanation"),
    "field.subject_uscc": ("失信主体", "Subject"),
    "field.severity": ("严重程度", "Severity"),
    "field.context": ("失信环节", "Where it happened"),
    "field.facts": ("失信事实", "Facts"),
    "field.legal_basis": ("认定依据", "Legal basis"),
    "field.deciding_authority": ("认定单位", "Deciding authority"),
    "field.publicity_start": ("公示开始日期", "Publicity starts"),
    "field.publicity_end": ("公示结束日期", "Publicity ends"),
    "field.earliest_repair_date": ("最早可修复日期", "Earliest repair date"),
    "field.remedy": ("修复期限与途径", "Remedy"),
    "field.measures": ("修复措施", "Repair measures"),
    # ------------------------------------------------------------------ validation
    "error.missing": ("此项为必填", "This is required"),
    "error.too_long": ("内容过长", "Too long"),
    "error.int": ("应为整数", "Must be a whole number"),
    "error.choice": ("请从列表中选择", "Choose one of the options"),
    "error.sha256": ("应为64位小写十六进制 SHA-256", "Must be 64 lowercase hex digits (SHA-256)"),
    "error.invalid": ("内容无效", "Invalid value"),
    "error.number": ("应为数字", "Must be a number"),
    "error.scores": ("每行应为“指标：分数”", "Each line is 'indicator: score'"),
    "error.bool": ("请选择是或否", "Choose yes or no"),
    "error.too_large": ("取值过大", "Value too large"),
    "error.too_small": ("取值过小", "Value too small"),
    # ------------------------------------------------------------------ audit
    "audit.title": ("审计", "Audit"),
    "audit.ledger": ("账本", "Ledger"),
    "audit.size": ("账本记录数", "Ledger records"),
    "audit.head": ("最新账本位置", "Head position"),
    "audit.tree_root": ("默克尔树根", "Merkle tree root"),
    "audit.checkpoint": ("最新已签名检查点", "Latest signed checkpoint"),
    "audit.no_checkpoint": ("尚无已签名的检查点（consortia checkpoint --key …）",
                            "No checkpoint has been signed yet (consortia checkpoint --key …)"),
    "audit.checkpoint_size": ("覆盖记录数", "Records covered"),
    "audit.checkpoint_signed_at": ("签名时间", "Signed at"),
    "audit.checkpoints_total": ("已签名检查点总数", "Checkpoints signed"),
    "audit.verify": ("完整校验", "Full verification"),
    "audit.verify_semantic": ("同时按指引规则复核历史", "Also re-check the guideline's rules on "
                              "the history"),
    "audit.verify_start": ("开始校验", "Start verification"),
    "audit.evidence": ("证据包", "Evidence bundle"),
    "audit.evidence_hint": ("下载整个账本、检查点与公钥，可用 audit/offline.py 离线校验",
                            "Download the whole ledger with its checkpoints and keys; verify it "
                            "offline with audit/offline.py"),
    "audit.evidence_download": ("下载证据包", "Download the evidence bundle"),
    "audit.forbidden": ("审计页面仅供审计人员和省科技厅使用", "The audit page is for auditors and "
                        "the provincial department"),
    "verification.title": ("校验", "Verification"),
    "verification.progress": ("进度", "Progress"),
    "verification.running": ("校验进行中……", "Verifying…"),
    "verification.done_ok": ("校验通过：账本完整，未发现问题", "Verified: the ledger is intact, "
                             "nothing found"),
    "verification.done_bad": ("校验发现问题", "The verification found problems"),
    "verification.failed": ("校验未能完成", "The verification could not finish"),
    "verification.records": ("已校验 {done} / {total} 条记录", "{done} of {total} records checked"),
    "verification.damage": ("损坏", "Damage"),
    "verification.findings": ("规则复核发现", "Rule findings"),
    "verification.checkpoint_problems": ("检查点问题", "Checkpoint problems"),
    "verification.report": ("校验报告（JSON）", "Report (JSON)"),
    "verification.again": ("再次校验", "Verify again"),
    "verification.unknown": ("没有该校验任务", "No such verification"),
    "proof.title": ("包含证明：账本位置 {position}", "Inclusion proof: ledger position {position}"),
    "proof.leaf_index": ("叶子序号", "Leaf index"),
    "proof.tree_size": ("树大小", "Tree size"),
    "proof.record_hash": ("记录哈希", "Record hash"),
    "proof.leaf_hash": ("叶子哈希", "Leaf hash"),
    "proof.root": ("树根", "Root"),
    "proof.path": ("证明路径", "Audit path"),
    "proof.bundle": ("下载单条记录证明包", "Download the record's proof bundle"),
    "proof.not_found": ("账本中没有该位置", "No record at that position"),
    # ------------------------------------------------------------------ dashboard
    "dashboard.title": ("统计", "Dashboard"),
    "dashboard.progress": ("省创新联合体建设进度（{year}年目标 {target} 个）",
                           "Progress toward {target} listed consortia by {year}"),
    "dashboard.listed": ("已认定", "Listed"),
    "dashboard.remaining": ("距目标尚差", "Still to go"),
    "dashboard.by_field": ("省创新联合体按产业领域", "Listed consortia by field"),
    "dashboard.by_city": ("省创新联合体按设区市", "Listed consortia by city"),
    "dashboard.by_grade": ("最近绩效评价等级", "Latest evaluation grades"),
    "dashboard.overdue": ("逾期未报年度报告", "Overdue annual reports"),
    "dashboard.overdue_login": ("登录后可查看逾期未报的年度报告", "Sign in to see overdue annual "
                                "reports"),
    "dashboard.none": ("暂无数据", "No data yet"),
    "dashboard.count": ("数量", "Count"),
    "dashboard.category": ("类别", "Category"),
    "dashboard.year": ("年度", "Year"),
    "dashboard.deadline": ("截止日期", "Deadline"),
    "dashboard.no_charts": ("图表库未安装（scripts/fetch-web-assets），仅显示数据表",
                            "The chart library is not installed (scripts/fetch-web-assets): "
                            "tables only"),
    "dashboard.chart_of": ("图表：{title}", "Chart: {title}"),
    # ------------------------------------------------------------------ errors
    "error.not_found": ("未找到", "Not found"),
    "error.not_found_consortium": ("创新联合体不存在或未公开", "No such consortium, or it is not "
                                   "public"),
    "error.forbidden": ("无权访问", "Forbidden"),
    "error.login_required": ("请先登录", "Please sign in first"),
    "error.back": ("返回登记簿", "Back to the registry"),
    # ------------------------------------------------------------------ value labels (English;
    # Chinese from the domain where it has one)
    "grade.excellent": ("优秀", "Excellent"),
    "grade.good": ("良好", "Good"),
    "grade.qualified": ("合格", "Qualified"),
    "grade.poor": ("较差", "Poor"),
    "mechanism.responsibilities": ("责任落实", "Responsibilities"),
    "mechanism.decision_making_and_operation": ("决策运行（研究方向决策）",
                                                "Decision-making and operation"),
    "mechanism.funding": ("资金筹措（项目资金投入）", "Funding"),
    "mechanism.collaborative_rd": ("协同攻关", "Collaborative R&D"),
    "mechanism.intellectual_property": ("知识产权", "Intellectual property"),
    "mechanism.result_application": ("成果推广应用", "Application of results"),
    "mechanism.benefit_sharing": ("利益分配", "Benefit sharing"),
    "section.strategic_goals_and_major_tasks": ("战略目标实施和重大项目任务执行",
                                                "Strategic goals and major project tasks"),
    "section.rd_platforms": ("高水平研发平台建设", "High-level R&D platforms"),
    "section.people_and_teams": ("人员团队建设", "People and teams"),
    "section.results_transferred": ("科技成果转化", "Results transferred and commercialised"),
    "section.flagship_products": ("标志性产品应用推广", "Flagship products applied and promoted"),
    "section.next_year_plan": ("下年度工作计划", "Next year's plan"),
    "change.member_joins": ("成员单位加入", "A member joins"),
    "change.member_withdraws": ("成员单位退出", "A member withdraws"),
    "change.strategic_plan": ("战略规划调整", "Strategic plan"),
    "change.organisational_structure": ("组织架构调整", "Organisational structure"),
    "change.operating_mechanism": ("运行机制调整", "Operating mechanism"),
    "change.lead_replaced": ("更换牵头单位", "Replace the lead unit"),
    "delisting.poor_evaluation": ("评价结果较差", "Poor evaluation"),
    "delisting.serious_dishonesty": ("严重弄虚作假等失信行为", "Serious fraud or dishonesty"),
    "delisting.other": ("其他", "Other"),
    "severity.minor": ("轻微", "Minor"),
    "severity.general": ("一般", "General"),
    "severity.serious": ("严重", "Serious"),
    "context.application": ("组织申报", "Application"),
    "context.project": ("项目实施", "Project work"),
    "context.annual_report": ("年度报告", "Annual report"),
    "context.other": ("其他", "Other"),
    "report.filed": ("按期报送", "Filed on time"),
    "report.late": ("逾期报送", "Filed late"),
    "report.due": ("待报送", "Due"),
    "report.overdue": ("逾期未报", "Overdue"),
    # ------------------------------------------------------------------ commands (lifecycle steps)
    "command.select_lead": ("遴选牵头单位、开始组建", "Select the lead unit and start formation"),
    "command.admit_member": ("吸收成员单位", "Admit a member unit"),
    "command.drop_member": ("成员单位退出", "Drop a member unit"),
    "command.sign_agreement": ("签署共建协议", "Sign the co-construction agreement"),
    "command.submit_application": ("申报", "Submit the application"),
    "command.recommend": ("设区市推荐", "City recommendation"),
    "command.return_application": ("退回申报", "Return the application"),
    "command.record_expert_review": ("专家评估论证", "Expert review"),
    "command.approve": ("认定为省创新联合体", "List as a provincial consortium"),
    "command.reject": ("不予支持", "Reject the application"),
    "command.sign_supplementary_agreement": ("签署补充协议", "Sign a supplementary agreement"),
    "command.file_annual_report": ("报送年度报告", "File the annual report"),
    "command.record_evaluation": ("绩效评价", "Record a performance evaluation"),
    "command.order_rectification": ("督促整改", "Order rectification"),
    "command.complete_rectification": ("整改完成", "Complete the rectification"),
    "command.delist": ("摘牌", "Delist"),
    "command.record_credit_violation": ("记录失信信息", "Record a credit violation"),
    "command.repair_credit": ("信用修复", "Repair a credit record"),
    "command.revoke_credit": ("撤销失信记录", "Revoke a credit record"),
    "command.end_credit_publicity": ("公示期满", "End a credit record's publicity"),
    # ------------------------------------------------------------------ events in the timeline
    "event.LeadUnitSelected": ("遴选牵头单位", "Lead unit selected"),
    "event.MemberAdmitted": ("吸收成员单位", "Member admitted"),
    "event.MemberDropped": ("成员单位退出", "Member dropped"),
    "event.CoConstructionAgreementSigned": ("签署共建协议", "Co-construction agreement signed"),
    "event.ApplicationSubmitted": ("申报", "Application submitted"),
    "event.CityRecommended": ("设区市推荐", "Recommended by the city"),
    "event.ApplicationReturned": ("退回申报", "Application returned"),
    "event.ExpertReviewRecorded": ("专家评估论证", "Expert review recorded"),
    "event.Listed": ("认定为省创新联合体", "Listed"),
    "event.Rejected": ("不予支持", "Rejected"),
    "event.SupplementaryAgreementSigned": ("签署补充协议", "Supplementary agreement signed"),
    "event.AnnualReportFiled": ("报送年度报告", "Annual report filed"),
    "event.EvaluationRecorded": ("绩效评价", "Evaluation recorded"),
    "event.RectificationOrdered": ("督促整改", "Rectification ordered"),
    "event.RectificationCompleted": ("整改完成", "Rectification completed"),
    "event.Delisted": ("摘牌", "Delisted"),
    "event.CreditViolationRecorded": ("记录失信信息", "Credit violation recorded"),
    "event.CreditRepaired": ("信用修复", "Credit repaired"),
    "event.CreditRevoked": ("撤销失信记录", "Credit record revoked"),
    "event.CreditPublicityEnded": ("公示期满", "Publicity ended"),
}

_STATUS_EN = {"forming": "Forming", "submitted": "Applied", "recommended": "Recommended by the city",
              "reviewed": "Expert review done", "listed": "Listed provincial consortium",
              "rejected": "Not supported", "delisted": "Delisted"}
_ROLE_EN = {"city_bureau": "City S&T bureau", "province": "Provincial S&T department",
            "agency": "Third-party evaluation agency", "auditor": "Auditor",
            "credit_consumer": "Credit-management system"}
_KIND_EN = {"enterprise": "Enterprise", "university": "University",
            "research_institute": "Research institute", "other": "Other organisation"}
_CATEGORY_EN = {
    "national_sci_tech_leading_enterprise": "National S&T leading enterprise",
    "provincial_sci_tech_leading_enterprise": "Provincial S&T leading enterprise",
    "industry_leader": "Industry leader", "unicorn": "Unicorn",
    "national_laboratory": "National laboratory", "provincial_laboratory": "Provincial laboratory",
    "national_tech_innovation_centre": "National technology innovation centre",
    "provincial_tech_innovation_centre": "Provincial technology innovation centre"}
_SPECIALISED_EN = {"proof_of_concept": "Proof-of-concept centre",
                   "testing_inspection": "Testing and inspection",
                   "technology_transfer": "Technology transfer",
                   "sci_tech_finance": "S&T finance"}


def _add(prefix: str, values: Iterable[StrEnum], english: dict[str, str]) -> None:
    for value in values:
        MESSAGES[f"{prefix}.{value.value}"] = (value.label_zh, english[value.value])  # type: ignore[attr-defined]


_add("status", Status, _STATUS_EN)
_add("role", Role, _ROLE_EN)
_add("kind", UnitKind, _KIND_EN)
_add("category", LeadCategory, _CATEGORY_EN)
_add("specialised", SpecialisedRole, _SPECIALISED_EN)
for _t in TechnologyKind:
    MESSAGES[f"technology.{_t.value}"] = (_t.label_zh, _t.label_en)
for _code, _f in FIELDS.items():
    MESSAGES[f"fieldcode.{_code}"] = (_f.zh, _f.en)
for _code, (_zh, _en, _) in CITIES.items():
    MESSAGES[f"city.{_code}"] = (_zh, _en)


def normalise_language(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def translate(key: str, lang: str, **values: object) -> str:
    """The label in ``lang`` (the key itself when the catalogue lacks it, so a gap shows)."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**values) if values else text


def label(prefix: str, value: str | None, lang: str) -> str:
    """A value's label (``status``/``listed`` → 省创新联合体); an unknown value as it is."""
    if value is None:
        return ""
    key = f"{prefix}.{value}"
    return translate(key, lang) if key in MESSAGES else value


def bilingual_part(message: str, lang: str) -> str:
    """A domain message is written “中文 / English”: the part in ``lang``."""
    zh, sep, en = message.partition(" / ")
    if not sep:
        return message
    return en.strip() if lang == "en" else zh.strip()
