//! `periscope.toml` parsing: defaults, the shipped example, and mistakes refused
//! with the file, line and column of the offending key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use periscope_policy::{
    AuditDurability, ClientTls, Config, ConfigError, SecretRef, StoreUrl, UpstreamTls, WebhookEvent,
};
use periscope_redact::{Entity, Operator};

const CONNECTION: &str = r#"
[[connection]]
name = "pg-prod"
kind = "postgres"
host = "db.internal"
database = "shop"
user = "periscope"
password_env = "PG_PROD_PASSWORD"
"#;

fn refused(text: &str) -> ConfigError {
    match Config::parse(text, "periscope.toml") {
        Ok(config) => panic!("accepted: {config:#?}"),
        Err(e) => e,
    }
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in text"));
    text[..at].matches('\n').count() + 1
}

/// Asserts exactly one problem, on the line holding `needle`, whose message
/// contains `message`.
fn assert_one(text: &str, needle: &str, message: &str) {
    let err = refused(text);
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = err.first();
    assert_eq!(d.file, "periscope.toml");
    assert_eq!(d.line, line_of(text, needle), "{err}");
    assert!(d.source_line.contains(needle), "{err}");
    assert!(
        d.message.contains(message),
        "expected `{message}` in:\n{err}"
    );
}

#[test]
fn an_empty_file_is_all_defaults() {
    let config = Config::parse("", "periscope.toml").unwrap();
    assert_eq!(
        config.server.api_listen,
        "127.0.0.1:8443".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.server.pg_listen,
        "127.0.0.1:15432".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.server.data_dir, PathBuf::from("./periscope-data"));
    assert_eq!(config.server.advertised_host(), "127.0.0.1");
    assert_eq!(
        config.store_url(),
        StoreUrl::Sqlite {
            path: PathBuf::from("./periscope-data/periscope.db")
        }
    );
    assert_eq!(config.audit.checkpoint_every, 1000);
    assert_eq!(config.requests.pending_ttl, Duration::from_secs(24 * 3600));
    assert!(config.webhook.is_none() && config.connections.is_empty() && config.roles.is_empty());
}

#[test]
fn the_default_store_follows_the_data_dir() {
    let mut config = Config::parse("[server]\ndata_dir = \"/var/lib/periscope\"\n", "p").unwrap();
    assert_eq!(
        config.store_url(),
        StoreUrl::Sqlite {
            path: PathBuf::from("/var/lib/periscope/periscope.db")
        }
    );
    // `periscope up --data-dir` overrides the file.
    config.server.data_dir = PathBuf::from("/srv/p");
    assert_eq!(
        config.store_url(),
        StoreUrl::Sqlite {
            path: PathBuf::from("/srv/p/periscope.db")
        }
    );
}

#[test]
fn connection_defaults_are_the_secure_ones() {
    let config = Config::parse(CONNECTION, "p").unwrap();
    let c = &config.connections[0];
    assert_eq!(c.port, 5432);
    assert_eq!(c.client_tls, ClientTls::Required);
    assert_eq!(c.upstream_tls, UpstreamTls::Prefer);
    assert_eq!(c.password, Some(SecretRef::Env("PG_PROD_PASSWORD".into())));
    assert!(c.data_policy.is_none());
    let p = c.effective_data_policy();
    assert!(p.refuse_unanalysable && p.tags.is_empty() && p.enable.is_empty());
    // Discovery on by default, profiling again once a day.
    assert!(c.background_discovery);
    assert_eq!(c.discovery_interval, Duration::from_secs(24 * 3600));
}

#[test]
fn discovery_interval_is_a_bounded_duration() {
    let config = Config::parse(&format!("{CONNECTION}discovery_interval = \"6h\"\n"), "p").unwrap();
    assert_eq!(
        config.connections[0].discovery_interval,
        Duration::from_secs(6 * 3600)
    );
    assert_one(
        &format!("{CONNECTION}discovery_interval = \"0s\"\n"),
        "discovery_interval = \"0s\"",
        "discovery_interval",
    );
    assert_one(
        &format!("{CONNECTION}discovery_interval = \"90d\"\n"),
        "discovery_interval = \"90d\"",
        "discovery_interval",
    );
}

