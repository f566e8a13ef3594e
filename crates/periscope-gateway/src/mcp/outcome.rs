//! The one result shape of every tool: a status an agent can branch on,
//! what to do next when it is not `completed`, and the tool's own data.
//!
//! One shape for all tools (rather than one per tool) so an agent learns the
//! protocol once: `refused` always names the shield and gives both the
//! `periscope request ...` command a human would type and the `request_grant`
//! call the agent can make itself.

use rmcp::model::CallToolResult;
use rmcp::schemars::{self, JsonSchema};
use serde::Serialize;
use serde_json::Value;

/// What became of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It ran; `result` holds the answer.
    Completed,
    /// A grant request waits for a human approver; `result.request_id` says which.
    PendingApproval,
    /// A shield or rule refused it; `refusal` says which and how to ask.
    Refused,
    /// It could not run (bad input, unknown connection, upstream error).
    Failed,
}

impl Status {
    /// The word written to the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::PendingApproval => "pending_approval",
            Status::Refused => "refused",
            Status::Failed => "failed",
        }
    }
}

/// The `request_grant` call that would lift a refusal's shield.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct GrantCall {
    /// Always `request_grant`.
    pub tool: &'static str,
    /// Its arguments (the reason is the agent's to write).
    pub arguments: GrantCallArguments,
}

/// The arguments of a suggested `request_grant` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct GrantCallArguments {
    /// The connection.
    pub connection: String,
    /// The shields to lift.
    pub lifts: Vec<String>,
    /// The duration the hint proposes.
    pub duration: String,
}

/// Why a call was refused and how to ask for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Refusal {
    /// The shield that refused (`write`, `unmask:email`, `command:delete *`),
    /// when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shield: Option<String>,
    /// More on the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The exact command a human would run to request the grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_command: Option<String>,
    /// The tool call that requests it from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_grant: Option<GrantCall>,
}

impl Refusal {
    /// A refusal from a hint such as `periscope request pg-prod --lift
    /// unmask:email --for 30m --reason "..."`: the shields and duration are
    /// read back from it, so the suggestion is the policy's own.
    pub fn from_hint(hint: Option<&str>, detail: Option<String>) -> Refusal {
        let mut refusal = Refusal {
            detail,
            ..Refusal::default()
        };
        let Some(hint) = hint else {
            return refusal;
        };
        refusal.request_command = Some(hint.to_string());
        let Some(at) = hint.find("periscope request ") else {
            return refusal;
        };
        let words = split_words(&hint[at + "periscope request ".len()..]);
        let mut connection = None;
        let mut lifts = Vec::new();
        let mut duration = "30m".to_string();
        let mut i = 0;
        while i < words.len() {
            match words[i].as_str() {
                "--lift" if i + 1 < words.len() => {
                    lifts.push(words[i + 1].clone());
                    i += 1;
                }
                "--for" if i + 1 < words.len() => {
                    duration = words[i + 1].clone();
                    i += 1;
                }
                "--reason" => i += 1,
                w if !w.starts_with("--") && connection.is_none() => {
                    connection = Some(w.to_string());
                }
                _ => {}
            }
            i += 1;
        }
        refusal.shield = lifts.first().cloned();
        if let Some(connection) = connection
            && !lifts.is_empty()
        {
            refusal.request_grant = Some(GrantCall {
                tool: "request_grant",
                arguments: GrantCallArguments {
                    connection,
                    lifts,
                    duration,
                },
            });
        }
        refusal
    }
}

/// Shell-like words: double or single quotes group, no escapes beyond that.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    let mut any = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            (None, c) => current.push(c),
        }
    }
    if any || !current.is_empty() {
        words.push(current);
    }
    words
}

/// The structured result of every tool.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Outcome {
    /// `completed`, `pending_approval`, `refused` or `failed`.
    pub status: Status,
    /// One sentence for the human reading over the agent's shoulder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What to do next, when there is something to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Set when `status` is `refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// The tool's data (its shape is given in the tool's description).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

impl Outcome {
    /// It ran.
    pub fn completed(result: impl Serialize) -> Outcome {
        Outcome {
            status: Status::Completed,
            message: None,
            hint: None,
            refusal: None,
            result: Some(serde_json::to_value(result).unwrap_or(Value::Null)),
        }
    }

    /// It waits for a human.
    pub fn pending(message: impl Into<String>, result: impl Serialize) -> Outcome {
        Outcome {
            status: Status::PendingApproval,
            message: Some(message.into()),
            hint: None,
            refusal: None,
            result: Some(serde_json::to_value(result).unwrap_or(Value::Null)),
        }
    }

    /// A shield or rule said no.
    pub fn refused(message: impl Into<String>, refusal: Refusal) -> Outcome {
        Outcome {
            status: Status::Refused,
            message: Some(message.into()),
            hint: refusal.request_command.clone(),
            refusal: Some(refusal),
            result: None,
        }
    }

    /// It could not run.
    pub fn failed(message: impl Into<String>, hint: Option<String>) -> Outcome {
        Outcome {
            status: Status::Failed,
            message: Some(message.into()),
            hint,
            refusal: None,
            result: None,
        }
    }

    /// The MCP result: structured content, with `isError` set for
    /// `refused` and `failed` so the model does not take them for answers.
    pub fn into_call_result(self) -> CallToolResult {
        let error = matches!(self.status, Status::Refused | Status::Failed);
        let value = serde_json::to_value(&self).unwrap_or(Value::Null);
        if error {
            CallToolResult::structured_error(value)
        } else {
            CallToolResult::structured(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_becomes_a_request_grant_call() {
        let r = Refusal::from_hint(
            Some("periscope request pg-prod --lift unmask:email --for 30m --reason \"...\""),
            None,
        );
        assert_eq!(r.shield.as_deref(), Some("unmask:email"));
        let call = r.request_grant.expect("a call");
        assert_eq!(call.arguments.connection, "pg-prod");
        assert_eq!(call.arguments.lifts, vec!["unmask:email"]);
        assert_eq!(call.arguments.duration, "30m");
        let quoted = Refusal::from_hint(
            Some("run: periscope request sh --lift 'command:delete *' --for 1h --reason \"x y\""),
            None,
        );
        assert_eq!(quoted.shield.as_deref(), Some("command:delete *"));
        assert!(
            Refusal::from_hint(Some("ask an administrator"), None)
                .request_grant
                .is_none()
        );
    }
}
