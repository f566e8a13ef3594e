//! Semantic checks: from the file as written to the checked [`Config`].
//!
//! Every check reports through the [`Reporter`] with the span of the key or value
//! at fault and keeps going with a harmless stand-in, so one run lists every
//! problem. The caller discards the result when anything was reported.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use periscope_redact::{Entity, Operator, Tier};
use serde::de::IgnoredAny;

use super::error::Reporter;
use super::raw::{
    RawConfig, RawConnection, RawDataPolicy, RawLogSource, RawRole, RawServer, RawStore,
    RawWebhook, S,
};
use super::*;
use crate::command::CommandPattern;
use crate::names::check_object_name;
use crate::shield::{MaskTarget, Shield, ShieldPattern};

pub(crate) fn validate(raw: RawConfig, r: &mut Reporter<'_>) -> Config {
    let server = server(raw.server, r);
    let store = store(raw.store, r);
    let checkpoint_every = match raw.audit.checkpoint_every {
        None => AuditConfig::default().checkpoint_every,
        Some(n) => match u64::try_from(*n.get_ref()) {
            Ok(v) if (1..=1_000_000).contains(&v) => v,
            _ => {
                r.error(n.span(), "`checkpoint_every` must be between 1 and 1000000");
                AuditConfig::default().checkpoint_every
            }
        },
    };
    let pending_ttl = match raw.requests.pending_ttl {
        None => DEFAULT_PENDING_TTL,
        Some(text) => duration(r, &text, "pending_ttl", MIN_GRANT_DURATION, MAX_PENDING_TTL)
            .unwrap_or(DEFAULT_PENDING_TTL),
    };
    let webhook = raw.webhook.and_then(|w| webhook(w, r));
    let recordings = super::recordings::validate(raw.recordings, r);

    let connections = connections(raw.connections, r);
    // Custom tags declared on any connection: what `unmask:<tag>` may name.
    let tags: BTreeSet<String> = connections
        .iter()
        .filter_map(|c| c.data_policy.as_ref())
        .flat_map(|p| p.tags.values())
        .filter_map(|t| match t {
            MaskTarget::Tag(name) => Some(name.clone()),
            MaskTarget::Entity(_) => None,
        })
        .collect();
    let roles = roles(raw.roles, &connections, &tags, r);
    let sso = raw
        .sso
        .map(|sso| super::sso::validate(sso, &roles, &server, r));

    Config {
        server,
        store,
        audit: AuditConfig {
            checkpoint_every,
            durability: raw.audit.durability.unwrap_or_default(),
        },
        requests: RequestsConfig { pending_ttl },
        webhook,
        connections,
        roles,
        sso,
        recordings,
    }
}

fn server(raw: RawServer, r: &mut Reporter<'_>) -> ServerConfig {
    let defaults = ServerConfig::default();
    let mut addr = |value: Option<S<String>>, key: &str, default: SocketAddr| match value {
        None => default,
        Some(text) => text.get_ref().parse().unwrap_or_else(|e| {
            r.error(
                text.span(),
                format!("`{key}` must be an address and port such as `{default}`: {e}"),
            );
            default
        }),
    };
    let api_listen = addr(raw.api_listen, "api_listen", defaults.api_listen);
    let pg_listen = addr(raw.pg_listen.clone(), "pg_listen", defaults.pg_listen);
    if api_listen == pg_listen
        && let Some(pg) = &raw.pg_listen
    {
        r.error(
            pg.span(),
            "`pg_listen` and `api_listen` cannot be the same address",
        );
    }
    let public_host = raw.public_host.map(|host| {
        let h = host.get_ref();
        if h.is_empty() || h.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
            r.error(
                host.span(),
                "`public_host` must be a bare host name or address, such as `periscope.example.com`",
            );
        }
        h.clone()
    });
    let data_dir = match raw.data_dir {
        None => defaults.data_dir,
        Some(dir) => {
            if dir.get_ref().trim().is_empty() {
                r.error(dir.span(), "`data_dir` cannot be empty");
            }
            PathBuf::from(dir.into_inner())
        }
    };
    ServerConfig {
        api_listen,
        pg_listen,
        public_host,
        data_dir,
    }
}

