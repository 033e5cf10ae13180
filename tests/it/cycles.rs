//! No file of a workspace crate reaches itself again through `use crate::…` paths: each crate's modules form layers.
//!
//! The graph is read from the source text, as a reviewer would count it:
//! every `use crate::…` / `use super::…` item (braces expanded) and every
//! inline `crate::a::b` / `super::a` path is an edge to the longest module
//! path that is a file. `#[cfg(test)]` modules are cut off first; the crate
//! root (lib.rs, main.rs) is never a target. A cycle is a strongly connected
//! set of two or more files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A module path inside one crate (`["cache", "keyring"]`), `[]` for the root.
type Module = Vec<String>;

/// Every `.rs` file under `src`, by module path.
fn crate_files(src: &Path) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<Module, PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut module: Module = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if module.last().is_some_and(|l| l == "mod") {
                    module.pop();
                }
                if module == ["lib"] || module == ["main"] {
                    module.clear();
                }
                out.insert(module, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `text[at..]` starts with `word` and no word character precedes it.
fn word_at(text: &[u8], at: usize, word: &str) -> bool {
    text[at..].starts_with(word.as_bytes()) && (at == 0 || !is_word(text[at - 1]))
}

/// The source without its first `#[cfg(test)] mod NAME {` and what follows.
pub(crate) fn strip_tests(src: &str) -> &str {
    let b = src.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut from = 0;
    while let Some(found) = src[from..].find("#[cfg(test)]") {
        let start = from + found;
        let mut i = skip_ws(start + "#[cfg(test)]".len());
        for vis in ["pub(crate)", "pub"] {
            if src[i..].starts_with(vis)
                && b.get(i + vis.len()).is_some_and(u8::is_ascii_whitespace)
            {
                i = skip_ws(i + vis.len());
                break;
            }
        }
        if src[i..].starts_with("mod") && b.get(i + 3).is_some_and(u8::is_ascii_whitespace) {
            i = skip_ws(i + 3);
            let name = i;
            while i < b.len() && is_word(b[i]) {
                i += 1;
            }
            if i > name && b.get(skip_ws(i)) == Some(&b'{') {
                return &src[..start];
            }
        }
        from = start + 1;
    }
    src
}

/// A `use` tree with whitespace removed, as flat paths (`a::{b,c::d}` is `a::b`, `a::c::d`).
fn expand(body: &str) -> Vec<String> {
    let Some(open) = body.find('{') else {
        return vec![body.replace("::self", "")];
    };
    let pre = &body[..open];
    let inner = &body[open + 1..body.rfind('}').unwrap_or(body.len())];
    let (mut parts, mut depth, mut cur) = (Vec::new(), 0i32, String::new());
    for ch in inner.chars() {
        match ch {
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    let mut out = Vec::new();
    for part in parts {
        for e in expand(&part) {
            out.push(if e == "self" {
                pre.trim_end_matches(':').to_string()
            } else {
                format!("{pre}{e}")
            });
        }
    }
    out
}

/// The paths a file names, each with its root (`crate` or `super`).
fn paths_in(src: &str) -> Vec<(&'static str, String)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    // `use crate::…;` and `use super::…;`, braces expanded.
    for (at, _) in src.match_indices("use") {
        if !word_at(b, at, "use") {
            continue;
        }
        let mut i = at + 3;
        let ws = i;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == ws {
            continue;
        }
        for root in ["crate", "super"] {
            let head = format!("{root}::");
            if src[i..].starts_with(&head) {
                let body = &src[i + head.len()..];
                if let Some(end) = body.find(';').filter(|&e| e > 0) {
                    let flat: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
                    out.extend(expand(&flat).into_iter().map(|p| (root, p)));
                }
            }
        }
    }
    // Inline paths: lower-case segments, then one name of any case.
    for root in ["crate", "super"] {
        let head = format!("{root}::");
        for (at, _) in src.match_indices(&head) {
            if !word_at(b, at, root) {
                continue;
            }
            if let Some(p) = inline_path(&src[at + head.len()..]) {
                out.push((root, p));
            }
        }
    }
    out
}

/// `a::b::Name…` at the start of `text`: the longest run of lower-case
/// segments each followed by `::` and then a name.
fn inline_path(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let ident = |from: usize| {
        let starts = b
            .get(from)
            .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_');
        let mut end = from;
        while starts && end < b.len() && is_word(b[end]) {
            end += 1;
        }
        end
    };
    let lower = |s: &str| {
        s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    };
    let (mut taken, mut at) = (Vec::new(), 0);
    loop {
        let end = ident(at);
        if end == at {
            break;
        }
        let seg = &text[at..end];
        taken.push(seg);
        if lower(seg) && text[end..].starts_with("::") && ident(end + 2) > end + 2 {
            at = end + 2;
        } else {
            break;
        }
    }
    (!taken.is_empty()).then(|| taken.join("::"))
}

/// The file a path names: its longest prefix that is a module file.
fn resolve<'a>(files: &'a BTreeMap<Module, PathBuf>, segs: &[String]) -> Option<&'a PathBuf> {
    (1..=segs.len()).rev().find_map(|n| files.get(&segs[..n]))
}

/// The cycles among one crate's files, each as sorted paths.
fn cycles(src: &Path) -> Vec<Vec<PathBuf>> {
    let files = crate_files(src);
    let nodes: Vec<&PathBuf> = files.values().collect();
    let index = |p: &PathBuf| nodes.iter().position(|n| *n == p).unwrap();
    let root = files.get(&Vec::new());
    let mut edges = vec![Vec::new(); nodes.len()];
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (root_word, path) in paths_in(strip_tests(&text)) {
            let mut segs: Vec<String> = path
                .split("::")
                .filter(|s| !s.is_empty() && *s != "self")
                .map(str::to_string)
                .collect();
            if root_word == "super" {
                // `super` is the parent module, from `a/b.rs` and `a/mod.rs` alike.
                let mut base = module.clone();
                base.pop();
                base.extend(segs);
                segs = base;
            }
            if let Some(t) = resolve(&files, &segs)
                && t != file
                && Some(t) != root
            {
                edges[index(file)].push(index(t));
            }
        }
    }
    strongly_connected(&edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut c: Vec<PathBuf> = c.into_iter().map(|i| nodes[i].clone()).collect();
            c.sort();
            c
        })
        .collect()
}

