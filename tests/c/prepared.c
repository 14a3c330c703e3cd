/* Server-side prepared statements through the MySQL C API (libmariadb), as sysbench and C/C++
 * programs use them: prepare, read the metadata, bind, execute twice, fetch, errors at prepare,
 * long data, a read-only cursor, and SQL's PREPARE/EXECUTE.
 *
 *   prepared test  HOST PORT DB        run the checks; prints one line per check, exits 1 on
 *                                      the first failure
 *   prepared bench HOST PORT DB N      N point selects by primary key as text and as a prepared
 *                                      statement; prints the rate of each (for docs/ benchmarks)
 *
 * Build: cc prepared.c $(mariadb_config --cflags --libs)
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static MYSQL *db;
static int checks;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            printf("FAIL %d (line %d): ", checks, __LINE__);               \
            printf(__VA_ARGS__);                                           \
            printf(" [server: %u %s]\n", mysql_errno(db), mysql_error(db)); \
            exit(1);                                                       \
        }                                                                  \
        printf("ok %d - ", checks);                                        \
        printf(__VA_ARGS__);                                               \
        printf("\n");                                                      \
    } while (0)

static void sql(const char *q) {
    if (mysql_query(db, q)) {
        printf("FAIL: %s: %u %s\n", q, mysql_errno(db), mysql_error(db));
        exit(1);
    }
    MYSQL_RES *r = mysql_store_result(db);
    if (r) mysql_free_result(r);
}

static MYSQL_STMT *prepare(const char *q) {
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (mysql_stmt_prepare(st, q, strlen(q))) {
        printf("FAIL: prepare %s: %u %s\n", q, mysql_stmt_errno(st), mysql_stmt_error(st));
        exit(1);
    }
    return st;
}

/* The error code mysql_stmt_prepare gives for q (0 when it prepares). */
static unsigned prepare_error(const char *q) {
    MYSQL_STMT *st = mysql_stmt_init(db);
    unsigned code = mysql_stmt_prepare(st, q, strlen(q)) ? mysql_stmt_errno(st) : 0;
    mysql_stmt_close(st);
    return code;
}

static void connect_to(const char *host, const char *port, const char *dbname) {
    db = mysql_init(NULL);
    if (!mysql_real_connect(db, host, "root", "", NULL, (unsigned)atoi(port), NULL, 0)) {
        printf("FAIL: connect: %s\n", mysql_error(db));
        exit(1);
    }
    char q[256];
    snprintf(q, sizeof q, "CREATE DATABASE IF NOT EXISTS %s", dbname);
    sql(q);
    if (mysql_select_db(db, dbname)) {
        printf("FAIL: use %s: %s\n", dbname, mysql_error(db));
        exit(1);
    }
}

/* SELECT id, name, score FROM items WHERE id = ?: one row into C variables. */
static int point_select(MYSQL_STMT *st, int id, int *got_id, char *name, double *score) {
    MYSQL_BIND p[1], r[3];
    unsigned long name_len = 0;
    memset(p, 0, sizeof p);
    memset(r, 0, sizeof r);
    p[0].buffer_type = MYSQL_TYPE_LONG;
    p[0].buffer = &id;
    r[0].buffer_type = MYSQL_TYPE_LONG;
    r[0].buffer = got_id;
    r[1].buffer_type = MYSQL_TYPE_STRING;
    r[1].buffer = name;
    r[1].buffer_length = 64;
    r[1].length = &name_len;
    r[2].buffer_type = MYSQL_TYPE_DOUBLE;
    r[2].buffer = score;
    if (mysql_stmt_bind_param(st, p) || mysql_stmt_execute(st) || mysql_stmt_bind_result(st, r)) return -1;
    int rows = 0;
    while (mysql_stmt_fetch(st) == 0) {
        name[name_len < 63 ? name_len : 63] = 0;
        rows++;
    }
    mysql_stmt_free_result(st);
    return rows;
}

