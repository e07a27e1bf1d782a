"""Fingerprints: the same statement with other values is the same statement."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slipstream._impl.detect.fingerprint import classify, fingerprint

values = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=20).map(lambda s: "'" + s.replace("'", "''") + "'"),
)
tables = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


class TestFingerprint:
    @given(a=values, b=values)
    def test_literals_of_any_value_give_one_fingerprint(self, a: object, b: object) -> None:
        """Two statements that differ only in a literal's value have the same fingerprint."""
        assert fingerprint(f"SELECT * FROM users WHERE id = {a}") == fingerprint(
            f"select *  from users where id={b}"
        )

    @given(t1=tables, t2=tables)
    def test_different_tables_differ(self, t1: str, t2: str) -> None:
        """Statements on two different tables have different fingerprints."""
        if t1 != t2:
            assert fingerprint(f"SELECT a FROM {t1} WHERE id = 1") != fingerprint(
                f"SELECT a FROM {t2} WHERE id = 1"
            )

    @given(n=st.integers(min_value=1, max_value=50))
    def test_in_lists_of_any_length_collapse(self, n: int) -> None:
        """An IN list of any length becomes IN (?)."""
        ids = ", ".join(str(i) for i in range(n))
        assert fingerprint(f"SELECT * FROM t WHERE id IN ({ids})") == (
            "select * from t where id in (?)"
        )

    def test_placeholders_of_every_driver_are_one_marker(self) -> None:
        """asyncpg's $1, psycopg's %s and %(x)s, SQLAlchemy's :x and sqlite's ? all read as ?."""
        forms = ["$1", "%s", "%(uid)s", ":uid", "?"]
        assert {fingerprint(f"select * from t where id = {p}") for p in forms} == {
            "select * from t where id = ?"
        }

    def test_multi_row_values_are_one_row(self) -> None:
        """A multi-row VALUES list has the fingerprint of a one-row insert."""
        assert fingerprint("INSERT INTO t (a, b) VALUES (1, 2), (3, 4)") == fingerprint(
            "insert into t (a,b) values (5,6)"
        )


class TestClassify:
    def test_kinds(self) -> None:
        """Each statement kind is recognised, a CTE by the verb it ends in."""
        cases = {
            "SELECT 1": "select",
            "insert into t values (1)": "insert",
            "UPDATE t SET a = 1": "update",
            "delete from t": "delete",
            "COMMIT": "commit",
            "END": "commit",
            "BEGIN": "other",
            "create table t (a int)": "other",
            "WITH x AS (SELECT 1) DELETE FROM t WHERE a IN (SELECT * FROM x)": "delete",
        }
        assert {s: classify(fingerprint(s)) for s in cases} == cases