/// Tarjan's strongly connected components.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct T<'a> {
        edges: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    impl T<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on[v] = true;
            for &w in &self.edges[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                self.out.push(comp);
            }
        }
    }
    let n = edges.len();
    let mut t = T {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.out
}

/// Every package directory with a `src/` (not fuzz/, tests/ or build output), and its cycles, one line each.
fn workspace_cycles(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        if dir.join("Cargo.toml").is_file() && dir.join("src").is_dir() {
            for c in cycles(&dir.join("src")) {
                let names: Vec<String> = c
                    .iter()
                    .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
                    .collect();
                out.push(format!("cycle: {}", names.join(" <-> ")));
            }
        }
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        for d in subdirs {
            let name = d.file_name().unwrap().to_string_lossy();
            if !["target", ".git", "fuzz", "tests", "node_modules"].contains(&name.as_ref())
                && !name.starts_with('.')
            {
                walk(&d, root, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn no_crate_has_a_file_level_use_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = workspace_cycles(root);
    assert!(
        found.is_empty(),
        "files that reach themselves through `use crate::…` (move the shared item to the lower file):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cycle_finder_names_a_planted_cycle_and_ignores_test_modules() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("cache")).unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod cache;\nmod cli;\n").unwrap();
    // a -> cache/mod.rs -> cache/keys.rs -> a, through braces, super:: and an inline path.
    std::fs::write(src.join("a.rs"), "use crate::cache::{self, Store};\n").unwrap();
    std::fs::write(
        src.join("cache/mod.rs"),
        "mod keys;\nuse crate::cache::keys::K;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("cache/keys.rs"),
        "use super::Store;\nfn f() { crate::a::g(); }\n",
    )
    .unwrap();
    // cli -> a only from its tests: no cycle.
    std::fs::write(
        src.join("cli.rs"),
        "pub fn x() {}\n#[cfg(test)]\nmod tests {\n    use crate::b::z;\n}\n",
    )
    .unwrap();
    std::fs::write(src.join("b.rs"), "use crate::cli::x;\n").unwrap();
    let found = workspace_cycles(dir.path());
    assert_eq!(
        found,
        ["cycle: src/a.rs <-> src/cache/keys.rs <-> src/cache/mod.rs"],
        "{found:?}"
    );
}
