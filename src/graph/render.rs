//! Drawing a [`TreeNode`] as text, one package per line.

use super::TreeNode;

/// Draw `tree` as text, one package per line.
pub fn render_tree(tree: &TreeNode, invert: bool) -> String {
    let mut out = String::new();
    let head = match &tree.version {
        Some(v) => format!("{} {v}", tree.name),
        None => tree.name.clone(),
    };
    out.push_str(&head);
    out.push('\n');
    let last = tree.children.len().saturating_sub(1);
    for (i, child) in tree.children.iter().enumerate() {
        render_node(child, "", i == last, invert, &mut out);
    }
    out
}

fn render_node(node: &TreeNode, prefix: &str, last: bool, invert: bool, out: &mut String) {
    let branch = if last { "└── " } else { "├── " };
    let mut line = format!("{prefix}{branch}{}", node.name);
    if let Some(v) = &node.version {
        line.push(' ');
        line.push_str(v);
    }
    if let Some(r) = &node.requirement {
        line.push_str(if invert { " (requires " } else { " (" });
        line.push_str(r);
        if let Some(m) = &node.marker {
            line.push_str("; ");
            line.push_str(m);
        }
        line.push(')');
    }
    if let Some(note) = node.note {
        line.push_str(match note {
            "cycle" => " [cycle]",
            _ => " [shown above]",
        });
    }
    out.push_str(&line);
    out.push('\n');
    let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
    let n = node.children.len().saturating_sub(1);
    for (i, child) in node.children.iter().enumerate() {
        render_node(child, &child_prefix, i == n, invert, out);
    }
}
