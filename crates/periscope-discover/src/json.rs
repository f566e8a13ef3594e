//! The JSON walk: every scalar of every sampled document is tallied under its
//! key path, so `$.customer.tax_id` gets evidence of its own across documents.
//!
//! * Array elements are pooled under `[*]`, whatever their index.
//! * A key is kept in the path only if it reads like a name
//!   ([`crate::path::is_name_like`]) and the scanner finds nothing in it;
//!   other keys are pooled under `.*`.
//! * An object under which more than `map_keys` distinct names appear is a
//!   map keyed by data (user ids, dates, SKUs): its children are merged into
//!   `.*` and stay there. Without this, a map would turn into one thin field
//!   per entry, none with enough values to decide, and its keys into a list
//!   of data.
//! * At most `max_paths` fields per column and `max_depth` levels: beyond
//!   that, values are pooled under the nearest `.*` or dropped, so a hostile
//!   document cannot make a profile grow without bound.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::checks::{CheckContext, check_value};
use crate::path::{JsonStep, is_name_like};
use crate::tally::Tally;

/// Bounds of one column's walk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_paths: usize,
    pub map_keys: usize,
    pub max_depth: usize,
}

/// One JSON path and what was seen there.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// Scalars at this path.
    pub tally: Tally,
    keys: BTreeMap<String, Node>,
    any_key: Option<Box<Node>>,
    elements: Option<Box<Node>>,
    /// Whether this object was found to be a map: new keys go to `any_key`.
    collapsed: bool,
}

impl Node {
    fn count(&self) -> usize {
        1 + self.keys.values().map(Node::count).sum::<usize>()
            + self.any_key.as_ref().map_or(0, |n| n.count())
            + self.elements.as_ref().map_or(0, |n| n.count())
    }

    fn merge(&mut self, other: Node) {
        self.tally.merge(&other.tally);
        for (k, child) in other.keys {
            self.keys.entry(k).or_default().merge(child);
        }
        if let Some(child) = other.any_key {
            self.any_key.get_or_insert_default().merge(*child);
        }
        if let Some(child) = other.elements {
            self.elements.get_or_insert_default().merge(*child);
        }
        self.collapsed |= other.collapsed;
    }

    /// Every field with something tallied, depth first: named keys in
    /// order, then `.*`, then `[*]`.
    pub fn fields<'a>(
        &'a self,
        prefix: &mut Vec<JsonStep>,
        out: &mut Vec<(Vec<JsonStep>, &'a Tally)>,
    ) {
        if !prefix.is_empty() && !self.tally.is_empty() {
            out.push((prefix.clone(), &self.tally));
        }
        for (k, child) in &self.keys {
            prefix.push(JsonStep::Key(k.clone()));
            child.fields(prefix, out);
            prefix.pop();
        }
        if let Some(child) = &self.any_key {
            prefix.push(JsonStep::AnyKey);
            child.fields(prefix, out);
            prefix.pop();
        }
        if let Some(child) = &self.elements {
            prefix.push(JsonStep::Elements);
            child.fields(prefix, out);
            prefix.pop();
        }
    }
}

/// Walks documents into a tree of [`Node`]s.
pub(crate) struct Walker<'a> {
    pub ctx: &'a CheckContext<'a>,
    pub limits: Limits,
    /// Fields in the tree, to enforce `max_paths`.
    pub paths: usize,
    /// A map was collapsed: `paths` overcounts until [`Walker::recount`].
    pub needs_recount: bool,
}

impl Walker<'_> {
    /// Tallies one document (or scalar) at `node`.
    pub fn walk(&mut self, node: &mut Node, value: &Value, depth: usize) {
        match value {
            Value::Null => node.tally.nulls += 1,
            Value::Bool(_) => node.tally.values += 1,
            Value::Number(n) => {
                let text = n.to_string();
                let integer = n.is_i64() || n.is_u64();
                node.tally.record(&check_value(self.ctx, &text, integer));
            }
            Value::String(s) => {
                let s = s.trim();
                if s.is_empty() {
                    node.tally.blanks += 1;
                } else {
                    node.tally.record(&check_value(self.ctx, s, false));
                }
            }
            Value::Array(items) => {
                if depth >= self.limits.max_depth {
                    return;
                }
                if node.elements.is_none() {
                    self.paths += 1;
                }
                let child = node.elements.get_or_insert_default();
                for item in items {
                    self.walk(child, item, depth + 1);
                }
            }
            Value::Object(members) => {
                if depth >= self.limits.max_depth {
                    return;
                }
                for (key, item) in members {
                    let child = self.child(node, key);
                    self.walk(child, item, depth + 1);
                }
            }
        }
    }

    /// The node for `key` under `node`, creating it, pooling it under `.*`
    /// or collapsing `node` into a map as the rules say.
    fn child<'n>(&mut self, node: &'n mut Node, key: &str) -> &'n mut Node {
        if node.keys.contains_key(key) {
            // Known, so already judged a name.
            return node.keys.entry(key.to_string()).or_default();
        }
        let named = !node.collapsed
            && self.paths < self.limits.max_paths
            && is_name_like(key)
            && !self.ctx.scanner.contains_any(key);
        if !named {
            return self.any(node);
        }
        if node.keys.len() >= self.limits.map_keys {
            collapse(node);
            self.needs_recount = true;
            return self.any(node);
        }
        self.paths += 1;
        node.keys.entry(key.to_string()).or_default()
    }

    fn any<'n>(&mut self, node: &'n mut Node) -> &'n mut Node {
        if node.any_key.is_none() {
            self.paths += 1;
        }
        node.any_key.get_or_insert_default()
    }

    /// Recounts fields after a collapse merged some.
    pub fn recount(&mut self, root: &Node) {
        if self.needs_recount {
            self.paths = root.count() - 1;
            self.needs_recount = false;
        }
    }
}

