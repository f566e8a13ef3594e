//! The shape docs/architecture.md promises, checked against the code: the
//! crate table's layering against `cargo metadata`, and the gateway's
//! modules against their `crate::`/`super::` paths. A newcomer reads that
//! document to find where a behaviour lives; these tests keep it true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The workspace root (this crate is `crates/periscope`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One row of the crate table: the crate and the short names of the
/// workspace crates it may depend on.
#[derive(Debug)]
struct Row {
    name: String,
    depends_on: BTreeSet<String>,
}

/// The rows of the table under `## Crates`, in order.
fn crate_table() -> Vec<Row> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/architecture.md"))
        .expect("read docs/architecture.md");
    let section = doc
        .split("\n## Crates")
        .nth(1)
        .expect("docs/architecture.md has a `## Crates` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let name = cells[0]
            .split('`')
            .nth(1)
            .expect("the first cell names the crate in backticks")
            .to_string();
        let deps = cells.last().copied().unwrap_or("-");
        let depends_on = deps
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty() && *d != "-")
            .map(full_name)
            .collect();
        rows.push(Row { name, depends_on });
    }
    assert!(rows.len() > 5, "the crate table was not found: {rows:?}");
    rows
}

/// `pg-wire` → `periscope-pg-wire`, as the table abbreviates.
fn full_name(short: &str) -> String {
    if short == "periscope" || short.starts_with("periscope-") {
        short.to_string()
    } else {
        format!("periscope-{short}")
    }
}

/// Every workspace crate with its normal and dev dependencies on other
/// workspace crates.
fn workspace_dependencies() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("package name").to_string())
        .collect();
    let mut all = BTreeMap::new();
    for p in packages {
        let (mut normal, mut dev) = (BTreeSet::new(), BTreeSet::new());
        for d in p["dependencies"].as_array().expect("dependencies") {
            let name = d["name"].as_str().expect("dependency name").to_string();
            if !members.contains(&name) {
                continue;
            }
            match d["kind"].as_str() {
                Some("dev") => dev.insert(name),
                _ => normal.insert(name),
            };
        }
        all.insert(p["name"].as_str().expect("name").to_string(), (normal, dev));
    }
    all
}

#[test]
fn dependencies_point_down_the_table() {
    let rows = crate_table();
    let actual = workspace_dependencies();
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let missing: Vec<&String> = actual
        .keys()
        .filter(|c| !listed.contains(c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "crates without a row in docs/architecture.md: {missing:?}"
    );
    let mut problems = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let Some((normal, dev)) = actual.get(&row.name) else {
            problems.push(format!(
                "{} is in the table but not in the workspace",
                row.name
            ));
            continue;
        };
        let above: BTreeSet<&str> = rows[..i].iter().map(|r| r.name.as_str()).collect();
        for dep in normal {
            if !above.contains(dep.as_str()) {
                problems.push(format!(
                    "{} depends on {dep}, which is not in a row above it",
                    row.name
                ));
            }
        }
        for dep in dev {
            // A crate may name itself to turn on a test-only feature.
            if !above.contains(dep.as_str()) && dep != "periscope-testkit" && *dep != row.name {
                problems.push(format!(
                    "{}'s tests depend on {dep}, which is neither above it nor the testkit",
                    row.name
                ));
            }
        }
        if *normal != row.depends_on {
            problems.push(format!(
                "{}: the table says it depends on {:?}, Cargo.toml says {:?}",
                row.name, row.depends_on, normal
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The gateway's modules (one per file) and the modules each refers to.
fn gateway_module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = workspace_root().join("crates/periscope-gateway/src");
    let mut files = Vec::new();
    collect_rs(&src, &mut files);
    let mut modules = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let mut parts: Vec<String> = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
            parts.pop();
        }
        modules.insert(parts.join("::"), file.clone());
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("read a gateway source file");
        // Inline test modules come last and refer to their own file as `super`.
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        let code = strip_comments(code);
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let mut refs = BTreeSet::new();
        for (prefix, base) in [("crate::", ""), ("super::", parent)] {
            for path in paths_after(&code, prefix) {
                let full = if base.is_empty() {
                    path
                } else {
                    format!("{base}::{path}")
                };
                if let Some(target) = longest_module(&names, &full)
                    && !target.is_empty()
                    && target != *module
                {
                    refs.insert(target);
                }
            }
        }
        if !module.is_empty() {
            graph.insert(module.clone(), refs);
        }
    }
    graph
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code without `//` comments (doc comments mention paths in prose).
fn strip_comments(code: &str) -> String {
    code.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path written after `prefix` (`crate::`), use-tree groups expanded:
/// `crate::a::{b, c::d}` gives `a::b` and `a::c::d`.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let (tree, used) = use_tree(rest);
        rest = &rest[used..];
        out.extend(tree);
    }
    out
}

/// Parses one use tree at the start of `s`: the paths it names and the
/// bytes read.
fn use_tree(s: &str) -> (Vec<String>, usize) {
    let bytes = s.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'{') {
        let mut paths = Vec::new();
        i = 1;
        loop {
            while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                i += 1;
            }
            if i >= bytes.len() || bytes[i] == b'}' {
                return (paths, (i + 1).min(bytes.len()));
            }
            let (sub, used) = use_tree(&s[i..]);
            paths.extend(sub);
            i += used.max(1);
        }
    }
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    let head = s[..i].to_string();
    if s[i..].starts_with("::") {
        let (subs, used) = use_tree(&s[i + 2..]);
        let paths = if subs.is_empty() {
            vec![head]
        } else {
            subs.into_iter()
                .map(|p| {
                    if p.is_empty() || p == "self" {
                        head.clone()
                    } else {
                        format!("{head}::{p}")
                    }
                })
                .collect()
        };
        return (paths, i + 2 + used);
    }
    (vec![head], i)
}

/// The longest module that `path` starts with.
fn longest_module(names: &BTreeSet<String>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (0..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| names.contains(candidate))
}

/// A cycle in `graph`, if there is one, as the modules on it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_gateway_modules_form_no_cycle() {
    let graph = gateway_module_graph();
    assert!(
        graph.contains_key("server") && graph["server"].contains("listener"),
        "the module graph was not read: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "gateway modules refer to each other in a cycle: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    let cycle = find_cycle(&graph).expect("a -> b -> c -> a is a cycle");
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    let (paths, _) = use_tree("a::{b, c::{d, self}}, e");
    assert_eq!(paths, ["a::b", "a::c::d", "a::c"]);
}
