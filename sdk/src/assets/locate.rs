//! Where things are written: JSON paths, a syntax tree with byte offsets, and line/column.

use jsonc_parser::ast;

/// One step of a JSON path: a key of an object or an index into an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// `Vaults[2].LootTable`; empty for the whole file.
pub(super) fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// The inverse of [`path_string`]; a malformed index is read as part of a key.
pub(super) fn parse_path(text: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '.' {
            if !key.is_empty() {
                out.push(Seg::Key(std::mem::take(&mut key)));
            }
            rest = &rest[1..];
            continue;
        }
        if c == '['
            && let Some(end) = rest.find(']')
            && let Ok(index) = rest[1..end].parse::<usize>()
        {
            if !key.is_empty() {
                out.push(Seg::Key(std::mem::take(&mut key)));
            }
            out.push(Seg::Index(index));
            rest = &rest[end + 1..];
            continue;
        }
        key.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !key.is_empty() {
        out.push(Seg::Key(key));
    }
    out
}

/// A file's text and where its lines start, to turn byte offsets into lines and columns.
#[derive(Debug)]
pub(super) struct LineIndex {
    text: String,
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { text: text.to_string(), starts }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }

    /// The byte offset of a 1-based line and a 1-based column counted in bytes (serde_json's).
    pub(super) fn offset_of_byte_column(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.starts.get(line.max(1) - 1) else { return self.text.len() };
        (start + column.saturating_sub(1)).min(self.text.len())
    }
}

/// A JSON value and where it starts; objects keep their keys and where those start.
#[derive(Debug)]
pub(super) enum Node {
    Object { start: usize, props: Vec<Prop> },
    Array { start: usize, items: Vec<Node> },
    Scalar { start: usize },
}

#[derive(Debug)]
pub(super) struct Prop {
    pub(super) key: String,
    pub(super) key_start: usize,
    pub(super) value: Node,
}

/// A key written twice in one object: the object's path, the key, where the second one starts.
pub(super) type Duplicate = (Vec<Seg>, String, usize);

impl Node {
    pub(super) fn start(&self) -> usize {
        match self {
            Node::Object { start, .. } | Node::Array { start, .. } | Node::Scalar { start } => *start,
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&Prop> {
        match self {
            Node::Object { props, .. } => props.iter().rev().find(|p| p.key == key),
            _ => None,
        }
    }

    /// The tree of a parsed file, noting keys written twice in one object.
    pub(super) fn from_ast(value: &ast::Value, path: &mut Vec<Seg>, duplicates: &mut Vec<Duplicate>) -> Node {
        match value {
            ast::Value::Object(object) => {
                let mut props: Vec<Prop> = Vec::with_capacity(object.properties.len());
                for prop in &object.properties {
                    let (key, key_start) = match &prop.name {
                        ast::ObjectPropName::String(lit) => (lit.value.to_string(), lit.range.start),
                        ast::ObjectPropName::Word(lit) => (lit.value.to_string(), lit.range.start),
                    };
                    if props.iter().any(|p| p.key == key) {
                        duplicates.push((path.clone(), key.clone(), key_start));
                    }
                    path.push(Seg::Key(key.clone()));
                    let value = Node::from_ast(&prop.value, path, duplicates);
                    path.pop();
                    props.push(Prop { key, key_start, value });
                }
                Node::Object { start: object.range.start, props }
            }
            ast::Value::Array(array) => {
                let mut items = Vec::with_capacity(array.elements.len());
                for (index, element) in array.elements.iter().enumerate() {
                    path.push(Seg::Index(index));
                    items.push(Node::from_ast(element, path, duplicates));
                    path.pop();
                }
                Node::Array { start: array.range.start, items }
            }
            ast::Value::StringLit(lit) => Node::Scalar { start: lit.range.start },
            ast::Value::NumberLit(lit) => Node::Scalar { start: lit.range.start },
            ast::Value::BooleanLit(lit) => Node::Scalar { start: lit.range.start },
            ast::Value::NullKeyword(lit) => Node::Scalar { start: lit.range.start },
        }
    }
}

/// Where a path of a merged asset is written: the index of the file in the chain and the byte
/// offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Spot {
    pub(super) file: usize,
    pub(super) offset: usize,
}

/// Finds where `path` of the merged asset is written, given the trees of its inheritance chain,
/// the asset's own file first. The value comes from the nearest file that writes it, following
/// the merge rule: objects merge, anything else replaces what the ancestors hold. A path that
/// does not exist stops at the nearest existing ancestor (the enclosing object of a missing
/// key). With `at_key`, a path ending in a key points at the key rather than its value.
pub(super) fn locate(chain: &[&Node], path: &[Seg], at_key: bool) -> Spot {
    // The files whose values at the current path make up the merged value, nearest first.
    let mut holders: Vec<(usize, &Node, Option<usize>)> =
        chain.iter().enumerate().map(|(file, node)| (file, *node, None)).collect();
    let mut found = true;
    for seg in path {
        let mut next = Vec::new();
        match seg {
            Seg::Key(key) => {
                for &(file, node, _) in &holders {
                    let Some(prop) = node.get(key) else { continue };
                    let is_object = matches!(prop.value, Node::Object { .. });
                    if !next.is_empty() && !is_object {
                        // An object nearer the asset replaces this value and what lies behind it.
                        break;
                    }
                    next.push((file, &prop.value, Some(prop.key_start)));
                    if !is_object {
                        break;
                    }
                }
            }
            Seg::Index(index) => {
                if let Some(&(file, Node::Array { items, .. }, _)) = holders.first()
                    && let Some(item) = items.get(*index)
                {
                    next.push((file, item, None));
                }
            }
        }
        if next.is_empty() {
            found = false;
            break;
        }
        holders = next;
    }
    match holders.first() {
        Some(&(file, node, key)) => {
            let key = if at_key && found { key } else { None };
            Spot { file, offset: key.unwrap_or_else(|| node.start()) }
        }
        None => Spot { file: 0, offset: 0 },
    }
}