fn store(raw: RawStore, r: &mut Reporter<'_>) -> StoreConfig {
    let password_span = raw
        .password_env
        .as_ref()
        .or(raw.password_file.as_ref())
        .map(|s| s.span());
    let password = secret_ref(
        r,
        SecretKeys {
            env: raw.password_env,
            file: raw.password_file,
            inline: raw.password,
            env_key: "password_env",
            file_key: "password_file",
            inline_key: "password",
        },
    );
    let Some(url) = raw.url else {
        if let Some(span) = password_span {
            r.error(
                span,
                "a password without `url`: the embedded SQLite store takes no password",
            );
        }
        return StoreConfig::default();
    };
    let text = url.get_ref();
    if let Some(path) = text.strip_prefix("sqlite://") {
        if path.is_empty() {
            r.error(
                url.span(),
                "`sqlite://` needs a file path, such as `sqlite://./periscope-data/periscope.db`",
            );
        }
        if let Some(span) = password_span {
            r.error(span, "a SQLite store takes no password");
        }
        return StoreConfig {
            url: Some(StoreUrl::Sqlite {
                path: PathBuf::from(path),
            }),
        };
    }
    let Some(rest) = text
        .strip_prefix("postgres://")
        .or_else(|| text.strip_prefix("postgresql://"))
    else {
        r.error(
            url.span(),
            "`url` must start with `sqlite://` or `postgres://`",
        );
        return StoreConfig::default();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let inline_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let inline_query = rest
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("password=")));
    if inline_userinfo || inline_query {
        r.error(
            url.span(),
            "the store URL contains a password: credentials are given by reference only; \
             remove it from the URL and set `password_env` or `password_file`",
        );
    }
    StoreConfig {
        url: Some(StoreUrl::Postgres {
            url: text.clone(),
            password,
        }),
    }
}

fn webhook(raw: RawWebhook, r: &mut Reporter<'_>) -> Option<WebhookConfig> {
    let url = raw.url.get_ref();
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .unwrap_or_default();
    if host.is_empty() {
        r.error(
            raw.url.span(),
            "webhook `url` must be an `https://` or `http://` URL with a host",
        );
    }
    let span = raw.url.span();
    let inline = raw.secret.is_some();
    let secret = secret_ref(
        r,
        SecretKeys {
            env: raw.secret_env,
            file: raw.secret_file,
            inline: raw.secret,
            env_key: "secret_env",
            file_key: "secret_file",
            inline_key: "secret",
        },
    );
    let Some(secret) = secret else {
        if !inline {
            r.error(
                span,
                "a webhook needs a signing key: set `secret_env` or `secret_file`",
            );
        }
        return None;
    };
    let events = match raw.events {
        None => WebhookEvent::ALL.into_iter().collect(),
        Some(list) => list.into_iter().collect(),
    };
    Some(WebhookConfig {
        url: url.clone(),
        secret,
        events,
    })
}

fn connections(raw: Vec<RawConnection>, r: &mut Reporter<'_>) -> Vec<ConnectionConfig> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for c in raw {
        let name = c.name.get_ref().clone();
        if let Err(e) = check_object_name("connection name", &name) {
            r.error(c.name.span(), e.to_string());
        }
        if let Some(&first) = seen.get(&name) {
            let line = r.line_of(first);
            r.error(
                c.name.span(),
                format!("duplicate connection name `{name}` (first defined on line {line})"),
            );
        } else {
            seen.insert(name.clone(), c.name.span().start);
        }
        out.push(connection(c, name, r));
    }
    out
}

fn connection(c: RawConnection, name: String, r: &mut Reporter<'_>) -> ConnectionConfig {
    let kind = *c.kind.get_ref();
    if kind == ConnectionKind::Exec {
        return exec_connection(c, name, r);
    }
    if kind == ConnectionKind::Logs {
        return logs_connection(c, name, r);
    }
    if kind == ConnectionKind::Shell {
        return shell_connection(c, name, r);
    }
    for (present, key) in [
        (c.sources.as_ref().map(|v| v.span()), "sources"),
        (c.journalctl.as_ref().map(|v| v.span()), "journalctl"),
    ] {
        if let Some(span) = present {
            r.error(
                span,
                format!("`{key}` only applies to `kind = \"logs\"` connections"),
            );
        }
    }
    for (present, key) in [
        (c.command.as_ref().map(|v| v.span()), "command"),
        (c.allow.as_ref().map(|v| v.span()), "allow"),
        (c.sensitive.as_ref().map(|v| v.span()), "sensitive"),
        (c.working_dir.as_ref().map(|v| v.span()), "working_dir"),
        (c.env.as_ref().map(|v| v.span()), "env"),
        (c.timeout.as_ref().map(|v| v.span()), "timeout"),
        (c.max_output.as_ref().map(|v| v.span()), "max_output"),
    ] {
        if let Some(span) = present {
            r.error(
                span,
                format!("`{key}` only applies to `kind = \"exec\"` connections"),
            );
        }
    }
    refuse_idle_timeout(&c, "a postgres connection", r);
    let mut required = |value: Option<S<String>>, key: &str| -> String {
        match value {
            None => {
                r.error(
                    c.name.span(),
                    format!("a postgres connection needs `{key}`"),
                );
                String::new()
            }
            Some(v) => {
                if v.get_ref().trim().is_empty() {
                    r.error(v.span(), format!("`{key}` cannot be empty"));
                }
                v.into_inner()
            }
        }
    };
    let host = required(c.host, "host");
    let database = required(c.database, "database");
    let user = required(c.user, "user");
    let port = match c.port {
        None => 5432,
        Some(p) => u16::try_from(*p.get_ref())
            .ok()
            .filter(|&p| p != 0)
            .unwrap_or_else(|| {
                r.error(p.span(), "`port` must be between 1 and 65535");
                5432
            }),
    };
    let password = secret_ref(
        r,
        SecretKeys {
            env: c.password_env,
            file: c.password_file,
            inline: c.password,
            env_key: "password_env",
            file_key: "password_file",
            inline_key: "password",
        },
    );
    let upstream_tls = c
        .upstream_tls
        .as_ref()
        .map(|t| *t.get_ref())
        .unwrap_or_default();
    let upstream_ca_file = c.upstream_ca_file.map(|ca| {
        if !matches!(upstream_tls, UpstreamTls::Require | UpstreamTls::VerifyFull) {
            r.error(
                ca.span(),
                "`upstream_ca_file` is only used with `upstream_tls = \"require\"` or `\"verify-full\"`",
            );
        }
        PathBuf::from(ca.into_inner())
    });
    let discovery_interval = match &c.discovery_interval {
        None => DEFAULT_DISCOVERY_INTERVAL,
        Some(text) => duration(
            r,
            text,
            "discovery_interval",
            Duration::from_secs(1),
            MAX_DISCOVERY_INTERVAL,
        )
        .unwrap_or(DEFAULT_DISCOVERY_INTERVAL),
    };
    let labels = labels(c.labels, r);
    let data_policy = c.data_policy.map(|p| data_policy(p, r));
    ConnectionConfig {
        name,
        kind,
        host,
        port,
        database,
        user,
        password,
        upstream_tls,
        upstream_ca_file,
        client_tls: c.client_tls.map(|t| *t.get_ref()).unwrap_or_default(),
        background_discovery: c.background_discovery.unwrap_or(true),
        discovery_interval,
        auto_tag: c.auto_tag.is_some_and(|v| *v.get_ref()),
        labels,
        data_policy,
        exec: None,
        logs: None,
        shell: None,
    }
}

