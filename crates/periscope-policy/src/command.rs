//! Argument patterns of `exec` connections: which command lines need no
//! grant (`allow`) and which are sensitive flows (`sensitive`, each one a
//! `command:<pattern>` shield).
//!
//! A pattern is a list of words separated by spaces. Each word matches one
//! argument, with `*` standing for any run of characters inside that argument;
//! a last word that is a lone `*` matches any number of remaining arguments
//! (none included). So `logs *` matches `logs web-1 --tail 20`, `get pods`
//! matches exactly `get pods`, and `describe pod web-*` matches
//! `describe pod web-1`. Arguments are compared as the client sent them:
//! nothing is interpreted by a shell.

use std::fmt;
use std::str::FromStr;

use crate::shield::glob_match;

/// Longest pattern, in bytes: patterns are written by people and travel in
/// shields, refusals and audit events.
pub const MAX_COMMAND_PATTERN: usize = 256;

/// A checked argument pattern (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandPattern {
    /// The words joined by one space: the pattern's text in shields.
    text: String,
}

/// Why an argument pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid command pattern `{text}`: {reason}")]
pub struct InvalidCommandPattern {
    /// The text that was refused.
    pub text: String,
    /// Why, phrased for a person.
    pub reason: &'static str,
}

impl CommandPattern {
    /// The pattern's words.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.text.split(' ')
    }

    /// The pattern as written in shields (`delete *`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the argument list `args` (after the connection's base command)
    /// is one this pattern names.
    pub fn matches<S: AsRef<str>>(&self, args: &[S]) -> bool {
        let words: Vec<&str> = self.words().collect();
        let (fixed, rest_any) = match words.split_last() {
            Some((&"*", fixed)) => (fixed, true),
            _ => (&words[..], false),
        };
        if args.len() < fixed.len() || (!rest_any && args.len() != fixed.len()) {
            return false;
        }
        fixed
            .iter()
            .zip(args)
            .all(|(word, arg)| glob_match(word, arg.as_ref()))
    }
}

impl FromStr for CommandPattern {
    type Err = InvalidCommandPattern;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidCommandPattern {
            text: s.chars().take(MAX_COMMAND_PATTERN).collect(),
            reason,
        };
        if s.len() > MAX_COMMAND_PATTERN {
            return Err(invalid("at most 256 bytes"));
        }
        if s.chars().any(char::is_control) {
            return Err(invalid("control characters are not allowed"));
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.is_empty() {
            return Err(invalid(
                "a pattern names at least one argument, e.g. `logs *` or `get pods`",
            ));
        }
        Ok(CommandPattern {
            text: words.join(" "),
        })
    }
}

impl fmt::Display for CommandPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CommandPattern {
        s.parse().unwrap()
    }

    #[test]
    fn words_match_one_argument_each_and_a_last_star_the_rest() {
        assert!(p("get pods").matches(&["get", "pods"]));
        assert!(!p("get pods").matches(&["get", "pods", "-A"]));
        assert!(!p("get pods").matches(&["get"]));
        assert!(p("logs *").matches(&["logs"]));
        assert!(p("logs *").matches(&["logs", "web-1", "--tail", "20"]));
        assert!(!p("logs *").matches(&["exec", "logs"]));
        assert!(p("describe pod web-*").matches(&["describe", "pod", "web-1"]));
        assert!(!p("describe pod web-*").matches(&["describe", "pod", "db-1"]));
        assert!(!p("describe pod web-*").matches(&["describe", "pod", "web-1", "x"]));
        assert!(p("*").matches::<&str>(&[]));
    }

    #[test]
    fn text_is_normalised_and_checked() {
        assert_eq!(p("  logs   * ").to_string(), "logs *");
        assert!("".parse::<CommandPattern>().is_err());
        assert!("   ".parse::<CommandPattern>().is_err());
        assert!("logs\n*".parse::<CommandPattern>().is_err());
        assert!("logs \u{7}".parse::<CommandPattern>().is_err());
        assert!("a".repeat(300).parse::<CommandPattern>().is_err());
    }

    #[test]
    fn an_argument_with_shell_metacharacters_is_just_text() {
        assert!(!p("get pods").matches(&["get", "pods;rm -rf /"]));
        assert!(p("echo *").matches(&["echo", "$(id)", "`id`", "|", ";"]));
    }
}
