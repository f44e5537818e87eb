//! Python frame types generated from the schema bundle: a `TypedDict` for every object type,
//! `Literal` aliases for enums and for the tags of tagged unions, and unions as aliases.
//!
//! Frames reach Python as plain dicts; these types describe them for type checkers. A tagged
//! union's variants are the named definitions when the schema has them (every frame) and
//! otherwise get the name `<Tag><Union>` (`AssistantMessageDelta`, `TextContentPart`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use letta_app_server_protocol::schema::pascal_case;
use serde_json::{Map, Value};

/// Where the generated Python frame types live.
pub const PYTHON_TYPES_PATH: &str = "bindings/python/python/letta_app_server/frames.py";

type Result<T> = std::result::Result<T, String>;

/// The module of Python frame types for the schema bundle.
pub fn python_types(bundle: &Value) -> Result<String> {
    let definitions = bundle
        .get("definitions")
        .and_then(Value::as_object)
        .ok_or("the schema bundle has no `definitions`")?;
    let mut module = Module::new(definitions);
    for (name, schema) in definitions {
        module.definition(name, schema)?;
    }
    if let (Some(title), Some(members)) = (
        bundle.get("title").and_then(Value::as_str),
        bundle.get("oneOf").and_then(Value::as_array),
    ) {
        let mut deps = BTreeSet::new();
        let members = members
            .iter()
            .map(|member| module.type_of(member, &mut deps))
            .collect::<Result<Vec<_>>>()?;
        module.alias(title, members.join(" | "), deps, None)?;
    }
    module.render()
}

/// A `TypedDict` to emit.
struct Class {
    name: String,
    doc: Option<String>,
    fields: Vec<Field>,
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

struct Module<'a> {
    definitions: &'a Map<String, Value>,
    classes: Vec<Class>,
    aliases: Vec<Alias>,
    names: BTreeSet<String>,
}

impl<'a> Module<'a> {
    fn new(definitions: &'a Map<String, Value>) -> Self {
        Self {
            definitions,
            classes: Vec::new(),
            aliases: Vec::new(),
            names: definitions.keys().cloned().collect(),
        }
    }

    fn definition(&mut self, name: &str, schema: &Value) -> Result<()> {
        if schema.get("properties").is_some() {
            return self.class(name.to_owned(), schema);
        }
        if let Some(variants) = tagged_variants(schema) {
            return self.tagged_union(name, schema, &variants);
        }
        let mut deps = BTreeSet::new();
        let expr = self.type_of(schema, &mut deps)?;
        self.alias(name, expr, deps, schema.get("description"))
    }

    fn alias(&mut self, name: &str, expr: String, deps: BTreeSet<String>, description: Option<&Value>) -> Result<()> {
        self.aliases.push(Alias {
            name: name.to_owned(),
            expr,
            deps,
            doc: description.and_then(Value::as_str).map(str::to_owned),
        });
        Ok(())
    }