/// `idle_timeout`, a shell setting, refused on a connection of another kind.
fn refuse_idle_timeout(c: &RawConnection, what: &str, r: &mut Reporter<'_>) {
    if let Some(v) = &c.idle_timeout {
        r.error(
            v.span(),
            format!("`idle_timeout` does not apply to {what} (it is a shell setting)"),
        );
    }
}

/// `kind = "shell"`: the PostgreSQL, exec-pattern and logs keys are refused,
/// the command checked.
fn shell_connection(c: RawConnection, name: String, r: &mut Reporter<'_>) -> ConnectionConfig {
    refuse_postgres_keys(&c, "a shell connection", r);
    for (present, key, why) in [
        (
            c.allow.as_ref().map(|v| v.span()),
            "allow",
            "a shell runs anything: access is the `shell` shield, lifted by a grant",
        ),
        (
            c.sensitive.as_ref().map(|v| v.span()),
            "sensitive",
            "a shell runs anything: access is the `shell` shield, lifted by a grant",
        ),
        (
            c.max_output.as_ref().map(|v| v.span()),
            "max_output",
            "an interactive session is bounded by `timeout` and `idle_timeout`",
        ),
        (
            c.sources.as_ref().map(|v| v.span()),
            "sources",
            "it is a logs setting",
        ),
        (
            c.journalctl.as_ref().map(|v| v.span()),
            "journalctl",
            "it is a logs setting",
        ),
    ] {
        if let Some(span) = present {
            r.error(
                span,
                format!("`{key}` does not apply to a shell connection ({why})"),
            );
        }
    }
    let command: Vec<String> = match c.command {
        None => {
            r.error(
                c.name.span(),
                "a shell connection needs `command`, the shell and its arguments, such as \
                 `[\"/bin/bash\", \"--noprofile\", \"--norc\"]`",
            );
            Vec::new()
        }
        Some(list) => program_and_args(list, "command", r),
    };
    let working_dir = working_dir(c.working_dir, r);
    let env = process_env(c.env, r);
    let timeout = run_timeout(c.timeout, DEFAULT_SHELL_TIMEOUT, r);
    let idle_timeout = match &c.idle_timeout {
        None => DEFAULT_SHELL_IDLE_TIMEOUT,
        Some(text) => duration(
            r,
            text,
            "idle_timeout",
            Duration::from_secs(1),
            MAX_EXEC_TIMEOUT,
        )
        .unwrap_or(DEFAULT_SHELL_IDLE_TIMEOUT),
    };
    let labels = labels(c.labels, r);
    let data_policy = c.data_policy.map(|p| data_policy(p, r));
    ConnectionConfig {
        name,
        kind: ConnectionKind::Shell,
        host: String::new(),
        port: 0,
        database: String::new(),
        user: String::new(),
        password: None,
        upstream_tls: UpstreamTls::default(),
        upstream_ca_file: None,
        client_tls: ClientTls::default(),
        background_discovery: false,
        discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
        auto_tag: false,
        labels,
        data_policy,
        exec: None,
        logs: None,
        shell: Some(ShellConfig {
            command,
            working_dir,
            env,
            timeout,
            idle_timeout,
        }),
    }
}

