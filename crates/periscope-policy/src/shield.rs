//! Shields, the unit of protection, and the patterns roles use to name the
//! shields their members may ask to lift.
//!
//! A shield is written the same way everywhere: in `may_lift`, on the command line
//! (`--lift unmask:email`), in stored grants and in audit events. [`Shield`]'s
//! `FromStr` and `Display` are exact inverses so that text can be trusted as the
//! storage format.

use std::fmt;
use std::str::FromStr;

use periscope_redact::Entity;

use crate::command::CommandPattern;
use crate::names::{FunctionName, TableName, check_tag, text_serde};

/// What an `unmask:` shield reveals: a detected entity class or a custom column tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MaskTarget {
    /// A class the detectors find in any value (`email`, `card`, `github_token`).
    Entity(Entity),
    /// A tag put on columns in a connection's data policy (`confidential`): the
    /// whole column is masked.
    Tag(String),
}

impl MaskTarget {
    /// Whether this target is a credential that only a break-glass role may reveal.
    pub fn is_secret(&self) -> bool {
        matches!(self, MaskTarget::Entity(e) if e.is_secret())
    }
}

impl FromStr for MaskTarget {
    type Err = ShieldParseError;

    /// An entity name wins over a tag of the same name, so a column tagged
    /// `email` is masked as e-mail and lifted by `unmask:email`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(entity) = s.parse::<Entity>() {
            return Ok(MaskTarget::Entity(entity));
        }
        check_tag(s).map_err(|e| ShieldParseError::new(format!("unmask:{s}"), e.to_string()))?;
        Ok(MaskTarget::Tag(s.to_string()))
    }
}

impl fmt::Display for MaskTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaskTarget::Entity(e) => f.write_str(e.name()),
            MaskTarget::Tag(t) => f.write_str(t),
        }
    }
}

/// One protection that is in force unless a grant lifts it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shield {
    /// `unmask:<entity or tag>`: values of this class (or columns with this tag)
    /// are masked.
    Unmask(MaskTarget),
    /// `write`: the session is read-only (no INSERT/UPDATE/DELETE/COPY FROM...).
    Write,
    /// `ddl`: schema changes (CREATE/ALTER/DROP/TRUNCATE...) are refused.
    Ddl,
    /// `unbounded-write`: UPDATE or DELETE without a WHERE clause is refused even
    /// when `write` is lifted; a typo should not rewrite a whole table.
    UnboundedWrite,
    /// `table:<schema.table>`: every access to a table listed as sensitive is refused.
    Table(TableName),
    /// `function:<name>`: calls to a dangerous function are refused.
    Function(FunctionName),
    /// `command:<pattern>`: on an `exec` connection, command lines matching a
    /// sensitive pattern (`delete *`) are refused.
    Command(CommandPattern),
    /// `shell`: on a `shell` connection, opening the interactive shell is
    /// refused. A shell runs anything, so it is always behind this shield.
    Shell,
}

impl Shield {
    /// Whether lifting this shield reveals a credential, which takes a break-glass role.
    pub fn is_secret(&self) -> bool {
        matches!(self, Shield::Unmask(t) if t.is_secret())
    }

    /// A short phrase saying what the shield does, for explanations and refusals.
    pub fn effect(&self) -> String {
        match self {
            Shield::Unmask(MaskTarget::Entity(e)) => format!("{e} values are masked"),
            Shield::Unmask(MaskTarget::Tag(t)) => {
                format!("columns tagged `{t}` are masked whole")
            }
            Shield::Write => "the session is read-only: data changes are refused".to_string(),
            Shield::Ddl => {
                "schema changes (CREATE, ALTER, DROP, TRUNCATE...) are refused".to_string()
            }
            Shield::UnboundedWrite => {
                "UPDATE and DELETE without a WHERE clause are refused".to_string()
            }
            Shield::Table(t) => format!("table {t} is sensitive: every access is refused"),
            Shield::Function(f) => format!("calls to {f}() are refused"),
            Shield::Command(p) => format!("commands matching `{p}` are refused"),
            Shield::Shell => {
                "an interactive shell runs anything: opening one needs a grant".to_string()
            }
        }
    }