/// Turns `node` into a map: its named children are merged into `.*`.
fn collapse(node: &mut Node) {
    node.collapsed = true;
    let keys = std::mem::take(&mut node.keys);
    let any = node.any_key.get_or_insert_default();
    for (_, child) in keys {
        any.merge(child);
    }
}

/// Whether the trimmed text looks like a JSON document rather than a scalar,
/// so a text column is worth parsing.
pub(crate) fn looks_like_document(text: &str) -> bool {
    matches!(text.as_bytes().first(), Some(b'{' | b'['))
}

/// Parses a document; `None` for text that is not JSON.
pub(crate) fn parse(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(docs: &[&str], limits: Limits) -> Vec<(String, u32)> {
        let scanner = periscope_redact::ScanConfig::new().build();
        let ctx = CheckContext {
            scanner: &scanner,
            as_of_year: 2025,
        };
        let mut root = Node::default();
        let mut w = Walker {
            ctx: &ctx,
            limits,
            paths: 0,
            needs_recount: false,
        };
        for d in docs {
            let v = parse(d).expect("test documents are JSON");
            w.walk(&mut root, &v, 0);
            w.recount(&root);
        }
        let mut out = Vec::new();
        root.fields(&mut Vec::new(), &mut out);
        out.into_iter()
            .map(|(steps, t)| {
                let path = crate::path::FieldPath {
                    column: crate::path::ColumnPath::new("s", "t", "c"),
                    json: steps,
                };
                (path.to_string(), t.values + t.nulls + t.blanks)
            })
            .collect()
    }

    const LIMITS: Limits = Limits {
        max_paths: 100,
        map_keys: 3,
        max_depth: 4,
    };

    #[test]
    fn paths_arrays_and_nulls() {
        let got = fields(
            &[
                r#"{"customer": {"tax_id": "52998224725", "name": "A"}, "items": [{"sku": "X1"}, {"sku": "X2"}]}"#,
                r#"{"customer": {"tax_id": null}, "items": []}"#,
            ],
            LIMITS,
        );
        assert_eq!(
            got,
            vec![
                ("s.t.c.$.customer.name".to_string(), 1),
                ("s.t.c.$.customer.tax_id".to_string(), 2),
                ("s.t.c.$.items[*].sku".to_string(), 2),
            ]
        );
    }

    #[test]
    fn data_keys_and_maps_pool_under_any_key() {
        // Keys holding data never appear in a path.
        let got = fields(
            &[r#"{"alice@example.com": {"ssn": "536221234"}, "u_18273645": {"ssn": "536221235"}}"#],
            LIMITS,
        );
        assert_eq!(got, vec![("s.t.c.$.*.ssn".to_string(), 2)]);
        // Name-like keys, but too many of them under one object: a map.
        let got = fields(
            &[
                r#"{"m": {"alice": {"ssn": "1"}, "bob": {"ssn": "2"}, "carol": {"ssn": "3"}}}"#,
                r#"{"m": {"dave": {"ssn": "4"}, "erin": {"ssn": "5", "pin": "6"}}}"#,
            ],
            LIMITS,
        );
        assert_eq!(
            got,
            vec![
                ("s.t.c.$.m.*.pin".to_string(), 1),
                ("s.t.c.$.m.*.ssn".to_string(), 5)
            ]
        );
    }

    #[test]
    fn depth_and_path_bounds() {
        let got = fields(
            &[r#"{"a": {"b": {"c": {"d": {"e": "deep"}}, "x": "1"}}}"#],
            LIMITS,
        );
        assert_eq!(got, vec![("s.t.c.$.a.b.x".to_string(), 1)]);
        let small = Limits {
            max_paths: 2,
            ..LIMITS
        };
        let got = fields(&[r#"{"a": "1", "b": "2", "c": "3", "d": "4"}"#], small);
        assert_eq!(
            got,
            vec![
                ("s.t.c.$.a".to_string(), 1),
                ("s.t.c.$.b".to_string(), 1),
                ("s.t.c.$.*".to_string(), 2)
            ]
        );
    }
}
