//! Python frame types generated from the schema bundle: a `TypedDict` for every object type,
//! `Literal` aliases for enums and for the tags of tagged unions, and unions as aliases.
//!
//! Frames reach Python as plain dicts; these types describe them for type checkers. A tagged
//! union's variants are the named definitions when the schema has them (every frame) and
//! otherwise get the name `<Tag><Union>` (`AssistantMessageDelta`, `TextContentPart`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use letta_app_server_protocol::schema::pascal_case;
use serde_json::Value;

use super::model::{Body, Kind, Model, Object, Tagged, Type};

/// Where the generated Python frame types live.
pub const PYTHON_TYPES_PATH: &str = "bindings/python/python/letta_app_server/frames.py";

type Result<T> = std::result::Result<T, String>;

/// The module of Python frame types for `model` (read from the bundle of
/// `schema/frames.schema.json`).
pub fn python_types(model: &Model) -> Result<String> {
    let mut module = Module::new(model);
    for definition in &model.definitions {
        let name = &definition.name;
        let description = definition.description.as_deref();
        match &definition.body {
            Body::Object(object) => module.class(name.clone(), description, object)?,
            Body::Tagged(tagged) => module.tagged_union(name, description, tagged)?,
            Body::Alias(ty) => {
                let mut deps = BTreeSet::new();
                let expr = type_of(ty, &mut deps)?;
                module.alias(name, expr, deps, description);
            }
        }
    }
    if let Some(root) = &model.root {
        let mut deps = BTreeSet::new();
        let members = root
            .members
            .iter()
            .map(|member| type_of(member, &mut deps))
            .collect::<Result<Vec<_>>>()?;
        module.alias(&root.title, members.join(" | "), deps, None);
    }
    module.render()
}

/// A `TypedDict` to emit.
struct Class {
    name: String,
    doc: Option<String>,
    fields: Vec<Field>,
    /// Whether the object allows keys it does not list (listed in `OPEN_TYPES`).
    open: bool,
}

struct Field {
    name: String,
    /// The annotation, already wrapped in `NotRequired[...]` when optional.
    annotation: String,
    doc: Option<String>,
}

/// A type alias to emit.
struct Alias {
    name: String,
    expr: String,
    /// The generated names it refers to (aliases must come after the aliases they use).
    deps: BTreeSet<String>,
    doc: Option<String>,
}

struct Module {
    classes: Vec<Class>,
    aliases: Vec<Alias>,
    names: BTreeSet<String>,
}

impl Module {
    fn new(model: &Model) -> Self {
        Self {
            classes: Vec::new(),
            aliases: Vec::new(),
            names: model
                .definitions
                .iter()
                .map(|definition| definition.name.clone())
                .collect(),
        }
    }

    fn alias(&mut self, name: &str, expr: String, deps: BTreeSet<String>, description: Option<&str>) {
        self.aliases.push(Alias {
            name: name.to_owned(),
            expr,
            deps,
            doc: description.map(str::to_owned),
        });
    }

    fn class(&mut self, name: String, description: Option<&str>, object: &Object) -> Result<()> {
        let mut fields = Vec::new();
        for property in &object.properties {
            let field = &property.name;
            if !is_identifier(field) {
                return Err(format!("`{name}.{field}` is not a Python identifier"));
            }
            let mut deps = BTreeSet::new();
            let expr = type_of(&property.ty, &mut deps).map_err(|e| format!("`{name}.{field}`: {e}"))?;
            // Class bodies are evaluated in order: names defined later are forward references.
            let expr = if deps.is_empty() {
                expr
            } else if expr.contains('\'') {
                return Err(format!("`{name}.{field}`: cannot quote the type {expr}"));
            } else {
                format!("'{expr}'")
            };
            let annotation = if property.required {
                expr
            } else {
                format!("NotRequired[{expr}]")
            };
            fields.push(Field {
                name: field.clone(),
                annotation,
                doc: property.description.clone(),
            });
        }
        self.classes.push(Class {
            name,
            doc: description.map(str::to_owned),
            fields,
            open: object.open,
        });
        Ok(())
    }

    /// A tagged union: each branch becomes a class (or is the named definition it repeats), the
    /// union an alias, and the tag values an alias too.
    fn tagged_union(&mut self, name: &str, description: Option<&str>, tagged: &Tagged) -> Result<()> {
        let tag = &tagged.tag;
        let mut members = Vec::new();
        let mut tags = Vec::new();
        for branch in &tagged.branches {
            tags.push(literal(&Value::String(branch.value.clone())));
            let member = match &branch.named {
                Some(named) => named.clone(),
                None => {
                    let variant_name = format!("{}{name}", pascal_case(&branch.value));
                    if !self.names.insert(variant_name.clone()) {
                        return Err(format!("`{name}`: the variant name `{variant_name}` is taken"));
                    }
                    self.class(variant_name.clone(), branch.description.as_deref(), &branch.object)?;
                    variant_name
                }
            };
            members.push(member);
        }
        let tag_alias = format!("{name}{}", pascal_case(tag));
        if !self.names.insert(tag_alias.clone()) {
            return Err(format!("`{name}`: the name `{tag_alias}` for its tags is taken"));
        }
        let tag_doc = format!("The `{tag}` values of `{name}`.");
        self.alias(
            &tag_alias,
            format!("Literal[{}]", tags.join(", ")),
            BTreeSet::new(),
            Some(&tag_doc),
        );
        let deps = members.iter().cloned().collect();
        self.alias(name, members.join(" | "), deps, description);
        Ok(())
    }

