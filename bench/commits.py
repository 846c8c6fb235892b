"""The engine's own commit rate, the baseline of every write (scripts/bench).

Single-row write transactions in a loop, the way Nova's writers commit:
SQLite with Nova's pragmas (WAL, synchronous=NORMAL) and BEGIN IMMEDIATE;
PostgreSQL with the writers' advisory lock, and again with the NOTIFY that
Nova's writers send, so that the table shows what the wake-up costs.
Prints `name value` lines for bench/report.py."""

import argparse
import sqlite3
import time

LOCK = 1315927649  # common/db_pg.c
ROUNDS = 2000


def rate(fn, rounds=ROUNDS):
    start = time.perf_counter()
    for i in range(rounds):
        fn(i)
    return rounds / (time.perf_counter() - start)


def sqlite_rates(path):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, v INTEGER)")

    def one(i):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO bench_commit (v) VALUES (?)", (i,))
        con.execute("COMMIT")

    print("commit.rate", f"{rate(one):.0f}")
    con.execute("DROP TABLE bench_commit")
    con.close()


def postgres_rates(uri):
    import psycopg2

    con = psycopg2.connect(uri)
    cur = con.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, v bigint)")
    con.commit()

    def one(i, notify=False):
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        cur.execute("INSERT INTO bench_commit (v) VALUES (%s)", (i,))
        if notify:
            cur.execute("SELECT pg_notify('bench_commit', '')")
        con.commit()

    print("commit.rate", f"{rate(one):.0f}")
    print("commit_notify.rate", f"{rate(lambda i: one(i, True)):.0f}")
    cur.execute("DROP TABLE bench_commit")
    con.commit()
    con.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True, help="a SQLite file or a postgresql:// URI")
    a = p.parse_args()
    if a.db.startswith(("postgresql://", "postgres://")):
        postgres_rates(a.db)
    else:
        sqlite_rates(a.db)


if __name__ == "__main__":
    main()
