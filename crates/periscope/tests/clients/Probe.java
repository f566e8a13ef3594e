// pgjdbc through the gateway, compared with a direct connection.
// Usage: java -cp postgresql.jar:. Probe GATEWAY_JDBC_URL GW_USER GW_PASSWORD
//        DIRECT_JDBC_URL DIRECT_USER DIRECT_PASSWORD
// Prints `ok <check>` per check; any failure exits non-zero.
import java.sql.*;
import java.util.*;

public class Probe {
    static void check(boolean cond, String what) {
        if (!cond) throw new AssertionError(what);
    }

    static void ok(String check, Object values) {
        System.out.println("ok " + check + " " + (values == null ? "" : values));
    }

    static List<List<String>> rows(ResultSet rs) throws SQLException {
        List<List<String>> out = new ArrayList<>();
        int n = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (int i = 1; i <= n; i++) row.add(rs.getString(i));
            out.add(row);
        }
        rs.close();
        return out;
    }

    /// Metadata results; columns that name the catalog (the connection's
    /// name through the gateway, the database's directly) are the same here
    /// because the connection is named like its database.
    static Map<String, List<List<String>>> metadata(Connection c) throws SQLException {
        DatabaseMetaData md = c.getMetaData();
        Map<String, List<List<String>>> m = new LinkedHashMap<>();
        m.put("schemas", rows(md.getSchemas()));
        m.put("catalogs", rows(md.getCatalogs()));
        m.put("tables", rows(md.getTables(null, "public", "%", new String[] {"TABLE", "VIEW", "SEQUENCE"})));
        m.put("columns", rows(md.getColumns(null, "public", "customers", "%")));
        m.put("primaryKeys", rows(md.getPrimaryKeys(null, "public", "orders")));
        m.put("importedKeys", rows(md.getImportedKeys(null, "public", "orders")));
        m.put("exportedKeys", rows(md.getExportedKeys(null, "public", "customers")));
        m.put("indexInfo", rows(md.getIndexInfo(null, "public", "orders", false, false)));
        m.put("functions", rows(md.getFunctions(null, "public", "order_total")));
        m.put("functionColumns", rows(md.getFunctionColumns(null, "public", "order_total", "%")));
        m.put("tablePrivileges", rows(md.getTablePrivileges(null, "public", "customers")));
        m.put("bestRow", rows(md.getBestRowIdentifier(null, "public", "customers", DatabaseMetaData.bestRowSession, false)));
        m.put("keywords", List.of(List.of(md.getSQLKeywords())));
        return m;
    }

    public static void main(String[] a) throws Exception {
        Properties gp = new Properties();
        gp.setProperty("user", a[1]);
        gp.setProperty("password", a[2]);
        gp.setProperty("prepareThreshold", "5");
        Properties dp = new Properties();
        dp.setProperty("user", a[4]);
        dp.setProperty("password", a[5]);
        try (Connection c = DriverManager.getConnection(a[0], gp);
             Connection d = DriverManager.getConnection(a[3], dp)) {
            // Prepared statement past the server-prepare threshold.
            try (PreparedStatement ps = c.prepareStatement("SELECT id, email FROM customers WHERE id = ?")) {
                for (int i = 1; i <= 7; i++) {
                    ps.setLong(1, i);
                    List<List<String>> r = rows(ps.executeQuery());
                    check(r.equals(List.of(List.of(String.valueOf(i), "[email]"))), "prepared " + r);
                }
            }
            ok("pgjdbc prepared past prepareThreshold", null);

            // Fetch-size cursor (needs autocommit off).
            c.setAutoCommit(false);
            try (Statement st = c.createStatement()) {
                st.setFetchSize(4);
                List<List<String>> r = rows(st.executeQuery("SELECT id, email FROM customers ORDER BY id"));
                check(r.size() == 30 && r.stream().allMatch(x -> x.get(1).equals("[email]")), "cursor " + r.size());
            }
            c.commit();
            c.setAutoCommit(true);
            ok("pgjdbc fetch-size cursor", null);

            c.setReadOnly(true);
            c.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
            c.setReadOnly(false);
            ok("pgjdbc read-only and isolation", null);

            Map<String, List<List<String>>> want = metadata(d);
            Map<String, List<List<String>>> got = metadata(c);
            for (String k : want.keySet()) {
                check(want.get(k).equals(got.get(k)), k + ": direct " + want.get(k) + " gateway " + got.get(k));
            }
            check(got.get("importedKeys").size() == 1, "one foreign key of orders");
            ok("pgjdbc metadata equal to direct", got.keySet());

            try (Statement st = c.createStatement()) {
                st.executeUpdate("UPDATE customers SET name = 'x' WHERE id = 1");
                throw new AssertionError("the UPDATE was not refused");
            } catch (SQLException e) {
                check("42501".equals(e.getSQLState()), "refusal " + e.getSQLState() + " " + e.getMessage());
            }
            ok("pgjdbc refusal", null);
        }
    }
}