    fn render(self) -> Result<String> {
        let mut out = String::from(
            "\"\"\"Frame types generated from `schema/frames.schema.json`.\n\
             \n\
             Every frame arrives as a plain dict; these `TypedDict`s describe the frames this version of the\n\
             protocol knows. A newer server may send frame types, delta types or enum values not listed here.\n\
             \n\
             @generated by `cargo xtask codegen`; do not edit by hand.\n\
             \"\"\"\n\n\
             from typing import Any, Final, Literal, NotRequired, TypedDict\n",
        );
        let (literals, unions): (Vec<&Alias>, Vec<&Alias>) =
            self.aliases.iter().partition(|alias| alias.deps.is_empty());
        for alias in &literals {
            write_alias(&mut out, alias);
        }
        for class in &self.classes {
            let _ = write!(out, "\n\nclass {}(TypedDict):\n", class.name);
            if let Some(doc) = &class.doc {
                let _ = writeln!(out, "    {}\n", docstring(doc, "    "));
            }
            if class.fields.is_empty() {
                out.push_str("    pass\n");
            }
            for field in &class.fields {
                let _ = writeln!(out, "    {}: {}", field.name, field.annotation);
                if let Some(doc) = &field.doc {
                    let _ = writeln!(out, "    {}", docstring(doc, "    "));
                }
            }
        }
        out.push('\n');
        for alias in ordered(&unions)? {
            write_alias(&mut out, alias);
        }
        // A `TypedDict` cannot say that it allows more keys (before PEP 728), so the open ones
        // are listed.
        let open: Vec<String> = self
            .classes
            .iter()
            .filter(|class| class.open)
            .map(|class| format!("\"{}\"", class.name))
            .collect();
        let _ = write!(
            out,
            "\nOPEN_TYPES: Final = frozenset({})\n\
             \"\"\"The `TypedDict`s whose objects may carry keys they do not list (Letta objects, with the\n\
             fields the protocol relies on typed), which are kept as sent.\"\"\"\n",
            if open.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", open.join(", "))
            }
        );
        Ok(out)
    }
}

/// The Python type of `ty`, noting the generated names it uses in `deps`.
pub fn type_of(ty: &Type, deps: &mut BTreeSet<String>) -> Result<String> {
    Ok(match ty {
        Type::Any => "Any".to_owned(),
        Type::Never => return Err("no Python type for the schema `false`".into()),
        Type::Ref(name) => {
            deps.insert(name.clone());
            name.clone()
        }
        Type::Const(value) => format!("Literal[{}]", literal(value)),
        Type::Enum(values) => {
            let values: Vec<String> = values.iter().map(literal).collect();
            format!("Literal[{}]", values.join(", "))
        }
        Type::Union(members) => union(members, deps)?,
        Type::Kinds(kinds) => {
            let mut out = Vec::new();
            for kind in kinds {
                out.push(match kind {
                    Kind::String => "str".to_owned(),
                    Kind::Integer => "int".to_owned(),
                    Kind::Number => "float".to_owned(),
                    Kind::Boolean => "bool".to_owned(),
                    Kind::Null => "None".to_owned(),
                    Kind::List => "list[Any]".to_owned(),
                    Kind::ListOf(items) => format!("list[{}]", type_of(items, deps)?),
                    // A fixed-length tuple arrives as a list.
                    Kind::Tuple(items) => format!("list[{}]", union(items, deps)?),
                    Kind::Map(None) => "dict[str, Any]".to_owned(),
                    Kind::Map(Some(values)) => format!("dict[str, {}]", type_of(values, deps)?),
                    Kind::Object(_) => return Err("an object type without a name".into()),
                });
            }
            out.join(" | ")
        }
    })
}

/// The union of `members`, with their constants gathered into one `Literal`.
fn union(members: &[Type], deps: &mut BTreeSet<String>) -> Result<String> {
    let mut literals = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for member in members {
        match member {
            Type::Const(value) => literals.push(literal(value)),
            _ => {
                let expr = type_of(member, deps)?;
                if !others.contains(&expr) {
                    others.push(expr);
                }
            }
        }
    }
    let mut parts = Vec::new();
    if !literals.is_empty() {
        parts.push(format!("Literal[{}]", literals.join(", ")));
    }
    // `None` last, as people write it.
    others.sort_by_key(|expr| expr == "None");
    parts.extend(others);
    Ok(parts.join(" | "))
}