#[test]
fn the_shipped_example_parses_and_says_what_it_means() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../periscope.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config = Config::parse(&text, "periscope.example.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !text.contains("password ="),
        "examples never carry inline passwords"
    );

    let prod = config.connection("pg-prod").unwrap();
    assert_eq!(prod.upstream_tls, UpstreamTls::VerifyFull);
    let policy = prod.data_policy.as_ref().unwrap();
    assert_eq!(
        policy.operators.get(&Entity::Email),
        Some(&Operator::Partial)
    );
    assert!(policy.enable.contains(&Entity::DateOfBirth));
    assert!(
        config
            .connection("pg-staging")
            .unwrap()
            .data_policy
            .is_none()
    );
    match config.store_url() {
        StoreUrl::Postgres { password, .. } => {
            assert_eq!(
                password,
                Some(SecretRef::Env("PERISCOPE_STORE_PASSWORD".into()))
            )
        }
        other => panic!("{other:?}"),
    }
    let webhook = config.webhook.as_ref().unwrap();
    assert_eq!(webhook.events.len(), WebhookEvent::ALL.len());

    let lead = config.role("lead").unwrap();
    assert_eq!(
        (lead.approvals, lead.max_duration),
        (2, Duration::from_secs(4 * 3600))
    );
    assert!(config.role("oncall-breakglass").unwrap().break_glass);
    assert!(config.role("security").unwrap().admin);
}

#[test]
fn a_typo_in_a_key_is_refused_with_the_expected_keys() {
    let text = format!("{CONNECTION}pasword_env = \"X\"\n");
    assert_one(&text, "pasword_env", "unknown field `pasword_env`");
    assert!(refused(&text).to_string().contains("`password_env`"));
    assert_one(
        "[server]\napi_listen = \"127.0.0.1:8443\"\npg_listn = \"0.0.0.0:5432\"\n",
        "pg_listn",
        "unknown field `pg_listn`",
    );
    assert_one("[serveur]\n", "[serveur]", "unknown field `serveur`");
}

#[test]
fn the_column_is_that_of_the_offending_text() {
    let text =
        format!("{CONNECTION}[connection.data_policy]\noperators = {{ e-mail = \"partial\" }}\n");
    let err = refused(&text);
    let d = err.first();
    assert_eq!(
        (d.line, d.column, d.width),
        (line_of(&text, "operators"), 15, 6)
    );
    let rendered = err.to_string();
    assert!(
        rendered.starts_with(&format!(
            "periscope.toml:{}:15: in `operators`: unknown entity `e-mail`",
            d.line
        )),
        "{rendered}"
    );
    assert!(rendered.ends_with("|               ^^^^^^"), "{rendered}");
}

#[test]
fn an_inline_password_is_refused_at_its_line() {
    let text = format!("{CONNECTION}password = \"hunter2\"\n");
    assert_one(&text, "hunter2", "inline `password` is refused");
    assert!(!refused(&text).to_string().contains("unknown field"));
    assert_one(
        "[webhook]\nurl = \"https://h.example\"\nsecret = \"s3cr3t\"\n",
        "s3cr3t",
        "inline `secret` is refused",
    );
    assert_one(
        "[store]\nurl = \"postgres://periscope:hunter2@db/periscope\"\n",
        "hunter2",
        "contains a password",
    );
    assert_one(
        "[store]\nurl = \"postgres://db/periscope?sslmode=require&password=x\"\n",
        "password=x",
        "contains a password",
    );
}

#[test]
fn duplicate_connections_point_at_the_second_and_name_the_first() {
    let text = format!(
        "{CONNECTION}{}",
        CONNECTION.replace("PG_PROD_PASSWORD", "OTHER")
    );
    let err = refused(&text);
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let second = line_of(&text, "OTHER") - 5;
    assert_eq!(err.first().line, second);
    assert!(
        err.first().message.contains(&format!(
            "duplicate connection name `pg-prod` (first defined on line {})",
            line_of(&text, "name = \"pg-prod\"")
        )),
        "{err}"
    );
}