    /// The shield as one shell word, quoted when it holds spaces or `*`
    /// (`'command:delete *'`), for the commands printed in hints.
    pub fn shell_word(&self) -> String {
        let text = self.to_string();
        if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c))
        {
            text
        } else {
            format!("'{}'", text.replace('\'', "'\\''"))
        }
    }
}

const SHIELD_FORMS: &str = "shields are `unmask:<entity or tag>`, `write`, `ddl`, `unbounded-write`, `table:<schema.table>`, `function:<name>`, `command:<pattern>` or `shell`";

impl FromStr for Shield {
    type Err = ShieldParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "write" => return Ok(Shield::Write),
            "ddl" => return Ok(Shield::Ddl),
            "unbounded-write" => return Ok(Shield::UnboundedWrite),
            "shell" => return Ok(Shield::Shell),
            _ => {}
        }
        let invalid = |reason: String| ShieldParseError::new(s, reason);
        match s.split_once(':') {
            Some(("unmask", target)) => Ok(Shield::Unmask(target.parse()?)),
            Some(("table", table)) => table
                .parse()
                .map(Shield::Table)
                .map_err(|e| invalid(e.to_string())),
            Some(("function", name)) => name
                .parse()
                .map(Shield::Function)
                .map_err(|e| invalid(e.to_string())),
            Some(("command", pattern)) => pattern
                .parse()
                .map(Shield::Command)
                .map_err(|e| invalid(e.to_string())),
            _ => Err(invalid(SHIELD_FORMS.to_string())),
        }
    }
}

impl fmt::Display for Shield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shield::Unmask(target) => write!(f, "unmask:{target}"),
            Shield::Write => f.write_str("write"),
            Shield::Ddl => f.write_str("ddl"),
            Shield::UnboundedWrite => f.write_str("unbounded-write"),
            Shield::Table(t) => write!(f, "table:{t}"),
            Shield::Function(name) => write!(f, "function:{name}"),
            Shield::Command(pattern) => write!(f, "command:{pattern}"),
            Shield::Shell => f.write_str("shell"),
        }
    }
}

/// A shield or shield pattern that could not be parsed; says which forms exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid shield `{text}`: {reason}")]
pub struct ShieldParseError {
    /// The text that was refused.
    pub text: String,
    /// Why, phrased for a person.
    pub reason: String,
}

impl ShieldParseError {
    fn new(text: impl Into<String>, reason: impl Into<String>) -> Self {
        ShieldParseError {
            text: text.into(),
            reason: reason.into(),
        }
    }
}

/// Which family of shields a pattern with an argument applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternKind {
    /// `unmask:<glob>`
    Unmask,
    /// `table:<glob>`
    Table,
    /// `function:<glob>`
    Function,
    /// `command:<glob>` (`command:*`: every sensitive command pattern)
    Command,
}

impl PatternKind {
    fn prefix(self) -> &'static str {
        match self {
            PatternKind::Unmask => "unmask",
            PatternKind::Table => "table",
            PatternKind::Function => "function",
            PatternKind::Command => "command",
        }
    }
}

/// A set of shields named in a role's `may_lift`: an exact shield, or one of the
/// argument families with `*` wildcards (`unmask:*`, `table:payments.*`).
///
/// A pattern only says a role *may ask*; secrets additionally need a break-glass
/// role, whatever the pattern says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShieldPattern {
    /// Exactly one shield, written without any `*`.
    Exact(Shield),
    /// Every shield of `kind` whose argument matches `glob` (`*` matches any run
    /// of characters, dots included).
    Glob {
        /// The family of shields.
        kind: PatternKind,
        /// The argument pattern, containing at least one `*`.
        glob: String,
    },
}

impl ShieldPattern {
    /// Whether `shield` is one of the shields this pattern names.
    pub fn matches(&self, shield: &Shield) -> bool {
        match self {
            ShieldPattern::Exact(s) => s == shield,
            ShieldPattern::Glob { kind, glob } => {
                let arg = match (kind, shield) {
                    (PatternKind::Unmask, Shield::Unmask(t)) => t.to_string(),
                    (PatternKind::Table, Shield::Table(t)) => t.to_string(),
                    (PatternKind::Function, Shield::Function(f)) => f.to_string(),
                    (PatternKind::Command, Shield::Command(p)) => p.to_string(),
                    _ => return false,
                };
                glob_match(glob, &arg)
            }
        }
    }

