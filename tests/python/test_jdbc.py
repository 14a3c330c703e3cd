"""JDBC's DatabaseMetaData, call by call, as DBeaver, DataGrip and Metabase use it.

Compiles tests/java/MetaData.java and runs it with MariaDB Connector/J against a fresh database
of the shared server. The program creates two tables joined by a foreign key, an index and a
view, then prints one `call: answer` line per DatabaseMetaData call (or `call: ERROR …`); every
line is checked against what MySQL answers for the same schema.

Needs `javac`/`java` and the Connector/J jar (.ci/run installs default-jdk-headless and
libmariadb-java); skipped otherwise, except under CI where a missing tool is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "java" / "MetaData.java"
JAVA, JAVAC = shutil.which("java"), shutil.which("javac")
JAR = next((p for p in ("/usr/share/java/mariadb-java-client.jar",) if os.path.exists(p)), None)
MISSING = JAVA is None or JAVAC is None or JAR is None

if MISSING and os.environ.get("CI"):
    raise RuntimeError("java, javac or mariadb-java-client.jar missing: .ci/run installs them")
pytestmark = pytest.mark.skipif(MISSING, reason="java or Connector/J missing (apt: default-jdk-headless libmariadb-java)")

EXPECTED = {
    "user": "root",
    "catalogs": "true",
    "tables": "child|TABLE;parent|TABLE",
    "views": "child_names|VIEW",
    # name | type | java.sql.Types | columnNoNulls(0)/columnNullable(1) | auto-increment
    "columns": "id|BIGINT|-5|0|YES;parent_id|INT|4|1|NO;note|TEXT|-1|1|NO;"
               "price|DECIMAL|3|1|NO;made|DATETIME|93|1|NO",
    "column_sizes": "40",
    "decimal": "10|2",
    "primary_keys": "id|1",
    "indexes": "PRIMARY|id|0;idx_note_parent|parent_id|1",
    "imported_keys": "parent|id|child|parent_id|fk_parent",
    "exported_keys": "child|parent_id",
    "type_info": "true",
    "procedures": "",
    "functions": "",
    "transactions": "true 4",  # TRANSACTION_REPEATABLE_READ
    "keywords": "true",
    "identifier_quote": "`",
    "prepared_metadata": "2 id note",
    "insert_and_keys": "1",
    "view_rows": "1|one",
}


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jdbc")
    subprocess.run([JAVAC, "-d", str(out), str(SOURCE)], check=True, timeout=300)
    return out


def test_database_metadata_answers_like_mysql(classes: Path, embedb_server: tuple[str, int],
                                              db: str) -> None:
    _, port = embedb_server
    proc = subprocess.run([JAVA, "-cp", f"{JAR}{os.pathsep}{classes}", "MetaData", str(port), db],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answers = dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "")
                   for line in proc.stdout.splitlines())
    assert answers.get("product", "").startswith("MySQL 8.0.11-TiDB-"), proc.stdout
    wrong = {k: (answers.get(k), v) for k, v in EXPECTED.items() if answers.get(k) != v}
    assert not wrong, f"(got, expected) per call: {wrong}\n{proc.stdout}"