/// `kind = "exec"`: the PostgreSQL keys are refused, the command checked.
fn exec_connection(c: RawConnection, name: String, r: &mut Reporter<'_>) -> ConnectionConfig {
    refuse_postgres_keys(&c, "an exec connection", r);
    refuse_idle_timeout(&c, "an exec connection", r);
    for (present, key) in [
        (c.sources.as_ref().map(|v| v.span()), "sources"),
        (c.journalctl.as_ref().map(|v| v.span()), "journalctl"),
    ] {
        if let Some(span) = present {
            r.error(
                span,
                format!("`{key}` does not apply to an exec connection (it is a logs setting)"),
            );
        }
    }
    let command: Vec<String> = match c.command {
        None => {
            r.error(
                c.name.span(),
                "an exec connection needs `command`, the program and its fixed arguments, \
                 such as `[\"/usr/bin/kubectl\", \"--context\", \"prod\"]`",
            );
            Vec::new()
        }
        Some(list) => program_and_args(list, "command", r),
    };
    let patterns = |list: Option<S<Vec<S<String>>>>, key: &str, r: &mut Reporter<'_>| {
        let mut out: Vec<(CommandPattern, std::ops::Range<usize>)> = Vec::new();
        for text in list.map(S::into_inner).unwrap_or_default() {
            match text.get_ref().parse::<CommandPattern>() {
                Ok(p) => {
                    if out.iter().any(|(q, _)| *q == p) {
                        r.error(text.span(), format!("`{p}` is listed twice in `{key}`"));
                    } else {
                        out.push((p, text.span()));
                    }
                }
                Err(e) => r.error(text.span(), format!("in `{key}`: {e}")),
            }
        }
        out
    };
    let allow = patterns(c.allow, "allow", r);
    let sensitive = patterns(c.sensitive, "sensitive", r);
    for (p, span) in &allow {
        if sensitive.iter().any(|(q, _)| q == p) {
            r.error(
                span.clone(),
                format!("`{p}` is in both `allow` and `sensitive`: choose one"),
            );
        }
    }
    let working_dir = working_dir(c.working_dir, r);
    let env = process_env(c.env, r);
    let timeout = run_timeout(c.timeout, DEFAULT_EXEC_TIMEOUT, r);
    let max_output = max_output(c.max_output, r);
    let labels = labels(c.labels, r);
    let data_policy = c.data_policy.map(|p| data_policy(p, r));
    ConnectionConfig {
        name,
        kind: ConnectionKind::Exec,
        host: String::new(),
        port: 0,
        database: String::new(),
        user: String::new(),
        password: None,
        upstream_tls: UpstreamTls::default(),
        upstream_ca_file: None,
        client_tls: ClientTls::default(),
        background_discovery: false,
        discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
        auto_tag: false,
        labels,
        data_policy,
        exec: Some(ExecConfig {
            command,
            allow: allow.into_iter().map(|(p, _)| p).collect(),
            sensitive: sensitive.into_iter().map(|(p, _)| p).collect(),
            working_dir,
            env,
            timeout,
            max_output,
        }),
        logs: None,
        shell: None,
    }
}

/// The PostgreSQL keys and `background_discovery`, refused on a connection
/// of another kind (`what`: "an exec connection").
fn refuse_postgres_keys(c: &RawConnection, what: &str, r: &mut Reporter<'_>) {
    let postgres_only = [
        (c.host.as_ref().map(|v| v.span()), "host"),
        (c.port.as_ref().map(|v| v.span()), "port"),
        (c.database.as_ref().map(|v| v.span()), "database"),
        (c.user.as_ref().map(|v| v.span()), "user"),
        (c.password_env.as_ref().map(|v| v.span()), "password_env"),
        (c.password_file.as_ref().map(|v| v.span()), "password_file"),
        (c.password.as_ref().map(|v| v.span()), "password"),
        (c.upstream_tls.as_ref().map(|v| v.span()), "upstream_tls"),
        (
            c.upstream_ca_file.as_ref().map(|v| v.span()),
            "upstream_ca_file",
        ),
        (c.client_tls.as_ref().map(|v| v.span()), "client_tls"),
    ];
    for (present, key) in postgres_only {
        if let Some(span) = present {
            r.error(
                span,
                format!("`{key}` does not apply to {what} (it is a postgres setting)"),
            );
        }
    }
    if c.background_discovery.is_some() {
        r.error(
            c.name.span(),
            format!(
                "`background_discovery` does not apply to {what} (discovery samples database \
                 columns)"
            ),
        );
    }
    if let Some(v) = &c.auto_tag {
        r.error(
            v.span(),
            format!("`auto_tag` does not apply to {what} (it tags database columns)"),
        );
    }
    if let Some(interval) = &c.discovery_interval {
        r.error(
            interval.span(),
            format!(
                "`discovery_interval` does not apply to {what} (discovery samples database \
                 columns)"
            ),
        );
    }
}