    /// The single shield this pattern names, when it has no wildcard.
    pub fn exact(&self) -> Option<&Shield> {
        match self {
            ShieldPattern::Exact(s) => Some(s),
            ShieldPattern::Glob { .. } => None,
        }
    }
}

impl FromStr for ShieldPattern {
    type Err = ShieldParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.contains('*') {
            return s.parse().map(ShieldPattern::Exact);
        }
        let (prefix, glob) = s.split_once(':').ok_or_else(|| {
            ShieldParseError::new(
                s,
                "a wildcard goes after `unmask:`, `table:`, `function:` or `command:` (e.g. `unmask:*`)",
            )
        })?;
        let (kind, allowed): (PatternKind, fn(char) -> bool) = match prefix {
            "unmask" => (PatternKind::Unmask, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
            }),
            "table" => (PatternKind::Table, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '$' | '.')
            }),
            "function" => (PatternKind::Function, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '$' | '.')
            }),
            // A command pattern is itself a pattern: `command:delete *` names
            // the shield of the sensitive pattern `delete *` (and any pattern
            // it matches as text).
            "command" => (PatternKind::Command, |c| !c.is_control()),
            _ => {
                return Err(ShieldParseError::new(
                    s,
                    "only `unmask:`, `table:`, `function:` and `command:` patterns take a wildcard",
                ));
            }
        };
        if let Some(bad) = glob.chars().find(|&c| c != '*' && !allowed(c)) {
            return Err(ShieldParseError::new(
                s,
                format!("character `{bad}` is not allowed in a {prefix} pattern"),
            ));
        }
        Ok(ShieldPattern::Glob {
            kind,
            glob: glob.to_string(),
        })
    }
}

impl fmt::Display for ShieldPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShieldPattern::Exact(s) => s.fmt(f),
            ShieldPattern::Glob { kind, glob } => write!(f, "{}:{glob}", kind.prefix()),
        }
    }
}