#[test]
fn roles_must_name_existing_approvers_and_connections() {
    let text = format!(
        "{CONNECTION}\n[[role]]\nname = \"dev\"\nconnections = [\"pg-prd\"]\nmay_lift = [\"write\"]\napprovers = [\"leads\"]\n\n[[role]]\nname = \"lead\"\n"
    );
    let err = refused(&text);
    assert_eq!(err.diagnostics.len(), 2, "{err}");
    assert_eq!(err.diagnostics[0].line, line_of(&text, "pg-prd"));
    assert!(
        err.diagnostics[0]
            .message
            .contains("unknown connection `pg-prd` (defined: pg-prod)")
    );
    assert_eq!(err.diagnostics[1].line, line_of(&text, "leads"));
    assert!(
        err.diagnostics[1]
            .message
            .contains("unknown approver role `leads` (roles: admin, dev, lead)"),
        "{err}"
    );
}

#[test]
fn durations_are_bounded_and_parsed_humanely() {
    let role = |d: &str| format!("[[role]]\nname = \"dev\"\nmax_duration = \"{d}\"\n");
    assert_one(
        &role("30d"),
        "30d",
        "`max_duration` must be between 1m and 1day",
    );
    assert_one(&role("10s"), "10s", "must be between");
    assert_one(&role("half an hour"), "half an hour", "such as `30m`");
    let config = Config::parse(&role("1h30m"), "p").unwrap();
    assert_eq!(config.roles[0].max_duration, Duration::from_secs(5400));
    assert_one(
        "[requests]\npending_ttl = \"30days\"\n",
        "30days",
        "`pending_ttl` must be between",
    );
}

#[test]
fn approvals_and_approvers_must_agree() {
    let lifting = format!(
        "{CONNECTION}\n[[role]]\nname = \"dev\"\nconnections = [\"pg-prod\"]\nmay_lift = [\"write\"]\n"
    );
    assert_one(
        &format!("{lifting}approvals = 2\n"),
        "approvals = 2",
        "names no `approvers`",
    );
    assert_one(
        &format!("{lifting}approvals = 11\napprovers = [\"dev\"]\n"),
        "approvals = 11",
        "between 0 and 10",
    );
    assert_one(
        &format!("{lifting}approvals = 0\napprovers = [\"dev\"]\n"),
        "approvers = [\"dev\"]",
        "granted at once",
    );
    // A role that lifts nothing needs no approvers (e.g. a plain reader).
    Config::parse(
        &format!("{CONNECTION}\n[[role]]\nname = \"reader\"\nconnections = [\"*\"]\n"),
        "p",
    )
    .unwrap();
}

#[test]
fn shield_patterns_are_checked_against_the_rules() {
    let role = |lift: &str, extra: &str| {
        format!(
            "{CONNECTION}\n[[role]]\nname = \"dev\"\nconnections = [\"pg-prod\"]\nmay_lift = [{lift}]\napprovers = [\"dev\"]\n{extra}"
        )
    };
    assert_one(
        &role("\"unmask:github_token\"", ""),
        "unmask:github_token",
        "only a role with `break_glass = true`",
    );
    Config::parse(
        &role("\"unmask:github_token\"", "break_glass = true\n"),
        "p",
    )
    .unwrap();
    assert_one(
        &role("\"unbounded-write\"", ""),
        "unbounded-write",
        "add `write` to `may_lift`",
    );
    Config::parse(&role("\"write\", \"unbounded-write\"", ""), "p").unwrap();
    assert_one(
        &role("\"unmask:confidential\"", ""),
        "unmask:confidential",
        "no connection's data_policy tags",
    );
    assert_one(&role("\"read\"", ""), "\"read\"", "invalid shield `read`");
    assert_one(&role("\"table:cards\"", ""), "table:cards", "schema.table");
    assert_one(&role("\"*\"", ""), "\"*\"", "a wildcard goes after");
}