/// A program (an absolute path) and its arguments, none with NUL.
fn program_and_args(list: S<Vec<S<String>>>, key: &str, r: &mut Reporter<'_>) -> Vec<String> {
    let span = list.span();
    let words: Vec<S<String>> = list.into_inner();
    match words.first() {
        None => r.error(
            span,
            format!("`{key}` cannot be empty: name the program to run"),
        ),
        Some(program) if !program.get_ref().starts_with('/') => r.error(
            program.span(),
            format!(
                "the program `{}` must be an absolute path (nothing is looked up in a \
                 PATH, and the process inherits no environment)",
                program.get_ref()
            ),
        ),
        Some(_) => {}
    }
    for word in &words {
        if word.get_ref().contains('\0') {
            r.error(
                word.span(),
                format!("a `{key}` argument cannot contain NUL"),
            );
        }
    }
    words.into_iter().map(S::into_inner).collect()
}

fn working_dir(dir: Option<S<String>>, r: &mut Reporter<'_>) -> Option<PathBuf> {
    dir.map(|dir| {
        if !dir.get_ref().starts_with('/') {
            r.error(dir.span(), "`working_dir` must be an absolute path");
        }
        PathBuf::from(dir.into_inner())
    })
}

/// `env`: the whole environment of a process the gateway starts.
fn process_env(
    raw: Option<S<BTreeMap<S<String>, S<String>>>>,
    r: &mut Reporter<'_>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (key, value) in raw.map(S::into_inner).unwrap_or_default() {
        let k = key.get_ref();
        let ok = k
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
            && k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !ok {
            r.error(
                key.span(),
                format!("invalid environment variable name `{k}`: use letters, digits and `_`"),
            );
        }
        if value.get_ref().contains('\0') {
            r.error(value.span(), "an environment value cannot contain NUL");
        }
        env.insert(key.into_inner(), value.into_inner());
    }
    env
}

fn run_timeout(text: Option<S<String>>, default: Duration, r: &mut Reporter<'_>) -> Duration {
    match text {
        None => default,
        Some(text) => duration(
            r,
            &text,
            "timeout",
            Duration::from_secs(1),
            MAX_EXEC_TIMEOUT,
        )
        .unwrap_or(default),
    }
}

fn max_output(n: Option<S<i64>>, r: &mut Reporter<'_>) -> u64 {
    match n {
        None => DEFAULT_EXEC_MAX_OUTPUT,
        Some(n) => match u64::try_from(*n.get_ref()) {
            Ok(v) if (1024..=MAX_EXEC_MAX_OUTPUT).contains(&v) => v,
            _ => {
                r.error(
                    n.span(),
                    format!(
                        "`max_output` is a number of bytes between 1024 and {MAX_EXEC_MAX_OUTPUT}"
                    ),
                );
                DEFAULT_EXEC_MAX_OUTPUT
            }
        },
    }
}

/// `kind = "logs"`: the PostgreSQL and exec keys are refused, each source
/// checked.
fn logs_connection(c: RawConnection, name: String, r: &mut Reporter<'_>) -> ConnectionConfig {
    refuse_postgres_keys(&c, "a logs connection", r);
    refuse_idle_timeout(&c, "a logs connection", r);
    for (present, key) in [
        (c.command.as_ref().map(|v| v.span()), "command"),
        (c.allow.as_ref().map(|v| v.span()), "allow"),
        (c.sensitive.as_ref().map(|v| v.span()), "sensitive"),
    ] {
        if let Some(span) = present {
            r.error(
                span,
                format!(
                    "`{key}` does not apply to a logs connection (it is an exec setting; a \
                     command source is `[connection.sources.NAME] command = [...]`)"
                ),
            );
        }
    }
    let mut sources = BTreeMap::new();
    match c.sources {
        None => r.error(
            c.name.span(),
            "a logs connection needs `sources`, such as `[connection.sources.app] files = \
             [\"/var/log/app/*.log\"]`",
        ),
        Some(list) => {
            let span = list.span();
            let list = list.into_inner();
            if list.is_empty() {
                r.error(
                    span,
                    "`sources` cannot be empty: name at least one log source",
                );
            }
            for (source_name, source) in list {
                if let Err(e) = check_object_name("log source name", source_name.get_ref()) {
                    r.error(source_name.span(), e.to_string());
                }
                let source = log_source(source, source_name.get_ref(), r);
                sources.insert(source_name.into_inner(), source);
            }
        }
    }
    let journalctl = match c.journalctl {
        None => PathBuf::from(DEFAULT_JOURNALCTL),
        Some(path) => {
            if !path.get_ref().starts_with('/') {
                r.error(path.span(), "`journalctl` must be an absolute path");
            }
            PathBuf::from(path.into_inner())
        }
    };
    let working_dir = working_dir(c.working_dir, r);
    let env = process_env(c.env, r);
    let timeout = run_timeout(c.timeout, DEFAULT_LOGS_TIMEOUT, r);
    let max_output = max_output(c.max_output, r);
    let labels = labels(c.labels, r);
    let data_policy = c.data_policy.map(|p| data_policy(p, r));
    ConnectionConfig {
        name,
        kind: ConnectionKind::Logs,
        host: String::new(),
        port: 0,
        database: String::new(),
        user: String::new(),
        password: None,
        upstream_tls: UpstreamTls::default(),
        upstream_ca_file: None,
        client_tls: ClientTls::default(),
        background_discovery: false,
        discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
        auto_tag: false,
        labels,
        data_policy,
        exec: None,
        logs: Some(LogsConfig {
            sources,
            journalctl,
            working_dir,
            env,
            timeout,
            max_output,
        }),
        shell: None,
    }
}

