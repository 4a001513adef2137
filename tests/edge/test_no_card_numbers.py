"""No loyalty card number reaches the disk or the log: quarantine redaction (edge/store/quarantine.py), unit
by unit and through a real daemon fed valid and mangled till messages."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path

import aiomqtt
import pytest

from edge.customers.privacy import Pseudonymiser
from edge.customers.tables import erase_household
from edge.store.apply import BatchApplier, Received, load_planogram_job
from edge.store.db import connect, open_store
from edge.store.hooks import HouseholdHooks
from edge.store.migrations import MIGRATIONS
from edge.store.quarantine import QUARANTINE_PAYLOAD_MAX, CardRedactor, forget_household_quarantine
from edge.store.quarantine import register_hooks as register_quarantine_hooks
from sensors.planogram import load_planogram
from sensors.schemas import Rejection, RejectReason, Source
from tests.conftest import PSEUDONYM_KEY, DaemonProcess, http_json, write_config

PLANOGRAM = load_planogram(
    Path(__file__).resolve().parents[2] / "simulators" / "demo_store" / "planogram.toml"
)
KEY = b"k" * 32
PSEUDONYMS = Pseudonymiser(KEY)
REDACTOR = CardRedactor(PSEUDONYMS)
CARD = "LOY-918273"
PAN = "4929123456789012"  # a payment-card-shaped number
T0 = 1_795_514_400_000


def basket(card: object = CARD, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "ts": T0,
        "seq": 9,
        "basket_id": "L1-000123",
        "items": [{"sku": "1031", "qty": 2, "unit_price": 1.09}],
        "total": 2.18,
        "loyalty_id": card,
    }
    return body | changes


# -- the redactor -------------------------------------------------------------------------------------


def test_json_keeps_its_shape_and_names_the_household() -> None:
    out = REDACTOR.redact(json.dumps(basket(items="two")).encode())
    assert json.loads(out) == basket(PSEUDONYMS.household_id(CARD), items="two")


def test_loyalty_ids_at_any_depth_and_cards_in_other_strings_are_pseudonymised() -> None:
    payload = {
        "ts": T0,  # 13 digits, but a number: kept
        "meta": {"customer": [{"loyalty_id": int(PAN)}, {"loyalty_id": {"nested": CARD}}]},
        "note": f"card {CARD} paid with 4929 1234 5678 9012 and {PAN}",
        PAN: "a key",
    }
    out = REDACTOR.redact(json.dumps(payload).encode())
    text = out.decode()
    for raw in (CARD, PAN, "4929 1234 5678 9012", "918273"):
        assert raw not in text
    doc = json.loads(out)
    assert doc["ts"] == T0
    assert doc["meta"]["customer"][0]["loyalty_id"] == PSEUDONYMS.household_id(PAN)
    assert doc["meta"]["customer"][1]["loyalty_id"] == "[card]"
    assert PSEUDONYMS.household_id(CARD) in doc["note"]


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps(basket()).encode()[:-9],  # cut mid-card: not JSON any more
        repr(basket()).encode(),  # a Python repr: single quotes
        b"\xff\xfe" + json.dumps(basket()).encode()[1:],  # invalid UTF-8
        b"$POS,1,9," + CARD.encode() + b",4929-1234-5678-9012*00",  # a serial line
        b'{"loyalty_id":  "' + CARD.encode() + b'" ,"items": [}',
        b"loyalty_id=" + CARD.encode(),
        b"[" * 5000 + CARD.encode(),  # deeper than any parser goes
    ],
)
def test_anything_that_is_not_json_is_redacted_as_bytes(payload: bytes) -> None:
    out = REDACTOR.redact(payload)
    for raw in (CARD.encode(), b"LOY-9182", PAN.encode(), b"4929-1234-5678-9012"):
        assert raw not in out, (payload[:80], out[:200])


def test_a_card_cut_at_the_4k_boundary_is_dropped() -> None:
    """The decoder keeps the first 4 KiB: the part of a card before the cut matches no pattern."""
    spaced = b"4929 1234 5678 9012"
    for cut in range(1, len(spaced)):
        head = b'{"seq": "x", "pad": "' + b"x" * QUARANTINE_PAYLOAD_MAX + b'", "n": "'
        payload = head[: QUARANTINE_PAYLOAD_MAX - cut - 7] + b'", "n": "' + spaced[:cut]
        payload = payload[-QUARANTINE_PAYLOAD_MAX:]
        assert len(payload) == QUARANTINE_PAYLOAD_MAX
        assert payload.endswith(spaced[:cut])
        out = REDACTOR.redact(payload)
        assert out.endswith(b'"n": "'), (cut, out[-40:])
    loyal = b'{"x": "' + b"y" * QUARANTINE_PAYLOAD_MAX
    loyal = loyal[: QUARANTINE_PAYLOAD_MAX - 24] + b'", "loyalty_id": "LOY-91'
    assert len(loyal) == QUARANTINE_PAYLOAD_MAX
    assert REDACTOR.redact(loyal).endswith(b'"loyalty_id": "[card]"')


def test_the_pattern_is_configurable_and_must_not_match_nothing() -> None:
    custom = CardRedactor(PSEUDONYMS, r"CARD\d{4}")
    pseudonym = PSEUDONYMS.household_id("CARD1234").encode()
    assert custom.redact(b"paid with CARD1234, ok") == b"paid with " + pseudonym + b", ok"
    with pytest.raises(ValueError, match="empty"):
        CardRedactor(PSEUDONYMS, r"\d*")


def test_pseudonyms_are_never_taken_for_cards() -> None:
    # A pseudonym's hex can hold a run of 12+ decimal digits: it must survive the digit pattern.
    pseudonym = "hh_" + "1234567890123456" + "abcdef0123456789"
    mangled = f'{{"household": "{pseudonym}", "x": [}}'.encode()
    assert REDACTOR.redact(mangled) == mangled
    assert REDACTOR.redact_text(f"{pseudonym} {CARD}") == f"{pseudonym} {PSEUDONYMS.household_id(CARD)}"


# -- the applier, forget me, migration 9 --------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> sqlite3.Connection:
    conn = open_store(tmp_path / "store.db")
    BatchApplier(PLANOGRAM, PSEUDONYMS).apply(conn, [Received(load_planogram_job(PLANOGRAM), T0)], T0)
    return conn


def rejection(
    payload: bytes, topic: str = "store/demo/pos/1/transaction", detail: str = "items: too short"
) -> Rejection:
    return Rejection(Source.MQTT, topic, RejectReason.BAD_SCHEMA, detail, payload, "pos-1")


def test_every_quarantined_column_is_redacted_and_forget_me_deletes_the_rows(
    store: sqlite3.Connection,
) -> None:
    applier = BatchApplier(PLANOGRAM, PSEUDONYMS)
    items = [
        rejection(json.dumps(basket(items=[])).encode()),
        rejection(b"garbage", f"store/demo/pos/{CARD}/transaction", f"ValueError: {CARD}"),
        rejection(json.dumps(basket("LOY-000001", items=[])).encode()),
    ]
    applier.apply(store, [Received(r, T0) for r in items], T0)
    rows = store.execute("SELECT origin, device, detail, payload FROM quarantine").fetchall()
    assert len(rows) == 3
    assert not any(CARD.encode() in (str(r[:3]).encode() + r[3]) for r in rows)
    household = PSEUDONYMS.household_id(CARD)
    assert forget_household_quarantine(store, household) == 2
    (left,) = store.execute("SELECT payload FROM quarantine").fetchone()
    assert PSEUDONYMS.household_id("LOY-000001").encode() in left


def test_erasure_deletes_the_households_quarantine_rows(store: sqlite3.Connection) -> None:
    BatchApplier(PLANOGRAM, PSEUDONYMS).apply(
        store, [Received(rejection(json.dumps(basket(items=[])).encode()), T0)], T0
    )
    hooks = HouseholdHooks()
    register_quarantine_hooks(hooks)  # as the daemon does
    store.execute("BEGIN IMMEDIATE")
    touched = erase_household(store, PSEUDONYMS.household_id(CARD), T0, hooks)
    store.execute("COMMIT")
    assert touched["quarantine"] == 1
    assert store.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_migration_9_redacts_rows_kept_before(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = connect(path)
    before_9 = [m for m in MIGRATIONS if m.version < 9]
    from edge.store import migrations

    saved = migrations.MIGRATIONS[:]
    migrations.MIGRATIONS[:] = before_9
    try:
        migrations.migrate(conn)
    finally:
        migrations.MIGRATIONS[:] = saved
    conn.execute(
        "INSERT INTO quarantine (received_ms, source, origin, device, reason, detail, payload)"
        " VALUES (1, 'mqtt', ?, 'pos-1', 'bad_schema', 'x', ?)",
        (f"store/demo/pos/{CARD}/transaction", json.dumps(basket(items=[])).encode()),
    )
    conn.close()
    conn = open_store(path)
    origin, payload = conn.execute("SELECT origin, payload FROM quarantine").fetchone()
    assert CARD not in origin
    assert json.loads(payload)["loyalty_id"] == "[card]"
    conn.close()
    for file in tmp_path.iterdir():
        assert CARD.encode() not in file.read_bytes(), file.name


# -- a real daemon, fuzzed --------------------------------------------------------------------------


def mutate(rng: random.Random, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def till_messages(now_ms: int) -> tuple[list[tuple[str, bytes]], list[bytes]]:
    """What the tills send: valid baskets and every kind of broken one, with known cards. Returns the
    messages and every byte string that must not be found anywhere afterwards."""
    rng = random.Random(20_241_124)
    cards = [f"LOY-{918_200 + i}" for i in range(40)]
    pans = ["4929123456789012", "5500 0000 0000 0004", "6011-0009-9013-9424", "3530111333300000"]
    messages: list[tuple[str, bytes]] = []
    seq = 0

    def body(card: object, **changes: object) -> dict[str, object]:
        nonlocal seq
        seq += 1
        return basket(card, ts=now_ms - 60_000 + seq, seq=seq, basket_id=f"B-{seq:05d}") | changes

    def digits(card: str) -> int:
        return int("".join(c for c in card if c.isdigit()))

    topic = "store/demo/pos/1/transaction"
    for card in cards + pans:
        valid = json.dumps(body(card)).encode()
        messages.append((topic, valid))  # stored
        messages.append((topic, json.dumps(body(card, total=999.0)).encode()))  # stored, suspicious
        messages.append((topic, mutate(rng, json.dumps(body(card)).encode())))  # byte-mutated
        cut = json.dumps(body(card)).encode()
        at = cut.index(card.encode()) + rng.randint(1, len(card) - 1)
        messages.append((topic, cut[:at]))  # cut mid-card
        messages.append((topic, repr(body(card)).encode()))  # not JSON
        messages.append((topic, b"\xff\xfe" + json.dumps(body(card)).encode()[1:]))  # not UTF-8
        messages.append((topic, json.dumps(body(card, total="lots")).encode()))  # schema
        number = card if card.startswith("LOY") else digits(card)  # a card as a JSON number
        messages.append((topic, json.dumps(body(number, items=[])).encode()))  # schema
        messages.append((topic, json.dumps(body(None, note=f"card {card}", seq=-1)).encode()))
        nested = body(None, meta={"who": {"loyalty_id": card}}, ts="yesterday")
        messages.append((topic, json.dumps(nested).encode()))  # bad timestamp, card nested
        messages.append(("store/demo/pos/9/transaction", json.dumps(body(card)).encode()))  # unknown till
        pad = QUARANTINE_PAYLOAD_MAX - len(b'{"a": "') - len(card) // 2
        oversized = b'{"a": "' + b"x" * pad + card.encode() + b'", "b": "' + b"y" * 70_000 + b'"}'
        messages.append((topic, oversized))  # oversized, and the 4 KiB cut falls mid-card
    messages.append((f"store/demo/pos/{cards[0]}/transaction", json.dumps(body(cards[0])).encode()))
    needles = [c.encode() for c in cards + pans]
    needles += [str(digits(p)).encode() for p in pans]
    needles += [c[: len(c) // 2].encode() for c in cards + pans]  # what is left of a card cut at 4 KiB
    return messages, sorted(set(needles))


def scan_tables(db: Path, needles: list[bytes]) -> list[str]:
    found = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    found += [f"{table}: {n!r}" for n in needles if n in raw]
    return found


def scan_bytes(name: str, data: bytes, needles: list[bytes]) -> list[str]:
    return [f"{name}: {n!r}" for n in needles if n in data]


@pytest.mark.integration
async def test_no_card_number_reaches_the_database_the_wal_or_the_log(tmp_path: Path, broker) -> None:
    config = write_config(tmp_path, broker, log={"level": "debug"})
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    db = tmp_path / "store.db"
    messages, needles = till_messages(int(time.time() * 1000))
    daemon.start()
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port) as till:
            for topic, payload in messages:
                await till.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                (seen,) = conn.execute(
                    "SELECT (SELECT count(*) FROM quarantine)"
                    " + (SELECT count(*) FROM readings WHERE kind = 'pos_transaction')"
                ).fetchone()
            if seen >= len(messages):
                break
            time.sleep(0.2)
        assert seen == len(messages)
        base = daemon.url + "/api/v1"
        suspicious = http_json(f"{base}/suspicious?limit=1000")
        assert suspicious["by_reason"]["total_mismatch"] >= 44
        assert all(row["total"] == 999.0 for row in suspicious["rows"])
        quarantine = http_json(f"{base}/quarantine?limit=1000")
        kinds = {"bad_json", "bad_schema", "bad_timestamp", "unknown_device", "oversized"}
        assert kinds <= set(quarantine["by_reason"]), quarantine["by_reason"]
        household = Pseudonymiser(PSEUDONYM_KEY.encode()).household_id("LOY-918200")
        assert any(household in row["payload"] for row in quarantine["rows"])
        leaks = scan_tables(db, needles)
        wal = db.with_name("store.db-wal")
        leaks += scan_bytes("store.db-wal", wal.read_bytes() if wal.exists() else b"", needles)
    finally:
        daemon.terminate()
    for file in tmp_path.glob("store.db*"):  # the database, and a WAL or shm left behind
        leaks += scan_bytes(file.name, file.read_bytes(), needles)
    leaks += scan_bytes("daemon.log", (tmp_path / "daemon.log").read_bytes(), needles)
    assert not leaks, "\n".join(sorted(set(leaks))[:40])
