//! A line-based reader of `infra/template.yaml`: just enough YAML (block mappings by
//! indentation, one-line `{ key: value, ... }` flow mappings) to read each function's HttpApi
//! events and environment. No YAML crate: the CloudFormation tags (`!Ref`, `!Sub`, `!GetAtt`)
//! stay plain text here.

use gatehouse_core::router::Function;

pub(crate) fn read() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// One `key: value` line of a block mapping, with the lines nested under it.
pub(crate) struct Node<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: &'a str,
    pub(crate) body: Vec<&'a str>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The entries of the block mapping made of `lines` (the least indented lines are its keys;
/// blank and comment lines are skipped).
pub(crate) fn children<'a>(lines: &[&'a str]) -> Vec<Node<'a>> {
    let lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    let Some(base) = lines.iter().map(|l| indent(l)).min() else {
        return Vec::new();
    };
    let mut nodes: Vec<Node<'a>> = Vec::new();
    for line in lines {
        if indent(line) == base {
            let (key, value) = line.trim().split_once(':').unwrap_or((line.trim(), ""));
            nodes.push(Node {
                key: key.trim().trim_matches('"'),
                value: value.trim(),
                body: Vec::new(),
            });
        } else if let Some(node) = nodes.last_mut() {
            node.body.push(line);
        }
    }
    nodes
}

/// The entry at `path` (one key per level), if there is one.
pub(crate) fn at<'a>(lines: &[&'a str], path: &[&str]) -> Option<Node<'a>> {
    let (first, rest) = path.split_first()?;
    let node = children(lines).into_iter().find(|n| n.key == *first)?;
    if rest.is_empty() {
        Some(node)
    } else {
        at(&node.body, rest)
    }
}

/// An entry's fields: a one-line flow mapping (`{ a: 1, b: "x" }`) or a nested block.
pub(crate) fn fields(node: &Node<'_>) -> Vec<(String, String)> {
    let unquote = |v: &str| v.trim().trim_matches('"').to_owned();
    match node.value.strip_prefix('{') {
        Some(flow) => flow
            .trim_end()
            .trim_end_matches('}')
            .split(',')
            .filter_map(|pair| pair.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), unquote(v)))
            .collect(),
        None => children(&node.body)
            .iter()
            .map(|n| (n.key.to_owned(), unquote(n.value)))
            .collect(),
    }
}

/// The `Function` a template function resource is built as (`RegisterFunction` → `Register`).
pub(crate) fn function_of(logical_id: &str) -> Function {
    match logical_id {
        "RegisterFunction" => Function::Register,
        "DiscoveryFunction" => Function::Discovery,
        "AuthorizeFunction" => Function::Authorize,
        "AdminFunction" => Function::Admin,
        "TokenFunction" => Function::Token,
        other => panic!("the template has a function this test does not know: {other}"),
    }
}

/// The template's `AWS::Serverless::Function` resources: logical id and lines.
pub(crate) fn functions<'a>(lines: &[&'a str]) -> Vec<Node<'a>> {
    let resources = at(lines, &["Resources"]).expect("Resources");
    children(&resources.body)
        .into_iter()
        .filter(|r| at(&r.body, &["Type"]).map(|t| t.value) == Some("AWS::Serverless::Function"))
        .collect()
}

/// One `Type: HttpApi` event of a function.
#[derive(Debug, Clone)]
pub(crate) struct HttpEvent {
    pub(crate) function: String,
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) method: String,
}

pub(crate) fn http_events(yaml: &str) -> Vec<HttpEvent> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut events = Vec::new();
    for function in functions(&lines) {
        let Some(declared) = at(&function.body, &["Properties", "Events"]) else {
            continue;
        };
        for event in children(&declared.body) {
            if at(&event.body, &["Type"]).map(|t| t.value) != Some("HttpApi") {
                continue;
            }
            let properties = at(&event.body, &["Properties"]).expect("event Properties");
            let fields = fields(&properties);
            let field = |name: &str| {
                let found = fields.iter().find(|(k, _)| k == name);
                let (_, value) = found.unwrap_or_else(|| panic!("{} has no {name}", event.key));
                value.clone()
            };
            events.push(HttpEvent {
                function: function.key.to_owned(),
                name: event.key.to_owned(),
                path: field("Path"),
                method: field("Method"),
            });
        }
    }
    events
}