/// One `[connection.sources.NAME]`: exactly one of `files`, `journal`,
/// `command`.
fn log_source(raw: S<RawLogSource>, name: &str, r: &mut Reporter<'_>) -> LogSource {
    let span = raw.span();
    let raw = raw.into_inner();
    let given = [
        raw.files.is_some(),
        raw.journal.is_some(),
        raw.command.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if given != 1 {
        r.error(
            span,
            format!(
                "log source `{name}` needs exactly one of `files` (globs), `journal` (units) or \
                 `command` (a program whose output is the log)"
            ),
        );
        return LogSource::Files(Vec::new());
    }
    if let Some(args) = &raw.follow_args
        && raw.command.is_none()
    {
        r.error(
            args.span(),
            "`follow_args` only applies to a `command` source (files and the journal are \
             followed by the gateway)",
        );
    }
    if let Some(files) = raw.files {
        let span = files.span();
        let files = files.into_inner();
        if files.is_empty() {
            r.error(span, "`files` cannot be empty: list at least one glob");
        }
        let mut out = Vec::new();
        for glob in files {
            if let Err(e) = check_file_glob(glob.get_ref()) {
                r.error(glob.span(), e);
            }
            out.push(PathBuf::from(glob.into_inner()));
        }
        return LogSource::Files(out);
    }
    if let Some(units) = raw.journal {
        let span = units.span();
        let units = units.into_inner();
        if units.is_empty() {
            r.error(span, "`journal` cannot be empty: list at least one unit");
        }
        for unit in &units {
            let u = unit.get_ref();
            let ok = !u.is_empty()
                && !u.starts_with('-')
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@._-:\\".contains(c));
            if !ok {
                r.error(
                    unit.span(),
                    format!(
                        "`{u}` is not a systemd unit name (letters, digits, `@`, `.`, `_`, `-`, \
                         `:`, `\\`; not starting with `-`)"
                    ),
                );
            }
        }
        return LogSource::Journal(units.into_iter().map(S::into_inner).collect());
    }
    let command = raw
        .command
        .map(|list| program_and_args(list, "command", r))
        .unwrap_or_default();
    let follow_args = raw
        .follow_args
        .map(|list| {
            let words = list.into_inner();
            for word in &words {
                if word.get_ref().contains('\0') {
                    r.error(word.span(), "a `follow_args` argument cannot contain NUL");
                }
            }
            words.into_iter().map(S::into_inner).collect()
        })
        .unwrap_or_default();
    LogSource::Command {
        command,
        follow_args,
    }
}

/// A file glob: an absolute path, wildcards (`*`, `?`) in its last component
/// only, so the gateway lists one directory and never walks a tree.
pub(crate) fn check_file_glob(glob: &str) -> Result<(), String> {
    let path = std::path::Path::new(glob);
    if !path.is_absolute() {
        return Err(format!("the file glob `{glob}` must be an absolute path"));
    }
    if glob.contains('\0') {
        return Err("a file glob cannot contain NUL".to_string());
    }
    let Some(dir) = path.parent() else {
        return Err(format!(
            "the file glob `{glob}` must name files in a directory"
        ));
    };
    if path.file_name().is_none() || glob.ends_with('/') {
        return Err(format!(
            "the file glob `{glob}` must end with a file name or pattern"
        ));
    }
    let dir = dir.to_string_lossy();
    if dir.contains(['*', '?', '[']) {
        return Err(format!(
            "in `{glob}`: wildcards (`*`, `?`) are allowed in the file name only, not in \
             directories"
        ));
    }
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(format!("the file glob `{glob}` cannot contain `..`"));
    }
    Ok(())
}

fn labels(raw: BTreeMap<S<String>, String>, r: &mut Reporter<'_>) -> BTreeMap<String, String> {
    raw.into_iter()
        .map(|(key, value)| {
            let k = key.get_ref();
            let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && k.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.' | '/')
                });
            if !ok {
                r.error(
                    key.span(),
                    format!("invalid label key `{k}`: use lowercase letters, digits, `_`, `-`, `.` and `/`"),
                );
            }
            (key.into_inner(), value)
        })
        .collect()
}