static void test(void) {
    sql("DROP TABLE IF EXISTS items");
    sql("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64), score DOUBLE, note TEXT)");
    sql("INSERT INTO items VALUES (1, 'one', 1.5, NULL), (2, 'two', 2.5, NULL), (3, 'three', 3.5, NULL)");

    /* prepare: parameter and result metadata before any execute */
    MYSQL_STMT *st = prepare("SELECT id, name, score FROM items WHERE id = ?");
    CHECK(mysql_stmt_param_count(st) == 1, "one parameter counted at prepare");
    CHECK(mysql_stmt_field_count(st) == 3, "three result columns known at prepare");
    MYSQL_RES *meta = mysql_stmt_result_metadata(st);
    CHECK(meta != NULL, "result metadata at prepare");
    MYSQL_FIELD *f = mysql_fetch_fields(meta);
    CHECK(strcmp(f[0].name, "id") == 0 && f[0].type == MYSQL_TYPE_LONG, "column 1 is id INT (%s, %d)", f[0].name, f[0].type);
    CHECK(strcmp(f[1].name, "name") == 0 && f[1].type == MYSQL_TYPE_VAR_STRING, "column 2 is name VARCHAR (%d)", f[1].type);
    CHECK(strcmp(f[2].name, "score") == 0 && f[2].type == MYSQL_TYPE_DOUBLE, "column 3 is score DOUBLE (%d)", f[2].type);
    CHECK(strcmp(f[0].table, "items") == 0, "columns name their table");
    mysql_free_result(meta);

    /* execute twice with different values */
    int id = 0;
    char name[64];
    double score = 0;
    CHECK(point_select(st, 2, &id, name, &score) == 1 && id == 2 && strcmp(name, "two") == 0 && score == 2.5,
          "execute 1 finds row 2");
    CHECK(point_select(st, 3, &id, name, &score) == 1 && id == 3 && strcmp(name, "three") == 0 && score == 3.5,
          "execute 2 finds row 3");
    CHECK(point_select(st, 99, &id, name, &score) == 0, "execute 3 finds nothing for 99");
    mysql_stmt_close(st);

    /* errors at prepare, as MySQL reports them */
    CHECK(prepare_error("SELEC 1") == 1064, "syntax error at prepare: 1064");
    CHECK(prepare_error("SELECT * FROM no_such_table WHERE id = ?") == 1146, "unknown table at prepare: 1146");
    CHECK(prepare_error("SELECT nope FROM items WHERE id = ?") == 1054, "unknown column at prepare: 1054");
    CHECK(prepare_error("INSERT INTO items (id, nope) VALUES (?, ?)") == 1054, "unknown INSERT column at prepare: 1054");
    CHECK(prepare_error("UPDATE items SET name = ? WHERE nope = ?") == 1054, "unknown WHERE column in UPDATE at prepare: 1054");
    CHECK(prepare_error("DELETE FROM no_such_table WHERE id = ?") == 1146, "unknown table in DELETE at prepare: 1146");

    /* a prepared INSERT with typed parameters, executed twice */
    st = prepare("INSERT INTO items (id, name, score) VALUES (?, ?, ?)");
    CHECK(mysql_stmt_param_count(st) == 3 && mysql_stmt_field_count(st) == 0, "INSERT: 3 parameters, no result columns");
    MYSQL_BIND p[3];
    char text[64];
    unsigned long text_len;
    memset(p, 0, sizeof p);
    p[0].buffer_type = MYSQL_TYPE_LONG;
    p[0].buffer = &id;
    p[1].buffer_type = MYSQL_TYPE_STRING;
    p[1].buffer = text;
    p[1].length = &text_len;
    p[2].buffer_type = MYSQL_TYPE_DOUBLE;
    p[2].buffer = &score;
    id = 10, score = 10.25;
    strcpy(text, "it's \\ ten");
    text_len = strlen(text);
    CHECK(!mysql_stmt_bind_param(st, p) && !mysql_stmt_execute(st) && mysql_stmt_affected_rows(st) == 1, "insert row 10");
    id = 11, score = -0.5;
    strcpy(text, "eleven");
    text_len = strlen(text);
    CHECK(!mysql_stmt_execute(st) && mysql_stmt_affected_rows(st) == 1, "insert row 11 with the same statement");
    CHECK(mysql_stmt_execute(st) && mysql_stmt_errno(st) == 1062, "inserting row 11 again: 1062");
    mysql_stmt_close(st);
    st = prepare("SELECT id, name, score FROM items WHERE id = ?");
    CHECK(point_select(st, 10, &id, name, &score) == 1 && strcmp(name, "it's \\ ten") == 0 && score == 10.25,
          "quotes and backslashes in a string parameter arrive intact");

    /* DDL between executes: the statement sees the new column layout */
    sql("ALTER TABLE items ADD COLUMN extra INT DEFAULT 7 FIRST");
    CHECK(point_select(st, 11, &id, name, &score) == 1 && id == 11 && score == -0.5, "executes after ALTER TABLE");
    mysql_stmt_close(st);

    /* long data: a TEXT value sent in pieces */
    st = prepare("UPDATE items SET note = ? WHERE id = ?");
    memset(p, 0, sizeof p);
    p[0].buffer_type = MYSQL_TYPE_STRING;
    p[1].buffer_type = MYSQL_TYPE_LONG;
    id = 1;
    p[1].buffer = &id;
    mysql_stmt_bind_param(st, p);
    for (int i = 0; i < 3; i++) mysql_stmt_send_long_data(st, 0, "chunk;", 6);
    CHECK(!mysql_stmt_execute(st) && mysql_stmt_affected_rows(st) == 1, "UPDATE with long data");
    mysql_stmt_close(st);
    mysql_query(db, "SELECT note FROM items WHERE id = 1");
    MYSQL_RES *res = mysql_store_result(db);
    MYSQL_ROW row = mysql_fetch_row(res);
    CHECK(row && strcmp(row[0], "chunk;chunk;chunk;") == 0, "long data pieces joined in order");
    mysql_free_result(res);

    /* a read-only cursor fetched two rows at a time */
    st = mysql_stmt_init(db);
    unsigned long cursor = CURSOR_TYPE_READ_ONLY, prefetch = 2;
    mysql_stmt_attr_set(st, STMT_ATTR_CURSOR_TYPE, &cursor);
    mysql_stmt_attr_set(st, STMT_ATTR_PREFETCH_ROWS, &prefetch);
    const char *q = "SELECT id FROM items WHERE id > ? ORDER BY id";
    CHECK(!mysql_stmt_prepare(st, q, strlen(q)), "prepare for a cursor");
    int from = 0, got = 0, sum = 0, n = 0;
    MYSQL_BIND cp[1], cr[1];
    memset(cp, 0, sizeof cp);
    memset(cr, 0, sizeof cr);
    cp[0].buffer_type = MYSQL_TYPE_LONG;
    cp[0].buffer = &from;
    cr[0].buffer_type = MYSQL_TYPE_LONG;
    cr[0].buffer = &got;
    mysql_stmt_bind_param(st, cp);
    CHECK(!mysql_stmt_execute(st) && !mysql_stmt_bind_result(st, cr), "execute with a cursor");
    while (mysql_stmt_fetch(st) == 0) {
        sum += got;
        n++;
    }
    CHECK(n == 5 && sum == 1 + 2 + 3 + 10 + 11, "cursor fetched all 5 rows (%d, sum %d)", n, sum);
    mysql_stmt_close(st);

    /* SQL PREPARE / EXECUTE / DEALLOCATE */
    sql("PREPARE s1 FROM 'SELECT name FROM items WHERE id = ?'");
    sql("SET @want = 3");
    mysql_query(db, "EXECUTE s1 USING @want");
    res = mysql_store_result(db);
    row = res ? mysql_fetch_row(res) : NULL;
    CHECK(row && strcmp(row[0], "three") == 0, "EXECUTE s1 USING @want");
    if (res) mysql_free_result(res);
    sql("DEALLOCATE PREPARE s1");
    CHECK(mysql_query(db, "EXECUTE s1 USING @want") && mysql_errno(db) == 1243, "EXECUTE after DEALLOCATE: 1243");

    printf("all %d checks passed\n", checks);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void bench(int n) {
    sql("DROP TABLE IF EXISTS bench_points");
    sql("CREATE TABLE bench_points (id INT PRIMARY KEY, name VARCHAR(64), score DOUBLE)");
    char q[256];
    for (int i = 0; i < 1000; i += 100) {
        char buf[8192];
        int len = snprintf(buf, sizeof buf, "INSERT INTO bench_points VALUES ");
        for (int j = i; j < i + 100; j++)
            len += snprintf(buf + len, sizeof buf - len, "%s(%d, 'name %d', %d.5)", j > i ? "," : "", j, j, j);
        sql(buf);
    }
    /* warm up both paths */
    for (int i = 0; i < 50; i++) {
        snprintf(q, sizeof q, "SELECT id, name, score FROM bench_points WHERE id = %d", i);
        sql(q);
    }
    double t0 = now();
    for (int i = 0; i < n; i++) {
        snprintf(q, sizeof q, "SELECT id, name, score FROM bench_points WHERE id = %d", (i * 7) % 1000);
        if (mysql_query(db, q)) exit(1);
        MYSQL_RES *r = mysql_store_result(db);
        if (!r || !mysql_fetch_row(r)) exit(1);
        mysql_free_result(r);
    }
    double text = n / (now() - t0);
    MYSQL_STMT *st = prepare("SELECT id, name, score FROM bench_points WHERE id = ?");
    int id;
    char name[64];
    double score;
    for (int i = 0; i < 50; i++) point_select(st, i, &id, name, &score);
    t0 = now();
    for (int i = 0; i < n; i++)
        if (point_select(st, (i * 7) % 1000, &id, name, &score) != 1) exit(1);
    double prepared = n / (now() - t0);
    mysql_stmt_close(st);
    printf("text %.0f q/s\nprepared %.0f q/s\n", text, prepared);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s test|bench HOST PORT DB [N]\n", argv[0]);
        return 2;
    }
    connect_to(argv[2], argv[3], argv[4]);
    if (strcmp(argv[1], "bench") == 0)
        bench(argc > 5 ? atoi(argv[5]) : 2000);
    else
        test();
    mysql_close(db);
    return 0;
}