#[test]
fn data_policy_entries_are_checked() {
    let policy = |body: &str| format!("{CONNECTION}[connection.data_policy]\n{body}\n");
    assert_one(
        &policy("enable = [\"email\"]"),
        "enable",
        "`email` is a pii entity and always masked",
    );
    assert_one(
        &policy("enable = [\"persons\"]"),
        "enable",
        "unknown entity `persons`",
    );
    assert_one(
        &policy("operators = { email = \"hash\" }"),
        "operators",
        "in `operators`: unknown operator `hash` (known: redact, partial, token, drop)",
    );
    assert_one(
        &policy("tags = { \"users.email\" = \"email\" }"),
        "users.email",
        "schema.table.column",
    );
    assert_one(
        &policy("tags = { \"public.users.x\" = \"Top Secret\" }"),
        "Top Secret",
        "neither an entity nor a valid tag",
    );
    assert_one(
        &policy("sensitive_tables = [\"cards\"]"),
        "sensitive_tables",
        "schema.table",
    );
    assert_one(
        &policy("blocked_functions = [\"pg_read_file()\"]"),
        "blocked_functions",
        "invalid function name",
    );
    assert_one(
        &policy("refuse_unanalysable = \"no\""),
        "refuse_unanalysable",
        "invalid type",
    );
}

#[test]
fn connection_fields_are_checked() {
    assert_one(
        &CONNECTION.replace("pg-prod", "PG_Prod"),
        "PG_Prod",
        "invalid connection name",
    );
    assert_one(
        &CONNECTION.replace("postgres\"", "mysql\""),
        "mysql",
        "unknown variant `mysql`, expected one of `postgres`",
    );
    assert_one(
        &format!("{CONNECTION}port = 70000\n"),
        "70000",
        "between 1 and 65535",
    );
    assert_one(
        &format!("{CONNECTION}password_file = \"/run/secrets/pg\"\n"),
        "password_file",
        "set only one of `password_env` and `password_file`",
    );
    assert_one(
        &format!("{CONNECTION}upstream_ca_file = \"/etc/ca.pem\"\n"),
        "upstream_ca_file",
        "only used with",
    );
    assert_one(
        &format!("{CONNECTION}upstream_tls = \"verify-ca\"\n"),
        "verify-ca",
        "unknown variant",
    );
    assert_one(
        &format!("{CONNECTION}client_tls = \"off\"\n"),
        "off",
        "unknown variant `off`",
    );
    assert_one(
        &CONNECTION.replace("PG_PROD_PASSWORD", "PG PROD"),
        "PG PROD",
        "not an environment variable name",
    );
}

#[test]
fn the_builtin_admin_role_cannot_be_redeclared() {
    assert_one(
        "[[role]]\nname = \"admin\"\n",
        "admin",
        "built-in administrator role",
    );
}

#[test]
fn audit_durability_defaults_to_surviving_power_loss() {
    let default = Config::parse("", "periscope.toml").unwrap();
    assert_eq!(default.audit.durability, AuditDurability::ProcessCrash);
    let relaxed = Config::parse(
        "[audit]\ndurability = \"process-crash\"\n",
        "periscope.toml",
    )
    .unwrap();
    assert_eq!(relaxed.audit.durability, AuditDurability::ProcessCrash);
}

