//! Bytes -> a small directory tree (files, nested directories, symlinks
//! inside, outside, dangling, absolute, looping) -> the packer's walk
//! (`ArtifactFiles::from_dir`, both symlink modes) and `pack`.
//! Never a panic; the same tree packs to the same digest every time, and a
//! copy of the tree in another directory packs to the same digest.

#![no_main]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use harness_artifact::pack::{DEFAULT_LAYER_MEDIA_TYPE, pack};
use harness_artifact::{ArtifactFiles, Symlinks};
use libfuzzer_sys::fuzz_target;

/// Bounds that keep one input cheap (a tree of a few dozen entries).
const MAX_OPS: usize = 32;
const MAX_DEPTH: usize = 6;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    /// A file name: mostly short ones from a tiny alphabet (so that names
    /// collide), sometimes long (GNU long-name entries) or raw bytes
    /// (non-UTF-8 names).
    fn name(&mut self) -> Option<Vec<u8>> {
        let kind = self.byte()?;
        let len = self.byte()? as usize;
        let name: Vec<u8> = match kind % 4 {
            0 => self
                .take(len % 3 + 1)
                .iter()
                .map(|b| b"ab."[*b as usize % 3])
                .collect(),
            1 => {
                const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789._-";
                let len = len % 16 + 1;
                self.take(len)
                    .iter()
                    .map(|b| ALPHABET[*b as usize % ALPHABET.len()])
                    .collect()
            }
            2 => {
                let mut name = vec![b'l'; 90 + len % 160];
                name.push(b'0' + kind % 10);
                name
            }
            _ => self
                .take(len % 12 + 1)
                .iter()
                .map(|b| if *b == b'/' || *b == 0 { b'_' } else { *b })
                .collect(),
        };
        (name != b"." && name != b"..").then_some(name)
    }
}

/// What the input builds, relative to the tree's root.
#[derive(Default)]
struct Tree {
    /// Paths (relative to the root) of everything created, for link targets.
    entries: Vec<PathBuf>,
    /// Whether a link's target names the temporary directory's absolute
    /// path (then a copy elsewhere differs in what it links to, as it should).
    links_to_temp_path: bool,
}

fn build(data: &[u8], root: &Path, outside: &Path) -> Tree {
    let mut input = Input(data);
    let mut tree = Tree::default();
    // The directory being filled, relative to the root.
    let mut current = PathBuf::new();
    for _ in 0..MAX_OPS {
        let Some(op) = input.byte() else { break };
        let depth = current.components().count();
        let up = |levels: usize| "../".repeat(levels);
        match op % 9 {
            0 => {
                let Some(name) = input.name() else { continue };
                let len = input.byte().unwrap_or(0) as usize;
                let path = current.join(OsStr::from_bytes(&name));
                if std::fs::write(root.join(&path), input.take(len)).is_ok() {
                    tree.entries.push(path);
                }
            }
            1 => {
                let Some(name) = input.name() else { continue };
                let path = current.join(OsStr::from_bytes(&name));
                if depth < MAX_DEPTH && std::fs::create_dir(root.join(&path)).is_ok() {
                    tree.entries.push(path.clone());
                    current = path;
                }
            }
            2 => {
                current.pop();
            }
            op => {
                let Some(name) = input.name() else { continue };
                let pick = input.byte().unwrap_or(0) as usize;
                let target: PathBuf = match op {
                    // Inside: to something created earlier, file or directory.
                    3 if !tree.entries.is_empty() => {
                        let entry = &tree.entries[pick % tree.entries.len()];
                        PathBuf::from(up(depth)).join(entry)
                    }
                    // Up the tree: the directory itself, an ancestor, or past the root.
                    3 | 4 => match pick % (depth + 3) {
                        0 => PathBuf::from("."),
                        levels => PathBuf::from(up(levels)),
                    },
                    // Outside the root, to a file that exists.
                    5 => PathBuf::from(up(depth + 1)).join("outside/secret"),
                    // Dangling.
                    6 => PathBuf::from(format!("missing-{pick}")),
                    // Absolute: outside, the root itself, or into the tree.
                    7 => match pick % 4 {
                        0 => PathBuf::from("/"),
                        1 => PathBuf::from("/nonexistent/file"),
                        2 => {
                            tree.links_to_temp_path = true;
                            outside.join("secret")
                        }
                        _ => {
                            tree.links_to_temp_path = true;
                            match tree.entries.get(pick % (tree.entries.len() + 1)) {
                                Some(entry) => root.join(entry),
                                None => root.to_path_buf(),
                            }
                        }
                    },
                    // Whatever the bytes say.
                    _ => {
                        let len = pick % 24 + 1;
                        PathBuf::from(OsStr::from_bytes(input.take(len)))
                    }
                };
                let path = current.join(OsStr::from_bytes(&name));
                if std::os::unix::fs::symlink(&target, root.join(&path)).is_ok() {
                    tree.entries.push(path);
                }
            }
        }
    }
    tree
}

/// A fresh `<temp>/root` built from `data`, beside `<temp>/outside/secret`.
fn tree_in_temp(data: &[u8]) -> (tempfile::TempDir, PathBuf, Tree) {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let root = temp.path().join("root");
    let outside = temp.path().join("outside");
    std::fs::create_dir(&root).expect("the tree's root");
    std::fs::create_dir(&outside).expect("the outside directory");
    std::fs::write(outside.join("secret"), b"outside the tree").expect("the outside file");
    let tree = build(data, &root, &outside);
    (temp, root, tree)
}

/// The walk and the pack, as comparable text: the digest, or the error.
fn pack_dir(
    root: &Path,
    symlinks: Symlinks,
) -> (Result<ArtifactFiles, String>, Result<String, String>) {
    let files = ArtifactFiles::from_dir(root, symlinks).map_err(|e| e.to_string());
    let packed = match &files {
        Ok(files) => pack(files, DEFAULT_LAYER_MEDIA_TYPE, &BTreeMap::new())
            .map(|p| p.digest)
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.clone()),
    };
    for error in [files.as_ref().err(), packed.as_ref().err()]
        .into_iter()
        .flatten()
    {
        assert!(!error.trim().is_empty(), "an empty error message");
    }
    (files, packed)
}

fuzz_target!(|data: &[u8]| {
    let (_temp, root, tree) = tree_in_temp(data);
    for symlinks in [Symlinks::Keep, Symlinks::Follow] {
        let first = pack_dir(&root, symlinks);
        let second = pack_dir(&root, symlinks);
        assert_eq!(
            first, second,
            "{symlinks:?}: packing the same tree twice differs"
        );
        if !tree.links_to_temp_path {
            let (_other_temp, other_root, _) = tree_in_temp(data);
            let elsewhere = pack_dir(&other_root, symlinks);
            // Errors name the directory they are in; only the outcome and
            // the digest must agree.
            assert_eq!(
                first.1.as_ref().ok(),
                elsewhere.1.as_ref().ok(),
                "{symlinks:?}: the same tree in another directory packs differently"
            );
            assert_eq!(first.1.is_ok(), elsewhere.1.is_ok());
        }
    }
});
