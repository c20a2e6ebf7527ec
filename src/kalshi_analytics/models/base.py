"""Declarative base, constraint naming convention and the column types shared by every table."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import MetaData, Numeric, Text
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Dollars, 0–1 for contract prices; NUMERIC(10,4) holds the 0.0001 tick of subpenny markets exactly.
PRICE = Numeric(10, 4, asdecimal=True)
# Money sums (P&L, fees) outgrow NUMERIC(10,4).
MONEY = Numeric(18, 4, asdecimal=True)
# Contracts can be fractional (0.01 granularity), and volumes run to billions.
COUNT = Numeric(asdecimal=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: Text(),
        datetime: TIMESTAMP(timezone=True),
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
    }