#[test]
fn server_and_store_values_are_checked() {
    assert_one(
        "[server]\napi_listen = \"localhost\"\n",
        "localhost",
        "address and port",
    );
    assert_one(
        "[server]\napi_listen = \"127.0.0.1:9000\"\npg_listen = \"127.0.0.1:9000\"\n",
        "pg_listen",
        "cannot be the same",
    );
    assert_one(
        "[store]\nurl = \"mysql://db/x\"\n",
        "mysql",
        "must start with `sqlite://` or `postgres://`",
    );
    assert_one(
        "[store]\npassword_env = \"X\"\n",
        "password_env",
        "takes no password",
    );
    assert_one(
        "[audit]\ncheckpoint_every = 0\n",
        "checkpoint_every",
        "between 1 and",
    );
    assert_one(
        "[audit]\ndurability = \"fast\"\n",
        "fast",
        "unknown variant `fast`, expected `power-loss` or `process-crash`",
    );
    assert_one(
        "[webhook]\nurl = \"https://h.example\"\n",
        "url",
        "needs a signing key",
    );
    assert_one(
        "[webhook]\nurl = \"ftp://h\"\nsecret_env = \"S\"\n",
        "ftp",
        "https://",
    );
    assert_one(
        "[webhook]\nurl = \"https://h\"\nsecret_env = \"S\"\nevents = [\"approved\"]\n",
        "approved",
        "unknown variant `approved`",
    );
}

#[test]
fn every_semantic_problem_is_reported_in_file_order() {
    let text = format!(
        "{CONNECTION}[connection.data_policy]\noperators = {{ e-mail = \"partial\" }}\n\n[[role]]\nname = \"dev\"\nconnections = [\"pg-prod\"]\nmay_lift = [\"write\"]\nmax_duration = \"90d\"\napprovers = [\"leads\"]\n"
    );
    let err = refused(&text);
    let lines: Vec<usize> = err.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(
        lines,
        vec![
            line_of(&text, "e-mail"),
            line_of(&text, "90d"),
            line_of(&text, "leads")
        ],
        "{err}"
    );
}

#[test]
fn syntax_errors_carry_a_line_too() {
    let text = "[server]\napi_listen = \"127.0.0.1:8443\n";
    let err = refused(text);
    assert_eq!(err.first().line, 2, "{err}");
    let text = "[[role]]\nname = \"dev\"\napprovals = \"two\"\n";
    assert_one(text, "\"two\"", "invalid type");
}

#[test]
fn missing_required_keys_point_at_their_table() {
    let text = "\n[[connection]]\nname = \"pg-prod\"\nkind = \"postgres\"\nhost = \"h\"\ndatabase = \"d\"\n";
    // Which keys are required depends on `kind`: the error points at the
    // connection's name.
    let err = refused(text);
    assert_eq!(err.first().line, 3, "{err}");
    assert!(
        err.first()
            .message
            .contains("a postgres connection needs `user`"),
        "{err}"
    );
}

#[test]
fn duplicate_roles_and_bad_label_keys_are_refused() {
    let text = "[[role]]\nname = \"dev\"\n\n[[role]]\nname = \"dev\"\n";
    let err = refused(text);
    assert_eq!(err.first().line, 5, "{err}");
    assert!(
        err.first()
            .message
            .contains("duplicate role name `dev` (first defined on line 2)")
    );
    assert_one(
        &format!("{CONNECTION}labels = {{ \"Env\" = \"prod\" }}\n"),
        "Env",
        "invalid label key `Env`",
    );
    assert_one(
        &format!("{CONNECTION}[connection.data_policy]\nsensitive_table = [\"a.b\"]\n"),
        "sensitive_table",
        "unknown field `sensitive_table`",
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn example() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../periscope.example.toml");
        std::fs::read_to_string(path).expect("the example exists")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn on_arbitrary_text(text in "\\PC{0,200}") {
            let _ = Config::parse(&text, "p");
        }

        /// Damage one spot of the real example: any error must point inside the file.
        #[test]
        fn on_a_damaged_example(at in 0usize..6000, junk in "[\\PC\n]{0,3}", cut in 0usize..4) {
            let mut text = example();
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + cut).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.replace_range(at..end, &junk);
            if let Err(e) = Config::parse(&text, "p") {
                let lines = text.lines().count().max(1);
                for d in &e.diagnostics {
                    prop_assert!(d.line >= 1 && d.line <= lines + 1, "{e}");
                    prop_assert!(d.column >= 1, "{e}");
                    prop_assert!(!d.message.is_empty());
                }
            }
        }
    }
}

