//! The crate's layout holds: no file of `src/` imports another in a cycle, and `src/raw/`
//! (every `unsafe` block) uses nothing of the crate outside itself.
//!
//! A file depends on another when its code (not its docs or comments) names a path into
//! the other's module: `use crate::engine::slots::Slots;`, `super::Layer`, an inline
//! `crate::sealed::Input`, or a child module in a `use` (`use readiness::Sweep;`). A path
//! resolves to the deepest module it names. `mod x;` declarations are structure, not
//! dependencies, and `lib.rs` (the root, which re-exports everything) must not be used
//! through its re-exports from inside the crate: such a path would close a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file: its module path (`["engine", "slots"]`) and its code.
struct Source {
    module: Vec<String>,
    code: String,
}

fn sources() -> BTreeMap<PathBuf, Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().map_or(true, |e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap().with_extension("");
            let mut module: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let code = strip_comments(&std::fs::read_to_string(&path).unwrap());
            files.insert(relative, Source { module, code });
        }
    }
    files
}

/// The code without comments (doc comments included) and string literals.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut block, mut string) = (0, false);
    while let Some(c) = chars.next() {
        if string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => string = false,
                '\n' => out.push('\n'),
                _ => {}
            }
            continue;
        }
        if block > 0 {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                block -= 1;
            } else if c == '/' && chars.peek() == Some(&'*') {
                chars.next();
                block += 1;
            } else if c == '\n' {
                out.push('\n');
            }
            continue;
        }
        match (c, chars.peek()) {
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                block = 1;
            }
            ('"', _) => string = true,
            _ => out.push(c),
        }
    }
    out
}

/// Every path the code names that starts at the crate, a parent, itself or a child module,
/// with the module it is written in (inline `mod x { .. }` blocks included).
fn paths(source: &Source, children: &BTreeSet<String>) -> Vec<(Vec<String>, Vec<String>)> {
    let mut found = Vec::new();
    // The inline modules open at this point, with the brace depth each opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let tokens = tokenize(&source.code);
    let mut i = 0;
    let mut in_use = false;
    while i < tokens.len() {
        let token = tokens[i].as_str();
        match token {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if tokens.get(i + 2).is_some_and(|t| t == "{") => {
                inline.push((tokens[i + 1].clone(), depth));
            }
            "use" => in_use = true,
            ";" => in_use = false,
            _ => {}
        }
        let starts_path = tokens.get(i + 1).is_some_and(|t| t == "::")
            && (i == 0 || tokens[i - 1] != "::")
            && (matches!(token, "crate" | "super" | "self")
                || (in_use && inline.is_empty() && children.contains(token)));
        if starts_path {
            let mut path = vec![token.to_owned()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|t| t == "::")
                && tokens.get(j + 1).is_some_and(|t| is_ident(t))
            {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            let mut module = source.module.clone();
            module.extend(inline.iter().map(|(name, _)| name.clone()));
            found.push((module, path));
            i = j;
            continue;
        }
        i += 1;
    }
    found
}

fn is_ident(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut ident = c.to_string();
            while let Some(&next) = chars.peek() {
                if next.is_alphanumeric() || next == '_' {
                    ident.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(ident);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            tokens.push("::".to_owned());
        } else if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    tokens
}

/// The file of the deepest module that `path`, written in `module`, names.
fn resolve(
    module: &[String],
    path: &[String],
    modules: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<PathBuf> {
    let mut at: Vec<String> = match path[0].as_str() {
        "crate" => Vec::new(),
        _ => module.to_vec(),
    };
    let mut rest = &path[1..];
    match path[0].as_str() {
        "super" => {
            at.pop();
            while rest.first().is_some_and(|s| s == "super") {
                at.pop();
                rest = &rest[1..];
            }
        }
        "crate" | "self" => {}
        child => at.push(child.to_owned()),
    }
    let mut best = None;
    for segment in std::iter::once(None).chain(rest.iter().map(Some)) {
        if let Some(segment) = segment {
            at.push(segment.clone());
        }
        // An inline module resolves to the file it is written in.
        let mut prefix = at.clone();
        while !prefix.is_empty() && !modules.contains_key(&prefix) {
            prefix.pop();
        }
        if let Some(file) = modules.get(&prefix) {
            best = Some(file.clone());
        }
    }
    best
}

fn dependencies() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let files = sources();
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|(file, source)| (source.module.clone(), file.clone()))
        .collect();
    let mut graph = BTreeMap::new();
    for (file, source) in &files {
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| m.len() == source.module.len() + 1 && m.starts_with(&source.module))
            .map(|m| m.last().unwrap().clone())
            .collect();
        let mut uses = BTreeSet::new();
        for (module, path) in paths(source, &children) {
            if let Some(target) = resolve(&module, &path, &modules) {
                if &target != file {
                    uses.insert(target);
                }
            }
        }
        graph.insert(file.clone(), uses);
    }
    graph
}

/// A cycle through `file`, if there is one, as the files along it.
fn cycle_from(
    graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    file: &PathBuf,
    trail: &mut Vec<PathBuf>,
    done: &mut BTreeSet<PathBuf>,
) -> Option<Vec<PathBuf>> {
    if let Some(at) = trail.iter().position(|f| f == file) {
        let mut cycle = trail[at..].to_vec();
        cycle.push(file.clone());
        return Some(cycle);
    }
    if done.contains(file) {
        return None;
    }
    trail.push(file.clone());
    for next in &graph[file] {
        if let Some(cycle) = cycle_from(graph, next, trail, done) {
            return Some(cycle);
        }
    }
    trail.pop();
    done.insert(file.clone());
    None
}

#[test]
fn no_file_imports_another_in_a_cycle() {
    let graph = dependencies();
    assert!(graph.len() > 20, "found only {} files", graph.len());
    let mut done = BTreeSet::new();
    for file in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, file, &mut Vec::new(), &mut done) {
            let names: Vec<String> = cycle.iter().map(|f| f.display().to_string()).collect();
            panic!("import cycle: {}", names.join(" -> "));
        }
    }
}

#[test]
fn raw_uses_nothing_of_the_crate_outside_raw() {
    let graph = dependencies();
    let raw = Path::new("raw");
    let mut checked = 0;
    for (file, uses) in &graph {
        if !file.starts_with(raw) {
            continue;
        }
        checked += 1;
        for target in uses {
            assert!(
                target.starts_with(raw),
                "{} uses {}",
                file.display(),
                target.display()
            );
        }
    }
    assert!(checked >= 5, "found only {checked} files under src/raw");
}

#[test]
fn the_checker_sees_the_imports_it_must() {
    let graph = dependencies();
    let uses = |from: &str, to: &str| graph[Path::new(from)].contains(Path::new(to));
    // `use crate::..`, `use super::..`, a child module in a `use`, and an inline path.
    assert!(uses("gather", "engine/mod"));
    assert!(uses("layer/deadline", "layer/mod"));
    assert!(uses("engine/mod", "engine/readiness"));
    assert!(uses("input/array", "sealed"));
    assert!(uses("raw/vec_slots", "raw/block"));
    // Docs that link elsewhere are not imports.
    assert!(!uses("results/gathered", "gather"));
}