fn data_policy(p: RawDataPolicy, r: &mut Reporter<'_>) -> DataPolicy {
    let mut tags = BTreeMap::new();
    for (column, tag) in p.tags {
        let col = column.get_ref().parse::<ColumnRef>();
        let target = tag.get_ref().parse::<MaskTarget>();
        match (col, target) {
            (Ok(col), Ok(target)) => {
                tags.insert(col, target);
            }
            (col, target) => {
                if let Err(e) = col {
                    r.error(column.span(), format!("in `tags`: {e}"));
                }
                if target.is_err() {
                    r.error(
                        tag.span(),
                        format!(
                            "`{}` is neither an entity nor a valid tag name (tags are lowercase letters, digits, `_` and `-`)",
                            tag.get_ref()
                        ),
                    );
                }
            }
        }
    }
    let sensitive_tables = p
        .sensitive_tables
        .into_iter()
        .filter_map(|t| {
            t.get_ref()
                .parse()
                .map_err(|e| r.error(t.span(), format!("in `sensitive_tables`: {e}")))
                .ok()
        })
        .collect();
    let blocked_functions = p
        .blocked_functions
        .into_iter()
        .filter_map(|f| {
            f.get_ref()
                .parse()
                .map_err(|e| r.error(f.span(), format!("in `blocked_functions`: {e}")))
                .ok()
        })
        .collect();
    let mut operators = BTreeMap::new();
    for (name, op) in p.operators {
        let operator = op
            .get_ref()
            .parse::<Operator>()
            .map_err(|e| r.error(op.span(), format!("in `operators`: {e}")))
            .ok();
        if let (Some(entity), Some(operator)) = (entity(r, &name, "operators"), operator) {
            operators.insert(entity, operator);
        }
    }
    let mut enable = BTreeSet::new();
    for name in p.enable {
        match entity(r, &name, "enable") {
            Some(e) if e.tier() != Tier::Optional => r.error(
                name.span(),
                format!(
                    "`{e}` is a {} entity and always masked; `enable` only turns on optional ones ({})",
                    e.tier(),
                    optional_names()
                ),
            ),
            Some(e) => {
                enable.insert(e);
            }
            None => {}
        }
    }
    DataPolicy {
        tags,
        sensitive_tables,
        blocked_functions,
        operators,
        enable,
        refuse_unanalysable: p.refuse_unanalysable.unwrap_or(true),
    }
}

