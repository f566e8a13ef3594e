//! The decision for one command line on an `exec` connection.

use periscope_policy::{Allowance, CommandPattern, ExecConfig, Refusal, Shield};

/// Most arguments a client may send: a command line typed by a person.
pub const MAX_ARGS: usize = 256;
/// Most bytes of all arguments together.
pub const MAX_ARGS_BYTES: usize = 64 * 1024;

/// Why a command line may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    /// It matches an allow-list pattern and no sensitive one.
    Allowed {
        /// The allow-list pattern.
        pattern: CommandPattern,
    },
    /// It matches a sensitive pattern whose shield a grant lifts.
    Lifted {
        /// The sensitive pattern.
        pattern: CommandPattern,
        /// The grant lifting `command:<pattern>`.
        grant_id: String,
    },
}

impl Permit {
    /// The pattern that let the command run.
    pub fn pattern(&self) -> &CommandPattern {
        match self {
            Permit::Allowed { pattern } | Permit::Lifted { pattern, .. } => pattern,
        }
    }
}

/// Why a command line was refused; [`Denied::refusal`] words it for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// It matches a sensitive pattern whose shield is in force.
    Sensitive {
        /// The `command:<pattern>` shield.
        shield: Shield,
    },
    /// It matches no pattern: deny by default, and no grant can change that.
    NotListed,
    /// The arguments themselves are refused (too many, too long, NUL).
    BadArguments {
        /// What is wrong, without the arguments' text.
        reason: String,
    },
}

impl Denied {
    /// The refusal the client sees: which shield or rule, what it does, and
    /// the command that requests a grant (or why none can).
    pub fn refusal(&self, allowance: &Allowance, connection: &str) -> Refusal {
        match self {
            Denied::Sensitive { shield } => allowance.refusal(shield, "command"),
            Denied::NotListed => Refusal {
                shield: Shield::Command("*".parse().expect("`*` is a valid command pattern")),
                message: format!("command not on the allow-list of connection `{connection}`"),
                detail: "an exec connection runs only the argument patterns of its `allow` \
                         list, and those of its `sensitive` list under a grant; anything else \
                         is refused"
                    .to_string(),
                hint: "no grant lifts this: ask an administrator to add a pattern to the \
                       connection's `allow` or `sensitive` list"
                    .to_string(),
            },
            Denied::BadArguments { reason } => Refusal {
                shield: Shield::Command("*".parse().expect("`*` is a valid command pattern")),
                message: format!("arguments refused on connection `{connection}`: {reason}"),
                detail: "arguments are passed to the program as they are, without a shell"
                    .to_string(),
                hint: "fix the arguments and run the command again".to_string(),
            },
        }
    }

    /// A short code for the audit (`sensitive`, `not_listed`, `bad_arguments`).
    pub fn code(&self) -> &'static str {
        match self {
            Denied::Sensitive { .. } => "sensitive",
            Denied::NotListed => "not_listed",
            Denied::BadArguments { .. } => "bad_arguments",
        }
    }
}