/// Aliases after the aliases they use.
fn ordered<'a>(aliases: &[&'a Alias]) -> Result<Vec<&'a Alias>> {
    let by_name: BTreeMap<&str, &Alias> = aliases.iter().map(|alias| (alias.name.as_str(), *alias)).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    fn visit<'a>(
        alias: &'a Alias,
        by_name: &BTreeMap<&str, &'a Alias>,
        visiting: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<&'a Alias>,
    ) -> Result<()> {
        if done.contains(&alias.name) {
            return Ok(());
        }
        if visiting.contains(&alias.name) {
            return Err(format!("the alias `{}` refers to itself", alias.name));
        }
        visiting.push(alias.name.clone());
        for dep in &alias.deps {
            if let Some(next) = by_name.get(dep.as_str()) {
                visit(next, by_name, visiting, done, out)?;
            }
        }
        visiting.pop();
        done.insert(alias.name.clone());
        out.push(alias);
        Ok(())
    }
    for alias in aliases {
        visit(alias, &by_name, &mut Vec::new(), &mut done, &mut out)?;
    }
    Ok(out)
}

fn write_alias(out: &mut String, alias: &Alias) {
    let _ = writeln!(out, "\n{} = {}", alias.name, alias.expr);
    if let Some(doc) = &alias.doc {
        let _ = writeln!(out, "{}", docstring(doc, ""));
    }
}

/// A JSON constant as a Python literal (JSON strings, numbers and booleans read the same way).
fn literal(value: &Value) -> String {
    match value {
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Null => "None".to_owned(),
        other => other.to_string(),
    }
}

fn is_identifier(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
        "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
        "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
    ];
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !KEYWORDS.contains(&name)
}

/// A docstring for `text`, continuation lines indented by `indent`.
pub fn docstring(text: &str, indent: &str) -> String {
    let mut escaped = text.trim().replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"");
    if escaped.ends_with('"') {
        escaped.pop();
        escaped.push_str("\\\"");
    }
    let body = escaped.replace('\n', &format!("\n{indent}"));
    if body.contains('\n') {
        format!("\"\"\"{body}\n{indent}\"\"\"")
    } else {
        format!("\"\"\"{body}\"\"\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn generate(bundle: &Value) -> Result<String> {
        python_types(&Model::read(bundle)?)
    }

    #[test]
    fn objects_unions_and_enums() {
        let bundle = json!({
            "title": "Root",
            "oneOf": [{"$ref": "#/definitions/Shape"}],
            "definitions": {
                "Shape": {"description": "A shape.", "oneOf": [
                    {"type": "object", "properties": {"kind": {"type": "string", "const": "dot"}}, "required": ["kind"]},
                    {"type": "object", "properties": {"kind": {"type": "string", "const": "big_box"},
                        "size": {"anyOf": [{"$ref": "#/definitions/Size"}, {"type": "null"}]}}, "required": ["kind"]}
                ]},
                "Size": {"type": "string", "enum": ["s", "m"]},
            }
        });
        let module = generate(&bundle).unwrap_or_else(|e| panic!("{e}"));
        for expected in [
            "class DotShape(TypedDict):\n    kind: Literal[\"dot\"]\n",
            "class BigBoxShape(TypedDict):\n    kind: Literal[\"big_box\"]\n    size: NotRequired['Size | None']\n",
            "\nSize = Literal[\"s\", \"m\"]\n",
            "\nShapeKind = Literal[\"dot\", \"big_box\"]\n",
            "\nShape = DotShape | BigBoxShape\n\"\"\"A shape.\"\"\"\n",
            "\nRoot = Shape\n",
        ] {
            assert!(module.contains(expected), "missing {expected:?} in:\n{module}");
        }
        assert!(
            module.find("\nShape =") < module.find("\nRoot ="),
            "aliases follow the aliases they use"
        );
    }

    #[test]
    fn unnamed_objects_and_clashing_names_are_errors() {
        let inline = json!({"definitions": {"A": {"type": "object", "properties": {
            "b": {"type": "object", "properties": {"c": {"type": "string"}}}}}}});
        assert!(
            generate(&inline)
                .unwrap_err()
                .contains("`A.b`: an object type without a name")
        );
        let clash = json!({"definitions": {
            "DotShape": {"type": "string"},
            "Shape": {"oneOf": [{"type": "object", "properties": {"kind": {"type": "string", "const": "dot"}},
                "required": ["kind"]}]}}});
        assert!(generate(&clash).unwrap_err().contains("`DotShape` is taken"));
    }

    #[test]
    fn docstrings_are_escaped() {
        assert_eq!(
            docstring(r#"say \o/ to "default""#, ""),
            r#""""say \\o/ to "default\"""""#
        );
        assert_eq!(docstring("a\nb", "    "), "\"\"\"a\n    b\n    \"\"\"");
    }
}
