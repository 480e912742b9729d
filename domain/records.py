"""Small value objects carried by every lifecycle event: who recorded it and on what document."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from domain.cities import check_city
from domain.errors import InvalidDocument, InvalidValue

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class Role(StrEnum):
    """Who is acting. Writers: city bureaus, the province, evaluation agencies."""

    CITY_BUREAU = "city_bureau"  # 设区市科技局
    PROVINCE = "province"  # 省科技厅
    EVALUATION_AGENCY = "agency"  # 第三方评价机构
    AUDITOR = "auditor"  # 审计人员 (read only)
    CREDIT_CONSUMER = "credit_consumer"  # 信用管理系统 (read only)

    @property
    def label_zh(self) -> str:
        return {"city_bureau": "设区市科技局", "province": "省科技厅",
                "agency": "第三方评价机构", "auditor": "审计人员",
                "credit_consumer": "信用管理系统"}[self.value]


@dataclass(frozen=True, slots=True)
class Actor:
    """The person who recorded an event, the role they acted in and their organisation."""

    user_id: str
    role: Role
    organisation: str
    city: str | None = None  # the jurisdiction of a city bureau

    def __post_init__(self) -> None:
        if not self.user_id.strip() or not self.organisation.strip():
            raise InvalidValue("须注明记录人及其单位 / an actor needs a user id and an organisation",
                               field="actor")
        if self.role is Role.CITY_BUREAU:
            if self.city is None:
                raise InvalidValue("设区市科技局须注明所属设区市 / a city bureau actor needs a city",
                                   field="actor.city")
            check_city(self.city)


@dataclass(frozen=True, slots=True)
class Document:
    """A source document: its title and the SHA-256 of its bytes (64 lowercase hex digits)."""

    title: str
    sha256: str

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise InvalidDocument("文件须有标题 / a document needs a title", field="document.title")
        if not _SHA256_HEX.match(self.sha256):
            raise InvalidDocument(
                "文件摘要应为64位小写十六进制SHA-256 / the document hash must be 64 lowercase hex "
                "digits (SHA-256)", field="document.sha256")
