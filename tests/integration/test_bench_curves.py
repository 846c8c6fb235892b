"""bench/curves.py (scripts/bench --plots) with tiny sizes: it runs to the
end, writes one data file per curve with a row per size, draws the charts
when gnuplot is there, and leaves a database that passes nova-admin check
(the script checks that itself and fails otherwise). No timing is asserted:
the numbers are the script's output, not a property of the code."""

import pathlib
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT

SIZES = {"history": [10, 60], "chats": [1, 3], "groups": [2, 5], "retained": [40, 80],
         "missed": [10, 20], "sockets": [40], "search": [300, 1200]}
FILES = {"history": 2, "chats": 2, "fanout": 2, "resume_retained": 2, "resume_missed": 2,
         "delivery": 1, "search": 2}


@pytest.mark.sqlite_only
def test_curves_with_tiny_sizes(tmp_path):
    out = tmp_path / "plots"
    argv = ["/usr/bin/python3", str(ROOT / "bench/curves.py"), "--build", str(BUILD),
            "--out", str(out), "--quick"]
    for k, v in SIZES.items():
        argv += [f"--{k}", ",".join(map(str, v))]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "nova-admin check passes" in r.stderr
    for name, rows in FILES.items():
        lines = (out / f"{name}.dat").read_text().splitlines()
        data = [line.split() for line in lines if not line.startswith("#")]
        header = [line for line in lines if line.startswith("#")][-1].split()[1:]
        assert len(data) == rows, (name, lines)
        assert all(len(row) == len(header) for row in data), (name, lines)
        assert (out / f"{name}.gp").exists()
        if shutil.which("gnuplot"):
            assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # the sizes asked for are the sizes measured
    hist = [row.split()[0] for row in (out / "history.dat").read_text().splitlines()
            if not row.startswith("#")]
    assert hist == ["10", "60"]


def test_curves_rejects_unknown_curve(tmp_path):
    r = subprocess.run(["/usr/bin/python3", str(ROOT / "bench/curves.py"), "--out", str(tmp_path),
                        "--only", "nonsense"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "unknown curve" in r.stderr
    assert not list(pathlib.Path(tmp_path).iterdir())