text_serde!(MaskTarget, Shield, ShieldPattern);

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
///
/// Iterative with a single backtrack point, so it is linear in practice and
/// cannot blow up on patterns like `a*a*a*a*b`.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shield(s: &str) -> Shield {
        s.parse().unwrap()
    }

    fn pattern(s: &str) -> ShieldPattern {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            shield("unmask:email"),
            Shield::Unmask(MaskTarget::Entity(Entity::Email))
        );
        assert_eq!(
            shield("unmask:confidential"),
            Shield::Unmask(MaskTarget::Tag("confidential".into()))
        );
        assert_eq!(shield("write"), Shield::Write);
        assert_eq!(shield("ddl"), Shield::Ddl);
        assert_eq!(shield("unbounded-write"), Shield::UnboundedWrite);
        assert_eq!(
            shield("table:payments.cards"),
            Shield::Table(TableName::new("payments", "cards"))
        );
        assert_eq!(
            shield("function:pg_read_file").to_string(),
            "function:pg_read_file"
        );
        assert_eq!(
            shield("command:get  secrets").to_string(),
            "command:get secrets"
        );
        assert_eq!(
            shield("command:delete *").shell_word(),
            "'command:delete *'"
        );
        assert_eq!(shield("unmask:email").shell_word(), "unmask:email");
    }

    #[test]
    fn command_patterns_name_command_shields() {
        assert!(pattern("command:*").matches(&shield("command:delete *")));
        assert!(pattern("command:delete *").matches(&shield("command:delete *")));
        assert!(!pattern("command:delete *").matches(&shield("command:exec *")));
        assert!(pattern("command:get secrets").matches(&shield("command:get secrets")));
        assert!(!pattern("unmask:*").matches(&shield("command:get secrets")));
        assert!("command:".parse::<Shield>().is_err());
    }

    #[test]
    fn refuses_malformed_shields_with_the_reason() {
        let err = "read".parse::<Shield>().unwrap_err();
        assert!(err.to_string().contains("unmask:<entity or tag>"), "{err}");
        let err = "table:cards".parse::<Shield>().unwrap_err();
        assert!(err.to_string().contains("schema.table"), "{err}");
        let err = "unmask:E-Mail".parse::<Shield>().unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
        assert!("unmask:".parse::<Shield>().is_err());
        assert!("write:x".parse::<Shield>().is_err());
        assert!("*".parse::<ShieldPattern>().is_err());
        assert!("write*".parse::<ShieldPattern>().is_err());
        assert!("table:Pay*".parse::<ShieldPattern>().is_err());
    }

    #[test]
    fn secrets_are_recognised() {
        assert!(shield("unmask:github_token").is_secret());
        assert!(shield("unmask:secret").is_secret());
        assert!(!shield("unmask:email").is_secret());
        assert!(!shield("unmask:confidential").is_secret());
        assert!(!shield("write").is_secret());
    }

    #[test]
    fn wildcards_match_within_their_family() {
        let all_unmask = pattern("unmask:*");
        assert!(all_unmask.matches(&shield("unmask:email")));
        assert!(all_unmask.matches(&shield("unmask:confidential")));
        assert!(!all_unmask.matches(&shield("write")));
        assert!(!all_unmask.matches(&shield("table:public.users")));

        let payments = pattern("table:payments.*");
        assert!(payments.matches(&shield("table:payments.cards")));
        assert!(!payments.matches(&shield("table:public.payments")));

        let pg_read = pattern("function:pg_read_*");
        assert!(pg_read.matches(&shield("function:pg_read_file")));
        assert!(pg_read.matches(&shield("function:pg_read_binary_file")));
        assert!(!pg_read.matches(&shield("function:pg_ls_dir")));

        assert!(pattern("write").matches(&shield("write")));
        assert!(!pattern("write").matches(&shield("unbounded-write")));
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("*_key", "stripe_key"));
        assert!(!glob_match("a*a*a*a*b", &"a".repeat(200)));
    }

    #[test]
    fn serde_uses_the_text_form() {
        let json = serde_json::to_string(&vec![shield("unmask:email"), shield("write")]).unwrap();
        assert_eq!(json, r#"["unmask:email","write"]"#);
        let back: Vec<Shield> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![shield("unmask:email"), shield("write")]);
        assert!(serde_json::from_str::<Shield>(r#""unmask:""#).is_err());
    }

    fn ident() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_$]{0,10}"
    }

    fn any_shield() -> impl Strategy<Value = Shield> {
        prop_oneof![
            proptest::sample::select(Entity::ALL.to_vec())
                .prop_map(|e| Shield::Unmask(MaskTarget::Entity(e))),
            "[a-z][a-z0-9_-]{0,12}".prop_map(|t| Shield::Unmask(t.parse().unwrap())),
            Just(Shield::Write),
            Just(Shield::Ddl),
            Just(Shield::UnboundedWrite),
            (ident(), ident()).prop_map(|(s, t)| Shield::Table(TableName::new(s, t))),
            (proptest::option::of(ident()), ident()).prop_map(|(schema, name)| {
                let text = match schema {
                    Some(s) => format!("{s}.{name}"),
                    None => name,
                };
                Shield::Function(text.parse().unwrap())
            }),
        ]
    }

    proptest! {
        #[test]
        fn shield_text_round_trips(s in any_shield()) {
            let text = s.to_string();
            prop_assert_eq!(text.parse::<Shield>(), Ok(s.clone()));
            // An exact pattern names exactly that shield.
            let p: ShieldPattern = text.parse().unwrap();
            prop_assert!(p.matches(&s));
            prop_assert_eq!(p.to_string(), text);
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = text.parse::<Shield>();
            let _ = text.parse::<ShieldPattern>();
        }

        #[test]
        fn star_patterns_match_every_shield_of_their_family(s in any_shield()) {
            let family = match &s {
                Shield::Unmask(_) => "unmask:*",
                Shield::Table(_) => "table:*",
                Shield::Function(_) => "function:*",
                _ => return Ok(()),
            };
            prop_assert!(pattern(family).matches(&s));
        }
    }
}
