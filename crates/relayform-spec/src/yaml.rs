//! YAML documents with source positions.
//!
//! serde_yaml parses the text and is the authority on what it means (scalars, tags, duplicate keys,
//! syntax errors). It keeps no positions, so a second pass over the same text with yaml-rust2's event
//! parser builds an index from each node's path (`relays.orders.events[1]`) to where its key and value
//! start. The index is only ever used to place diagnostics: where the two parsers could disagree (aliases,
//! complex keys), a lookup falls back to the nearest enclosing node that it does know.

use crate::diagnostic::{Diagnostic, Location};
use serde_yaml::Value;
use std::collections::{HashMap, HashSet};
use std::fmt;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root to one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(Vec<Seg>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }

    pub fn key(&self, key: &str) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Path(segs)
    }

    pub fn index(&self, index: usize) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Path(segs)
    }

    pub fn parent(&self) -> Option<Path> {
        let (_, rest) = self.0.split_last()?;
        Some(Path(rest.to_vec()))
    }

    /// The last key of the path, if it ends in a key.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Option<Pos>,
    value: Pos,
}

/// A parsed spec file: its value and where each node of it stands.
#[derive(Debug)]
pub struct Document {
    pub file: String,
    pub value: Value,
    index: HashMap<Path, Entry>,
}

impl Document {
    /// Parses one file. A syntax error is returned as a located diagnostic.
    pub fn parse(file: &str, text: &str) -> Result<Document, Diagnostic> {
        if let Some(d) = too_deep(file, text) {
            return Err(d);
        }
        let mut builder = IndexBuilder::default();
        // Positions are best effort: if yaml-rust2 stops early, the index is partial and lookups fall back.
        let _ = Parser::new_from_str(text).load(&mut builder, false);
        let value: Value = serde_yaml::from_str(text).map_err(|e| {
            let mut d = syntax_error(file, text, &e);
            // serde_yaml places a duplicate key at its mapping; the index knows the repeated key itself.
            if let (true, Some(pos)) = (
                d.message.contains("duplicate entry"),
                builder.first_duplicate,
            ) {
                d.location = Location::new(file, pos.line, pos.column);
            }
            d
        })?;
        Ok(Document {
            file: file.to_owned(),
            value,
            index: builder.index,
        })
    }

    /// Where the value at `path` starts (or its nearest known ancestor; the file start at worst).
    pub fn value_at(&self, path: &Path) -> Location {
        let mut p = Some(path.clone());
        while let Some(path) = p {
            if let Some(e) = self.index.get(&path) {
                return self.loc(e.value);
            }
            p = path.parent();
        }
        self.loc(Pos { line: 1, column: 1 })
    }

    /// Where the key of the mapping entry at `path` starts (falling back to its value).
    pub fn key_at(&self, path: &Path) -> Location {
        match self.index.get(path) {
            Some(Entry { key: Some(k), .. }) => self.loc(*k),
            _ => self.value_at(path),
        }
    }

    fn loc(&self, pos: Pos) -> Location {
        Location::new(self.file.clone(), pos.line, pos.column)
    }
}

/// How deeply mappings and sequences may nest in a spec file. A spec needs five levels; the YAML
/// parsers take time quadratic in the nesting (100,000 `[` took 37 s), so a deeper file is refused
/// from a streaming look at its first [`MAX_DEPTH`] + 1 levels, before it is parsed.
pub const MAX_DEPTH: usize = 32;

fn too_deep(file: &str, text: &str) -> Option<Diagnostic> {
    let refuse = |line: usize, column: usize| {
        Diagnostic::error(
            "too-deep",
            Location::new(file, line, column),
            format!("mappings and sequences nest more than {MAX_DEPTH} levels deep here"),
        )
        .with_hint("a spec needs five levels; look for runaway brackets or dashes")
    };
    // Flow brackets first, by a linear look at the characters: the YAML scanner itself looks ahead
    // over every open bracket before it reports the first one (quadratic).
    if let Some((line, column)) = flow_too_deep(text) {
        return Some(refuse(line, column));
    }
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::MappingStart(..) | Event::SequenceStart(..), mark)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(refuse(mark.line(), mark.col() + 1));
                }
            }
            Ok((Event::MappingEnd | Event::SequenceEnd, _)) => depth = depth.saturating_sub(1),
            // The end, or a syntax error the full parse reports with its position.
            Ok((Event::StreamEnd, _)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Where `[` and `{` (outside quotes and comments) first nest past [`MAX_DEPTH`]: (line, column).
fn flow_too_deep(text: &str) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let (mut comment, mut escaped, mut prev) = (false, false, '\n');
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            (line, column, comment) = (line + 1, 0, false);
        } else if comment {
        } else if let Some(q) = quote {
            if q == '"' && c == '\\' && !escaped {
                escaped = true;
                prev = c;
                continue;
            }
            if c == q && !escaped {
                quote = None;
            }
        } else {
            match c {
                '#' if prev.is_whitespace() => comment = true,
                // A quote opens a quoted scalar only where a scalar can start (not `don't`).
                '"' | '\'' if prev.is_whitespace() || "[{,:-".contains(prev) => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some((line, column));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        escaped = false;
        prev = c;
    }
    None
}

