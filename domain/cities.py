"""Jiangsu's 13 prefecture-level cities (设区市) with their administrative division codes."""

from __future__ import annotations

from domain.errors import UnknownCity

#: code → (中文, English, division prefix)
CITIES: dict[str, tuple[str, str, str]] = {
    "nanjing": ("南京市", "Nanjing", "3201"),
    "wuxi": ("无锡市", "Wuxi", "3202"),
    "xuzhou": ("徐州市", "Xuzhou", "3203"),
    "changzhou": ("常州市", "Changzhou", "3204"),
    "suzhou": ("苏州市", "Suzhou", "3205"),
    "nantong": ("南通市", "Nantong", "3206"),
    "lianyungang": ("连云港市", "Lianyungang", "3207"),
    "huaian": ("淮安市", "Huai'an", "3208"),
    "yancheng": ("盐城市", "Yancheng", "3209"),
    "yangzhou": ("扬州市", "Yangzhou", "3210"),
    "zhenjiang": ("镇江市", "Zhenjiang", "3211"),
    "taizhou": ("泰州市", "Taizhou", "3212"),
    "suqian": ("宿迁市", "Suqian", "3213"),
}


def check_city(code: str) -> str:
    """Return the city code, or raise ``UnknownCity``."""
    if code not in CITIES:
        raise UnknownCity(f"未知的设区市“{code}” / unknown city '{code}'", city=code)
    return code