const EXEC: &str = r#"
[[connection]]
name = "kube"
kind = "exec"
command = ["/usr/bin/kubectl", "--context", "prod"]
allow = ["logs *", "get pods"]
sensitive = ["delete *", "exec *"]
working_dir = "/srv"
env = { KUBECONFIG = "/etc/kube/config", LANG = "C.UTF-8" }
timeout = "2m"
max_output = 1048576
"#;

#[test]
fn an_exec_connection_parses_with_its_patterns_and_limits() {
    let config = Config::parse(EXEC, "p").unwrap();
    let c = &config.connections[0];
    assert_eq!(c.kind, periscope_policy::ConnectionKind::Exec);
    let exec = c.exec.as_ref().unwrap();
    assert_eq!(exec.command, ["/usr/bin/kubectl", "--context", "prod"]);
    let texts = |v: &[periscope_policy::CommandPattern]| {
        v.iter().map(|p| p.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(texts(&exec.allow), ["logs *", "get pods"]);
    assert_eq!(texts(&exec.sensitive), ["delete *", "exec *"]);
    assert_eq!(exec.working_dir, Some(PathBuf::from("/srv")));
    assert_eq!(exec.env.len(), 2);
    assert_eq!(exec.timeout, Duration::from_secs(120));
    assert_eq!(exec.max_output, 1_048_576);
    let minimal = "[[connection]]\nname = \"x\"\nkind = \"exec\"\ncommand = [\"/bin/echo\"]\n";
    let exec = Config::parse(minimal, "p").unwrap().connections[0]
        .exec
        .clone()
        .unwrap();
    assert!(exec.allow.is_empty() && exec.sensitive.is_empty() && exec.env.is_empty());
    assert_eq!(exec.timeout, periscope_policy::DEFAULT_EXEC_TIMEOUT);
    assert!(
        Config::parse(CONNECTION, "p").unwrap().connections[0]
            .exec
            .is_none()
    );
}

#[test]
fn exec_connection_mistakes_are_located() {
    let base = "[[connection]]\nname = \"x\"\nkind = \"exec\"\n";
    assert_one(
        &format!("{base}command = [\"kubectl\"]\n"),
        "\"kubectl\"",
        "must be an absolute path",
    );
    assert_one(
        &format!("{base}command = []\n"),
        "command = []",
        "cannot be empty",
    );
    assert_one(base, "name = \"x\"", "needs `command`");
    assert_one(
        &format!("{base}command = [\"/bin/echo\"]\nhost = \"db\"\n"),
        "host = \"db\"",
        "does not apply to an exec connection",
    );
    assert_one(
        &format!("{base}command = [\"/bin/echo\"]\nbackground_discovery = true\n"),
        "name = \"x\"",
        "`background_discovery` does not apply to an exec connection",
    );
    assert_one(
        &format!("{base}command = [\"/bin/echo\"]\ndiscovery_interval = \"1h\"\n"),
        "discovery_interval = \"1h\"",
        "`discovery_interval` does not apply to an exec connection",
    );
    assert_one(
        &format!("{base}command = [\"/bin/echo\"]\nallow = [\"  \"]\n"),
        "allow = ",
        "at least one argument",
    );
    assert_one(
        &format!("{base}command = [\"/bin/echo\"]\nallow = [\"rm *\"]\nsensitive = [\"rm  *\"]\n"),
        "allow = ",
        "in both `allow` and `sensitive`",
    );
    assert_one(
        &format!("{base}command = [\"/bin/echo\"]\nenv = {{ \"BAD-NAME\" = \"1\" }}\n"),
        "BAD-NAME",
        "invalid environment variable name",
    );
    assert_one(
        &format!("{base}command = [\"/bin/echo\"]\ntimeout = \"0s\"\n"),
        "timeout = ",
        "`timeout` must be between",
    );
    assert_one(
        &format!("{base}command = [\"/bin/echo\"]\nmax_output = 10\n"),
        "max_output = ",
        "between 1024 and",
    );
    assert_one(
        &format!("{base}command = [\"/bin/echo\"]\nworking_dir = \"srv\"\n"),
        "working_dir = ",
        "absolute path",
    );
    assert_one(
        &format!("{CONNECTION}sensitive = [\"delete *\"]\n"),
        "sensitive = ",
        "only applies to `kind = \"exec\"` connections",
    );
    assert_one(
        "[[connection]]\nname = \"pg\"\nkind = \"postgres\"\nhost = \"h\"\nuser = \"u\"\n",
        "name = \"pg\"",
        "a postgres connection needs `database`",
    );
}

const LOGS: &str = r#"
[[connection]]
name = "app-logs"
kind = "logs"
journalctl = "/bin/journalctl"
env = { LANG = "C.UTF-8" }
timeout = "30m"

[connection.sources.app]
files = ["/var/log/app/*.log", "/var/log/app/current"]

[connection.sources.web]
journal = ["nginx.service", "php-fpm@8.2.service"]

[connection.sources.kube]
command = ["/usr/bin/kubectl", "logs", "deploy/web"]
follow_args = ["-f"]
"#;

#[test]
fn a_logs_connection_parses_with_its_sources() {
    use periscope_policy::LogSource;
    let config = Config::parse(LOGS, "p").unwrap();
    let c = &config.connections[0];
    assert_eq!(c.kind, periscope_policy::ConnectionKind::Logs);
    assert!(c.exec.is_none());
    let logs = c.logs.as_ref().unwrap();
    assert_eq!(logs.journalctl, PathBuf::from("/bin/journalctl"));
    assert_eq!(logs.timeout, Duration::from_secs(1800));
    assert_eq!(logs.max_output, periscope_policy::DEFAULT_EXEC_MAX_OUTPUT);
    assert_eq!(
        logs.sources["app"],
        LogSource::Files(vec![
            PathBuf::from("/var/log/app/*.log"),
            PathBuf::from("/var/log/app/current")
        ])
    );
    assert_eq!(
        logs.sources["web"],
        LogSource::Journal(vec!["nginx.service".into(), "php-fpm@8.2.service".into()])
    );
    assert_eq!(
        logs.sources["kube"],
        LogSource::Command {
            command: vec![
                "/usr/bin/kubectl".into(),
                "logs".into(),
                "deploy/web".into()
            ],
            follow_args: vec!["-f".into()],
        }
    );
    let minimal =
        "[[connection]]\nname = \"x\"\nkind = \"logs\"\nsources = { a = { files = [\"/l/*\"] } }\n";
    let logs = Config::parse(minimal, "p").unwrap().connections[0]
        .logs
        .clone()
        .unwrap();
    assert_eq!(logs.timeout, periscope_policy::DEFAULT_LOGS_TIMEOUT);
    assert_eq!(
        logs.journalctl,
        PathBuf::from(periscope_policy::DEFAULT_JOURNALCTL)
    );
}

#[test]
fn logs_connection_mistakes_are_located() {
    let base = "[[connection]]\nname = \"x\"\nkind = \"logs\"\n";
    assert_one(base, "name = \"x\"", "needs `sources`");
    assert_one(
        &format!("{base}sources = {{ a = {{ files = [\"logs/*.log\"] }} }}\n"),
        "logs/*.log",
        "must be an absolute path",
    );
    assert_one(
        &format!("{base}sources = {{ a = {{ files = [\"/var/*/app.log\"] }} }}\n"),
        "/var/*/app.log",
        "in the file name only",
    );
    assert_one(
        &format!("{base}sources = {{ a = {{ files = [\"/l\"], journal = [\"x\"] }} }}\n"),
        "sources = ",
        "exactly one of `files`",
    );
    assert_one(
        &format!("{base}sources = {{ a = {{ journal = [\"-x\"] }} }}\n"),
        "\"-x\"",
        "not a systemd unit name",
    );
    assert_one(
        &format!("{base}sources = {{ a = {{ command = [\"tail\"] }} }}\n"),
        "\"tail\"",
        "must be an absolute path",
    );
    assert_one(
        &format!("{base}sources = {{ a = {{ files = [\"/l\"], follow_args = [\"-f\"] }} }}\n"),
        "sources = ",
        "`follow_args` only applies to a `command` source",
    );
    assert_one(
        &format!("{base}sources = {{ \"A b\" = {{ files = [\"/l\"] }} }}\n"),
        "A b",
        "log source name",
    );
    assert_one(
        &format!("{base}sources = {{ a = {{ files = [\"/l\"] }} }}\nhost = \"db\"\n"),
        "host = \"db\"",
        "does not apply to a logs connection",
    );
    assert_one(
        &format!("{base}sources = {{ a = {{ files = [\"/l\"] }} }}\nallow = [\"x\"]\n"),
        "allow = ",
        "does not apply to a logs connection",
    );
    assert_one(
        &format!("{base}sources = {{ a = {{ files = [\"/l\"] }} }}\njournalctl = \"journalctl\"\n"),
        "journalctl = ",
        "must be an absolute path",
    );
    assert_one(
        &format!("{CONNECTION}journalctl = \"/bin/journalctl\"\n"),
        "journalctl = ",
        "only applies to `kind = \"logs\"` connections",
    );
}

#[test]
fn a_shell_connection_parses_with_its_limits_and_refuses_other_kinds_keys() {
    let text = r#"
[[connection]]
name = "box"
kind = "shell"
command = ["/bin/bash", "--noprofile", "--norc"]
working_dir = "/srv"
env = { PATH = "/usr/bin:/bin", TERM = "xterm" }
timeout = "2h"
idle_timeout = "10m"
"#;
    let config = Config::parse(text, "p").unwrap();
    let c = &config.connections[0];
    assert_eq!(c.kind, periscope_policy::ConnectionKind::Shell);
    assert!(c.exec.is_none() && c.logs.is_none());
    let shell = c.shell.as_ref().unwrap();
    assert_eq!(shell.command, ["/bin/bash", "--noprofile", "--norc"]);
    assert_eq!(shell.working_dir, Some(PathBuf::from("/srv")));
    assert_eq!(shell.env.len(), 2);
    assert_eq!(shell.timeout, Duration::from_secs(7200));
    assert_eq!(shell.idle_timeout, Duration::from_secs(600));
    let minimal = "[[connection]]\nname = \"x\"\nkind = \"shell\"\ncommand = [\"/bin/sh\"]\n";
    let shell = Config::parse(minimal, "p").unwrap().connections[0]
        .shell
        .clone()
        .unwrap();
    assert!(shell.env.is_empty());
    assert_eq!(shell.timeout, periscope_policy::DEFAULT_SHELL_TIMEOUT);
    assert_eq!(
        shell.idle_timeout,
        periscope_policy::DEFAULT_SHELL_IDLE_TIMEOUT
    );

    let base = "[[connection]]\nname = \"x\"\nkind = \"shell\"\n";
    assert_one(base, "name = \"x\"", "a shell connection needs `command`");
    assert_one(
        &format!("{base}command = [\"bash\"]\n"),
        "\"bash\"",
        "must be an absolute path",
    );
    assert_one(
        &format!("{base}command = [\"/bin/sh\"]\nallow = [\"*\"]\n"),
        "allow = ",
        "`allow` does not apply to a shell connection",
    );
    assert_one(
        &format!("{base}command = [\"/bin/sh\"]\nmax_output = 4096\n"),
        "max_output = ",
        "`max_output` does not apply to a shell connection",
    );
    assert_one(
        &format!("{base}command = [\"/bin/sh\"]\nhost = \"db\"\n"),
        "host = \"db\"",
        "does not apply to a shell connection",
    );
    assert_one(
        &format!("{base}command = [\"/bin/sh\"]\nidle_timeout = \"0s\"\n"),
        "idle_timeout = ",
        "`idle_timeout` must be between",
    );
    assert_one(
        "[[connection]]\nname = \"x\"\nkind = \"exec\"\ncommand = [\"/bin/echo\"]\nidle_timeout = \"1m\"\n",
        "idle_timeout = ",
        "`idle_timeout` does not apply to an exec connection",
    );
}
