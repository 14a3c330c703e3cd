// What database tools (DBeaver, DataGrip, Metabase) ask through JDBC's DatabaseMetaData, call by
// call, against a schema with a view, an index and a foreign key. Prints one line per answer
// (`call: value`); tests/python/test_jdbc.py runs it against embedb and checks the lines.
// Usage: java -cp mariadb-java-client.jar:. MetaData PORT DATABASE

import java.sql.*;
import java.util.*;

public class MetaData {
    interface Call { String run() throws Exception; }

    static void show(String name, Call c) {
        try {
            System.out.println(name + ": " + c.run());
        } catch (Exception e) {
            System.out.println(name + ": ERROR " + e.getMessage().replace('\n', ' '));
        }
    }

    static String rows(ResultSet rs, String... cols) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> r = new ArrayList<>();
            for (String c : cols) r.add(String.valueOf(rs.getString(c)));
            out.add(String.join("|", r));
        }
        rs.close();
        return String.join(";", out);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:mariadb://127.0.0.1:" + args[0] + "/" + args[1] + "?user=root&password=";
        try (Connection c = DriverManager.getConnection(url)) {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL)");
                s.execute("CREATE TABLE child (id BIGINT AUTO_INCREMENT PRIMARY KEY, parent_id INT, note TEXT, "
                        + "price DECIMAL(10,2), made DATETIME, KEY idx_note_parent (parent_id), "
                        + "CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id))");
                s.execute("CREATE VIEW child_names AS SELECT c.id, p.name FROM child c JOIN parent p ON c.parent_id = p.id");
            }
            DatabaseMetaData md = c.getMetaData();
            String db = args[1];
            show("product", () -> md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            show("user", md::getUserName);
            show("catalogs", () -> {
                ResultSet rs = md.getCatalogs();
                List<String> names = new ArrayList<>();
                while (rs.next()) names.add(rs.getString("TABLE_CAT"));
                return String.valueOf(names.contains(db));
            });
            show("tables", () -> rows(md.getTables(db, null, "%", new String[] {"TABLE"}), "TABLE_NAME", "TABLE_TYPE"));
            show("views", () -> rows(md.getTables(db, null, "%", new String[] {"VIEW"}), "TABLE_NAME", "TABLE_TYPE"));
            show("columns", () -> rows(md.getColumns(db, null, "child", "%"), "COLUMN_NAME", "TYPE_NAME", "DATA_TYPE", "NULLABLE", "IS_AUTOINCREMENT"));
            show("column_sizes", () -> rows(md.getColumns(db, null, "parent", "name"), "COLUMN_SIZE"));
            show("decimal", () -> rows(md.getColumns(db, null, "child", "price"), "COLUMN_SIZE", "DECIMAL_DIGITS"));
            show("primary_keys", () -> rows(md.getPrimaryKeys(db, null, "child"), "COLUMN_NAME", "KEY_SEQ"));
            show("indexes", () -> rows(md.getIndexInfo(db, null, "child", false, false), "INDEX_NAME", "COLUMN_NAME", "NON_UNIQUE"));
            show("imported_keys", () -> rows(md.getImportedKeys(db, null, "child"), "PKTABLE_NAME", "PKCOLUMN_NAME", "FKTABLE_NAME", "FKCOLUMN_NAME", "FK_NAME"));
            show("exported_keys", () -> rows(md.getExportedKeys(db, null, "parent"), "FKTABLE_NAME", "FKCOLUMN_NAME"));
            show("type_info", () -> {
                ResultSet rs = md.getTypeInfo();
                int n = 0;
                while (rs.next()) n++;
                return String.valueOf(n > 10);
            });
            show("procedures", () -> rows(md.getProcedures(db, null, "%"), "PROCEDURE_NAME"));
            show("functions", () -> rows(md.getFunctions(db, null, "%"), "FUNCTION_NAME"));
            show("transactions", () -> md.supportsTransactions() + " " + c.getTransactionIsolation());
            show("keywords", () -> String.valueOf(md.getSQLKeywords().length() > 0));
            show("identifier_quote", md::getIdentifierQuoteString);
            show("prepared_metadata", () -> {
                try (PreparedStatement p = c.prepareStatement("SELECT id, note FROM child WHERE id = ?")) {
                    ResultSetMetaData m = p.getMetaData();
                    return m.getColumnCount() + " " + m.getColumnName(1) + " " + m.getColumnName(2);
                }
            });
            show("insert_and_keys", () -> {
                try (PreparedStatement p = c.prepareStatement("INSERT INTO parent VALUES (?, ?)")) {
                    p.setInt(1, 1);
                    p.setString(2, "one");
                    p.executeUpdate();
                }
                try (PreparedStatement p = c.prepareStatement("INSERT INTO child (parent_id, note) VALUES (?, ?)", Statement.RETURN_GENERATED_KEYS)) {
                    p.setInt(1, 1);
                    p.setString(2, "first");
                    p.executeUpdate();
                    ResultSet k = p.getGeneratedKeys();
                    k.next();
                    return String.valueOf(k.getLong(1));
                }
            });
            show("view_rows", () -> {
                try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT id, name FROM child_names")) {
                    return rows(rs, "id", "name");
                }
            });
        }
    }
}