fn optional_names() -> String {
    Entity::ALL
        .iter()
        .filter(|e| e.tier() == Tier::Optional)
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn entity(r: &mut Reporter<'_>, name: &S<String>, key: &str) -> Option<Entity> {
    match name.get_ref().parse::<Entity>() {
        Ok(e) => Some(e),
        Err(e) => {
            r.error(name.span(), format!("in `{key}`: {e}"));
            None
        }
    }
}

fn roles(
    raw: Vec<RawRole>,
    connections: &[ConnectionConfig],
    tags: &BTreeSet<String>,
    r: &mut Reporter<'_>,
) -> Vec<RoleConfig> {
    let declared: BTreeSet<String> = raw.iter().map(|role| role.name.get_ref().clone()).collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for role in raw {
        let name = role.name.get_ref().clone();
        if let Err(e) = check_object_name("role name", &name) {
            r.error(role.name.span(), e.to_string());
        }
        if name == ADMIN_ROLE {
            r.error(
                role.name.span(),
                "`admin` is the built-in administrator role; give yours another name (`admin = true` grants the same powers)",
            );
        }
        if let Some(&first) = seen.get(&name) {
            let line = r.line_of(first);
            r.error(
                role.name.span(),
                format!("duplicate role name `{name}` (first defined on line {line})"),
            );
        } else {
            seen.insert(name.clone(), role.name.span().start);
        }
        out.push(one_role(role, name, connections, tags, &declared, r));
    }
    out
}

fn one_role(
    role: RawRole,
    name: String,
    connections: &[ConnectionConfig],
    tags: &BTreeSet<String>,
    declared: &BTreeSet<String>,
    r: &mut Reporter<'_>,
) -> RoleConfig {
    let break_glass = role.break_glass.as_ref().is_some_and(|b| *b.get_ref());
    let mut conns = BTreeSet::new();
    for c in role.connections {
        let n = c.get_ref();
        if n != "*" && !connections.iter().any(|conn| &conn.name == n) {
            r.error(
                c.span(),
                format!(
                    "unknown connection `{n}` (defined: {})",
                    list(connections.iter().map(|c| c.name.as_str()))
                ),
            );
        }
        conns.insert(c.into_inner());
    }
    let connection_labels = labels(role.connection_labels, r);

    let mut may_lift = Vec::new();
    let mut write_span = None;
    let mut unbounded_span = None;
    for text in role.may_lift {
        let pattern = match text.get_ref().parse::<ShieldPattern>() {
            Ok(p) => p,
            Err(e) => {
                r.error(text.span(), e.to_string());
                continue;
            }
        };
        match pattern.exact() {
            Some(Shield::Write) => write_span = Some(text.span()),
            Some(Shield::UnboundedWrite) => unbounded_span = Some(text.span()),
            Some(Shield::Unmask(MaskTarget::Tag(tag))) if !tags.contains(tag) => r.error(
                text.span(),
                format!(
                    "`{tag}` is not an entity, and no connection's data_policy tags a column with it"
                ),
            ),
            Some(shield) if shield.is_secret() && !break_glass => r.error(
                text.span(),
                format!(
                    "`{shield}` is a secret: only a role with `break_glass = true` may lift it"
                ),
            ),
            _ => {}
        }
        may_lift.push(pattern);
    }
    if let (Some(span), None) = (unbounded_span, write_span) {
        r.error(
            span,
            "`unbounded-write` only matters once `write` is lifted: add `write` to `may_lift`",
        );
    }

    let max_duration = match role.max_duration {
        None => DEFAULT_MAX_DURATION,
        Some(text) => duration(
            r,
            &text,
            "max_duration",
            MIN_GRANT_DURATION,
            MAX_GRANT_DURATION,
        )
        .unwrap_or(DEFAULT_MAX_DURATION),
    };

    let approvals = match &role.approvals {
        None => 1,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if v <= MAX_APPROVALS => v,
            _ => {
                r.error(
                    n.span(),
                    format!("`approvals` must be between 0 and {MAX_APPROVALS}"),
                );
                1
            }
        },
    };
    let mut approvers = BTreeSet::new();
    for a in &role.approvers {
        let n = a.get_ref();
        if n != ADMIN_ROLE && !declared.contains(n) {
            r.error(
                a.span(),
                format!(
                    "unknown approver role `{n}` (roles: {})",
                    list(std::iter::once(ADMIN_ROLE).chain(declared.iter().map(String::as_str)))
                ),
            );
        }
        approvers.insert(n.clone());
    }
    if approvals > 0 && approvers.is_empty() && !may_lift.is_empty() {
        let span = role
            .approvals
            .as_ref()
            .map_or(role.name.span(), |a| a.span());
        r.error(
            span,
            format!(
                "role `{name}` needs {approvals} approval(s) but names no `approvers`, so nobody could approve its requests"
            ),
        );
    }
    if approvals == 0
        && let Some(first) = role.approvers.first()
    {
        r.error(
            first.span(),
            "with `approvals = 0` requests are granted at once, so `approvers` would never be asked; remove it or require approvals",
        );
    }

    RoleConfig {
        name,
        connections: conns,
        connection_labels,
        may_lift,
        max_duration,
        approvals,
        approvers,
        break_glass,
        admin: role.admin,
    }
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = names.collect();
    if all.is_empty() {
        "none".to_string()
    } else {
        all.join(", ")
    }
}

/// Parses a humantime duration within bounds, reporting at the value.
pub(super) fn duration(
    r: &mut Reporter<'_>,
    text: &S<String>,
    key: &str,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    match humantime::parse_duration(text.get_ref()) {
        Err(e) => {
            r.error(
                text.span(),
                format!("`{key}`: {e}; write a duration such as `30m`, `1h` or `1h30m`"),
            );
            None
        }
        Ok(d) if d < min || d > max => {
            r.error(
                text.span(),
                format!(
                    "`{key}` must be between {} and {}",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            );
            None
        }
        Ok(d) => Some(d),
    }
}

pub(super) struct SecretKeys {
    pub(super) env: Option<S<String>>,
    pub(super) file: Option<S<String>>,
    pub(super) inline: Option<S<IgnoredAny>>,
    pub(super) env_key: &'static str,
    pub(super) file_key: &'static str,
    pub(super) inline_key: &'static str,
}

/// Resolves a credential given by reference, refusing an inline value.
pub(super) fn secret_ref(r: &mut Reporter<'_>, keys: SecretKeys) -> Option<SecretRef> {
    if let Some(inline) = &keys.inline {
        r.error(
            inline.span(),
            format!(
                "inline `{}` is refused: credentials are given by reference only; use `{} = \"VAR\"` or `{} = \"/path/to/file\"`",
                keys.inline_key, keys.env_key, keys.file_key
            ),
        );
    }
    match (keys.env, keys.file) {
        (Some(_), Some(file)) => {
            r.error(
                file.span(),
                format!("set only one of `{}` and `{}`", keys.env_key, keys.file_key),
            );
            None
        }
        (Some(env), None) => {
            let var = env.get_ref();
            let ok = var
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                r.error(
                    env.span(),
                    format!(
                        "`{var}` is not an environment variable name (letters, digits and `_`)"
                    ),
                );
            }
            Some(SecretRef::Env(env.into_inner()))
        }
        (None, Some(file)) => {
            if file.get_ref().trim().is_empty() {
                r.error(file.span(), format!("`{}` cannot be empty", keys.file_key));
            }
            Some(SecretRef::File(PathBuf::from(file.into_inner())))
        }
        (None, None) => None,
    }
}