    fn class(&mut self, name: String, schema: &Value) -> Result<()> {
        let required: BTreeSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("`{name}`: `properties` is not an object"))?;
        let mut fields = Vec::new();
        for (field, property) in properties {
            if !is_identifier(field) {
                return Err(format!("`{name}.{field}` is not a Python identifier"));
            }
            let mut deps = BTreeSet::new();
            let expr = self
                .type_of(property, &mut deps)
                .map_err(|e| format!("`{name}.{field}`: {e}"))?;
            // Class bodies are evaluated in order: names defined later are forward references.
            let expr = if deps.is_empty() {
                expr
            } else if expr.contains('\'') {
                return Err(format!("`{name}.{field}`: cannot quote the type {expr}"));
            } else {
                format!("'{expr}'")
            };
            let annotation = if required.contains(field.as_str()) {
                expr
            } else {
                format!("NotRequired[{expr}]")
            };
            fields.push(Field {
                name: field.clone(),
                annotation,
                doc: property.get("description").and_then(Value::as_str).map(str::to_owned),
            });
        }
        self.classes.push(Class {
            name,
            doc: schema.get("description").and_then(Value::as_str).map(str::to_owned),
            fields,
        });
        Ok(())
    }

    /// A union of objects told apart by a constant property: each variant becomes a class (or is
    /// the named definition equal to it), the union an alias, and the tag values an alias too.
    fn tagged_union(&mut self, name: &str, schema: &Value, variants: &[Value]) -> Result<()> {
        let tag = tag_property(variants).ok_or_else(|| format!("`{name}`: its variants share no constant property"))?;
        let mut members = Vec::new();
        let mut tags = Vec::new();
        for variant in variants {
            let value = variant["properties"][&tag]["const"].clone();
            tags.push(literal(&value));
            let named = self
                .definitions
                .iter()
                .find(|(_, definition)| *definition == variant)
                .map(|(name, _)| name.clone());
            let member = match named {
                Some(named) => named,
                None => {
                    let variant_name = format!("{}{name}", pascal_case(value.as_str().unwrap_or_default()));
                    if !self.names.insert(variant_name.clone()) {
                        return Err(format!("`{name}`: the variant name `{variant_name}` is taken"));
                    }
                    self.class(variant_name.clone(), variant)?;
                    variant_name
                }
            };
            members.push(member);
        }
        let tag_alias = format!("{name}{}", pascal_case(&tag));
        if !self.names.insert(tag_alias.clone()) {
            return Err(format!("`{name}`: the name `{tag_alias}` for its tags is taken"));
        }
        let tag_doc = Value::String(format!("The `{tag}` values of `{name}`."));
        self.alias(
            &tag_alias,
            format!("Literal[{}]", tags.join(", ")),
            BTreeSet::new(),
            Some(&tag_doc),
        )?;
        let deps = members.iter().cloned().collect();
        self.alias(name, members.join(" | "), deps, schema.get("description"))
    }

    /// The Python type of a schema, noting the generated names it uses in `deps`.
    fn type_of(&self, schema: &Value, deps: &mut BTreeSet<String>) -> Result<String> {
        let Value::Object(schema) = schema else {
            return match schema {
                Value::Bool(true) => Ok("Any".to_owned()),
                other => Err(format!("unsupported schema {other}")),
            };
        };
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference
                .strip_prefix("#/definitions/")
                .filter(|name| self.definitions.contains_key(*name))
                .ok_or_else(|| format!("unresolved reference {reference}"))?;
            deps.insert(name.to_owned());
            return Ok(name.to_owned());
        }
        if let Some(value) = schema.get("const") {
            return Ok(format!("Literal[{}]", literal(value)));
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let values: Vec<String> = values.iter().map(literal).collect();
            return Ok(format!("Literal[{}]", values.join(", ")));
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(members) = schema.get(key).and_then(Value::as_array) {
                if key == "allOf" && members.len() != 1 {
                    return Err("`allOf` with more than one member".into());
                }
                return self.union(members, deps);
            }
        }
        if schema.contains_key("properties") {
            return Err("an object type without a name".into());
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(single)) => vec![single.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            None => return Ok("Any".to_owned()),
            Some(other) => return Err(format!("unsupported `type` {other}")),
        };
        let mut out = Vec::new();
        for kind in types {
            out.push(match kind {
                "string" => "str".to_owned(),
                "integer" => "int".to_owned(),
                "number" => "float".to_owned(),
                "boolean" => "bool".to_owned(),
                "null" => "None".to_owned(),
                "array" => match schema.get("items") {
                    None => "list[Any]".to_owned(),
                    // A fixed-length tuple arrives as a list.
                    Some(Value::Array(items)) => format!("list[{}]", self.union(items, deps)?),
                    Some(items) => format!("list[{}]", self.type_of(items, deps)?),
                },
                "object" => match schema.get("additionalProperties") {
                    None | Some(Value::Bool(true)) => "dict[str, Any]".to_owned(),
                    Some(values) => format!("dict[str, {}]", self.type_of(values, deps)?),
                },
                other => return Err(format!("unsupported type `{other}`")),
            });
        }
        Ok(out.join(" | "))
    }

    /// The union of `members`, with their constants gathered into one `Literal`.
    fn union(&self, members: &[Value], deps: &mut BTreeSet<String>) -> Result<String> {
        let mut literals = Vec::new();
        let mut others: Vec<String> = Vec::new();
        for member in members {
            match member.get("const") {
                Some(value) => literals.push(literal(value)),
                None => {
                    let expr = self.type_of(member, deps)?;
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

    fn render(self) -> Result<String> {
        let mut out = String::from(
            "\"\"\"Frame types generated from `schema/frames.schema.json`.\n\
             \n\
             Every frame arrives as a plain dict; these `TypedDict`s describe the frames this version of the\n\
             protocol knows. A newer server may send frame types, delta types or enum values not listed here.\n\
             \n\
             @generated by `cargo xtask codegen`; do not edit by hand.\n\
             \"\"\"\n\n\
             from typing import Any, Literal, NotRequired, TypedDict\n",
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
        Ok(out)
    }
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

/// The variants of a `oneOf` whose members are all objects with properties.
fn tagged_variants(schema: &Value) -> Option<Vec<Value>> {
    let variants = schema.get("oneOf")?.as_array()?;
    variants
        .iter()
        .all(|variant| variant.get("properties").is_some())
        .then(|| variants.clone())
}

/// The first property that is a constant in every variant.
fn tag_property(variants: &[Value]) -> Option<String> {
    let first = variants.first()?.get("properties")?.as_object()?;
    first
        .iter()
        .filter(|(_, property)| property.get("const").is_some())
        .map(|(name, _)| name)
        .find(|name| {
            variants
                .iter()
                .all(|variant| variant["properties"][name.as_str()].get("const").is_some())
        })
        .cloned()
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
fn docstring(text: &str, indent: &str) -> String {
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
        let module = python_types(&bundle).unwrap_or_else(|e| panic!("{e}"));
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
            python_types(&inline)
                .unwrap_err()
                .contains("`A.b`: an object type without a name")
        );
        let clash = json!({"definitions": {
            "DotShape": {"type": "string"},
            "Shape": {"oneOf": [{"type": "object", "properties": {"kind": {"const": "dot"}}}]}}});
        assert!(python_types(&clash).unwrap_err().contains("`DotShape` is taken"));
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