fn syntax_error(file: &str, text: &str, e: &serde_yaml::Error) -> Diagnostic {
    let mut message = e.to_string();
    // serde_yaml appends " at line L column C"; the location goes in front instead.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    let location = match e.location() {
        Some(l) => Location::new(file, l.line(), l.column()),
        None => Location::new(file, 1, 1),
    };
    let hint = if message.contains("more than one document") {
        "put one document in each file; relayform merges every file of a directory".to_owned()
    } else if message.contains("duplicate entry") {
        "each key may appear once in a mapping; remove or rename one of them".to_owned()
    } else if text.contains('\t') && message.contains("tab") {
        "YAML indents with spaces, never tabs".to_owned()
    } else {
        "fix the YAML syntax at this position".to_owned()
    };
    Diagnostic::error("yaml-syntax", location, format!("invalid YAML: {message}")).with_hint(hint)
}

#[derive(Debug)]
enum Frame {
    Map {
        path: Path,
        pending_key: Option<(String, Pos)>,
        keys: HashSet<String>,
    },
    Seq {
        path: Path,
        next: usize,
    },
    /// A mapping or sequence used as a mapping key: skipped.
    Skip,
}

#[derive(Debug, Default)]
struct IndexBuilder {
    stack: Vec<Frame>,
    index: HashMap<Path, Entry>,
    documents: usize,
    first_duplicate: Option<Pos>,
}

impl IndexBuilder {
    fn awaiting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Map {
                pending_key: None,
                ..
            }) | Some(Frame::Skip)
        )
    }

    /// Records a value node starting at `pos` and returns its path.
    fn value_node(&mut self, pos: Pos) -> Path {
        let (path, key) = match self.stack.last_mut() {
            None => (Path::root(), None),
            Some(Frame::Map {
                path, pending_key, ..
            }) => {
                let (k, kpos) = pending_key.take().unwrap_or_else(|| (String::new(), pos));
                (path.key(&k), Some(kpos))
            }
            Some(Frame::Seq { path, next }) => {
                *next += 1;
                (path.index(*next - 1), None)
            }
            Some(Frame::Skip) => (Path::root(), None),
        };
        self.index
            .entry(path.clone())
            .or_insert(Entry { key, value: pos });
        path
    }

    fn set_key(&mut self, key: String, pos: Pos) {
        if let Some(Frame::Map {
            pending_key, keys, ..
        }) = self.stack.last_mut()
        {
            if !keys.insert(key.clone()) && self.first_duplicate.is_none() {
                self.first_duplicate = Some(pos);
            }
            *pending_key = Some((key, pos));
        }
    }
}

impl MarkedEventReceiver for IndexBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.documents > 1 {
            return;
        }
        let pos = Pos {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match ev {
            Event::DocumentStart => self.documents += 1,
            Event::Scalar(s, ..) => {
                if matches!(self.stack.last(), Some(Frame::Skip)) {
                } else if self.awaiting_key() {
                    self.set_key(s, pos);
                } else {
                    self.value_node(pos);
                }
            }
            Event::Alias(_) => {
                if self.awaiting_key() {
                    self.set_key("*".to_owned(), pos);
                } else {
                    self.value_node(pos);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                if self.awaiting_key() {
                    self.stack.push(Frame::Skip);
                } else {
                    let path = self.value_node(pos);
                    self.stack.push(if is_map {
                        Frame::Map {
                            path,
                            pending_key: None,
                            keys: HashSet::new(),
                        }
                    } else {
                        Frame::Seq { path, next: 0 }
                    });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Skip) = self.stack.pop()
                    && !matches!(self.stack.last(), Some(Frame::Skip))
                {
                    self.set_key("<complex key>".to_owned(), pos);
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values() {
        let text = "version: 1\nrelays:\n  orders:\n    events:\n      - A__e\n      - B__e\n";
        let doc = Document::parse("f.yaml", text).unwrap();
        let events = Path::root().key("relays").key("orders").key("events");
        assert_eq!(doc.key_at(&events).to_string(), "f.yaml:4:5");
        assert_eq!(doc.value_at(&events.index(1)).to_string(), "f.yaml:6:9");
        assert_eq!(
            doc.value_at(&Path::root().key("version")).to_string(),
            "f.yaml:1:10"
        );
        // Unknown paths fall back to the nearest known ancestor.
        assert_eq!(doc.value_at(&events.index(7)).to_string(), "f.yaml:5:7");
    }

    #[test]
    fn flow_style_and_quoted_keys() {
        let text = "orgs: {\"a b\": {simulator: true}}\n";
        let doc = Document::parse("f.yaml", text).unwrap();
        let sim = Path::root().key("orgs").key("a b").key("simulator");
        assert_eq!(doc.key_at(&sim).to_string(), "f.yaml:1:16");
    }

    #[test]
    fn syntax_errors_are_located() {
        let d = Document::parse("f.yaml", "a: 1\nb: [1, 2\n").unwrap_err();
        assert_eq!(d.code, "yaml-syntax");
        assert_eq!(d.location.line, 3, "{d}");
        let d = Document::parse("f.yaml", "a: 1\na: 2\n").unwrap_err();
        assert!(d.message.contains("duplicate entry"), "{d}");
        assert_eq!(d.location.line, 2, "{d}");
    }
}
