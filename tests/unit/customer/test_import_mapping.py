"""The column mapping of customer imports and the reading of import files, without any
infrastructure: what a record becomes, and what a file or a mapping that cannot be used
is answered."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from services.customer.import_files import FileRefused, Item, RecordStream, detect_encoding
from services.customer.import_mapping import ImportRow, Mapping, load_mapping, parse_mapping
from services.customer.normalisation import Refused, full_width

MAPPING: dict[str, Any] = {
    "default_region": "CN",
    "key": {"source": "erp", "column": "编号"},
    "name": "名称",
    "kind": {"column": "类型", "values": {"企业": "business", "个人": "consumer"}},
    "importance_tier": {"column": "级别", "default": "ordinary"},
    "source_channel": {"value": "2026 展会"},
    "tags": [{"column": "标签", "separators": "|"}],
    "contacts": [{"name": "联系人", "phones": ["手机"], "emails": ["邮箱"]}],
    "addresses": [
        {
            "label": "office",
            "line1": "地址",
            "city": "城市",
            "country": {"column": "国家", "values": {"中国": "CN"}, "default": "CN"},
        }
    ],
    "references": [{"source": "shop-cn", "column": "会员号"}],
}
MAP = parse_mapping(MAPPING)
COLUMNS = (
    *("编号", "名称", "类型", "级别", "标签", "联系人", "手机", "邮箱", "地址", "城市"),
    *("国家", "会员号"),
)


def record(**cells: str) -> dict[str, str]:
    return {column: cells.get(column, "") for column in COLUMNS}


def refusal(mapping: Mapping, **cells: str) -> Refused:
    with pytest.raises(Refused) as refused:
        mapping.row(1, record(**cells))
    return refused.value


def test_a_record_becomes_a_clean_row() -> None:
    row = MAP.row(
        7,
        record(
            编号=" C-1 ",
            名称=full_width("ACME  Co., Ltd."),
            类型="企业",
            标签="a| b |a",
            联系人="张伟",
            手机="138 0013 8000; 021-6888 8888",
            邮箱="Zhang@ACME.example",
            地址="世纪大道 100 号",
            城市="上海",
            国家="中国",
            会员号="U-9",
        ),
    )
    assert row == ImportRow(
        number=7,
        key=("erp", "C-1"),
        profile={"name": "ACME Co., Ltd.", "kind": "business", "source_channel": "2026 展会"},
        classification={"importance_tier": "ordinary"},
        tags=["a", "b"],
        contacts=[
            {
                "name": "张伟",
                "title": None,
                "phones": ["+8613800138000", "+862168888888"],
                "emails": ["zhang@acme.example"],
            }
        ],
        addresses=[
            {
                "label": "office",
                "line1": "世纪大道 100 号",
                "line2": None,
                "city": "上海",
                "region": None,
                "postal_code": None,
                "country": "CN",
            }
        ],
        references=[{"source": "shop-cn", "source_customer_id": "U-9"}],
    )
    assert row.all_references()[0] == {"source": "erp", "source_customer_id": "C-1"}


def test_empty_cells_say_nothing() -> None:
    row = MAP.row(1, record(编号="C-1"))
    assert (row.contacts, row.addresses, row.tags, row.references) == ([], [], [], [])
    assert row.profile == {"source_channel": "2026 展会"}


def test_a_contact_without_a_name_is_named_by_the_customer() -> None:
    row = MAP.row(1, record(名称="陈静", 手机="13912345678"))
    assert row.contacts[0]["name"] == "陈静"
    assert refusal(MAP, 手机="13912345678").reason == "missing field"


@pytest.mark.parametrize(
    ("cells", "reason", "named"),
    [
        ({"类型": "合伙"}, "unknown value", "类型"),
        ({"级别": "gold"}, "unknown value", "级别"),
        ({"地址": "世纪大道 1 号"}, "missing field", "城市"),
        ({"地址": "世纪大道 1 号", "城市": "上海", "国家": "China"}, "unknown value", "国家"),
        ({"手机": "12345"}, "bad phone", "手机"),
        ({"邮箱": "zhang@"}, "bad email", "邮箱"),
        ({"名称": "A\x1bB"}, "control character", "名称"),
        ({"名称": "x" * 201}, "too long", "名称"),
        ({"标签": "t" * 51}, "too long", "标签"),
        ({"名称": "华信\udcb9"}, "bad encoding", "名称"),
    ],
)
def test_a_value_that_does_not_fit_refuses_the_row_naming_the_column(
    cells: dict[str, str], reason: str, named: str
) -> None:
    refused = refusal(MAP, **cells)
    assert (refused.reason, named in refused.detail) == (reason, True), refused.detail


def test_json_objects_give_nested_and_listed_values() -> None:
    mapping = parse_mapping(
        {
            "key": {"source": "shop-cn", "column": "id"},
            "name": "name",
            "tags": ["tags"],
            "contacts": [{"name": "contact.name", "phones": ["contact.phones"]}],
        }
    )
    row = mapping.row(
        1,
        {
            "id": 42,
            "name": "刘洋",
            "tags": ["app", "vip"],
            "contact": {"name": "刘洋", "phones": ["13800138000", "+1 650 253 0000"]},
        },
    )
    assert row.key == ("shop-cn", "42")
    assert row.tags == ["app", "vip"]
    assert row.contacts[0]["phones"] == ["+8613800138000", "+16502530000"]
    with pytest.raises(Refused) as refused:
        mapping.row(2, {"id": "1", "name": {"first": "刘"}})
    assert refused.value.reason == "invalid value"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("name: [unclosed", "neither YAML nor JSON"),
        ("- a list", "must be a mapping"),
        ("nme: 名称", "nme"),
        ("kind: {column: a, value: b}", "either `column` or `value`"),
        ("default_region: China", "default_region"),
        ("key: {source: 'ERP!', column: id}", "key.source"),
    ],
)
def test_a_mapping_that_cannot_be_used_is_refused_saying_why(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="mapping") as refused:
        load_mapping(text)
    assert complaint in str(refused.value)


def test_the_mapping_names_its_columns_and_its_content() -> None:
    assert MAP.columns() == set(COLUMNS)
    assert MAP.fingerprint() == load_mapping(orjson.dumps(MAPPING)).fingerprint()
    assert MAP.fingerprint() != parse_mapping({**MAPPING, "default_region": "US"}).fingerprint()


# Files -----------------------------------------------------------------------------------


SMALL = parse_mapping({"key": {"source": "erp", "column": "编号"}, "name": "名称"})


def csv_stream(data: bytes, **options: Any) -> RecordStream:
    return RecordStream(io.BytesIO(data), SMALL, format="csv", **options)


def test_the_encoding_is_detected() -> None:
    text = "编号,名称\nC-1,华信\n"
    assert detect_encoding(b"\xef\xbb\xbf" + text.encode()) == "utf-8-sig"
    assert detect_encoding(text.encode()) == "utf-8"
    assert detect_encoding(text.encode("gb18030")) == "gb18030"
    for data in (b"\xef\xbb\xbf" + text.encode(), text.encode(), text.encode("gb18030")):
        assert [i.record for i in csv_stream(data)] == [{"编号": "C-1", "名称": "华信"}]


def test_a_wrongly_named_encoding_refuses_the_rows_it_garbles() -> None:
    mapping = parse_mapping({"key": {"source": "erp", "column": "id"}, "name": "name"})
    data = "id,name\nC-1,华信\nC-2,ACME\n".encode("gb18030")
    garbled, plain = RecordStream(io.BytesIO(data), mapping, format="csv", encoding="utf-8")
    assert garbled.record is not None and plain.record is not None
    with pytest.raises(Refused, match="bad encoding"):
        mapping.row(1, garbled.record)
    assert mapping.row(2, plain.record).profile == {"name": "ACME"}
    with pytest.raises(FileRefused, match="another encoding") as refused:
        csv_stream("编号,名称\nC-1,华信\n".encode("gb18030"), encoding="utf-8")
    assert "\ufffd" in str(refused.value)


def test_rows_are_numbered_from_the_first_after_the_header() -> None:
    data = '编号,名称\nC-1,华信\n\nC-2\nC-3,"多行\n名称"\n'.encode()
    items = list(csv_stream(data))
    assert [(i.number, i.record) for i in items] == [
        (1, {"编号": "C-1", "名称": "华信"}),
        (3, None),
        (4, {"编号": "C-3", "名称": "多行\n名称"}),
    ]
    assert items[1].refused is not None and items[1].refused.reason == "malformed row"


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"", "empty"),
        ("编号,客户\nC-1,x\n".encode(), "名称"),
        ("编号,名称,名称\nC-1,a,b\n".encode(), "more than once"),
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_before_any_row(
    data: bytes, complaint: str
) -> None:
    with pytest.raises(FileRefused, match=complaint):
        csv_stream(data)


def test_json_lines_that_are_no_objects_are_refused_each() -> None:
    data = b'\xef\xbb\xbf{"id": "U-1"}\n\nnot json\n[1, 2]\n{"id": "U-2"}\n'
    stream = RecordStream(io.BytesIO(data), parse_mapping({}), format="jsonl")
    items: list[Item] = list(stream)
    assert [(i.number, i.record, i.refused and i.refused.reason) for i in items] == [
        (1, {"id": "U-1"}, None),
        (3, None, "malformed row"),
        (4, None, "malformed row"),
        (5, {"id": "U-2"}, None),
    ]
