"""The §3.1 field catalogue: 13 emerging industries, 11 future industries, and the three kinds of
technology tackled (§2). Codes are stable identifiers; labels are 中文 first, then English."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import NoFieldNamed, UnknownField


class FieldGroup(StrEnum):
    EMERGING = "emerging"  # 新兴产业
    FUTURE = "future"  # 未来产业


@dataclass(frozen=True, slots=True)
class Field:
    code: str
    group: FieldGroup
    zh: str
    en: str


_EMERGING = [
    ("high_end_equipment", "高端装备", "High-end equipment"),
    ("integrated_circuits", "集成电路", "Integrated circuits"),
    ("new_energy", "新能源", "New energy"),
    ("new_materials", "新材料", "New materials"),
    ("biomedicine", "生物医药", "Biomedicine"),
    ("new_energy_vehicles", "新能源汽车", "New-energy vehicles"),
    ("new_power_equipment", "新型电力装备", "New power equipment"),
    ("energy_saving_environmental", "节能环保", "Energy saving and environmental protection"),
    ("software_information_services", "软件与信息服务", "Software and information services"),
    ("internet_of_things", "物联网", "Internet of things"),
    ("next_gen_ict", "新一代信息通信", "Next-generation information and communication"),
    ("ships_marine_equipment", "高技术船舶和海工装备",
     "High-tech ships and marine engineering equipment"),
    ("aerospace", "航空航天", "Aerospace"),
]
_FUTURE = [
    ("third_gen_semiconductors", "第三代半导体", "Third-generation semiconductors"),
    ("general_ai", "通用人工智能", "General artificial intelligence"),
    ("brain_inspired_intelligence", "类脑智能", "Brain-inspired intelligence"),
    ("quantum", "量子科技", "Quantum science and technology"),
    ("hydrogen_energy_storage", "氢能和新型储能", "Hydrogen and new energy storage"),
    ("deep_sea_earth_space", "深海深地空天", "Deep sea, deep earth and space"),
    ("synthetic_biology", "合成生物", "Synthetic biology"),
    ("cell_gene_technology", "细胞和基因技术", "Cell and gene technology"),
    ("future_networks", "未来网络", "Future networks"),
    ("advanced_computing", "先进计算", "Advanced computing"),
    ("metaverse", "元宇宙", "Metaverse"),
]

FIELDS: dict[str, Field] = {
    code: Field(code, group, zh, en)
    for group, rows in ((FieldGroup.EMERGING, _EMERGING), (FieldGroup.FUTURE, _FUTURE))
    for code, zh, en in rows
}


class TechnologyKind(StrEnum):
    """Kinds of technology a consortium tackles (§2)."""

    CHOKE_POINT = "choke_point"  # “卡脖子”技术
    FIRST_MOVER = "first_mover"  # 具有先发优势的关键技术
    FUNDAMENTAL_FRONTIER = "fundamental_frontier"  # 引领未来发展的基础前沿技术

    @property
    def label_zh(self) -> str:
        return {"choke_point": "“卡脖子”技术", "first_mover": "具有先发优势的关键技术",
                "fundamental_frontier": "基础前沿技术"}[self.value]

    @property
    def label_en(self) -> str:
        return {"choke_point": "Choke-point technology",
                "first_mover": "Key technology with first-mover advantage",
                "fundamental_frontier": "Fundamental frontier technology"}[self.value]


def check_fields(codes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Every consortium names at least one known field; duplicates are dropped, order kept."""
    if not codes:
        raise NoFieldNamed("至少明确一个产业领域 / name at least one field (§3.1)")
    for code in codes:
        if code not in FIELDS:
            raise UnknownField(f"未知的产业领域“{code}” / unknown field '{code}'", field=code)
    return tuple(dict.fromkeys(codes))