/// Decides whether `args` (what follows the connection's base command) may
/// run under `allowance`. Sensitive patterns are checked first, so a line
/// both allowed and sensitive needs the grant (a grant for each sensitive
/// pattern it matches).
pub fn check(exec: &ExecConfig, allowance: &Allowance, args: &[String]) -> Result<Permit, Denied> {
    if args.len() > MAX_ARGS {
        return Err(Denied::BadArguments {
            reason: format!("at most {MAX_ARGS} arguments"),
        });
    }
    if args.iter().map(String::len).sum::<usize>() > MAX_ARGS_BYTES {
        return Err(Denied::BadArguments {
            reason: format!("at most {MAX_ARGS_BYTES} bytes of arguments"),
        });
    }
    if args.iter().any(|a| a.contains('\0')) {
        return Err(Denied::BadArguments {
            reason: "an argument contains NUL".to_string(),
        });
    }
    // Every sensitive pattern the line matches must be lifted: a grant for
    // `delete *` does not let `delete --all *` through if that is also listed.
    let mut lifted = None;
    for pattern in exec.sensitive.iter().filter(|p| p.matches(args)) {
        let shield = Shield::Command(pattern.clone());
        match allowance.shields().lifted().get(&shield) {
            Some(lift) => {
                lifted.get_or_insert_with(|| Permit::Lifted {
                    pattern: pattern.clone(),
                    grant_id: lift.grant_id.clone(),
                });
            }
            None => return Err(Denied::Sensitive { shield }),
        }
    }
    if let Some(permit) = lifted {
        return Ok(permit);
    }
    match exec.allow.iter().find(|p| p.matches(args)) {
        Some(pattern) => Ok(Permit::Allowed {
            pattern: pattern.clone(),
        }),
        None => Err(Denied::NotListed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_policy::{Grant, Identity, Policy, PolicyInput, decide};
    use time::OffsetDateTime;

    const CONFIG: &str = r#"
[[connection]]
name = "kube"
kind = "exec"
command = ["/usr/bin/kubectl"]
allow = ["get pods", "logs *", "delete pod test-*"]
sensitive = ["delete *", "exec *"]

[[role]]
name = "dev"
connections = ["kube"]
may_lift = ["command:*", "unmask:email"]
approvals = 0
"#;

    fn args(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    fn allowance(policy: &Policy, grants: &[Grant]) -> Allowance {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        decide(&PolicyInput {
            policy,
            identity: &Identity::new("alice", ["dev"]),
            connection: "kube",
            grants,
            now,
        })
        .allowance()
        .cloned()
        .unwrap()
    }

    fn exec(policy_text: &str) -> ExecConfig {
        periscope_policy::Config::parse(policy_text, "p")
            .unwrap()
            .connections[0]
            .exec
            .clone()
            .unwrap()
    }

    #[test]
    fn allowed_sensitive_and_unlisted_lines() {
        let policy = Policy::parse(CONFIG, "p").unwrap();
        let exec = exec(CONFIG);
        let a = allowance(&policy, &[]);
        assert_eq!(
            check(&exec, &a, &args("get pods"))
                .unwrap()
                .pattern()
                .to_string(),
            "get pods"
        );
        assert!(check(&exec, &a, &args("logs web-1 -f")).is_ok());
        // Sensitive wins over the allow-list.
        let denied = check(&exec, &a, &args("delete pod test-1")).unwrap_err();
        assert_eq!(
            denied,
            Denied::Sensitive {
                shield: "command:delete *".parse().unwrap()
            }
        );
        let refusal = denied.refusal(&a, "kube");
        assert!(refusal.message.contains("`command:delete *`"), "{refusal}");
        assert!(
            refusal
                .hint
                .contains("periscope request kube --lift 'command:delete *'"),
            "{refusal}"
        );
        assert_eq!(
            check(&exec, &a, &args("get secrets")),
            Err(Denied::NotListed)
        );
        assert_eq!(check(&exec, &a, &[]), Err(Denied::NotListed));
        assert!(matches!(
            check(&exec, &a, &["logs".into(), "a\0b".into()]),
            Err(Denied::BadArguments { .. })
        ));
        // The shields of an exec connection are its commands and masks only.
        assert!(a.shields().blocks_command(&"exec *".parse().unwrap()));
        assert!(!a.shields().blocks_write());
    }

    /// alice's active grant lifting `command:delete *` on `kube`.
    fn grant_lifting_delete() -> Grant {
        let start = OffsetDateTime::from_unix_timestamp(1_799_999_000).unwrap();
        Grant {
            id: "gr_1".into(),
            request_id: "req_1".into(),
            identity: "alice".into(),
            connection: "kube".into(),
            role: "dev".into(),
            lifts: vec!["command:delete *".parse().unwrap()],
            reason: "clean up a stuck pod".into(),
            approvers: vec![],
            break_glass: false,
            starts_at: start,
            expires_at: start + time::Duration::hours(1),
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn a_grant_lifting_the_pattern_lets_it_run() {
        let policy = Policy::parse(CONFIG, "p").unwrap();
        let exec = exec(CONFIG);
        let a = allowance(&policy, &[grant_lifting_delete()]);
        assert_eq!(
            check(&exec, &a, &args("delete pod web-1")),
            Ok(Permit::Lifted {
                pattern: "delete *".parse().unwrap(),
                grant_id: "gr_1".into()
            })
        );
        assert!(matches!(
            check(&exec, &a, &args("exec web-1 sh")),
            Err(Denied::Sensitive { .. })
        ));
    }

    #[test]
    fn every_sensitive_pattern_a_line_matches_must_be_lifted() {
        let text = CONFIG.replace(
            r#"sensitive = ["delete *", "exec *"]"#,
            r#"sensitive = ["delete *", "* --all", "exec *"]"#,
        );
        let policy = Policy::parse(&text, "p").unwrap();
        let exec = exec(&text);
        let a = allowance(&policy, &[grant_lifting_delete()]);
        assert!(check(&exec, &a, &args("delete pod web-1")).is_ok());
        assert_eq!(
            check(&exec, &a, &args("delete --all")),
            Err(Denied::Sensitive {
                shield: "command:* --all".parse().unwrap()
            })
        );
    }
}