/// A variable's value as the template gives it: a literal, a parameter's default, or the
/// name of a resource (`!Ref Table`), which only exists once deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvValue {
    Literal(String),
    Resource(String),
}

/// The environment the template gives a function: `Globals.Function.Environment.Variables`
/// overlaid with the function's own, `!Ref Parameter` resolved to the parameter's default.
pub(crate) fn environment(yaml: &str, logical_id: &str) -> Vec<(String, EnvValue)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let function = functions(&lines)
        .into_iter()
        .find(|f| f.key == logical_id)
        .unwrap_or_else(|| panic!("no function {logical_id}"));
    let global = at(&lines, &["Globals", "Function", "Environment", "Variables"]);
    let own = at(&function.body, &["Properties", "Environment", "Variables"]);
    let mut env: Vec<(String, EnvValue)> = Vec::new();
    for node in [global, own].into_iter().flatten() {
        for (name, raw) in fields(&node) {
            let value = resolve(&lines, &raw);
            env.retain(|(n, _)| *n != name);
            env.push((name, value));
        }
    }
    env
}

fn resolve(lines: &[&str], raw: &str) -> EnvValue {
    // `!If [Condition, then, else]` on one line: the branch the condition takes with every
    // parameter at its default.
    if let Some(arguments) = raw.strip_prefix("!If ") {
        let items = list_items(arguments);
        let [condition, then, otherwise] = items.as_slice() else {
            panic!("!If takes [condition, then, else]: {raw}");
        };
        let taken = if condition_holds(lines, condition) {
            then
        } else {
            otherwise
        };
        let unquoted = taken.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
        return resolve(lines, unquoted.unwrap_or(taken));
    }
    let Some(name) = raw.strip_prefix("!Ref ").map(str::trim) else {
        return EnvValue::Literal(raw.to_owned());
    };
    match at(lines, &["Parameters", name]) {
        Some(parameter) => {
            let default = at(&parameter.body, &["Default"])
                .unwrap_or_else(|| panic!("parameter {name} has no default"));
            EnvValue::Literal(default.value.trim_matches('"').to_owned())
        }
        None => EnvValue::Resource(name.to_owned()),
    }
}

/// The items of a one-line flow sequence (`[a, !If [b, c, ""], "d"]`), split at the commas
/// outside nested brackets and quotes.
fn list_items(list: &str) -> Vec<&str> {
    let inner = list
        .trim()
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a one-line list: {list}"));
    let (mut items, mut depth, mut quoted, mut start) = (Vec::new(), 0_usize, false, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                items.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(inner[start..].trim());
    items
}

/// Whether the template's condition `name` holds with every parameter at its default. The
/// conditions an environment value uses compare one parameter with "":
/// `!Equals [!Ref P, ""]` or `!Not [!Equals [!Ref P, ""]]`.
fn condition_holds(lines: &[&str], name: &str) -> bool {
    let condition =
        at(lines, &["Conditions", name]).unwrap_or_else(|| panic!("no condition {name}"));
    let (negated, equals) = match condition.value.strip_prefix("!Not ") {
        Some(inner) => (true, list_items(inner)[0]),
        None => (false, condition.value),
    };
    let operands = equals
        .strip_prefix("!Equals ")
        .map(list_items)
        .unwrap_or_else(|| panic!("condition {name} is not a comparison with \"\""));
    let [parameter, empty] = operands.as_slice() else {
        panic!("condition {name}: !Equals takes two operands");
    };
    assert_eq!(
        *empty, "\"\"",
        "condition {name} compares with something else than \"\""
    );
    match resolve(lines, parameter) {
        EnvValue::Literal(value) => value.is_empty() != negated,
        EnvValue::Resource(r) => panic!("condition {name} compares the resource {r}"),
    }
}
